//! Test images (config, layers, manifest, index) and a well-behaved in-memory registry
//! that tests wrap with their own misbehaviour.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::mock::{Reply, Request};
use crate::image::blobs::BlobDir;
use crate::image::digest::Digest;
use crate::image::registry::{PullOptions, RetryPolicy, Timeouts};
use crate::image::spec::{Platform, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};

pub struct TestImage {
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<Vec<u8>>,
    pub platform: Platform,
}

/// Pseudo-random bytes (xorshift), different per seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// An image for `linux/<arch>` with `layers` distinct layers of ~`size` bytes each.
pub fn image(arch: &str, layers: usize, size: usize, seed: u64) -> TestImage {
    let layers: Vec<Vec<u8>> = (0..layers)
        .map(|i| noise(size + i * 17, seed * 1000 + i as u64))
        .collect();
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| Digest::of(l).to_string()).collect::<Vec<_>>(),
        },
        "config": {"Cmd": ["/bin/sh"]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = manifest_json(&config, &layers, OCI_LAYER_GZIP);
    TestImage {
        manifest_digest: Digest::of(&manifest),
        manifest,
        config_digest: Digest::of(&config),
        config,
        layers,
        platform: Platform::new("linux", arch, None).normalized(),
    }
}

pub fn manifest_json(config: &[u8], layers: &[Vec<u8>], layer_type: &str) -> Vec<u8> {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": Digest::of(config).to_string(), "size": config.len()},
        "layers": layers.iter().map(|l| json!({
            "mediaType": layer_type, "digest": Digest::of(l).to_string(), "size": l.len()
        })).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&manifest).unwrap()
}

/// An index entry for a manifest document.
pub fn entry(media_type: &str, doc: &[u8], platform: Option<(&str, &str)>) -> serde_json::Value {
    let mut e =
        json!({"mediaType": media_type, "digest": Digest::of(doc).to_string(), "size": doc.len()});
    if let Some((os, arch)) = platform {
        e["platform"] = json!({"os": os, "architecture": arch});
    }
    e
}

pub fn index_json(entries: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
        .unwrap()
}

/// The host's architecture as image configs spell it (amd64, arm64, ...).
pub fn host_arch() -> String {
    Platform::host().architecture
}

/// An in-memory registry for one repository, serving manifests (by tag or digest, with
/// `Docker-Content-Digest`) and blobs.
pub struct Registry {
    pub repo: String,
    manifests: Mutex<HashMap<String, (String, Vec<u8>)>>,
    blobs: Mutex<HashMap<String, Vec<u8>>>,
}

impl Registry {
    pub fn new(repo: &str) -> Arc<Registry> {
        Arc::new(Registry {
            repo: repo.to_string(),
            manifests: Mutex::new(HashMap::new()),
            blobs: Mutex::new(HashMap::new()),
        })
    }

    /// Stores a manifest under its digest and, if given, a tag.
    pub fn put_manifest(&self, tag: Option<&str>, content_type: &str, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        let mut m = self.manifests.lock().unwrap();
        m.insert(
            digest.to_string(),
            (content_type.to_string(), bytes.to_vec()),
        );
        if let Some(tag) = tag {
            m.insert(tag.to_string(), (content_type.to_string(), bytes.to_vec()));
        }
        digest
    }

    pub fn put_blob(&self, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        self.blobs
            .lock()
            .unwrap()
            .insert(digest.to_string(), bytes.to_vec());
        digest
    }

    pub fn add_image(&self, img: &TestImage, tag: Option<&str>) {
        self.put_blob(&img.config);
        for l in &img.layers {
            self.put_blob(l);
        }
        self.put_manifest(tag, OCI_MANIFEST, &img.manifest);
    }

    /// The standard answer to a request.
    pub fn handle(&self, req: &Request) -> Reply {
        let route = req.route();
        if route == "/v2/" {
            return Reply::ok("{}");
        }
        let Some(rest) = route.strip_prefix(&format!("/v2/{}/", self.repo)) else {
            return not_found("NAME_UNKNOWN");
        };
        if let Some(reference) = rest.strip_prefix("manifests/") {
            return match self.manifests.lock().unwrap().get(reference) {
                Some((ct, bytes)) => Reply::ok(bytes.clone())
                    .header("Content-Type", ct.clone())
                    .header("Docker-Content-Digest", Digest::of(bytes).to_string()),
                None => not_found("MANIFEST_UNKNOWN"),
            };
        }
        if let Some(digest) = rest.strip_prefix("blobs/") {
            return match self.blobs.lock().unwrap().get(digest) {
                Some(bytes) => {
                    Reply::ok(bytes.clone()).header("Content-Type", "application/octet-stream")
                }
                None => not_found("BLOB_UNKNOWN"),
            };
        }
        not_found("UNSUPPORTED")
    }

    pub fn blob(&self, digest: &str) -> Option<Vec<u8>> {
        self.blobs.lock().unwrap().get(digest).cloned()
    }
}

pub fn not_found(code: &str) -> Reply {
    let body =
        json!({"errors": [{"code": code, "message": code.to_lowercase().replace('_', " ")}]});
    Reply::ok(serde_json::to_vec(&body).unwrap())
        .header("Content-Type", "application/json")
        .with_status(404)
}

impl Reply {
    pub fn with_status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }
}

/// Test options: short timeouts and backoffs.
pub fn opts() -> PullOptions {
    PullOptions {
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            idle: Duration::from_secs(5),
        },
        retry: RetryPolicy {
            attempts: 2,
            backoff: Duration::from_millis(10),
            max_wait: Duration::from_secs(5),
        },
        ..PullOptions::default()
    }
}

/// A fresh blob dir in a temp dir (kept alive by the returned guard).
pub fn blob_dir() -> (tempfile::TempDir, BlobDir) {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = BlobDir::open(&tmp.path().join("blobs")).unwrap();
    (tmp, blobs)
}

/// Nothing half-written left behind: `.incoming` is empty.
pub fn assert_no_partial_files(blobs: &BlobDir) {
    let incoming: Vec<_> = std::fs::read_dir(blobs.dir().join(".incoming"))
        .unwrap()
        .collect();
    assert!(incoming.is_empty(), "partial files left: {incoming:?}");
}
