//! Headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`): a
//! chromedriver process of the test's own on a free port, a browser with a fresh profile and no
//! network beyond loopback, and its console log.

use anyhow::{bail, Context, Result};
use fantoccini::{Client, ClientBuilder};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The chromedriver binary.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The browser binary.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A chromedriver process, killed on drop.
pub struct Driver {
    child: Child,
    /// Its WebDriver URL.
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Driver {
    /// Starts chromedriver (its log in `dir/chromedriver.log`) and waits until it answers.
    pub fn start(dir: &Path) -> Result<Driver> {
        let port = free_port()?;
        let log = dir.join("chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start chromedriver (Debian package chromium-driver)")?;
        let url = format!("http://127.0.0.1:{port}");
        let driver = Driver { child, url };
        let status = format!("{}/status", driver.url);
        trelay_integration::wait_for(Duration::from_secs(30), "chromedriver to answer", || {
            ureq::get(&status).call().is_ok()
        })?;
        Ok(driver)
    }

    /// Opens a headless browser with a fresh profile under `dir`, its console logged.
    pub async fn browser(&self, dir: &Path) -> Result<Client> {
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile)?;
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--window-size=1400,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let serde_json::Value::Object(caps) = caps else {
            bail!("capabilities are an object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .context("cannot open a WebDriver session in Chromium")
    }

    /// The browser's console entries since the last call (`level`, `message`), from
    /// chromedriver's log endpoint.
    pub async fn console(&self, client: &Client) -> Result<Vec<(String, String)>> {
        let id = client
            .session_id()
            .await?
            .context("the WebDriver session has an id")?;
        let url = format!("{}/session/{id}/se/log", self.url);
        let body = ureq::post(&url)
            .set("Content-Type", "application/json")
            .send_string(r#"{"type":"browser"}"#)
            .context("chromedriver's log endpoint")?
            .into_string()?;
        let v: serde_json::Value = serde_json::from_str(&body)?;
        let entries = v["value"]
            .as_array()
            .with_context(|| format!("log entries in {body}"))?;
        Ok(entries
            .iter()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or_default().to_owned(),
                    e["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }
}
