//! Registry client tests against a scripted mock registry on loopback (127.0.0.1, and
//! 127.0.0.2 as "another host" for redirects and token servers).

mod auth;
mod content;
mod fixture;
mod index;
mod mock;
mod transport;

use std::sync::Arc;

use fixture::{blob_dir, host_arch, image, opts, Registry};
use mock::{Reply, Request, Server};

use super::{pull, Pulled};
use crate::image::blobs::BlobDir;
use crate::image::reference::Reference;

/// A server answering with `reg`'s standard replies unless `special` has one.
fn serve(
    reg: &Arc<Registry>,
    special: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static,
) -> Server {
    let reg = reg.clone();
    Server::start("127.0.0.1", move |req| {
        special(req).unwrap_or_else(|| reg.handle(req))
    })
}

fn reference(server: &Server, repo: &str, tag_or_digest: &str) -> Reference {
    let sep = if tag_or_digest.starts_with("sha256:") {
        '@'
    } else {
        ':'
    };
    Reference::parse(&format!("{}/{repo}{sep}{tag_or_digest}", server.host())).unwrap()
}

/// Every blob a pull names is in the store, with the right bytes.
fn assert_complete(pulled: &Pulled, blobs: &BlobDir, reg: &Registry) {
    for layer in &pulled.layers {
        let stored = std::fs::read(blobs.path(&layer.digest)).unwrap();
        assert_eq!(Some(stored), reg.blob(&layer.digest.to_string()));
    }
    assert!(blobs.path(&pulled.config_digest).is_file());
    assert!(blobs.path(&pulled.manifest_digest).is_file());
    if let Some(index) = &pulled.index_digest {
        assert!(blobs.path(index).is_file());
    }
}

#[test]
fn pulls_an_image_and_reuses_its_blobs_the_second_time() {
    let reg = Registry::new("judge/app");
    let img = image(&host_arch(), 3, 40_000, 1);
    reg.add_image(&img, Some("v1"));
    let server = serve(&reg, |_| None);
    let (_tmp, blobs) = blob_dir();
    let r = reference(&server, "judge/app", "v1");

    let pulled = pull(&r, &blobs, &opts()).unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    assert_eq!(pulled.manifest_size, img.manifest.len() as u64);
    assert_eq!(pulled.config_digest, img.config_digest);
    assert_eq!(pulled.index_digest, None);
    assert_eq!(pulled.layers.len(), 3);
    assert_eq!(pulled.platform, img.platform);
    let total: usize = img.layers.iter().map(Vec::len).sum::<usize>() + img.config.len();
    assert_eq!(pulled.bytes_downloaded, total as u64);
    assert_eq!(pulled.reused, 0);
    assert_complete(&pulled, &blobs, &reg);
    assert_eq!(
        blobs
            .read_verified(&pulled.manifest_digest, 1 << 20)
            .unwrap(),
        img.manifest
    );
    // The Accept header lists every manifest type we take.
    let manifest_get = &server.requests_to("/v2/judge/app/manifests/")[0];
    let accept = manifest_get.header("accept").unwrap();
    for t in crate::image::spec::MANIFEST_ACCEPT {
        assert!(accept.contains(t), "{accept}");
    }

    // Blobs are asked for identity-encoded, so byte counts are the descriptors' sizes.
    for get in server.requests_to("/v2/judge/app/blobs/") {
        assert_eq!(get.header("accept-encoding"), Some("identity"));
    }

    let blob_gets = server.requests_to("/v2/judge/app/blobs/").len();
    let again = pull(&r, &blobs, &opts()).unwrap();
    assert_eq!(again.bytes_downloaded, 0);
    assert_eq!(again.reused, 4);
    assert_eq!(server.requests_to("/v2/judge/app/blobs/").len(), blob_gets);
}

#[test]
fn layers_download_in_parallel_but_at_most_three_at_once() {
    let reg = Registry::new("judge/app");
    let img = image(&host_arch(), 7, 20_000, 2);
    reg.add_image(&img, Some("v1"));
    let slow = reg.clone();
    let server = serve(&reg, move |req| {
        req.route().contains("/blobs/").then(|| {
            let mut reply = slow.handle(req);
            reply.delay = std::time::Duration::from_millis(150);
            reply
        })
    });
    let (_tmp, blobs) = blob_dir();
    let pulled = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap();
    assert_complete(&pulled, &blobs, &reg);
    let max = server.max_blobs_in_flight();
    assert!((2..=3).contains(&max), "{max} blob downloads at once");
}

#[test]
fn other_registries_are_reached_over_https_only() {
    // A non-loopback registry without --insecure-registry is reached over https: the
    // pull fails (nothing listens there) rather than silently using http.
    let (_tmp, blobs) = blob_dir();
    let mut o = opts();
    o.timeouts.connect = std::time::Duration::from_millis(300);
    o.retry.attempts = 0;
    let r = Reference::parse("registry.invalid/judge/app:v1").unwrap();
    let err = pull(&r, &blobs, &o).unwrap_err();
    assert!(
        err.to_string().contains("https://registry.invalid/v2/"),
        "{err}"
    );
}
