//! The HTTP edge: a hyper accept loop (header read timeout, connection cap, graceful
//! drain on SIGTERM), and the middleware every request passes: IP and origin rules,
//! AUTHN token, body cap and read timeout, one log line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State as AxState};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tower::ServiceExt;

use super::metrics::Metrics;
use super::routes::{router, token_matches};
use super::{log, ServeError, State};

/// The longest a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a client may take to send a request's body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Open connections at most; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 512;

/// Serves until SIGTERM/SIGINT, then drains: no new connections, running submissions
/// finish, waiting requests are answered, open connections close.
pub async fn run(state: Arc<State>, addr: SocketAddr, requeued: u64) -> Result<(), ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    log(
        "listening",
        json!({"addr": local.to_string(), "workers": state.workers, "requeued": requeued}),
    );
    let app = router(state.clone()).layer(middleware::from_fn_with_state(state.clone(), edge));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Runtime)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Runtime)?;
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let Ok(permit) = permit else { break };
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    log("accept_error", json!({"error": e.to_string()}));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req)
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    drain(&state).await;
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        log(
            "drain",
            json!({"note": "connections still open after 10 s were closed"}),
        );
    }
    Ok(())
}

/// Waits for SIGTERM or SIGINT (a worker-only process, which has no listener).
pub async fn until_signal() -> Result<(), ServeError> {
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Runtime)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Runtime)?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    log("draining", json!({}));
    Ok(())
}

/// Stops the workers after their current submission and answers waiting requests.
async fn drain(state: &State) {
    log(
        "draining",
        json!({"running": state.busy.load(Ordering::SeqCst)}),
    );
    state.draining.store(true, Ordering::SeqCst);
    state.wake_workers();
    while state.alive.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    state.release_waiters();
}

/// What every request passes through.
async fn edge(AxState(state): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let origin = req.headers().get("origin").cloned();
    let response = match admit(&state, &req, peer) {
        Err(code) => code.into_response(),
        Ok(()) if method == Method::OPTIONS => StatusCode::NO_CONTENT.into_response(),
        Ok(()) => match buffer(&state, req).await {
            Ok(req) => next.run(req).await,
            Err(r) => r,
        },
    };
    let response = cors(&state, origin, response);
    let code = response.status().as_u16();
    state
        .metrics
        .requests
        .get_or_create(&Metrics::label("code", code))
        .inc();
    log(
        "request",
        json!({
            "method": method.as_str(),
            "path": path,
            "status": code,
            "ms": started.elapsed().as_secs_f64() * 1000.0,
            "peer": peer.map(|p| p.ip().to_string()),
        }),
    );
    response
}

/// ALLOW_IP/DISALLOW_IP (403) and the AUTHN token (401), as Judge0's before-actions.
fn admit(state: &State, req: &Request, peer: Option<SocketAddr>) -> Result<(), StatusCode> {
    let c = &state.config;
    let ip = peer.map(|p| p.ip().to_string()).unwrap_or_default();
    let denied: Vec<&String> = c
        .disallow_ip
        .iter()
        .filter(|i| !c.allow_ip.contains(i))
        .collect();
    let allowed: Vec<&String> = c
        .allow_ip
        .iter()
        .filter(|i| !c.disallow_ip.contains(i))
        .collect();
    if denied.contains(&&ip) || (!allowed.is_empty() && !allowed.contains(&&ip)) {
        return Err(StatusCode::FORBIDDEN);
    }
    if c.authn_token.is_empty() || req.method() == Method::OPTIONS {
        return Ok(());
    }
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .filter(|(k, _)| k == &c.authn_header)
                .collect()
        })
        .unwrap_or_default();
    if token_matches(&c.authn_header, &c.authn_token, req.headers(), &query) || bearer_ok(c, req) {
        Ok(())
    } else {
        Err(StatusCode::UNAUTHORIZED)
    }
}

/// A valid `Authorization: Bearer <JWT>` (when JWT keys are configured).
fn bearer_ok(c: &super::config::Config, req: &Request) -> bool {
    if !c.jwt.enabled() {
        return false;
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    token.is_some_and(|t| c.jwt.verify(t.trim(), super::now_ms() / 1000).is_ok())
}

/// Query pairs, percent-decoded (lossy).
fn url_pairs(q: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default()
}

/// Reads the whole body within BODY_TIMEOUT and the size cap (413).
async fn buffer(state: &State, req: Request) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let limit = state.config.max_request_size as usize;
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            axum::Json(json!({"error": "request body not received in time"})),
        )
            .into_response()),
        Ok(Err(_)) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(json!({"error": format!("request body larger than {limit} bytes (MAX_REQUEST_SIZE)")})),
        )
            .into_response()),
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
    }
}

/// ALLOW_ORIGIN/DISALLOW_ORIGIN: CORS headers for allowed origins.
fn cors(state: &State, origin: Option<HeaderValue>, mut r: Response) -> Response {
    let c = &state.config;
    let Some(origin) = origin else {
        return r;
    };
    let o = origin.to_str().unwrap_or("");
    let host = o.split("://").nth(1).unwrap_or(o);
    let listed = |list: &[String]| list.iter().any(|x| x == o || x == host);
    if listed(&c.disallow_origin) || (!c.allow_origin.is_empty() && !listed(&c.allow_origin)) {
        return r;
    }
    let h = r.headers_mut();
    let value = if c.allow_origin.is_empty() {
        HeaderValue::from_static("*")
    } else {
        origin
    };
    h.insert("access-control-allow-origin", value);
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("*"),
    );
    r
}

/// `/system_info`: CPU and memory in the spirit of Judge0's `lscpu` and `free -h`.
pub fn system_info() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |key: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let gib = |k: u64| format!("{:.1}Gi", k as f64 / 1024.0 / 1024.0);
    json!({
        "Architecture": std::env::consts::ARCH,
        "CPU(s)": std::thread::available_parallelism().map_or(1, |n| n.get()).to_string(),
        "Model name": model,
        "Mem": gib(kb("MemTotal:")),
        "Swap": gib(kb("SwapTotal:")),
    })
}
