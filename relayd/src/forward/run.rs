//! The forwarding supervisor: starts a job for every new session and for every ledger record
//! left by a previous run, and reports the backlog.

use super::ledger::{self, Entry};
use super::{ForwardSettings, Job};
use crate::session::{Registry, Session};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use trelay_consumer::native::client::ClientTls;
use trelay_consumer::native::follow::{follow, FollowProgress, NativeFollowOptions};
use trelay_consumer::trace::metadata::trace_format_of;
use trelay_consumer::url::RelayUrl;

/// How often new sessions are looked for.
const SCAN: Duration = Duration::from_millis(200);
/// How often a non-zero backlog is logged.
pub const BACKLOG_LOG: Duration = Duration::from_secs(10);
/// Pause before a job that failed (not a cut: a refusal) starts again.
const RESTART: Duration = Duration::from_secs(5);
/// How long a job keeps reconnecting before it starts over (it then starts again).
const RETRY_FOR: Duration = Duration::from_secs(3600);

/// What every job shares.
struct Target {
    url: RelayUrl,
    tls: Option<ClientTls>,
    poll: Duration,
    registry: Arc<Registry>,
}

/// Starts the supervisor when the settings ask for forwarding.
pub fn spawn(
    registry: &Arc<Registry>,
    shutdown: &CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let f = registry.settings.forward.clone()?;
    let (r, sd) = (registry.clone(), shutdown.clone());
    Some(tokio::spawn(async move {
        if let Err(e) = supervise(r, f, sd).await {
            tracing::error!("forwarding off: {e}");
        }
    }))
}

/// Forwards until `shutdown`; jobs in progress are dropped then (their ledger records stay, the
/// next run resumes them).
pub async fn supervise(
    registry: Arc<Registry>,
    settings: ForwardSettings,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let target = Arc::new(Target {
        url: settings.relay_url()?,
        tls: settings.tls()?,
        poll: Duration::from_millis(settings.poll_ms.max(1)),
        registry: registry.clone(),
    });
    tracing::info!(core = %settings.url, "forwarding every session to the core relay");
    let mut jobs = JoinSet::new();
    for e in ledger::read_all(&registry.fs, &registry.output) {
        tracing::info!(dir = %e.rel_dir.display(), "resuming the forwarding of a previous run's session");
        spawn_job(&mut jobs, &target, e, None);
    }
    // The first report comes early, so a core that is down at start shows at once.
    let mut next_log = Instant::now() + Duration::from_secs(2);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = registry.forwards.wait_created() => {}
            _ = tokio::time::sleep(SCAN) => {}
            Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
        }
        for s in registry.forwards.take_created() {
            if registry.forwards.has_dir(&s.rel_dir) {
                // A session reopened into a directory whose job (of a previous run) goes on.
                continue;
            }
            let e = Entry {
                id: random_id(),
                rel_dir: s.rel_dir.clone(),
                name: s.params.name.clone(),
                hostname: s.params.hostname.clone(),
                live_timer_us: s.params.live_timer,
            };
            if let Err(err) = ledger::write(&registry.fs, &registry.output, &e) {
                tracing::error!(session = %s.params.name, "cannot record the session for forwarding, not forwarded: {err}");
                continue;
            }
            spawn_job(&mut jobs, &target, e, Some(Arc::downgrade(&s)));
        }
        if Instant::now() >= next_log {
            next_log = Instant::now() + BACKLOG_LOG;
            let f = &registry.forwards;
            if f.backlog() > 0 || f.pending() > f.connected() {
                tracing::warn!(
                    backlog_bytes = f.backlog(),
                    sessions = f.pending(),
                    connected = f.connected(),
                    "forwarding backlog"
                );
            }
        }
    }
    jobs.shutdown().await;
    Ok(())
}

fn random_id() -> [u8; 16] {
    use std::os::unix::fs::FileExt;
    let mut id = [0u8; 16];
    if let Ok(f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact_at(&mut id, 0);
    }
    if id == [0; 16] {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        id = t.to_be_bytes();
    }
    id
}

fn spawn_job(
    jobs: &mut JoinSet<()>,
    target: &Arc<Target>,
    e: Entry,
    session: Option<Weak<Session>>,
) {
    let job = Arc::new(Job {
        rel_dir: e.rel_dir.clone(),
        counters: Arc::new(FollowProgress::default()),
    });
    target.registry.forwards.start(e.id, job.clone());
    jobs.spawn(forward_one(target.clone(), e, session, job));
}

/// Resolves once the session can receive nothing more and its last commit is done (at once for
/// a session of a previous run).
async fn ended(registry: Arc<Registry>, session: Option<Weak<Session>>) {
    let Some(w) = session else { return };
    loop {
        let Some(s) = w.upgrade() else { return };
        let closed = s.lock().connection_closed && registry.session_streams(&s).is_empty();
        if closed {
            s.commit.idle(Duration::from_secs(30)).await;
            return;
        }
        drop(s);
        tokio::time::sleep(SCAN).await;
    }
}

async fn forward_one(target: Arc<Target>, e: Entry, session: Option<Weak<Session>>, job: Arc<Job>) {
    let reg = &target.registry;
    let dir = reg.output.join(&e.rel_dir);
    let mut o = NativeFollowOptions::new(dir.clone(), target.url.clone());
    o.session = Some(e.name.clone());
    o.hostname = Some(e.hostname.clone());
    o.live_timer_us = if e.live_timer_us > 0 {
        e.live_timer_us
    } else {
        1_000_000
    };
    o.poll = target.poll;
    o.watch_session = false;
    o.retry_for = RETRY_FOR;
    o.progress = false;
    o.tls = target.tls.clone();
    o.session_id = Some(e.id);
    o.counters = Some(job.counters.clone());
    let done = loop {
        let end = ended(reg.clone(), session.clone());
        match follow(&o, end).await {
            Ok(r) => break Some(r),
            Err(err) => {
                let over = session.as_ref().and_then(Weak::upgrade).is_none();
                // No trace, or no metadata yet (which also tells the trace format the core's
                // session is opened with: the follow waits for it).
                let empty = trelay_consumer::trace::walk::walk(&dir)
                    .map(|t| t.iter().all(|t| trace_format_of(&t.metadata).is_none()))
                    .unwrap_or(true);
                if over && empty {
                    tracing::info!(session = %e.name, "session ended without a trace: nothing to forward");
                    break None;
                }
                tracing::warn!(session = %e.name, "forwarding interrupted, starting again in {} s: {err}", RESTART.as_secs());
                tokio::time::sleep(RESTART).await;
            }
        }
    };
    ledger::remove(&reg.fs, &reg.output, &e.id);
    reg.forwards.finish(&e.id);
    if let Some(r) = done {
        tracing::info!(
            session = %e.name,
            core_path = %r.relay_path,
            packets = r.packets,
            bytes = r.bytes,
            reconnects = r.reconnects,
            "session forwarded: the core committed all of it"
        );
    }
}
