//! Retries (5xx, 429 with Retry-After), timeouts on stalled registries, redirects (and
//! where `Authorization` may follow them).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fixture::{assert_no_partial_files, blob_dir, host_arch, image, opts, Registry};
use super::mock::{Reply, Server};
use super::{assert_complete, reference, serve};
use crate::image::registry::{pull, RegistryError};

fn registry() -> (Arc<Registry>, super::fixture::TestImage) {
    let reg = Registry::new("judge/app");
    let img = image(&host_arch(), 2, 30_000, 4);
    reg.add_image(&img, Some("v1"));
    (reg, img)
}

#[test]
fn server_errors_are_retried_then_reported() {
    let (reg, _) = registry();
    let server = serve(&reg, |req| {
        req.route()
            .contains("/manifests/")
            .then(|| Reply::status(500))
    });
    let (_tmp, blobs) = blob_dir();
    let err = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Server {
                status: 500,
                attempts: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(server.requests_to("/v2/judge/app/manifests/").len(), 3);
}

#[test]
fn a_passing_server_error_is_survived() {
    let (reg, _) = registry();
    let failures = Arc::new(AtomicUsize::new(0));
    let count = failures.clone();
    let server = serve(&reg, move |req| {
        (req.route().contains("/blobs/") && count.fetch_add(1, Ordering::SeqCst) < 2)
            .then(|| Reply::status(503))
    });
    let (_tmp, blobs) = blob_dir();
    let pulled = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap();
    assert_complete(&pulled, &blobs, &reg);
    assert!(failures.load(Ordering::SeqCst) >= 3);
}

#[test]
fn rate_limits_wait_for_retry_after() {
    let (reg, _) = registry();
    let limited = Arc::new(AtomicUsize::new(0));
    let count = limited.clone();
    let server = serve(&reg, move |req| {
        (req.route().contains("/manifests/") && count.fetch_add(1, Ordering::SeqCst) == 0)
            .then(|| Reply::status(429).header("Retry-After", "1"))
    });
    let (_tmp, blobs) = blob_dir();
    let start = Instant::now();
    pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After ignored: {waited:?}"
    );
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    assert_eq!(server.requests_to("/v2/judge/app/manifests/").len(), 2);
}

#[test]
fn retry_after_is_capped_and_persistent_429_is_an_error() {
    let (reg, _) = registry();
    let server = serve(&reg, |req| {
        req.route()
            .contains("/manifests/")
            .then(|| Reply::status(429).header("Retry-After", "3600"))
    });
    let (_tmp, blobs) = blob_dir();
    let mut o = opts();
    o.retry.max_wait = Duration::from_millis(200);
    let start = Instant::now();
    let err = pull(&reference(&server, "judge/app", "v1"), &blobs, &o).unwrap_err();
    let waited = start.elapsed();
    assert!(
        matches!(err, RegistryError::RateLimited { attempts: 3, .. }),
        "{err}"
    );
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "cap ignored: {waited:?}");
}

fn short_timeouts() -> crate::image::registry::PullOptions {
    let mut o = opts();
    o.timeouts.idle = Duration::from_millis(300);
    o.retry.attempts = 1;
    o
}

#[test]
fn a_blob_stalling_mid_body_times_out_and_leaves_nothing() {
    let (reg, img) = registry();
    let stalled = reg.clone();
    let server = serve(&reg, move |req| {
        req.route().contains("/blobs/").then(|| {
            let mut reply = stalled.handle(req);
            reply.stall_after = Some(reply.body.len() / 2);
            reply
        })
    });
    let (_tmp, blobs) = blob_dir();
    let start = Instant::now();
    let err = pull(
        &reference(&server, "judge/app", "v1"),
        &blobs,
        &short_timeouts(),
    )
    .unwrap_err();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(!blobs.path(&img.config_digest).exists());
    assert!(blobs.list().unwrap().is_empty());
    assert_no_partial_files(&blobs);
}

#[test]
fn a_registry_that_never_answers_times_out() {
    let (reg, _) = registry();
    let server = serve(&reg, |req| {
        req.route().contains("/manifests/").then(|| Reply {
            stall_before_headers: true,
            ..Reply::default()
        })
    });
    let (_tmp, blobs) = blob_dir();
    let start = Instant::now();
    let err = pull(
        &reference(&server, "judge/app", "v1"),
        &blobs,
        &short_timeouts(),
    )
    .unwrap_err();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

/// A registry that wants a bearer token and redirects blob GETs with `redirect`.
fn token_registry_redirecting(
    reg: &Arc<Registry>,
    redirect: impl Fn(&str) -> String + Send + Sync + 'static,
) -> Server {
    let reg2 = reg.clone();
    let server_cell: Arc<std::sync::OnceLock<String>> = Arc::new(std::sync::OnceLock::new());
    let base = server_cell.clone();
    let server = serve(reg, move |req| {
        let route = req.route();
        let me = base.get().cloned().unwrap_or_default();
        if route == "/token" {
            return Some(Reply::ok(r#"{"token":"secret-token"}"#));
        }
        if req.header("authorization") != Some("Bearer secret-token") {
            return Some(Reply::status(401).header(
                "WWW-Authenticate",
                format!(r#"Bearer realm="http://{me}/token",service="s""#),
            ));
        }
        if let Some(digest) = route.strip_prefix("/store/") {
            return Some(Reply::ok(reg2.blob(digest).unwrap_or_default()));
        }
        route
            .strip_prefix("/v2/judge/app/blobs/")
            .map(|digest| Reply::redirect(redirect(digest)))
    });
    server_cell.set(server.host()).unwrap();
    server
}

#[test]
fn a_redirect_to_another_host_does_not_carry_authorization() {
    let (reg, _) = registry();
    let cdn_reg = reg.clone();
    let cdn = Server::start("127.0.0.2", move |req| {
        let digest = req.route().trim_start_matches("/cdn/");
        Reply::ok(cdn_reg.blob(digest).unwrap_or_default())
    });
    let cdn_base = cdn.url("/cdn/");
    let server = token_registry_redirecting(&reg, move |d| format!("{cdn_base}{d}?sig=abc"));
    let (_tmp, blobs) = blob_dir();
    let pulled = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap();
    assert_complete(&pulled, &blobs, &reg);
    let cdn_requests = cdn.requests();
    assert_eq!(cdn_requests.len(), 3, "config and two layers from the CDN");
    for r in &cdn_requests {
        assert_eq!(
            r.header("authorization"),
            None,
            "token leaked to {}",
            r.path
        );
        assert!(r.path.ends_with("?sig=abc"));
    }
}

#[test]
fn a_redirect_on_the_same_host_keeps_authorization() {
    let (reg, _) = registry();
    let server = token_registry_redirecting(&reg, |d| format!("/store/{d}"));
    let (_tmp, blobs) = blob_dir();
    let pulled = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap();
    assert_complete(&pulled, &blobs, &reg);
    let store = server.requests_to("/store/");
    assert_eq!(store.len(), 3);
    for r in &store {
        assert_eq!(r.header("authorization"), Some("Bearer secret-token"));
    }
}

#[test]
fn redirect_loops_end_after_five_hops() {
    let (reg, _) = registry();
    let server = serve(&reg, |req| {
        let route = req.route();
        if route.starts_with("/v2/judge/app/manifests/") {
            return Some(Reply::redirect("/loop/0"));
        }
        if let Some(n) = route.strip_prefix("/loop/") {
            let n: u32 = n.parse().unwrap();
            return Some(Reply::redirect(format!("/loop/{}", n + 1)));
        }
        None
    });
    let (_tmp, blobs) = blob_dir();
    let err = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap_err();
    assert!(err.to_string().contains("more than 5 redirects"), "{err}");
    assert_eq!(server.requests_to("/loop/").len(), 5);
}

#[test]
fn a_server_without_the_v2_api_is_not_a_registry() {
    let server = Server::start("127.0.0.1", |_| Reply::status(404));
    let (_tmp, blobs) = blob_dir();
    let err = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap_err();
    assert!(err.to_string().contains("not a registry"), "{err}");
}
