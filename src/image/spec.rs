//! The OCI image-spec and Docker v2 documents judgebox reads: descriptors, indexes
//! (and Docker manifest lists), manifests, image configs and platforms, with the checks
//! the spec asks of a consumer (media types, both `manifests` and `layers` refused,
//! `rootfs.type`, `len(diff_ids) == len(layers)`, size caps on JSON).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::digest::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_ND_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_ND_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_ND_ZSTD: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// What a registry is asked for, in order of preference.
pub const MANIFEST_ACCEPT: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// Manifests, indexes and configs bigger than this are refused before parsing
/// (containerd caps manifests at 4 MiB; configs of real images are a few KiB).
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("{what}: invalid JSON: {detail}")]
    Json { what: String, detail: String },
    #[error("{what}: {size} bytes is over the {max}-byte limit for a JSON document")]
    TooBig { what: String, size: u64, max: u64 },
    #[error("{0}: has both 'manifests' and 'layers' (ambiguous document, CVE-2021-41190)")]
    Ambiguous(String),
    #[error("{0}: has neither 'manifests' nor 'layers'")]
    Neither(String),
    #[error("{what}: unsupported media type '{media_type}'")]
    MediaType { what: String, media_type: String },
    #[error("{what}: Docker schema 1 manifests are not supported (re-push the image with a current client)")]
    Schema1 { what: String },
    #[error("{what}: media type '{body}' in the body does not match '{header}' from the registry")]
    ContentType {
        what: String,
        body: String,
        header: String,
    },
    #[error("{what}: schemaVersion {version}, expected 2")]
    SchemaVersion { what: String, version: u32 },
    #[error("{what}: rootfs.type is '{kind}', expected 'layers'")]
    RootfsType { what: String, kind: String },
    #[error("{what}: {layers} layers but {diff_ids} diff_ids in the config")]
    LayerCount {
        what: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("{what}: no image for platform {wanted} (available: {available})")]
    NoPlatform {
        what: String,
        wanted: String,
        available: String,
    },
    #[error("invalid platform '{0}': expected os/arch[/variant], e.g. linux/amd64")]
    PlatformSyntax(String),
}

/// A content descriptor: what to fetch, how big it is and how to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

impl Descriptor {
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }

    pub fn is_manifest(&self) -> bool {
        self.media_type == OCI_MANIFEST || self.media_type == DOCKER_MANIFEST
    }
}

/// An image's target platform. Field names as in the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
            os_version: None,
            os_features: None,
        }
    }

    /// The platform judgebox runs on, normalised.
    pub fn host() -> Platform {
        let arch = std::env::consts::ARCH;
        let variant = if arch == "aarch64" { Some("v8") } else { None };
        Platform::new("linux", arch, variant).normalized()
    }

    /// `os/arch[/variant]`, as `--platform` takes it.
    pub fn parse(text: &str) -> Result<Platform, SpecError> {
        let parts: Vec<&str> = text.split('/').collect();
        let ok = (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty());
        if !ok {
            return Err(SpecError::PlatformSyntax(text.to_string()));
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()).normalized())
    }

    /// containerd's normalisation: x86_64 -> amd64, aarch64 -> arm64 (v8 = no variant),
    /// arm without a variant -> v7, lowercase os.
    pub fn normalized(mut self) -> Platform {
        self.os = self.os.to_ascii_lowercase();
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.take().map(|v| v.to_ascii_lowercase());
        let (arch, variant) = match (arch.as_str(), variant.as_deref()) {
            ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v.filter(|v| *v != "v1")),
            ("aarch64" | "arm64", Some("v8" | "8")) | ("aarch64" | "arm64", None) => {
                ("arm64", None)
            }
            ("aarch64" | "arm64", v) => ("arm64", v),
            ("armhf", _) => ("arm", Some("v7")),
            ("armel", _) => ("arm", Some("v6")),
            ("arm", None) => ("arm", Some("v7")),
            ("arm", Some("7")) => ("arm", Some("v7")),
            ("arm", Some("6")) => ("arm", Some("v6")),
            ("i386" | "i486" | "i586" | "i686", v) => ("386", v),
            (a, v) => (a, v),
        };
        self.architecture = arch.to_string();
        self.variant = variant.map(str::to_string);
        self
    }

    /// Whether an entry's platform (normalised) satisfies `self` (normalised): os and
    /// architecture equal, variant equal when `self` names one.
    pub fn matches(&self, entry: &Platform) -> bool {
        let entry = entry.clone().normalized();
        entry.os == self.os
            && entry.architecture == self.architecture
            && (self.variant.is_none() || entry.variant == self.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An OCI image index or a Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image manifest or a Docker v2 manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest-like document, told apart by its fields and media type.
// Parsed a few times per pull or import and matched at once: boxing the larger variant
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    Index(Index),
    Manifest(Manifest),
}

/// Just the fields that decide what a document is; serde refuses duplicate keys here.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
}

/// Parses a manifest or index. `what` names it in errors (a digest, a file);
/// `content_type` is the registry's `Content-Type`, when there was one.
pub fn parse_document(
    what: &str,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<Document, SpecError> {
    check_size(what, bytes.len() as u64)?;
    let probe: Probe = from_json(what, bytes)?;
    if let Some(version) = probe.schema_version.filter(|v| *v != 2) {
        return Err(SpecError::SchemaVersion {
            what: what.to_string(),
            version,
        });
    }
    let body_type = probe.media_type.as_deref();
    if let Some(t) = body_type {
        if t == DOCKER_SCHEMA1 || t == DOCKER_SCHEMA1_SIGNED {
            return Err(SpecError::Schema1 {
                what: what.to_string(),
            });
        }
    }
    let header = content_type.map(|c| c.split(';').next().unwrap_or("").trim());
    if let (Some(body), Some(header)) = (body_type, header) {
        // Generic types some servers send for files they do not understand are no conflict.
        let generic = header.is_empty()
            || header == "application/json"
            || header == "application/octet-stream"
            || header == "text/plain";
        if body != header && !generic {
            return Err(SpecError::ContentType {
                what: what.to_string(),
                body: body.to_string(),
                header: header.to_string(),
            });
        }
    }
    let kind = body_type.or(header);
    match (probe.manifests.is_some(), probe.layers.is_some()) {
        (true, true) => Err(SpecError::Ambiguous(what.to_string())),
        (false, false) => Err(SpecError::Neither(what.to_string())),
        (true, false) => {
            check_type(what, kind, &[OCI_INDEX, DOCKER_LIST])?;
            Ok(Document::Index(from_json(what, bytes)?))
        }
        (false, true) => {
            check_type(what, kind, &[OCI_MANIFEST, DOCKER_MANIFEST])?;
            let manifest: Manifest = from_json(what, bytes)?;
            check_config_type(what, &manifest.config.media_type)?;
            for layer in &manifest.layers {
                LayerCompression::of(&layer.media_type).map_err(|_| SpecError::MediaType {
                    what: format!("{what}: layer {}", layer.digest),
                    media_type: layer.media_type.clone(),
                })?;
            }
            Ok(Document::Manifest(manifest))
        }
    }
}

/// A missing media type is allowed (old OCI documents); a wrong one is not.
fn check_type(what: &str, kind: Option<&str>, allowed: &[&str]) -> Result<(), SpecError> {
    match kind {
        Some(t) if !allowed.contains(&t) && t != "application/json" => Err(SpecError::MediaType {
            what: what.to_string(),
            media_type: t.to_string(),
        }),
        _ => Ok(()),
    }
}

fn check_config_type(what: &str, media_type: &str) -> Result<(), SpecError> {
    if media_type == OCI_CONFIG || media_type == DOCKER_CONFIG {
        return Ok(());
    }
    Err(SpecError::MediaType {
        what: format!("{what}: config"),
        media_type: media_type.to_string(),
    })
}

fn check_size(what: &str, size: u64) -> Result<(), SpecError> {
    if size > MAX_DOCUMENT_BYTES {
        return Err(SpecError::TooBig {
            what: what.to_string(),
            size,
            max: MAX_DOCUMENT_BYTES,
        });
    }
    Ok(())
}

fn from_json<'a, T: Deserialize<'a>>(what: &str, bytes: &'a [u8]) -> Result<T, SpecError> {
    serde_json::from_slice(bytes).map_err(|e| SpecError::Json {
        what: what.to_string(),
        detail: e.to_string(),
    })
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

impl LayerCompression {
    pub fn of(media_type: &str) -> Result<LayerCompression, SpecError> {
        match media_type {
            OCI_LAYER_TAR | OCI_LAYER_ND_TAR | DOCKER_LAYER_TAR => Ok(LayerCompression::None),
            OCI_LAYER_GZIP | OCI_LAYER_ND_GZIP | DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN_GZIP => {
                Ok(LayerCompression::Gzip)
            }
            OCI_LAYER_ZSTD | OCI_LAYER_ND_ZSTD => Ok(LayerCompression::Zstd),
            other => Err(SpecError::MediaType {
                what: "layer".to_string(),
                media_type: other.to_string(),
            }),
        }
    }
}

/// Index entries that are attestations or signatures, not runnable images.
fn is_attestation(d: &Descriptor) -> bool {
    d.annotation("vnd.docker.reference.type") == Some("attestation-manifest")
        || d.platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
}

/// The first index entry for `wanted` (spec: first match wins). An entry without a
/// platform counts as linux/amd64, as in go-containerregistry. Nested indexes are
/// returned as is, for the caller to descend into.
pub fn select_platform<'a>(
    what: &str,
    index: &'a Index,
    wanted: &Platform,
) -> Result<&'a Descriptor, SpecError> {
    let default = Platform::new("linux", "amd64", None);
    let candidates = || {
        index
            .manifests
            .iter()
            .filter(|d| (d.is_index() || d.is_manifest()) && !is_attestation(d))
    };
    candidates()
        .find(|d| wanted.matches(d.platform.as_ref().unwrap_or(&default)))
        .ok_or_else(|| SpecError::NoPlatform {
            what: what.to_string(),
            wanted: wanted.to_string(),
            available: candidates()
                .map(|d| d.platform.as_ref().unwrap_or(&default).to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// An image config: only the fields judgebox uses are typed; the rest is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ExecConfig>,
    pub rootfs: RootFs,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The part of an image config that says how to run it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// Parses a config and checks it against its manifest.
    pub fn parse(what: &str, bytes: &[u8], manifest: &Manifest) -> Result<ImageConfig, SpecError> {
        check_size(what, bytes.len() as u64)?;
        let config: ImageConfig = from_json(what, bytes)?;
        if config.rootfs.kind != "layers" {
            return Err(SpecError::RootfsType {
                what: what.to_string(),
                kind: config.rootfs.kind,
            });
        }
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(SpecError::LayerCount {
                what: what.to_string(),
                layers: manifest.layers.len(),
                diff_ids: config.rootfs.diff_ids.len(),
            });
        }
        Ok(config)
    }

    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref()).normalized()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn manifest_json(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"{OCI_CONFIG}","digest":"{D1}","size":10}},
            "layers":[{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{D2}","size":20}}]{extra}}}"#
        )
    }

    #[test]
    fn a_plain_manifest_parses() {
        let doc = parse_document("m", manifest_json("").as_bytes(), Some(OCI_MANIFEST)).unwrap();
        let Document::Manifest(m) = doc else {
            panic!("not a manifest")
        };
        assert_eq!(m.layers[0].digest.to_string(), D2);
    }

    #[test]
    fn both_manifests_and_layers_is_refused() {
        let json = manifest_json(r#","manifests":[]"#);
        assert_eq!(
            parse_document("m", json.as_bytes(), None),
            Err(SpecError::Ambiguous("m".into()))
        );
    }

    #[test]
    fn duplicate_keys_and_bad_digests_are_refused() {
        let dup = manifest_json(r#","schemaVersion":2"#);
        assert!(matches!(
            parse_document("m", dup.as_bytes(), None),
            Err(SpecError::Json { .. })
        ));
        let bad = manifest_json("").replace(D2, "sha256:../../x");
        assert!(matches!(
            parse_document("m", bad.as_bytes(), None),
            Err(SpecError::Json { .. })
        ));
    }

    #[test]
    fn unknown_layer_type_schema1_and_header_mismatch_are_refused() {
        let json = manifest_json("").replace(OCI_LAYER_GZIP, "application/x-weird");
        assert!(matches!(
            parse_document("m", json.as_bytes(), None),
            Err(SpecError::MediaType { .. })
        ));
        let s1 = format!(r#"{{"schemaVersion":1,"mediaType":"{DOCKER_SCHEMA1_SIGNED}"}}"#);
        assert!(parse_document("m", s1.as_bytes(), None).is_err());
        assert!(matches!(
            parse_document("m", manifest_json("").as_bytes(), Some(OCI_INDEX)),
            Err(SpecError::ContentType { .. })
        ));
    }

    #[test]
    fn platforms_normalise_and_match() {
        let host = Platform::parse("linux/x86_64").unwrap();
        assert_eq!(host.to_string(), "linux/amd64");
        assert!(host.matches(&Platform::new("linux", "amd64", None)));
        let arm = Platform::parse("linux/aarch64/v8").unwrap();
        assert_eq!(arm.to_string(), "linux/arm64");
        assert!(arm.matches(&Platform::new("linux", "arm64", Some("v8"))));
        assert!(Platform::parse("linux/arm")
            .unwrap()
            .matches(&Platform::new("linux", "arm", Some("v7"))));
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//").is_err());
    }

    #[test]
    fn platform_selection_skips_attestations_and_takes_the_first_match() {
        let entry = |digest: &str, os: &str, arch: &str, att: bool| {
            let ann = att.then(|| {
                BTreeMap::from([(
                    "vnd.docker.reference.type".to_string(),
                    "attestation-manifest".to_string(),
                )])
            });
            Descriptor {
                media_type: OCI_MANIFEST.into(),
                digest: digest.parse().unwrap(),
                size: 1,
                platform: Some(Platform::new(os, arch, None)),
                annotations: ann,
                urls: None,
            }
        };
        let index = Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![
                entry(D1, "unknown", "unknown", true),
                entry(D2, "linux", "arm64", false),
                entry(D1, "linux", "amd64", false),
                entry(D2, "linux", "amd64", false),
            ],
            annotations: None,
        };
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            select_platform("i", &index, &amd)
                .unwrap()
                .digest
                .to_string(),
            D1
        );
        let err = select_platform("i", &index, &Platform::parse("linux/s390x").unwrap());
        assert!(
            matches!(&err, Err(SpecError::NoPlatform { available, .. }) if available == "linux/arm64, linux/amd64, linux/amd64"),
            "{err:?}"
        );
    }

    #[test]
    fn config_checks_rootfs_type_and_layer_count() {
        let Document::Manifest(m) =
            parse_document("m", manifest_json("").as_bytes(), None).unwrap()
        else {
            panic!()
        };
        let cfg = |kind: &str, ids: &str| {
            format!(
                r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"{kind}","diff_ids":[{ids}]}},"history":[]}}"#
            )
        };
        let one = format!("\"{D1}\"");
        let two = format!("\"{D1}\",\"{D2}\"");
        assert!(ImageConfig::parse("c", cfg("layers", &one).as_bytes(), &m).is_ok());
        assert!(matches!(
            ImageConfig::parse("c", cfg("layers", &two).as_bytes(), &m),
            Err(SpecError::LayerCount { .. })
        ));
        assert!(matches!(
            ImageConfig::parse("c", cfg("tarball", &one).as_bytes(), &m),
            Err(SpecError::RootfsType { .. })
        ));
    }
}
