//! Worker threads: claim the oldest queued submission, judge it, store the result (which
//! makes the status final), then wake `wait=true` requests and send the callback. A
//! worker stops between submissions once the server drains.

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
                    run(&state);
                    state.alive.fetch_sub(1, Ordering::SeqCst);
                })
                .expect("spawn a worker thread")
        })
        .collect()
}

fn run(state: &State) {
    let mut seen = 0;
    state
        .metrics
        .workers
        .get_or_create(&Metrics::label("state", "idle"))
        .inc();
    while !state.is_draining() {
        match state.store.claim_next(now_ms()) {
            Ok(Some(sub)) => process(state, sub),
            Ok(None) => state.idle(&mut seen, Duration::from_millis(500)),
            Err(e) => {
                log("store_error", json!({"error": e.to_string()}));
                state.idle(&mut seen, Duration::from_secs(1));
            }
        }
    }
    state
        .metrics
        .workers
        .get_or_create(&Metrics::label("state", "idle"))
        .dec();
}

fn process(state: &State, sub: Submission) {
    let m = &state.metrics;
    state.busy.fetch_add(1, Ordering::SeqCst);
    m.workers
        .get_or_create(&Metrics::label("state", "idle"))
        .dec();
    m.workers
        .get_or_create(&Metrics::label("state", "busy"))
        .inc();
    let claimed = now_ms();
    m.queue_seconds
        .observe((claimed - sub.created_at).max(0) as f64 / 1000.0);
    let outcome = match state.languages.get(sub.request.language_id) {
        Some(entry) => state.runner.run(&sub.token, entry, &sub.request),
        None => Outcome {
            status_id: 13,
            message: Some(format!(
                "language with id {} is no longer served",
                sub.request.language_id
            )),
            ..Outcome::default()
        },
    };
    let finished = finish(state, &sub.token, &outcome);
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
            "stored": finished,
        }),
    );
    state.finished(&sub.token);
    m.workers
        .get_or_create(&Metrics::label("state", "busy"))
        .dec();
    m.workers
        .get_or_create(&Metrics::label("state", "idle"))
        .inc();
    state.busy.fetch_sub(1, Ordering::SeqCst);
    if finished {
        if let Some(url) = sub.request.callback_url.clone() {
            send_callback(state, &sub.token, url);
        }
    }
}

/// Stores the result, retrying a busy or failing database for a while; `false` when it
/// could not (the submission stays processing and is requeued at the next start).
fn finish(state: &State, token: &str, outcome: &Outcome) -> bool {
    for attempt in 0..20 {
        match state.store.finish(token, outcome, now_ms()) {
            Ok(done) => return done,
            Err(e) => {
                log(
                    "store_error",
                    json!({"token": token, "error": e.to_string(), "attempt": attempt}),
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
    false
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
