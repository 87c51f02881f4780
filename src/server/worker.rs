//! Worker threads: claim the oldest queued submission under the process's lease, judge it,
//! store the result while the lease is held (which makes the status final), then wake
//! `wait=true` requests and send the callback. A lost database pauses claiming with
//! backoff. A worker stops between submissions once the server drains.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;

use super::metrics::Metrics;
use super::store::{Outcome, Submission};
use super::{callback, log, now_ms, wire, State};

/// Starts `state.workers` worker threads.
pub fn start(state: &Arc<State>) -> Vec<JoinHandle<()>> {
    (0..state.workers)
        .map(|i| {
            let state = state.clone();
            state.alive.fetch_add(1, Ordering::SeqCst);
            std::thread::Builder::new()
                .name(format!("judgebox-worker-{i}"))
                .spawn(move || {
                    run(&state, i);
                    state.alive.fetch_sub(1, Ordering::SeqCst);
                })
                .expect("spawn a worker thread")
        })
        .collect()
}

fn run(state: &State, slot: usize) {
    let mut seen = 0;
    let mut backoff = Duration::ZERO;
    while !state.is_draining() {
        match state.store.claim_next(&state.lease, now_ms()) {
            Ok(Some(sub)) => {
                backoff = Duration::ZERO;
                process(state, slot, sub);
            }
            Ok(None) => {
                backoff = Duration::ZERO;
                state.idle(&mut seen, Duration::from_millis(500));
            }
            Err(e) => {
                backoff = next_backoff(backoff);
                log(
                    "store_error",
                    json!({"step": "claim", "error": e.to_string(), "retry_ms": backoff.as_millis() as u64}),
                );
                state.pause(backoff);
            }
        }
    }
}

/// 250 ms, doubling up to 8 s.
fn next_backoff(d: Duration) -> Duration {
    (d * 2).clamp(Duration::from_millis(250), Duration::from_secs(8))
}

fn process(state: &State, slot: usize, sub: Submission) {
    let m = &state.metrics;
    state.busy.fetch_add(1, Ordering::SeqCst);
    state.set_slot(slot, Some(sub.token.clone()));
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
    let finished = finish(state, &sub.token, &outcome);
    state.set_slot(slot, None);
    m.run_seconds
        .observe((now_ms() - claimed).max(0) as f64 / 1000.0);
    if finished {
        m.finished
            .get_or_create(&Metrics::label("status", outcome.status_id))
            .inc();
    }
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
            "stored": finished,
        }),
    );
    state.finished(&sub.token);
    state.busy.fetch_sub(1, Ordering::SeqCst);
    if finished {
        if let Some(url) = sub.request.callback_url.clone() {
            send_callback(state, &sub.token, url);
        }
    }
}

/// Stores the result, retrying a failing database with backoff for as long as the lease
/// can still be held; `false` when it was not stored (the lease was lost, or the database
/// stayed away: the submission is then requeued when the lease expires, and judged again).
fn finish(state: &State, token: &str, outcome: &Outcome) -> bool {
    let give_up = std::time::Instant::now() + Duration::from_millis(state.lease.ms);
    let mut backoff = Duration::ZERO;
    // One stamp for every attempt: a retry after a lost COMMIT recognises its own result
    // by it (`Store::finish`).
    let now = now_ms();
    loop {
        match state.store.finish(token, &state.lease.owner, outcome, now) {
            Ok(done) => return done,
            Err(e) => {
                backoff = next_backoff(backoff);
                log(
                    "store_error",
                    json!({"step": "finish", "token": token, "error": e.to_string(), "retry_ms": backoff.as_millis() as u64}),
                );
                if std::time::Instant::now() + backoff > give_up {
                    return false;
                }
                std::thread::sleep(backoff);
            }
        }
    }
}

/// The PUT of the finished submission, on its own thread so the worker goes on.
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
