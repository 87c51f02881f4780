//! The HTTP endpoints, with Judge0 CE 1.13's paths, status codes and error bodies.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::metrics::Metrics;
use super::store::{Submission, IN_QUEUE, PROCESSING};
use super::wire::{self, Parser};
use super::{new_token, now_ms, openapi, State, JUDGE0_VERSION};

type St = AxState<Arc<State>>;
type Q = Query<HashMap<String, String>>;

/// Every route.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/submissions", post(create).get(list))
        .route("/submissions/batch", post(batch_create).get(batch_show))
        .route("/submissions/{token}", get(show).delete(destroy))
        .route("/languages", get(languages))
        .route("/languages/all", get(languages_all))
        .route("/languages/{id}", get(language))
        .route("/statuses", get(statuses))
        .route("/about", get(about))
        .route("/version", get(version))
        .route("/isolate", get(isolate))
        .route("/license", get(license))
        .route("/system_info", get(system_info))
        .route("/config_info", get(config_info))
        .route("/statistics", get(statistics))
        .route("/workers", get(workers))
        .route("/authenticate", post(authenticate))
        .route("/authorize", post(authorize))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_doc))
        .fallback(not_found)
        .with_state(state)
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({"error": message.into()}))).into_response()
}

/// A response that ends a request early (boxed: `Response` is large).
type Refusal = Box<Response>;

fn refuse(code: StatusCode, message: impl Into<String>) -> Refusal {
    Box::new(error(code, message))
}

fn not_found_error() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

async fn not_found() -> Response {
    not_found_error()
}

fn internal(e: impl std::fmt::Display) -> Response {
    super::log("internal_error", json!({"error": e.to_string()}));
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
}

/// Runs a short blocking store call without stalling the runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Ruby's `to_i`: the leading integer, 0 when there is none.
fn ruby_to_i(s: &str) -> i64 {
    let s = s.trim_start();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let n: String = digits
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .take(18)
        .collect();
    sign * n.parse::<i64>().unwrap_or(0)
}

fn base64_param(state: &State, q: &HashMap<String, String>) -> bool {
    match q.get("base64_encoded").map(String::as_str) {
        Some("true") => true,
        Some("false") => false,
        _ => state.config.implicit_base64,
    }
}

/// Whether the request carries one of the AUTHZ tokens (header or query parameter).
pub fn authorized(state: &State, headers: &HeaderMap, q: &HashMap<String, String>) -> bool {
    let c = &state.config;
    !c.authz_token.is_empty() && token_matches(&c.authz_header, &c.authz_token, headers, q)
}

/// Constant-time comparison of the provided token against each configured one.
pub fn token_matches(
    header: &str,
    tokens: &[String],
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> bool {
    let provided = headers
        .get(header)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| q.get(header).cloned())
        .unwrap_or_default();
    tokens
        .iter()
        .any(|t| constant_eq(t.as_bytes(), provided.as_bytes()))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_json(body: &Bytes) -> Result<Value, Refusal> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("malformed JSON body: {}", e.to_string().replace('\n', " ")),
        )
    })
}

/// The checks Judge0 runs before creating: maintenance, queue room for `n` more.
fn admission(state: &State, n: u64) -> Result<(), Refusal> {
    let c = &state.config;
    if c.maintenance_mode {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            c.maintenance_message.clone(),
        ));
    }
    if state.is_draining() {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "server is shutting down",
        ));
    }
    let queued = blocking(|| state.store.queued()).map_err(|e| Box::new(internal(e)))?;
    state.metrics.queue_depth.set(queued as i64);
    if queued + n > c.max_queue_size {
        return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "queue is full"));
    }
    Ok(())
}

fn fields_param(q: &HashMap<String, String>) -> Result<Vec<&'static str>, Refusal> {
    wire::parse_fields(q.get("fields").map(String::as_str))
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, e))
}

fn new_submission(request: super::store::Request) -> Submission {
    Submission {
        token: new_token(),
        request,
        status_id: IN_QUEUE,
        created_at: now_ms(),
        started_at: None,
        finished_at: None,
        outcome: None,
    }
}

async fn create(AxState(st): St, Query(q): Q, body: Bytes) -> Response {
    let wait = q.get("wait").is_some_and(|w| w == "true");
    if let Err(r) = admission(&st, 1) {
        return *r;
    }
    if wait && !st.config.enable_wait_result {
        return error(StatusCode::BAD_REQUEST, "wait not allowed");
    }
    let fields = match fields_param(&q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let base64 = base64_param(&st, &q);
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let parser = Parser {
        config: &st.config,
        languages: &st.languages,
        base64,
    };
    let request = match parser.parse(&v) {
        Ok((r, _)) => r,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, Json(e.into_json())).into_response(),
    };
    let sub = new_submission(request);
    let token = sub.token.clone();
    let done = wait.then(|| st.wait_for(&token));
    if let Err(e) = blocking(|| st.store.create(&[sub])) {
        return internal(e);
    }
    st.wake_workers();
    let Some(done) = done else {
        return (StatusCode::CREATED, Json(json!({"token": token}))).into_response();
    };
    let _ = done.await;
    let sub = match blocking(|| st.store.fetch(&token)) {
        Ok(Some(s)) => s,
        Ok(None) => return not_found_error(),
        Err(e) => return internal(e),
    };
    match wire::render(&sub, &fields, base64, &st.languages) {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(_) => (
            StatusCode::CREATED,
            Json(json!({"error": wire::NOT_UTF8_ONE, "token": token})),
        )
            .into_response(),
    }
}

async fn show(AxState(st): St, Path(token): Path<String>, Query(q): Q) -> Response {
    let fields = match fields_param(&q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let sub = match blocking(|| st.store.fetch(&token)) {
        Ok(Some(s)) => s,
        Ok(None) => return not_found_error(),
        Err(e) => return internal(e),
    };
    match wire::render(&sub, &fields, base64_param(&st, &q), &st.languages) {
        Ok(v) => Json(v).into_response(),
        Err(_) => error(StatusCode::BAD_REQUEST, wire::NOT_UTF8_ONE),
    }
}

async fn list(AxState(st): St, Query(q): Q, headers: HeaderMap) -> Response {
    if !authorized(&st, &headers, &q) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let fields = match fields_param(&q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let page = q.get("page").map_or(1, |p| ruby_to_i(p));
    let per_page = q.get("per_page").map_or(20, |p| ruby_to_i(p));
    if page <= 0 {
        return error(StatusCode::BAD_REQUEST, format!("invalid page: {page}"));
    }
    if per_page <= 0 {
        return error(
            StatusCode::BAD_REQUEST,
            format!("invalid per_page: {per_page}"),
        );
    }
    let per_page = per_page.min(1000) as u64;
    let offset = (page as u64 - 1).saturating_mul(per_page);
    let (subs, total) = match blocking(|| st.store.list(offset, per_page)) {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let base64 = base64_param(&st, &q);
    let rendered: Result<Vec<Value>, _> = subs
        .iter()
        .map(|s| wire::render(s, &fields, base64, &st.languages))
        .collect();
    let Ok(rendered) = rendered else {
        return error(StatusCode::BAD_REQUEST, wire::NOT_UTF8_MANY);
    };
    let total_pages = total.div_ceil(per_page);
    let page = page as u64;
    Json(json!({
        "submissions": rendered,
        "meta": {
            "current_page": page,
            "next_page": (page < total_pages).then_some(page + 1),
            "prev_page": (page > 1).then_some(page - 1),
            "total_pages": total_pages,
            "total_count": total,
        }
    }))
    .into_response()
}

async fn destroy(
    AxState(st): St,
    Path(token): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    if !authorized(&st, &headers, &q) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if st.config.maintenance_mode {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            st.config.maintenance_message.clone(),
        );
    }
    let fields = match fields_param(&q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if !st.config.enable_submission_delete {
        return error(StatusCode::BAD_REQUEST, "delete not allowed");
    }
    let sub = match blocking(|| st.store.fetch(&token)) {
        Ok(Some(s)) => s,
        Ok(None) => return not_found_error(),
        Err(e) => return internal(e),
    };
    if sub.status_id == IN_QUEUE || sub.status_id == PROCESSING {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "submission cannot be deleted because its status is {} ({})",
                sub.status_id,
                wire::status_name(sub.status_id)
            ),
        );
    }
    if let Err(e) = blocking(|| st.store.delete(&token)) {
        return internal(e);
    }
    match wire::render(&sub, &fields, true, &st.languages) {
        Ok(v) => Json(v).into_response(),
        Err(_) => internal("base64 rendering failed"),
    }
}

async fn batch_create(AxState(st): St, Query(q): Q, body: Bytes) -> Response {
    let c = &st.config;
    if !c.enable_batched_submissions {
        return error(
            StatusCode::BAD_REQUEST,
            "batched submissions are not allowed",
        );
    }
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let items = v
        .get("submissions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.len() as u64 > c.max_submission_batch_size {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "number of submissions in a batch should be less than or equal to {}",
                c.max_submission_batch_size
            ),
        );
    }
    if items.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "there should be at least one submission in a batch",
        );
    }
    if let Err(r) = admission(&st, items.len() as u64) {
        return *r;
    }
    let parser = Parser {
        config: c,
        languages: &st.languages,
        base64: base64_param(&st, &q),
    };
    let mut created = Vec::new();
    let mut answer = Vec::new();
    for item in &items {
        match parser.parse(item) {
            Ok((request, _)) => {
                let sub = new_submission(request);
                answer.push(json!({"token": sub.token}));
                created.push(sub);
            }
            Err(e) => answer.push(e.into_json()),
        }
    }
    if !created.is_empty() {
        if let Err(e) = blocking(|| st.store.create(&created)) {
            return internal(e);
        }
        st.wake_workers();
    }
    let code = if created.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::CREATED
    };
    (code, Json(Value::Array(answer))).into_response()
}

async fn batch_show(AxState(st): St, Query(q): Q, headers: HeaderMap) -> Response {
    let c = &st.config;
    if !c.enable_batched_submissions {
        return error(
            StatusCode::BAD_REQUEST,
            "batched submissions are not allowed",
        );
    }
    let fields = match fields_param(&q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let raw = headers
        .get("tokens")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| q.get("tokens").cloned())
        .unwrap_or_default();
    let tokens: Vec<&str> = raw.trim().split(',').filter(|t| !t.is_empty()).collect();
    if tokens.len() as u64 > c.max_submission_batch_size {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "number of submissions in a batch should be less than or equal to {}",
                c.max_submission_batch_size
            ),
        );
    }
    if tokens.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "there should be at least one submission in a batch",
        );
    }
    let base64 = base64_param(&st, &q);
    let subs = match blocking(|| st.store.fetch_many(&tokens)) {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let mut out = Vec::new();
    for sub in subs {
        match sub.map(|s| wire::render(&s, &fields, base64, &st.languages)) {
            None => out.push(Value::Null),
            Some(Ok(v)) => out.push(v),
            Some(Err(_)) => return error(StatusCode::BAD_REQUEST, wire::NOT_UTF8_MANY),
        }
    }
    Json(json!({"submissions": out})).into_response()
}

async fn languages(AxState(st): St) -> Response {
    let list: Vec<Value> = st
        .languages
        .all()
        .iter()
        .filter(|e| e.available)
        .map(|e| json!({"id": e.id, "name": e.name}))
        .collect();
    Json(list).into_response()
}

async fn languages_all(AxState(st): St) -> Response {
    let list: Vec<Value> = st
        .languages
        .all()
        .iter()
        .map(
            |e| json!({"id": e.id, "name": e.name, "is_archived": false, "available": e.available}),
        )
        .collect();
    Json(list).into_response()
}

async fn language(AxState(st): St, Path(id): Path<String>) -> Response {
    let entry = id.parse::<u32>().ok().and_then(|id| st.languages.get(id));
    match entry {
        Some(e) => {
            let mut v = e.to_json();
            if !e.available {
                v["unavailable_reason"] = json!(format!(
                    "image {} is missing; get it with: {}",
                    e.lang.image, e.how_to_get
                ));
            }
            Json(v).into_response()
        }
        None => not_found_error(),
    }
}

async fn statuses() -> Response {
    let list: Vec<Value> = wire::STATUSES
        .iter()
        .map(|(id, d)| json!({"id": id, "description": d}))
        .collect();
    Json(list).into_response()
}

async fn about() -> Response {
    Json(json!({
        "version": JUDGE0_VERSION,
        "homepage": "judgebox serve (a Judge0-compatible API)",
        "source_code": "judgebox",
        "maintainer": "judgebox",
        "judgebox_version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

async fn version() -> Response {
    JUDGE0_VERSION.into_response()
}

async fn isolate() -> Response {
    concat!(
        "judgebox ",
        env!("CARGO_PKG_VERSION"),
        ": namespaces, pivot_root, cgroups v2/v1, seccomp (isolate is not used)\n"
    )
    .into_response()
}

async fn license() -> Response {
    concat!(
        "judgebox ",
        env!("CARGO_PKG_VERSION"),
        " is licensed under the Apache License, Version 2.0.\n"
    )
    .into_response()
}

async fn system_info() -> Response {
    Json(super::http::system_info()).into_response()
}

async fn config_info(AxState(st): St) -> Response {
    Json(st.config.info()).into_response()
}

async fn statistics(AxState(st): St) -> Response {
    let now = now_ms();
    let today = now.div_euclid(86_400_000);
    let stats = match blocking(|| st.store.stats(today)) {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let day = |d: i64| {
        let (y, m, dd) = wire::civil_from_days(d);
        format!("{y:04}-{m:02}-{dd:02}")
    };
    let mut last_30 = serde_json::Map::new();
    for d in (today - 30..today).rev() {
        let n = stats
            .by_day
            .iter()
            .find(|(x, _)| *x == d)
            .map_or(0, |(_, n)| *n);
        last_30.insert(day(d), json!(n));
    }
    let today_count = stats
        .by_day
        .iter()
        .find(|(x, _)| *x == today)
        .map_or(0, |(_, n)| *n);
    Json(json!({
        "created_at": wire::iso8601(now),
        "cached_until": wire::iso8601(now),
        "submissions": {"total": stats.total, "today": today_count, "last_30_days": last_30},
        "languages": stats.by_language.iter().map(|(id, n)| json!({
            "language": {"id": id, "name": st.languages.get(*id).map(|e| e.name.clone())},
            "count": n,
        })).collect::<Vec<_>>(),
        "statuses": stats.by_status.iter().map(|(id, n)| json!({
            "status": {"id": id, "name": wire::status_name(*id)},
            "count": n,
        })).collect::<Vec<_>>(),
        "database": {
            "size_pretty": format!("{} kB", stats.size_bytes / 1024),
            "size_in_bytes": stats.size_bytes,
        },
    }))
    .into_response()
}

/// Judge0's one queue, counted over every worker of every process; `workers` lists them
/// (a worker not heard of for a lease is `lost`).
async fn workers(AxState(st): St) -> Response {
    let found =
        blocking(|| Ok::<_, super::store::StoreError>((st.store.queued()?, st.cluster_workers()?)));
    let (queued, all) = match found {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let state = |w| st.worker_state(w);
    let count = |s: &str| all.iter().filter(|w| state(w) == s).count();
    let (idle, working, lost) = (count("idle"), count("busy"), count("lost"));
    let list: Vec<Value> = all
        .iter()
        .map(|w| {
            json!({
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "state": state(w),
                "token": w.token,
                "last_heartbeat": wire::iso8601(w.last_heartbeat),
            })
        })
        .collect();
    Json(json!([{
        "queue": JUDGE0_VERSION,
        "size": queued,
        "available": idle + working,
        "idle": idle,
        "working": working,
        "paused": 0,
        "failed": lost,
        "workers": list,
    }]))
    .into_response()
}

async fn authenticate() -> Response {
    StatusCode::OK.into_response()
}

async fn authorize(AxState(st): St, Query(q): Q, headers: HeaderMap) -> Response {
    if authorized(&st, &headers, &q) {
        StatusCode::OK.into_response()
    } else {
        StatusCode::FORBIDDEN.into_response()
    }
}

/// Prometheus' text; queue depth, workers by state and submissions by status are the
/// whole cluster's (read from the store at each scrape).
async fn metrics(AxState(st): St) -> Response {
    let m = &st.metrics;
    if let Ok(n) = blocking(|| st.store.queued()) {
        m.queue_depth.set(n as i64);
    }
    if let Ok(all) = blocking(|| st.cluster_workers()) {
        m.workers.clear();
        for w in &all {
            m.workers
                .get_or_create(&Metrics::label("state", st.worker_state(w)))
                .inc();
        }
    }
    if let Ok(stats) = blocking(|| st.store.stats(now_ms().div_euclid(86_400_000))) {
        m.submissions.clear();
        for (status, n) in stats.by_status {
            m.submissions
                .get_or_create(&Metrics::label("status", status))
                .set(n as i64);
        }
    }
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        m.render(),
    )
        .into_response()
}

async fn openapi_doc() -> Response {
    Json(openapi::document()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_to_i_takes_the_leading_integer() {
        assert_eq!(ruby_to_i("12abc"), 12);
        assert_eq!(ruby_to_i("abc"), 0);
        assert_eq!(ruby_to_i("-3"), -3);
        assert_eq!(
            ruby_to_i("99999999999999999999999"),
            999_999_999_999_999_999
        );
    }
}
