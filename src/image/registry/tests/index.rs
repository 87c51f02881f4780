//! Indexes: platform selection (attestations skipped, first match, `--platform`, errors
//! listing what is available), nested indexes, children fetched by digest and verified.

use std::sync::Arc;

use serde_json::json;

use super::fixture::{blob_dir, entry, host_arch, image, index_json, opts, Registry, TestImage};
use super::{assert_complete, reference, serve};
use crate::image::digest::{Digest, Mismatch};
use crate::image::registry::{pull, RegistryError};
use crate::image::spec::{
    Platform, SpecError, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};

struct MultiArch {
    reg: Arc<Registry>,
    amd64: TestImage,
    arm64: TestImage,
    index: Vec<u8>,
    index_digest: Digest,
}

/// `v1` -> index of [attestation (unknown/unknown), linux/amd64, linux/arm64].
fn multi_arch() -> MultiArch {
    let reg = Registry::new("judge/app");
    let amd64 = image("amd64", 2, 20_000, 10);
    let arm64 = image("arm64", 2, 20_000, 20);
    reg.add_image(&amd64, None);
    reg.add_image(&arm64, None);
    // An attestation manifest, as BuildKit attaches (never to be pulled).
    let attestation = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::of(b"{}").to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.in-toto+json",
                    "digest": Digest::of(b"att").to_string(), "size": 3}],
    });
    let attestation = serde_json::to_vec(&attestation).unwrap();
    reg.put_manifest(None, OCI_MANIFEST, &attestation);
    let mut att_entry = entry(OCI_MANIFEST, &attestation, Some(("unknown", "unknown")));
    att_entry["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
    let index = index_json(vec![
        att_entry,
        entry(OCI_MANIFEST, &amd64.manifest, Some(("linux", "amd64"))),
        entry(OCI_MANIFEST, &arm64.manifest, Some(("linux", "arm64"))),
    ]);
    let index_digest = reg.put_manifest(Some("v1"), OCI_INDEX, &index);
    MultiArch {
        reg,
        amd64,
        arm64,
        index,
        index_digest,
    }
}

#[test]
fn the_host_platform_is_picked_by_default() {
    let m = multi_arch();
    let server = serve(&m.reg, |_| None);
    let (_tmp, blobs) = blob_dir();
    let pulled = pull(&reference(&server, "judge/app", "v1"), &blobs, &opts()).unwrap();
    let want = if host_arch() == "arm64" {
        &m.arm64
    } else {
        &m.amd64
    };
    assert_eq!(pulled.manifest_digest, want.manifest_digest);
    assert_eq!(pulled.index_digest, Some(m.index_digest.clone()));
    assert_eq!(pulled.platform, Platform::host());
    assert_complete(&pulled, &blobs, &m.reg);
    // The child manifest was fetched by digest.
    let by_digest = format!("/v2/judge/app/manifests/{}", want.manifest_digest);
    assert_eq!(server.requests_to(&by_digest).len(), 1);
}

#[test]
fn platform_picks_the_requested_entry_and_nothing_else() {
    let m = multi_arch();
    let server = serve(&m.reg, |_| None);
    let (_tmp, blobs) = blob_dir();
    let mut o = opts();
    o.platform = Some(Platform::parse("linux/arm64").unwrap());
    let pulled = pull(&reference(&server, "judge/app", "v1"), &blobs, &o).unwrap();
    assert_eq!(pulled.manifest_digest, m.arm64.manifest_digest);
    assert_eq!(pulled.platform.to_string(), "linux/arm64");
    assert_eq!(pulled.config_digest, m.arm64.config_digest);
    for layer in &m.amd64.layers {
        assert!(
            !blobs.path(&Digest::of(layer)).exists(),
            "amd64 layer fetched"
        );
    }
    // Index and manifest are both stored, under their digests.
    assert_eq!(
        blobs.read_verified(&m.index_digest, 1 << 20).unwrap(),
        m.index
    );
}

#[test]
fn a_missing_platform_lists_the_available_ones_without_attestations() {
    let m = multi_arch();
    let server = serve(&m.reg, |_| None);
    let (_tmp, blobs) = blob_dir();
    let mut o = opts();
    o.platform = Some(Platform::parse("linux/s390x").unwrap());
    let err = pull(&reference(&server, "judge/app", "v1"), &blobs, &o).unwrap_err();
    match &err {
        RegistryError::Spec(SpecError::NoPlatform {
            available, wanted, ..
        }) => {
            assert_eq!(available, "linux/amd64, linux/arm64");
            assert_eq!(wanted, "linux/s390x");
        }
        other => panic!("{other}"),
    }
    assert!(blobs.list().unwrap().is_empty());
}

#[test]
fn nested_indexes_and_docker_lists_are_followed() {
    let m = multi_arch();
    let inner = m.index.clone();
    let outer = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": DOCKER_LIST,
        "manifests": [entry(OCI_INDEX, &inner, Some(("linux", &host_arch())))],
    }))
    .unwrap();
    let outer_digest = m.reg.put_manifest(Some("nested"), DOCKER_LIST, &outer);
    let server = serve(&m.reg, |_| None);
    let (_tmp, blobs) = blob_dir();
    let pulled = pull(&reference(&server, "judge/app", "nested"), &blobs, &opts()).unwrap();
    assert_eq!(pulled.index_digest, Some(outer_digest));
    assert!(blobs.path(&m.index_digest).is_file(), "inner index stored");
    assert_complete(&pulled, &blobs, &m.reg);

    // A Docker v2 manifest list over a Docker v2 manifest.
    let docker_manifest: serde_json::Value = {
        let mut v: serde_json::Value = serde_json::from_slice(&m.amd64.manifest).unwrap();
        v["mediaType"] = json!(DOCKER_MANIFEST);
        v
    };
    let docker_manifest = serde_json::to_vec(&docker_manifest).unwrap();
    m.reg.put_manifest(None, DOCKER_MANIFEST, &docker_manifest);
    let list = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": DOCKER_LIST,
        "manifests": [entry(DOCKER_MANIFEST, &docker_manifest, Some(("linux", "amd64")))],
    }))
    .unwrap();
    m.reg.put_manifest(Some("docker"), DOCKER_LIST, &list);
    let mut o = opts();
    o.platform = Some(Platform::parse("linux/amd64").unwrap());
    let pulled = pull(&reference(&server, "judge/app", "docker"), &blobs, &o).unwrap();
    assert_eq!(pulled.manifest_digest, Digest::of(&docker_manifest));
    assert_eq!(pulled.manifest_media_type, DOCKER_MANIFEST);
}

#[test]
fn an_index_entry_whose_size_or_content_lies_is_refused() {
    let m = multi_arch();
    let mut lying = entry(OCI_MANIFEST, &m.amd64.manifest, Some(("linux", "amd64")));
    lying["size"] = json!(m.amd64.manifest.len() + 1);
    let index = index_json(vec![lying]);
    m.reg.put_manifest(Some("size"), OCI_INDEX, &index);
    let server = serve(&m.reg, |_| None);
    let (_tmp, blobs) = blob_dir();
    let mut o = opts();
    o.platform = Some(Platform::parse("linux/amd64").unwrap());
    let err = pull(&reference(&server, "judge/app", "size"), &blobs, &o).unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Mismatch {
                mismatch: Mismatch::Size { .. },
                ..
            }
        ),
        "{err}"
    );

    // The registry answers the child's digest with other bytes of the same length.
    let child = m.amd64.manifest_digest.to_string();
    let mut forged = m.amd64.manifest.clone();
    let pos = forged.len() - 2;
    forged[pos] = b' ';
    let server = serve(&m.reg, move |req| {
        req.route()
            .ends_with(&child)
            .then(|| super::mock::Reply::ok(forged.clone()).header("Content-Type", OCI_MANIFEST))
    });
    let err = pull(&reference(&server, "judge/app", "v1"), &blobs, &o).unwrap_err();
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
fn a_single_platform_image_for_another_platform_fails_only_when_asked_for() {
    let reg = Registry::new("judge/app");
    let other = if host_arch() == "s390x" {
        "ppc64le"
    } else {
        "s390x"
    };
    let img = image(other, 1, 1000, 30);
    reg.add_image(&img, Some("v1"));
    let server = serve(&reg, |_| None);
    let (_tmp, blobs) = blob_dir();
    let r = reference(&server, "judge/app", "v1");
    let mut o = opts();
    o.platform = Some(Platform::host());
    let err = pull(&r, &blobs, &o).unwrap_err();
    assert!(matches!(err, RegistryError::Platform { .. }), "{err}");
    // Without --platform it is pulled (the CLI warns).
    let pulled = pull(&r, &blobs, &opts()).unwrap();
    assert_eq!(pulled.platform.architecture, other);
}
