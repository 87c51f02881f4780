//! Token flow, Basic credentials, 401/403 handling.

use std::sync::Arc;

use super::fixture::{blob_dir, host_arch, image, opts, Registry};
use super::mock::{Reply, Server};
use super::{assert_complete, reference, serve};
use crate::image::registry::{pull, Credentials, RegistryError};

/// A registry that wants `Authorization: Bearer <token>` on everything under /v2/.
fn bearer_registry(reg: &Arc<Registry>, realm: String, token: &'static str) -> Server {
    serve(reg, move |req| {
        let want = format!("Bearer {token}");
        (req.header("authorization") != Some(want.as_str())).then(|| {
            let mut challenge = format!(r#"Bearer realm="{realm}",service="mock-service""#);
            if req.route() != "/v2/" {
                challenge.push_str(r#",scope="repository:judge/app:pull""#);
            }
            Reply::status(401).header("WWW-Authenticate", challenge)
        })
    })
}

fn token_server(body: &'static str) -> Server {
    Server::start("127.0.0.2", move |req| {
        if req.route() == "/token" {
            Reply::ok(body).header("Content-Type", "application/json")
        } else {
            Reply::status(404)
        }
    })
}

fn test_image(reg: &Arc<Registry>) {
    reg.add_image(&image(&host_arch(), 2, 10_000, 3), Some("v1"));
}

#[test]
fn anonymous_token_flow_401_realm_bearer_200() {
    let reg = Registry::new("judge/app");
    test_image(&reg);
    let tokens = token_server(r#"{"token":"tok-1","expires_in":300}"#);
    let server = bearer_registry(&reg, tokens.url("/token"), "tok-1");
    let (_tmp, blobs) = blob_dir();
    let pulled = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap();
    assert_complete(&pulled, &blobs, &reg);

    let token_requests = tokens.requests();
    assert_eq!(token_requests.len(), 1, "one token for the whole pull");
    let query = &token_requests[0].path;
    assert!(query.contains("service=mock-service"), "{query}");
    assert!(
        query.contains("scope=repository%3Ajudge%2Fapp%3Apull"),
        "{query}"
    );
    assert_eq!(token_requests[0].header("authorization"), None);
    // The probe went out bare; everything after it carried the token.
    let requests = server.requests();
    assert_eq!(requests[0].route(), "/v2/");
    assert_eq!(requests[0].header("authorization"), None);
    for r in &requests[1..] {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer tok-1"),
            "{}",
            r.path
        );
    }
}

#[test]
fn access_token_is_accepted_too() {
    let reg = Registry::new("judge/app");
    test_image(&reg);
    let tokens = token_server(r#"{"access_token":"tok-a"}"#);
    let server = bearer_registry(&reg, tokens.url("/token"), "tok-a");
    let (_tmp, blobs) = blob_dir();
    pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap();
}

#[test]
fn a_token_response_without_a_token_is_an_error() {
    let reg = Registry::new("judge/app");
    test_image(&reg);
    let tokens = token_server(r#"{"expires_in":60}"#);
    let server = bearer_registry(&reg, tokens.url("/token"), "x");
    let (_tmp, blobs) = blob_dir();
    let err = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap_err();
    assert!(matches!(err, RegistryError::Token { .. }), "{err}");
}

#[test]
fn basic_credentials_go_to_the_realm_and_never_to_the_registry() {
    let reg = Registry::new("judge/app");
    test_image(&reg);
    // "alice:s3cret" in base64.
    let basic = "Basic YWxpY2U6czNjcmV0";
    let tokens = Server::start("127.0.0.2", move |req| {
        if req.header("authorization") == Some(basic) {
            Reply::ok(r#"{"token":"tok-alice"}"#)
        } else {
            Reply::status(401)
        }
    });
    let server = bearer_registry(&reg, tokens.url("/token"), "tok-alice");
    let (_tmp, blobs) = blob_dir();
    let r = reference(&server, "judge/app", "v1");

    let err = pull(&r, &blobs, &opts()).unwrap_err();
    assert!(
        err.to_string().contains("refused an anonymous token"),
        "{err}"
    );

    let mut o = opts();
    o.credentials = Some(Credentials::new("alice", "s3cret"));
    pull(&r, &blobs, &o).unwrap();
    assert!(tokens
        .requests()
        .iter()
        .any(|t| t.header("authorization") == Some(basic)));
    for req in server.requests() {
        let auth = req.header("authorization").unwrap_or("");
        assert!(
            !auth.starts_with("Basic"),
            "Basic sent to the registry: {}",
            req.path
        );
    }

    o.credentials = Some(Credentials::new("alice", "wrong"));
    let err = pull(&r, &blobs, &o).unwrap_err();
    assert!(err.to_string().contains("refused the credentials"), "{err}");
}

#[test]
fn basic_challenges_use_the_credentials_directly() {
    let reg = Registry::new("judge/app");
    test_image(&reg);
    let server = serve(&reg, |req| {
        (req.header("authorization") != Some("Basic Ym9iOnB3"))
            .then(|| Reply::status(401).header("WWW-Authenticate", r#"Basic realm="mock""#))
    });
    let (_tmp, blobs) = blob_dir();
    let r = reference(&server, "judge/app", "v1");
    let err = pull(&r, &blobs, &opts()).unwrap_err();
    assert!(matches!(err, RegistryError::AuthRequired { .. }), "{err}");
    assert!(err.to_string().contains("--password-stdin"), "{err}");

    let mut o = opts();
    o.credentials = Some(Credentials::new("bob", "pw"));
    pull(&r, &blobs, &o).unwrap();

    o.credentials = Some(Credentials::new("bob", "nope"));
    let err = pull(&r, &blobs, &o).unwrap_err();
    assert!(
        matches!(err, RegistryError::Denied { status: 401, .. }),
        "{err}"
    );
}

#[test]
fn a_final_401_is_refreshed_once_then_reported() {
    let reg = Registry::new("judge/app");
    test_image(&reg);
    let tokens = token_server(r#"{"token":"useless"}"#);
    let realm = tokens.url("/token");
    let server = serve(&reg, move |req| {
        (req.route() != "/v2/" || req.header("authorization").is_none()).then(|| {
            Reply::status(401).header(
                "WWW-Authenticate",
                format!(r#"Bearer realm="{realm}",service="s",scope="repository:judge/app:pull""#),
            )
        })
    });
    let (_tmp, blobs) = blob_dir();
    let err = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap_err();
    assert!(
        matches!(err, RegistryError::Denied { status: 401, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("repository not found or access denied"),
        "{text}"
    );
    assert!(text.contains("pulled anonymously"), "{text}");
    // One token after the probe, one refresh after the manifest's 401; no loop.
    assert_eq!(tokens.requests().len(), 2);
    assert_eq!(server.requests_to("/v2/judge/app/manifests/").len(), 2);
}

#[test]
fn a_401_with_a_new_scope_gets_a_token_for_it() {
    let reg = Registry::new("judge/app");
    test_image(&reg);
    let tokens = Server::start("127.0.0.2", |req| {
        if req.path.contains("scope=repository%3Aother%3Apull") {
            Reply::ok(r#"{"token":"wide"}"#)
        } else {
            Reply::ok(r#"{"token":"narrow"}"#)
        }
    });
    let realm = tokens.url("/token");
    let server = serve(&reg, move |req| {
        let auth = req.header("authorization");
        if req.route() == "/v2/" {
            return auth.is_none().then(|| {
                Reply::status(401).header(
                    "WWW-Authenticate",
                    format!(r#"Bearer realm="{realm}",service="s""#),
                )
            });
        }
        (auth != Some("Bearer wide")).then(|| {
            Reply::status(401).header(
                "WWW-Authenticate",
                format!(r#"Bearer realm="{realm}",service="s",scope="repository:judge/app:pull repository:other:pull",error="insufficient_scope""#),
            )
        })
    });
    let (_tmp, blobs) = blob_dir();
    pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap();
    assert_eq!(
        tokens.requests().len(),
        2,
        "a narrow token, then a wider one"
    );
    let last = tokens.requests().pop().unwrap();
    assert!(
        last.path.contains("scope=repository%3Ajudge%2Fapp%3Apull"),
        "{}",
        last.path
    );
    assert!(
        last.path.contains("scope=repository%3Aother%3Apull"),
        "{}",
        last.path
    );
}

#[test]
fn forbidden_and_unknown_repositories_say_so() {
    let reg = Registry::new("judge/app");
    test_image(&reg);
    let server = serve(&reg, |req| {
        req.route()
            .starts_with("/v2/judge/secret/")
            .then(|| Reply::status(403))
    });
    let (_tmp, blobs) = blob_dir();
    let err = pull(&reference(&server, "judge/secret", "v1"), &blobs, &opts()).unwrap_err();
    assert!(
        matches!(err, RegistryError::Denied { status: 403, .. }),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("repository not found or access denied"));

    let err = pull(&reference(&server, "judge/none", "v1"), &blobs, &opts()).unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("NAME_UNKNOWN"), "{err}");
    let err = pull(&reference(&server, "judge/app", "v2"), &blobs, &opts()).unwrap_err();
    assert!(err.to_string().contains("MANIFEST_UNKNOWN"), "{err}");
}

#[test]
fn an_expiring_token_is_refreshed_before_use() {
    let reg = Registry::new("judge/app");
    test_image(&reg);
    let tokens = token_server(r#"{"token":"tok-1","expires_in":1}"#);
    let realm = tokens.url("/token");
    let inner = reg.clone();
    let server = serve(&reg, move |req| {
        if req.header("authorization") != Some("Bearer tok-1") {
            return Some(Reply::status(401).header(
                "WWW-Authenticate",
                format!(r#"Bearer realm="{realm}",service="s""#),
            ));
        }
        req.route().contains("/blobs/").then(|| {
            let mut reply = inner.handle(req);
            reply.delay = std::time::Duration::from_millis(400);
            reply
        })
    });
    let (_tmp, blobs) = blob_dir();
    let mut o = opts();
    o.parallel = 1;
    pull(&reference(&server, "judge/app", "v1"), &blobs, &o).unwrap();
    // Three blobs at 400 ms each outlive a 1 s token: it was renewed in between,
    // without a 401 round trip.
    assert!(
        tokens.requests().len() >= 2,
        "{:?}",
        tokens.requests().len()
    );
    let refused = server
        .requests()
        .iter()
        .filter(|r| r.route() != "/v2/" && r.header("authorization").is_none())
        .count();
    assert_eq!(refused, 0);
}
