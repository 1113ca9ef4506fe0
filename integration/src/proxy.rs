//! A fault-injecting TCP proxy: forwards connections to a target and cuts them at chosen byte
//! offsets of the client-to-target stream (counted over all connections), so a sender sees its
//! connection drop in the middle of anything — a header, a frame, a packet.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Cut offsets drawn from a fixed seed: `n` offsets spread over the first `span` bytes.
pub fn cuts(seed: u64, n: usize, span: u64) -> Vec<u64> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut v: Vec<u64> = (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 11) % span.max(1)
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Cuts made so far.
    pub cut: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Starts a proxy to `target` cutting at the offsets in `cuts` (sorted).
    pub async fn start(target: SocketAddr, cuts: Vec<u64>) -> std::io::Result<Proxy> {
        Self::start_paced(target, cuts, None).await
    }

    /// Like [`Proxy::start`], forwarding at most `rate` bytes a second towards the target.
    pub async fn start_paced(
        target: SocketAddr,
        cuts: Vec<u64>,
        rate: Option<u64>,
    ) -> std::io::Result<Proxy> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let cut = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let plan = Arc::new(Mutex::new(cuts));
        let c = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = l.accept().await {
                let Ok(up) = TcpStream::connect(target).await else {
                    continue;
                };
                tokio::spawn(pipe(
                    client,
                    up,
                    sent.clone(),
                    plan.clone(),
                    c.clone(),
                    rate,
                ));
            }
        });
        Ok(Proxy { addr, cut, task })
    }
}

async fn pipe(
    client: TcpStream,
    up: TcpStream,
    sent: Arc<AtomicU64>,
    plan: Arc<Mutex<Vec<u64>>>,
    cut: Arc<AtomicUsize>,
    rate: Option<u64>,
) {
    let _ = client.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = up.into_split();
    let down = tokio::spawn(async move {
        let mut b = vec![0u8; 64 << 10];
        while let Ok(n) = ur.read(&mut b).await {
            if n == 0 || cw.write_all(&b[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut b = vec![0u8; 16 << 10];
    while let Ok(n) = cr.read(&mut b).await {
        if n == 0 {
            break;
        }
        if let Some(rate) = rate {
            let pause = std::time::Duration::from_secs_f64(n as f64 / rate.max(1) as f64);
            tokio::time::sleep(pause).await;
        }
        let at = sent.load(Ordering::SeqCst);
        let next = {
            let p = plan
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            p.iter().copied().find(|c| *c >= at)
        };
        match next {
            Some(c) if c < at + n as u64 => {
                // Forward up to the cut, then drop both sides.
                let keep = (c - at) as usize;
                let _ = uw.write_all(&b[..keep]).await;
                sent.store(c + 1, Ordering::SeqCst);
                plan.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .retain(|x| *x > c);
                cut.fetch_add(1, Ordering::SeqCst);
                break;
            }
            _ => {
                if uw.write_all(&b[..n]).await.is_err() {
                    break;
                }
                sent.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
    }
    down.abort();
}
