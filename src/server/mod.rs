//! `judgebox serve`: a Judge0 CE 1.13-compatible HTTP API over the judge pipeline. Axum on
//! tokio answers requests; COUNT blocking worker threads claim submissions from the store
//! (SQLite, or PostgreSQL shared by API and worker processes on many hosts) under a lease
//! and judge them; `wait=true` awaits a notification, not a worker.

pub mod callback;
pub mod config;
pub mod files;
pub mod http;
pub mod jwt;
pub mod languages;
pub mod metrics;
pub mod openapi;
pub mod postgres;
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
use self::store::{Event, Hear, Lease, Store, WorkerBeat, PROCESSING};

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
    /// Set by SIGTERM/SIGINT: no new requests, workers finish what they run and stop.
    pub draining: AtomicBool,
    pub started: Instant,
    /// This process's lease owner id and lease length.
    pub lease: Lease,
    pub host: String,
    /// The submission each worker thread judges (`None`: idle).
    slots: Mutex<Vec<Option<String>>>,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
    wake: (Mutex<u64>, Condvar),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
            draining: AtomicBool::new(false),
            started: Instant::now(),
            lease: Lease {
                owner: new_token(),
                ms: 30_000,
            },
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map_or_else(|_| "unknown".into(), |h| h.trim().to_string()),
            slots: Mutex::new(vec![None; workers]),
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

    /// Records what worker `i` judges (`None`: it is idle).
    pub fn set_slot(&self, i: usize, token: Option<String>) {
        if let Some(slot) = lock(&self.slots).get_mut(i) {
            *slot = token;
        }
    }

    /// The submissions this process's workers judge (their leases to renew).
    pub fn held(&self) -> Vec<String> {
        lock(&self.slots).iter().flatten().cloned().collect()
    }

    /// This process's workers, as its heartbeat reports them.
    pub fn beats(&self) -> Vec<WorkerBeat> {
        let pid = std::process::id();
        lock(&self.slots)
            .iter()
            .enumerate()
            .map(|(i, token)| WorkerBeat {
                id: format!("{}/{i}", self.lease.owner),
                node: self.lease.owner.clone(),
                host: self.host.clone(),
                pid,
                state: if token.is_some() { "busy" } else { "idle" }.into(),
                token: token.clone(),
                last_heartbeat: now_ms(),
                age_ms: 0,
            })
            .collect()
    }

    /// Every worker of every process: the store's rows, this process's own as they are now.
    pub fn cluster_workers(&self) -> Result<Vec<WorkerBeat>, store::StoreError> {
        let mut all: Vec<WorkerBeat> = self
            .store
            .workers()?
            .into_iter()
            .filter(|b| b.node != self.lease.owner)
            .collect();
        if self.alive.load(Ordering::SeqCst) > 0 {
            all.extend(self.beats());
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    /// A worker's state as shown: `lost` when not heard of for a lease.
    pub fn worker_state<'a>(&self, w: &'a WorkerBeat) -> &'a str {
        if w.age_ms > self.lease.ms as i64 {
            "lost"
        } else {
            &w.state
        }
    }

    /// What other processes announced: new work, a finished submission, or "look again".
    fn on_event(&self, event: Event) -> bool {
        match event {
            Event::Queued => self.wake_workers(),
            Event::Finished(token) => self.finished(&token),
            Event::Resync => {
                self.wake_workers();
                self.recheck_waiters();
            }
        }
        !self.is_draining()
    }

    /// Wakes the `wait=true` requests whose submission finished without being heard of.
    fn recheck_waiters(&self) {
        let tokens: Vec<String> = lock(&self.waiters).keys().cloned().collect();
        for token in tokens {
            if let Ok(Some(sub)) = self.store.fetch(&token) {
                if sub.status_id > PROCESSING {
                    self.finished(&token);
                }
            }
        }
    }

    /// Sleeps `d` (in short steps, so a drain is not held up).
    pub fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.is_draining() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
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

/// Where submissions are kept.
#[derive(Debug, Clone)]
pub enum Database {
    /// Embedded, for one process.
    Sqlite(PathBuf),
    /// A `postgres://` URL, shared by any number of processes on any hosts.
    Postgres(String),
}

/// What this process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The HTTP API only (no workers).
    Api,
    /// Workers only (no HTTP listener).
    Worker,
    /// Both.
    All,
}

/// How to serve.
pub struct Options {
    pub listen: SocketAddr,
    pub config: Config,
    pub database: Database,
    pub role: Role,
    /// How long a claim lasts unless its worker's process renews it.
    pub lease: Duration,
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

/// Opens the store (PostgreSQL: after checking its schema is this binary's).
fn open_store(db: &Database, workers: usize) -> Result<Arc<dyn Store>, ServeError> {
    Ok(match db {
        Database::Sqlite(path) => Arc::new(sqlite::Sqlite::open(path)?),
        Database::Postgres(url) => Arc::new(postgres::Postgres::open(url, workers as u32 + 8)?),
    })
}

/// Renews this process's leases, reports its workers and requeues the submissions of
/// processes that are gone, every third of a lease (at most 2 s); on drain, says it stopped.
fn keeper(state: &Arc<State>) -> Result<std::thread::JoinHandle<()>, ServeError> {
    let state = state.clone();
    let tick = Duration::from_millis(state.lease.ms / 3).min(Duration::from_secs(2));
    std::thread::Builder::new()
        .name("judgebox-keeper".into())
        .spawn(move || {
            while !state.is_draining() {
                keep(&state);
                state.pause(tick);
            }
            // Wait for the workers' last results before saying they stopped.
            while state.alive.load(Ordering::SeqCst) > 0 {
                std::thread::sleep(Duration::from_millis(20));
                if !state.held().is_empty() {
                    let _ = state.store.renew(&state.lease, &state.held());
                }
            }
            if state.workers > 0 {
                let _ = state.store.heartbeat(&state.lease.owner, &[]);
            }
        })
        .map_err(ServeError::Runtime)
}

fn keep(state: &State) {
    let held = state.held();
    let step = |what: &str, e: store::StoreError| {
        log(
            "store_error",
            serde_json::json!({"step": what, "error": e.to_string()}),
        );
    };
    match state.store.renew(&state.lease, &held) {
        Ok(kept) => {
            for lost in held.iter().filter(|t| !kept.contains(t)) {
                log("lease_lost", serde_json::json!({"token": lost}));
            }
        }
        Err(e) => step("renew", e),
    }
    if state.workers > 0 {
        if let Err(e) = state.store.heartbeat(&state.lease.owner, &state.beats()) {
            step("heartbeat", e);
        }
    }
    match state.store.requeue_stale() {
        Ok(0) => {}
        Ok(n) => {
            log("requeued", serde_json::json!({"submissions": n}));
            state.wake_workers();
        }
        Err(e) => step("requeue", e),
    }
}

/// Runs the server until SIGTERM/SIGINT, then drains and returns.
pub fn serve(opts: Options) -> Result<(), ServeError> {
    let workers = if opts.role == Role::Api {
        0
    } else {
        opts.workers
    };
    let store = open_store(&opts.database, workers)?;
    let requeued = store.requeue_stale()?;
    let mut state = State::new(opts.config, store, opts.languages, opts.runner, workers);
    state.lease.ms = opts.lease.as_millis().max(1) as u64;
    let state = Arc::new(state);
    let listener = state.clone();
    // The listener thread ends by itself once the server drains.
    let hear = Hear {
        queued: workers > 0,
        finished: opts.role != Role::Worker,
    };
    let _ = state
        .store
        .subscribe(hear, Box::new(move |event| listener.on_event(event)))?;
    let mut handles = worker::start(&state);
    handles.push(keeper(&state)?);
    if opts.role != Role::Worker {
        handles.extend(pruner(&state));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let result = if opts.role == Role::Worker {
        log(
            "working",
            serde_json::json!({"workers": workers, "node": state.lease.owner, "requeued": requeued}),
        );
        rt.block_on(http::until_signal())
    } else {
        rt.block_on(http::run(state.clone(), opts.listen, requeued))
    };
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
