//! Worker threads claim the oldest queued submission and judge it; one committer thread
//! stores the results (which makes each status final, on disk first), then wakes
//! `wait=true` requests and sends the callbacks. A worker claims its next submission
//! before handing the last result over, so the store's sync to disk overlaps with
//! judging instead of delaying it, and results that arrive together share one sync.
//! A worker stops between submissions once the server drains; the committer stops once
//! every worker has and every result is stored.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;

use super::metrics::Metrics;
use super::store::{Outcome, Submission, PROCESSING};
use super::{callback, log, now_ms, wire, State};

/// The most results one commit stores.
const MAX_BATCH: usize = 64;

/// A judged submission on its way to the store.
struct Judged {
    sub: Submission,
    outcome: Outcome,
    /// Sandbox overhead, seconds (when judging got that far).
    overhead: Option<f64>,
    /// When it was claimed, Unix ms.
    claimed: i64,
}

/// Starts `state.workers` worker threads and the committer (the last handle).
pub fn start(state: &Arc<State>) -> Vec<JoinHandle<()>> {
    let (results, received) = mpsc::channel();
    let mut handles: Vec<JoinHandle<()>> = (0..state.workers)
        .map(|i| {
            let state = state.clone();
            let results = results.clone();
            state.alive.fetch_add(1, Ordering::SeqCst);
            std::thread::Builder::new()
                .name(format!("judgebox-worker-{i}"))
                .spawn(move || {
                    run(&state, &results);
                    state.alive.fetch_sub(1, Ordering::SeqCst);
                })
                .expect("spawn a worker thread")
        })
        .collect();
    drop(results);
    let state = state.clone();
    state.committing.store(true, Ordering::SeqCst);
    handles.push(
        std::thread::Builder::new()
            .name("judgebox-commit".into())
            .spawn(move || {
                commit_all(&state, &received);
                state.committing.store(false, Ordering::SeqCst);
            })
            .expect("spawn the committer thread"),
    );
    handles
}

fn run(state: &State, results: &Sender<Judged>) {
    let mut seen = 0;
    let idle = Metrics::label("state", "idle");
    state.metrics.workers.get_or_create(&idle).inc();
    let mut judged: Option<Judged> = None;
    while !state.is_draining() {
        let next = state.store.claim_next(now_ms());
        if let Some(done) = judged.take() {
            hand_over(results, done);
        }
        match next {
            Ok(Some(sub)) => judged = Some(judge(state, sub)),
            Ok(None) => state.idle(&mut seen, Duration::from_millis(500)),
            Err(e) => {
                log("store_error", json!({"error": e.to_string()}));
                state.idle(&mut seen, Duration::from_secs(1));
            }
        }
    }
    if let Some(done) = judged.take() {
        hand_over(results, done);
    }
    state.metrics.workers.get_or_create(&idle).dec();
}

/// Sends a result to the committer; one that cannot go stays processing in the store and
/// is requeued at the next start.
fn hand_over(results: &Sender<Judged>, done: Judged) {
    if let Err(mpsc::SendError(lost)) = results.send(done) {
        log(
            "store_error",
            json!({"token": lost.sub.token, "error": "the committer thread is gone"}),
        );
    }
}

/// Judges one claimed submission (a worker is busy meanwhile).
fn judge(state: &State, sub: Submission) -> Judged {
    let m = &state.metrics;
    state.busy.fetch_add(1, Ordering::SeqCst);
    move_worker(m, "idle", "busy");
    let claimed = now_ms();
    m.queue_seconds
        .observe((claimed - sub.created_at).max(0) as f64 / 1000.0);
    let (outcome, overhead) = match state.languages.get(sub.request.language_id) {
        Some(entry) => state.runner.run(&sub.token, entry, &sub.request),
        None => (
            Outcome {
                status_id: 13,
                message: Some(format!(
                    "language with id {} is no longer served",
                    sub.request.language_id
                )),
                ..Outcome::default()
            },
            None,
        ),
    };
    if let Some(seconds) = overhead {
        m.sandbox_seconds.observe(seconds);
    }
    move_worker(m, "busy", "idle");
    state.busy.fetch_sub(1, Ordering::SeqCst);
    Judged {
        sub,
        outcome,
        overhead,
        claimed,
    }
}

/// One worker leaves state `from` for `to` in the workers gauge.
fn move_worker(m: &Metrics, from: &str, to: &str) {
    m.workers
        .get_or_create(&Metrics::label("state", from))
        .dec();
    m.workers.get_or_create(&Metrics::label("state", to)).inc();
}

/// Stores results as they come, those waiting together in one commit, until every
/// worker is gone.
fn commit_all(state: &State, received: &Receiver<Judged>) {
    while let Ok(first) = received.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match received.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let stored = store(state, &batch);
        for (done, stored) in batch.into_iter().zip(stored) {
            announce(state, done, stored);
        }
    }
}

/// Stores a batch, retrying a busy or failing database for a while; `false` for each
/// that could not be (it stays processing and is requeued at the next start).
fn store(state: &State, batch: &[Judged]) -> Vec<bool> {
    let items: Vec<(&str, &Outcome)> = batch
        .iter()
        .map(|j| (j.sub.token.as_str(), &j.outcome))
        .collect();
    let now = now_ms();
    for attempt in 0..20 {
        match state.store.finish_many(&items, now) {
            Ok(stored) if attempt == 0 => return stored,
            // A backend that stores one at a time may have stored some before it failed.
            Ok(stored) => {
                return stored
                    .into_iter()
                    .zip(&items)
                    .map(|(ok, (token, _))| ok || is_final(state, token))
                    .collect()
            }
            Err(e) => {
                log(
                    "store_error",
                    json!({"tokens": items.len(), "error": e.to_string(), "attempt": attempt}),
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
    vec![false; items.len()]
}

fn is_final(state: &State, token: &str) -> bool {
    matches!(state.store.fetch(token), Ok(Some(s)) if s.status_id > PROCESSING)
}

/// A stored (or unstorable) result: metrics, the log line, `wait=true` requests, the
/// callback.
fn announce(state: &State, done: Judged, stored: bool) {
    let Judged {
        sub,
        outcome,
        overhead,
        claimed,
    } = done;
    let m = &state.metrics;
    m.run_seconds
        .observe((now_ms() - claimed).max(0) as f64 / 1000.0);
    m.finished
        .get_or_create(&Metrics::label("status", outcome.status_id))
        .inc();
    log(
        "finished",
        json!({
            "token": sub.token,
            "status": outcome.status_id,
            "verdict": outcome.verdict,
            "time": outcome.time,
            "memory": outcome.memory,
            "ms": now_ms() - claimed,
            "sandbox_ms": overhead.map(|s| (s * 1000.0).round()),
            "stored": stored,
        }),
    );
    state.finished(&sub.token);
    if stored {
        if let Some(url) = sub.request.callback_url.clone() {
            send_callback(state, &sub.token, url);
        }
    }
}

/// The PUT of the finished submission, on its own thread so the committer goes on.
fn send_callback(state: &State, token: &str, url: String) {
    let c = &state.config;
    if let Err(msg) = callback::check_url(&url, &c.callbacks_allowed_hosts) {
        log(
            "callback",
            json!({"token": token, "url": url, "error": msg}),
        );
        return;
    }
    let sub = match state.store.fetch(token) {
        Ok(Some(s)) => s,
        _ => return,
    };
    let fields: Vec<&str> = wire::DEFAULT_FIELDS
        .iter()
        .copied()
        .filter(|f| !f.starts_with("judgebox_"))
        .collect();
    let Ok(body) = wire::render(&sub, &fields, true, &state.languages) else {
        return;
    };
    let (tries, timeout) = (
        c.callbacks_max_tries,
        Duration::from_secs_f64(c.callbacks_timeout),
    );
    let token = token.to_string();
    let counter = state.metrics.callbacks.clone();
    let spawned = std::thread::Builder::new()
        .name("judgebox-callback".into())
        .spawn(move || {
            let (attempts, ok) = callback::send(&url, &body.to_string(), tries, timeout);
            counter
                .get_or_create(&Metrics::label(
                    "outcome",
                    if ok { "delivered" } else { "failed" },
                ))
                .inc();
            log(
                "callback",
                json!({"token": token, "url": url, "attempts": attempts, "delivered": ok}),
            );
        });
    if let Err(e) = spawned {
        log("callback", json!({"error": e.to_string()}));
    }
}
