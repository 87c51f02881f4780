//! `judgebox serve`: a Judge0 CE 1.13-compatible HTTP API over the judge pipeline. Axum on
//! tokio answers requests; COUNT blocking worker threads claim submissions from the store
//! (SQLite by default) and judge them; `wait=true` awaits a notification, not a worker.

pub mod callback;
pub mod config;
pub mod files;
pub mod http;
pub mod jwt;
pub mod languages;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod runner;
pub mod sqlite;
pub mod store;
pub mod wire;
pub mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::oneshot;

use self::config::Config;
use self::languages::Table;
use self::metrics::Metrics;
use self::runner::Runner;
use self::store::Store;

/// The Judge0 version this API answers as (the official SDK keys its language table on it).
pub const JUDGE0_VERSION: &str = "1.13.1";

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Everything the HTTP handlers and the workers share.
pub struct State {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub languages: Table,
    pub runner: Runner,
    pub metrics: Metrics,
    pub workers: usize,
    pub busy: AtomicUsize,
    /// Worker threads still running.
    pub alive: AtomicUsize,
    /// The committer thread (which stores the workers' results) is running.
    pub committing: AtomicBool,
    /// Set by SIGTERM/SIGINT: no new requests, workers finish what they run and stop.
    pub draining: AtomicBool,
    pub started: Instant,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
    wake: (Mutex<u64>, Condvar),
}

impl State {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        languages: Table,
        runner: Runner,
        workers: usize,
    ) -> State {
        State {
            config,
            store,
            languages,
            runner,
            metrics: Metrics::new(),
            workers,
            busy: AtomicUsize::new(0),
            alive: AtomicUsize::new(0),
            committing: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            started: Instant::now(),
            waiters: Mutex::new(HashMap::new()),
            wake: (Mutex::new(0), Condvar::new()),
        }
    }

    /// A receiver that fires when `token` finishes (register before queueing it).
    pub fn wait_for(&self, token: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        w.entry(token.to_string()).or_default().push(tx);
        rx
    }

    /// Wakes whoever waits for `token`.
    pub fn finished(&self, token: &str) {
        let mut w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        for tx in w.remove(token).unwrap_or_default() {
            let _ = tx.send(());
        }
    }

    /// Drops every waiter (they answer with the submission as it is).
    pub fn release_waiters(&self) {
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Wakes idle workers: there is new work (or it is time to stop).
    pub fn wake_workers(&self) {
        let (m, cv) = &self.wake;
        *m.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        cv.notify_all();
    }

    /// Waits until woken or `timeout` passes.
    pub fn idle(&self, seen: &mut u64, timeout: Duration) {
        let (m, cv) = &self.wake;
        let guard = m.lock().unwrap_or_else(|e| e.into_inner());
        if *guard != *seen {
            *seen = *guard;
            return;
        }
        let (guard, _) = cv
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|e| e.into_inner());
        *seen = *guard;
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// With RESULT_RETENTION_DAYS set, a thread that deletes older finished submissions at
/// start-up and then hourly (stops when the server drains).
fn pruner(state: &Arc<State>) -> Option<std::thread::JoinHandle<()>> {
    let days = state.config.result_retention_days;
    if days == 0 {
        return None;
    }
    let state = state.clone();
    std::thread::Builder::new()
        .name("judgebox-prune".into())
        .spawn(move || {
            let mut seen = 0;
            while !state.is_draining() {
                let before = now_ms() - days as i64 * 86_400_000;
                match state.store.prune(before) {
                    Ok(n) => log(
                        "pruned",
                        serde_json::json!({"deleted": n, "older_than_days": days}),
                    ),
                    Err(e) => log("store_error", serde_json::json!({"error": e.to_string()})),
                }
                let until = Instant::now() + Duration::from_secs(3600);
                while Instant::now() < until && !state.is_draining() {
                    state.idle(&mut seen, Duration::from_secs(1));
                }
            }
        })
        .ok()
}

/// How to serve.
pub struct Options {
    pub listen: SocketAddr,
    pub config: Config,
    pub db: PathBuf,
    pub workers: usize,
    pub languages: Table,
    pub runner: Runner,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A random (version 4) UUID, as Judge0's tokens.
pub fn new_token() -> String {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most `b.len()` bytes into the buffer it is given.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // Extremely unlikely; fall back to time and a counter (still unique per process).
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let t = now_ms() as u128 ^ ((SEQ.fetch_add(1, Ordering::SeqCst) as u128) << 64);
        b = (t ^ (u128::from(std::process::id()) << 96)).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// One structured log line on stderr (JSON, so control characters are escaped).
pub fn log(event: &str, fields: serde_json::Value) {
    let mut line = serde_json::json!({"ts": wire::iso8601(now_ms()), "event": event});
    if let (Some(obj), serde_json::Value::Object(extra)) = (line.as_object_mut(), fields) {
        obj.extend(extra);
    }
    eprintln!("{line}");
}

/// Runs the server until SIGTERM/SIGINT, then drains and returns.
pub fn serve(opts: Options) -> Result<(), ServeError> {
    let store: Arc<dyn Store> = Arc::new(sqlite::Sqlite::open(&opts.db)?);
    let requeued = store.requeue_stale()?;
    let state = Arc::new(State::new(
        opts.config,
        store,
        opts.languages,
        opts.runner,
        opts.workers,
    ));
    let mut handles = worker::start(&state);
    handles.extend(pruner(&state));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let result = rt.block_on(http::run(state.clone(), opts.listen, requeued));
    state.draining.store(true, Ordering::SeqCst);
    state.wake_workers();
    for h in handles {
        let _ = h.join();
    }
    state.release_waiters();
    rt.shutdown_timeout(Duration::from_secs(5));
    log("stopped", serde_json::json!({}));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_uuid4() {
        let t = new_token();
        assert_eq!(t.len(), 36);
        assert_eq!(&t[14..15], "4");
        assert_ne!(t, new_token());
    }
}
