//! Content checks: blobs verified while streaming (digest, truncation, size lies), and
//! manifests checked (ambiguous documents, media types, pinned and announced digests,
//! size caps).

use std::sync::Arc;

use super::fixture::{
    assert_no_partial_files, blob_dir, host_arch, image, manifest_json, opts, Registry, TestImage,
};
use super::mock::{Reply, Request};
use super::{reference, serve};
use crate::image::blobs::BlobError;
use crate::image::digest::{Digest, Mismatch};
use crate::image::registry::{pull, RegistryError};
use crate::image::spec::{SpecError, OCI_INDEX, OCI_MANIFEST};

fn registry() -> (Arc<Registry>, TestImage) {
    let reg = Registry::new("judge/app");
    let img = image(&host_arch(), 2, 30_000, 5);
    reg.add_image(&img, Some("v1"));
    (reg, img)
}

/// Serves the first layer through `tamper`; everything else normally.
fn pull_with_layer(
    tamper: impl Fn(Reply) -> Reply + Send + Sync + 'static,
) -> (
    RegistryError,
    crate::image::blobs::BlobDir,
    tempfile::TempDir,
    TestImage,
) {
    let (reg, img) = registry();
    let layer = Digest::of(&img.layers[0]).to_string();
    let inner = reg.clone();
    let server = serve(&reg, move |req: &Request| {
        req.route()
            .ends_with(&layer)
            .then(|| tamper(inner.handle(req)))
    });
    let (tmp, blobs) = blob_dir();
    let err = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap_err();
    (err, blobs, tmp, img)
}

fn assert_layer_absent(blobs: &crate::image::blobs::BlobDir, img: &TestImage) {
    assert!(!blobs.path(&Digest::of(&img.layers[0])).exists());
    assert!(
        !blobs.path(&img.manifest_digest).exists(),
        "manifest stored for a failed pull"
    );
    assert_no_partial_files(blobs);
}

#[test]
fn a_blob_with_the_wrong_digest_is_refused_and_not_stored() {
    let (err, blobs, _tmp, img) = pull_with_layer(|mut r| {
        r.body[100] ^= 0xff;
        r
    });
    assert!(
        matches!(
            err,
            RegistryError::Blob(BlobError::Mismatch {
                mismatch: Mismatch::Digest { .. },
                ..
            })
        ),
        "{err}"
    );
    assert_layer_absent(&blobs, &img);
}

#[test]
fn a_truncated_blob_is_refused() {
    // Content-Length promises the full size; the connection closes halfway.
    let (err, blobs, _tmp, img) = pull_with_layer(|mut r| {
        r.length = Some(r.body.len());
        r.body.truncate(r.body.len() / 2);
        r
    });
    assert!(matches!(err, RegistryError::Read { .. }), "{err}");
    assert_layer_absent(&blobs, &img);

    // No Content-Length: the body just ends early.
    let (err, blobs, _tmp, img) = pull_with_layer(|mut r| {
        r.close_delimited = true;
        r.body.truncate(r.body.len() / 2);
        r
    });
    assert!(
        matches!(
            err,
            RegistryError::Blob(BlobError::Mismatch {
                mismatch: Mismatch::Size { .. },
                ..
            })
        ),
        "{err}"
    );
    assert_layer_absent(&blobs, &img);
}

#[test]
fn a_blob_bigger_than_its_descriptor_is_cut_off() {
    // Announced by Content-Length: refused before reading.
    let (err, blobs, _tmp, img) = pull_with_layer(|mut r| {
        r.body.extend_from_slice(&[0u8; 100]);
        r
    });
    assert!(matches!(err, RegistryError::Oversize { .. }), "{err}");
    assert_layer_absent(&blobs, &img);

    // Not announced: reading stops at size + 1.
    let (err, blobs, _tmp, img) = pull_with_layer(|mut r| {
        r.close_delimited = true;
        r.body.extend_from_slice(&vec![0u8; 10 << 20]);
        r
    });
    assert!(matches!(err, RegistryError::Oversize { .. }), "{err}");
    assert_layer_absent(&blobs, &img);
}

fn pull_manifest(content_type: &str, manifest: &[u8]) -> RegistryError {
    let (reg, _) = registry();
    reg.put_manifest(Some("bad"), content_type, manifest);
    let server = serve(&reg, |_| None);
    let (_tmp, blobs) = blob_dir();
    let err = pull(&reference(&server, "judge/app", "bad"), &blobs, &opts()).unwrap_err();
    assert!(
        blobs.list().unwrap().is_empty(),
        "blobs stored for a bad manifest"
    );
    err
}

#[test]
fn a_manifest_with_both_manifests_and_layers_is_refused() {
    let (_, img) = registry();
    let mut doc: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    doc["manifests"] = serde_json::json!([]);
    let err = pull_manifest(OCI_MANIFEST, &serde_json::to_vec(&doc).unwrap());
    assert!(
        matches!(err, RegistryError::Spec(SpecError::Ambiguous(_))),
        "{err}"
    );
}

#[test]
fn a_content_type_contradicting_the_body_is_refused() {
    let (_, img) = registry();
    let err = pull_manifest(OCI_INDEX, &img.manifest);
    assert!(
        matches!(err, RegistryError::Spec(SpecError::ContentType { .. })),
        "{err}"
    );
}

#[test]
fn unknown_media_types_are_refused() {
    let (_, img) = registry();
    let weird = manifest_json(&img.config, &img.layers, "application/x-weird");
    let err = pull_manifest(OCI_MANIFEST, &weird);
    assert!(
        matches!(err, RegistryError::Spec(SpecError::MediaType { .. })),
        "{err}"
    );

    let mut doc: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    doc.as_object_mut().unwrap().remove("mediaType");
    let err = pull_manifest(
        "application/vnd.example.unknown+json",
        &serde_json::to_vec(&doc).unwrap(),
    );
    assert!(
        matches!(err, RegistryError::Spec(SpecError::MediaType { .. })),
        "{err}"
    );
}

#[test]
fn a_by_digest_pull_must_get_exactly_that_manifest() {
    let (reg, img) = registry();
    let other = image(&host_arch(), 1, 1000, 99);
    // The registry answers the pinned digest with another manifest.
    let body = other.manifest.clone();
    let pinned = img.manifest_digest.to_string();
    let server = serve(&reg, move |req| {
        req.route().ends_with(&pinned).then(|| {
            Reply::ok(body.clone())
                .header("Content-Type", OCI_MANIFEST)
                .header("Docker-Content-Digest", pinned.clone())
        })
    });
    let (_tmp, blobs) = blob_dir();
    let r = reference(&server, "judge/app", &img.manifest_digest.to_string());
    let err = pull(&r, &blobs, &opts()).unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Mismatch {
                mismatch: Mismatch::Digest { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(blobs.list().unwrap().is_empty());
}

#[test]
fn a_by_digest_pull_of_the_right_manifest_works() {
    let (reg, img) = registry();
    let server = serve(&reg, |_| None);
    let (_tmp, blobs) = blob_dir();
    let r = reference(&server, "judge/app", &img.manifest_digest.to_string());
    let pulled = pull(&r, &blobs, &opts()).unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
}

#[test]
fn a_wrong_docker_content_digest_is_refused() {
    let (reg, img) = registry();
    let body = img.manifest.clone();
    let server = serve(&reg, move |req| {
        req.route().ends_with("/manifests/v1").then(|| {
            Reply::ok(body.clone())
                .header("Content-Type", OCI_MANIFEST)
                .header("Docker-Content-Digest", Digest::of(b"other").to_string())
        })
    });
    let (_tmp, blobs) = blob_dir();
    let err = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap_err();
    assert!(matches!(err, RegistryError::HeaderDigest { .. }), "{err}");
}

#[test]
fn oversized_manifests_and_configs_are_refused() {
    let (_, img) = registry();
    let mut doc: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    doc["annotations"] = serde_json::json!({"pad": "x".repeat(5 << 20)});
    let err = pull_manifest(OCI_MANIFEST, &serde_json::to_vec(&doc).unwrap());
    assert!(matches!(err, RegistryError::TooBig { .. }), "{err}");

    let mut doc: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    doc["config"]["size"] = serde_json::json!(64u64 << 20);
    let err = pull_manifest(OCI_MANIFEST, &serde_json::to_vec(&doc).unwrap());
    assert!(matches!(err, RegistryError::TooBig { .. }), "{err}");
}

#[test]
fn a_config_that_does_not_fit_the_manifest_is_refused() {
    let (reg, img) = registry();
    // Three layers in the manifest, two diff_ids in the config.
    let mut layers = img.layers.clone();
    layers.push(b"extra".to_vec());
    reg.put_blob(b"extra");
    let manifest = manifest_json(&img.config, &layers, crate::image::spec::OCI_LAYER_GZIP);
    reg.put_manifest(Some("bad"), OCI_MANIFEST, &manifest);
    let server = serve(&reg, |_| None);
    let (_tmp, blobs) = blob_dir();
    let err = pull(&reference(&server, "judge/app", "bad"), &blobs, &opts()).unwrap_err();
    assert!(
        matches!(err, RegistryError::Spec(SpecError::LayerCount { .. })),
        "{err}"
    );
    for layer in &layers {
        assert!(
            !blobs.path(&Digest::of(layer)).exists(),
            "layer fetched for a bad config"
        );
    }
}
