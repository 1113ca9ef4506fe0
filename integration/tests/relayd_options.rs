//! lttng-relayd's process options on the trelayd binary, checked the way lttng-tools' suite and
//! scripts use them: `-b`/`-d` returning once the relay is ready (and failing when it cannot
//! start), `--working-directory` and `LTTNG_RELAYD_WORKING_DIRECTORY`, long option prefixes,
//! `--pid-file`, `--sig-parent`, `--dynamic-port-allocation` and its port files, and the health
//! socket queried through LTTng's own client library (liblttng-ctl).

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use trelay_integration::relay::trelayd_bin;

/// Runs trelayd with `args` (free loopback ports, output in `dir/out`, run directory
/// `dir/run`), waiting for it to return (it detaches with `-b`).
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
    let out = dir.join("out");
    let mut cmd = Command::new(trelayd_bin());
    cmd.args(["-o"])
        .arg(&out)
        .args([
            "-C",
            "tcp://127.0.0.1:0",
            "-D",
            "tcp://127.0.0.1:0",
            "-L",
            "tcp://127.0.0.1:0",
        ])
        .args(args)
        .env("LTTNG_RUNDIR", dir.join("run"))
        .env_remove("LTTNG_RELAYD_WORKING_DIRECTORY")
        .env_remove("LTTNG_RELAYD_HEALTH")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let log = dir.join("stderr.txt");
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("cannot start trelayd")?;
    // `-b` returns once ready, its standard streams going on with the detached relay: wait for
    // the parent only.
    let pid = child.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Output {
                status,
                stdout: Vec::new(),
                stderr: std::fs::read(&log).unwrap_or_default(),
            });
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            bail!("trelayd (pid {pid}) did not return within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(path: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    ensure!(text.ends_with('\n'), "pid file without newline: {text:?}");
    Ok(text.trim().parse()?)
}

fn cwd_of(pid: i32) -> Result<PathBuf> {
    Ok(std::fs::read_link(format!("/proc/{pid}/cwd"))?)
}

/// Stops the relay `pid` (SIGTERM) and waits until it is gone.
fn stop(pid: i32) -> Result<()> {
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    trelay_integration::wait_for(Duration::from_secs(30), "trelayd to exit", || {
        nix::sys::signal::kill(pid, None).is_err()
    })
}

#[test]
fn background_with_working_directories_and_pid_file() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().canonicalize()?;
    // A missing working directory: the start fails, before the parent returns, with
    // lttng-relayd's message.
    let missing = dir.join("imaginary_directory");
    let o = run(
        &dir,
        &["-b", "--working-directory", missing.to_str().unwrap_or("")],
        &[],
    )?;
    ensure!(o.status.code() == Some(1), "exit {:?}", o.status);
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        err.contains("Failed to change working directory to"),
        "{err}"
    );

    // `--working-dir` (a prefix), a pid file: the parent returns once the relay listens.
    let work = dir.join("w1");
    std::fs::create_dir(&work)?;
    let pid_file = dir.join("relayd.pid");
    let w = work.to_str().unwrap_or("");
    let p = pid_file.to_str().unwrap_or("");
    let o = run(&dir, &["-b", "--working-dir", w, "--pid-file", p], &[])?;
    ensure!(o.status.success(), "{o:?}");
    let pid = read_pid(&pid_file)?;
    ensure!(cwd_of(pid)? == work, "cwd {:?}", cwd_of(pid)?);
    let port = std::fs::read_to_string(dir.join("run/relayd/control.port"))?;
    let port: u16 = port.trim().parse()?;
    std::net::TcpStream::connect(("127.0.0.1", port)).context("control port not listening")?;
    // A second relay on the same output folder is refused, and says by whom.
    let o = run(&dir, &["-b"], &[])?;
    ensure!(o.status.code() == Some(1), "second relay: {:?}", o.status);
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(err.contains(&format!("pid {pid}")), "{err}");
    stop(pid)?;
    ensure!(!pid_file.exists(), "the pid file stays after exit");
    let left: Vec<_> = std::fs::read_dir(dir.join("out"))?.flatten().collect();
    ensure!(left.is_empty(), "the output folder holds {left:?}");

    // LTTNG_RELAYD_WORKING_DIRECTORY, and the command line winning over it.
    let env_dir = dir.join("w2");
    std::fs::create_dir(&env_dir)?;
    let e = env_dir.to_str().unwrap_or("");
    for (args, want) in [(vec![], &env_dir), (vec!["-w", w], &work)] {
        let mut all = vec!["-b", "-P", p];
        all.extend(args);
        let o = run(&dir, &all, &[("LTTNG_RELAYD_WORKING_DIRECTORY", e)])?;
        ensure!(o.status.success(), "{o:?}");
        let pid = read_pid(&pid_file)?;
        let cwd = cwd_of(pid)?;
        stop(pid)?;
        ensure!(&cwd == want, "cwd {cwd:?}, expected {want:?}");
    }
    // Without any, a detached relay goes to /.
    let o = run(&dir, &["-d", "-P", p], &[])?;
    ensure!(o.status.success(), "{o:?}");
    let pid = read_pid(&pid_file)?;
    let cwd = cwd_of(pid)?;
    stop(pid)?;
    ensure!(cwd == Path::new("/"), "cwd {cwd:?}");
    Ok(())
}

/// A parent that waits for SIGUSR1 (as lttng-tools 2.15's test harness does with `--sig-parent`)
/// and then finds every port listening, read from the port files of
/// `--dynamic-port-allocation`.
#[test]
fn sig_parent_comes_once_every_dynamic_port_listens() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let script = r#"
import os, signal, socket, subprocess, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
run = sys.argv[2]
relay = subprocess.Popen([sys.argv[1], "-S", "--dynamic-port-allocation", "-o", sys.argv[3],
                          "-P", sys.argv[4]], env=dict(os.environ, LTTNG_RUNDIR=run),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    if signal.sigtimedwait([signal.SIGUSR1], 30) is None:
        print("no SIGUSR1"); sys.exit(1)
    ports = []
    for name in ("control", "data", "live"):
        text = open(os.path.join(run, "relayd", name + ".port")).read()
        assert text.endswith("\n"), text
        port = int(text)
        assert port not in (0, 5342, 5343, 5344), port
        socket.create_connection(("127.0.0.1" if name != "live" else "localhost", port), 5).close()
        ports.append(port)
    pid = int(open(sys.argv[4]).read())
    assert pid == relay.pid, (pid, relay.pid)
    print("ready", *ports)
finally:
    relay.terminate()
    relay.wait(30)
"#;
    let out = Command::new(trelay_integration::lttng::python())
        .args(["-c", script])
        .arg(trelayd_bin())
        .arg(dir.join("run"))
        .arg(dir.join("out"))
        .arg(dir.join("pid"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && text.starts_with("ready"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The health socket, queried with liblttng-ctl's `lttng_health_query()` as lttng-tools'
/// `health_check` does: six relayd components, all healthy; at the `LTTNG_RELAYD_HEALTH` path,
/// removed at exit.
#[test]
fn health_socket_answers_liblttng_ctl() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let sock = dir.join("test-health");
    let pid_file = dir.join("pid");
    let o = run(
        dir,
        &["-b", "-P", pid_file.to_str().unwrap_or("")],
        &[("LTTNG_RELAYD_HEALTH", sock.to_str().unwrap_or(""))],
    )?;
    ensure!(o.status.success(), "{o:?}");
    let pid = read_pid(&pid_file)?;
    let script = r#"
import ctypes, sys
lib = ctypes.CDLL("liblttng-ctl.so.0")
lib.lttng_health_create_relayd.restype = ctypes.c_void_p
lib.lttng_health_get_thread.restype = ctypes.c_void_p
lib.lttng_health_get_thread.argtypes = [ctypes.c_void_p, ctypes.c_uint]
lib.lttng_health_thread_name.restype = ctypes.c_char_p
lib.lttng_health_thread_name.argtypes = [ctypes.c_void_p]
lib.lttng_health_thread_state.argtypes = [ctypes.c_void_p]
for f in ("lttng_health_query", "lttng_health_state", "lttng_health_get_nr_threads"):
    getattr(lib, f).argtypes = [ctypes.c_void_p]
h = lib.lttng_health_create_relayd(sys.argv[1].encode())
print("query", lib.lttng_health_query(h))
print("state", lib.lttng_health_state(h))
n = lib.lttng_health_get_nr_threads(h)
print("threads", n)
for i in range(n):
    t = lib.lttng_health_get_thread(h, i)
    print("thread", lib.lttng_health_thread_name(t).decode(), lib.lttng_health_thread_state(t))
"#;
    let out = Command::new(trelay_integration::lttng::python())
        .args(["-c", script])
        .arg(&sock)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    stop(pid)?;
    ensure!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        text.contains("query 0\n") && text.contains("state 0\n"),
        "{text}"
    );
    ensure!(text.contains("threads 6\n"), "{text}");
    ensure!(
        text.contains("thread Relay daemon live listener 0"),
        "{text}"
    );
    ensure!(!sock.exists(), "the health socket stays after exit");
    // Nothing listens any more: the same query now fails.
    let out = Command::new(trelay_integration::lttng::python())
        .args(["-c", script])
        .arg(&sock)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(!text.contains("query 0\n"), "{text}");
    Ok(())
}

/// Every option of lttng-relayd 2.15's `--help` is known to trelayd (the man page's list).
#[test]
fn every_lttng_relayd_option_is_accepted() -> Result<()> {
    let out = Command::new(trelayd_bin()).arg("--help").output()?;
    let help = String::from_utf8_lossy(&out.stdout);
    for (long, short) in trelay_relayd::config::cli::LTTNG_RELAYD_FLAGS {
        ensure!(
            help.contains(&format!("--{long}")),
            "--{long} missing:\n{help}"
        );
        if let Some(c) = short {
            ensure!(help.contains(&format!("-{c},")), "-{c} missing:\n{help}");
        }
    }
    let v = Command::new(trelayd_bin()).arg("-V").output()?;
    ensure!(v.status.success(), "-V: {v:?}");
    Ok(())
}
