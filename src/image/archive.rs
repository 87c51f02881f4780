//! Image tar archives: an OCI layout in a tar, and `docker save` output in both forms
//! (Docker 25+: a layout plus manifest.json; older: manifest.json, `<id>/layer.tar`,
//! `<config hex>.json`). The tar is streamed once (gzip-compressed or not); each entry
//! name is validated before any I/O; blobs go straight into the staging dir, verified
//! against their names; a legacy manifest.json becomes a Docker v2 manifest blob.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use super::digest::Digest;
use super::import::{blob_error, Candidate, ImportError, Selector, Target};
use super::layout::Layout;
use super::reference::Reference;
use super::spec::{
    Descriptor, ImageConfig, Manifest, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR,
    DOCKER_MANIFEST, MAX_DOCUMENT_BYTES, OCI_LAYER_ZSTD,
};
use super::store::{Staging, Store};

/// Entries one archive may have.
const MAX_ENTRIES: u64 = 1_000_000;
/// Ignored entry names listed in the report (the rest are counted).
const MAX_IGNORED_LISTED: usize = 20;
/// Symlinks between legacy layers followed at most.
const MAX_LINK_HOPS: usize = 8;

/// One `docker save` manifest.json entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// What one pass over the tar found.
#[derive(Default)]
struct Contents {
    oci_layout: Option<Vec<u8>>,
    index: Option<Vec<u8>>,
    manifest_json: Option<Vec<u8>>,
    /// manifest.json, parsed and its paths validated.
    legacy: Option<Vec<LegacyEntry>>,
    /// Every blob or legacy file seen: archive name -> digest and size of its content.
    files: HashMap<String, (Digest, u64)>,
    /// Legacy `<id>/layer.tar` symlinks and hardlinks: name -> target name.
    links: HashMap<String, String>,
    ignored: Vec<String>,
    ignored_count: usize,
}

/// How an entry name is treated.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// The root, `blobs/`, `blobs/sha256/`, a legacy `<id>/`: nothing to do.
    Dir,
    /// `oci-layout`, `index.json`, `manifest.json`, `repositories`: read into memory.
    Doc,
    /// `blobs/sha256/<hex>`: content named by its digest.
    Blob(Digest),
    /// `<id>/layer.tar` or `<hex>.json`: content hashed on the way in.
    Legacy,
    /// Legacy metadata (`<id>/json`, `<id>/VERSION`) and unknown benign names.
    Ignored,
}

/// Reads an image tar (see the module docs) and plans what to import.
pub(crate) fn plan(
    input: Box<dyn Read>,
    store: &Store,
    staging: &Staging,
    selector: &Selector,
) -> Result<(Vec<Target>, Vec<String>), ImportError> {
    let mut contents = scan(input, store, staging)?;
    let targets = if let Some(index) = &contents.index {
        let layout = Layout::staged(
            contents.oci_layout.as_deref(),
            index,
            contents.manifest_json.as_deref(),
            store,
            staging,
        )?;
        layout.plan(selector)?
    } else if let Some(entries) = &contents.legacy {
        legacy_plan(&contents, entries, store, staging, selector)?
    } else {
        return Err(ImportError::NotImage);
    };
    if contents.ignored_count > contents.ignored.len() {
        let more = contents.ignored_count - contents.ignored.len();
        contents.ignored.push(format!("... and {more} more"));
    }
    Ok((targets, contents.ignored))
}

/// One pass over the tar: documents into memory, blobs into staging.
fn scan(input: Box<dyn Read>, store: &Store, staging: &Staging) -> Result<Contents, ImportError> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let head = reader.fill_buf().map_err(ImportError::Tar)?;
    let input: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut archive = tar::Archive::new(input);
    let mut contents = Contents::default();
    let mut count = 0u64;
    for entry in archive.entries().map_err(ImportError::Tar)? {
        let mut entry = entry.map_err(ImportError::Tar)?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(ImportError::TooManyEntries(MAX_ENTRIES));
        }
        if entry.header().entry_type().is_pax_global_extensions() {
            continue;
        }
        let name = clean_name(&entry.path_bytes()).map_err(|(name, why)| ImportError::Entry {
            name,
            why: why.to_string(),
        })?;
        let kind = classify(&name).map_err(|why| ImportError::Entry {
            name: name.clone(),
            why: why.to_string(),
        })?;
        take_entry(&mut contents, &name, kind, &mut entry, store, staging)?;
    }
    Ok(contents)
}

fn take_entry(
    contents: &mut Contents,
    name: &str,
    kind: Kind,
    entry: &mut tar::Entry<'_, Box<dyn Read>>,
    store: &Store,
    staging: &Staging,
) -> Result<(), ImportError> {
    let refuse = |why: &str| ImportError::Entry {
        name: name.to_string(),
        why: why.to_string(),
    };
    let entry_type = entry.header().entry_type();
    let regular = entry_type.is_file() || entry_type.is_contiguous();
    let size = entry.size();
    match kind {
        Kind::Dir => Ok(()),
        Kind::Ignored => {
            if contents.ignored.len() < MAX_IGNORED_LISTED {
                contents.ignored.push(name.to_string());
            }
            contents.ignored_count += 1;
            Ok(())
        }
        Kind::Doc => {
            if !regular {
                return Err(refuse("not a regular file"));
            }
            let bytes = read_doc(name, size, entry)?;
            take_doc(contents, name, bytes)
        }
        Kind::Blob(digest) => {
            if !regular {
                return Err(refuse("blobs must be regular files"));
            }
            let present =
                store.blobs().contains(&digest, size) || staging.blobs().contains(&digest, size);
            if !present {
                staging
                    .blobs()
                    .ingest(&digest, size, entry)
                    .map_err(|e| blob_error(store, name, e))?;
            }
            contents.files.insert(name.to_string(), (digest, size));
            Ok(())
        }
        Kind::Legacy if regular => {
            let max = if name.ends_with(".json") {
                MAX_DOCUMENT_BYTES
            } else {
                u64::MAX
            };
            if size > max {
                return Err(ImportError::TooBig {
                    what: name.to_string(),
                    size,
                    max,
                });
            }
            let (digest, len) = staging
                .blobs()
                .ingest_unknown(entry, size)
                .map_err(|e| blob_error(store, name, e))?;
            contents.files.insert(name.to_string(), (digest, len));
            Ok(())
        }
        Kind::Legacy => {
            let target = link_target(name, entry)?;
            contents.links.insert(name.to_string(), target);
            Ok(())
        }
    }
}

/// Keeps a document; manifest.json is parsed and its paths validated right away.
fn take_doc(contents: &mut Contents, name: &str, bytes: Vec<u8>) -> Result<(), ImportError> {
    let slot = match name {
        "oci-layout" => &mut contents.oci_layout,
        "index.json" => &mut contents.index,
        "manifest.json" => &mut contents.manifest_json,
        _ => return Ok(()),
    };
    if slot.is_some() {
        return Err(ImportError::Entry {
            name: name.to_string(),
            why: "appears twice".into(),
        });
    }
    if name == "manifest.json" {
        contents.legacy = Some(parse_legacy(&bytes)?);
    }
    *slot = Some(bytes);
    Ok(())
}

fn read_doc(name: &str, size: u64, entry: &mut dyn Read) -> Result<Vec<u8>, ImportError> {
    if size > MAX_DOCUMENT_BYTES {
        return Err(ImportError::TooBig {
            what: name.to_string(),
            size,
            max: MAX_DOCUMENT_BYTES,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    entry
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ImportError::Tar)?;
    Ok(bytes)
}

/// A legacy layer's symlink (relative to its directory) or hardlink (relative to the
/// archive root), as a validated archive name of a layer.
fn link_target(name: &str, entry: &tar::Entry<'_, Box<dyn Read>>) -> Result<String, ImportError> {
    let refuse = |why: &str| ImportError::Entry {
        name: name.to_string(),
        why: why.to_string(),
    };
    let entry_type = entry.header().entry_type();
    let link = entry
        .link_name_bytes()
        .ok_or_else(|| refuse("a link without a target"))?;
    let link = std::str::from_utf8(&link).map_err(|_| refuse("link target is not UTF-8"))?;
    let joined = if entry_type.is_symlink() {
        let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{link}")
    } else if entry_type.is_hard_link() {
        link.to_string()
    } else {
        return Err(refuse("a layer must be a file or a link to one"));
    };
    let target = resolve_dots(&joined).ok_or_else(|| refuse("link target escapes the archive"))?;
    match classify(&target) {
        Ok(Kind::Legacy) | Ok(Kind::Blob(_)) if !target.ends_with(".json") => Ok(target),
        _ => Err(refuse("link target is not a layer")),
    }
}

/// Lexically resolves `.` and `..` in a relative path; `None` if it climbs out.
fn resolve_dots(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// An entry name with leading `./` and a trailing `/` dropped. Absolute names, `..`,
/// empty or `.` components, NUL and non-UTF-8 are refused (the name and why).
fn clean_name(raw: &[u8]) -> Result<String, (String, &'static str)> {
    let lossy = || String::from_utf8_lossy(raw).into_owned();
    let name = std::str::from_utf8(raw).map_err(|_| (lossy(), "name is not UTF-8"))?;
    if name.contains('\0') {
        return Err((lossy(), "NUL in the name"));
    }
    if name.starts_with('/') {
        return Err((name.to_string(), "absolute path"));
    }
    let mut rest = name;
    while let Some(r) = rest.strip_prefix("./") {
        rest = r;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest == "." {
        return Ok(String::new());
    }
    for component in rest.split('/') {
        if component == ".." {
            return Err((name.to_string(), "'..' in the path"));
        }
        if component.is_empty() || component == "." {
            return Err((name.to_string(), "empty or '.' path component"));
        }
    }
    Ok(rest.to_string())
}

/// What a (clean) name is; `Err` for names under `blobs/` that are not sha256 digests.
fn classify(name: &str) -> Result<Kind, &'static str> {
    match name {
        "" | "blobs" | "blobs/sha256" => return Ok(Kind::Dir),
        "oci-layout" | "index.json" | "manifest.json" | "repositories" => return Ok(Kind::Doc),
        _ => {}
    }
    if let Some(rest) = name.strip_prefix("blobs/") {
        return match rest.split_once('/') {
            Some(("sha256", hex)) if !hex.contains('/') => format!("sha256:{hex}")
                .parse()
                .map(Kind::Blob)
                .map_err(|_| "not a valid sha256 digest (64 lowercase hex digits)"),
            Some(("sha256", _)) => Err("unexpected path under blobs/sha256/"),
            _ => Err("only sha256 blobs are supported"),
        };
    }
    if is_hex64(name) {
        return Ok(Kind::Dir);
    }
    if name.strip_suffix(".json").is_some_and(is_hex64) {
        return Ok(Kind::Legacy);
    }
    match name.split_once('/') {
        Some((id, "layer.tar")) if is_hex64(id) => Ok(Kind::Legacy),
        _ => Ok(Kind::Ignored),
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses manifest.json and validates every path in it before anything uses them
/// (`Layers: ["../../etc/shadow"]` is refused here, research case #40).
fn parse_legacy(bytes: &[u8]) -> Result<Vec<LegacyEntry>, ImportError> {
    let entries: Vec<LegacyEntry> =
        serde_json::from_slice(bytes).map_err(|e| ImportError::DockerManifest(e.to_string()))?;
    for entry in &entries {
        check_legacy_path(&entry.config, true)?;
        for layer in &entry.layers {
            check_legacy_path(layer, false)?;
        }
    }
    Ok(entries)
}

fn check_legacy_path(path: &str, config: bool) -> Result<(), ImportError> {
    let refuse = |why| ImportError::LegacyPath {
        path: path.to_string(),
        why,
    };
    let name = clean_name(path.as_bytes()).map_err(|(_, why)| refuse(why))?;
    let ok = match classify(&name) {
        Ok(Kind::Blob(_)) => true,
        Ok(Kind::Legacy) => name.ends_with(".json") == config,
        _ => false,
    };
    if ok {
        Ok(())
    } else if config {
        Err(refuse("a config must be <hex>.json or blobs/sha256/<hex>"))
    } else {
        Err(refuse(
            "a layer must be <id>/layer.tar or blobs/sha256/<hex>",
        ))
    }
}

/// The legacy form: one manifest per chosen manifest.json entry.
fn legacy_plan(
    contents: &Contents,
    entries: &[LegacyEntry],
    store: &Store,
    staging: &Staging,
    selector: &Selector,
) -> Result<Vec<Target>, ImportError> {
    let candidates = entries
        .iter()
        .enumerate()
        .map(|(i, e)| Candidate {
            names: e.repo_tags.clone().unwrap_or_default(),
            item: i,
        })
        .collect();
    let mut targets = Vec::new();
    for (name, items) in selector.choose(candidates)? {
        let entry = &entries[items[0]];
        let manifest = legacy_manifest(contents, entry, &name, store, staging, selector)?;
        targets.push(Target { name, manifest });
    }
    Ok(targets)
}

/// Builds, checks and stages the Docker v2 manifest of one legacy entry.
fn legacy_manifest(
    contents: &Contents,
    entry: &LegacyEntry,
    name: &Reference,
    store: &Store,
    staging: &Staging,
    selector: &Selector,
) -> Result<Digest, ImportError> {
    let image = name.canonical();
    let (config_digest, config_size) = contents.lookup(&entry.config)?;
    let blobs = [staging.blobs(), store.blobs()];
    let config_dir = blobs
        .iter()
        .find(|b| b.contains(&config_digest, config_size))
        .ok_or_else(|| missing(&config_digest, &entry.config))?;
    let config_bytes = config_dir
        .read_verified(&config_digest, MAX_DOCUMENT_BYTES)
        .map_err(|e| blob_error(store, &entry.config, e))?;
    let mut layers = Vec::with_capacity(entry.layers.len());
    for path in &entry.layers {
        let (digest, size) = contents.lookup(path)?;
        let dir = blobs
            .iter()
            .find(|b| b.contains(&digest, size))
            .ok_or_else(|| missing(&digest, path))?;
        layers.push(descriptor(sniff(&dir.path(&digest)), digest, size));
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(DOCKER_MANIFEST.to_string()),
        config: descriptor(DOCKER_CONFIG, config_digest.clone(), config_size),
        layers,
        annotations: None,
    };
    let config = ImageConfig::parse(
        &format!("config {}", entry.config),
        &config_bytes,
        &manifest,
    )?;
    selector.check_platform(&image, &config)?;
    for (index, (layer, diff_id)) in manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .enumerate()
    {
        // An uncompressed layer's digest is its DiffID: check it now, before unpacking.
        if layer.media_type == DOCKER_LAYER_TAR && layer.digest != *diff_id {
            return Err(ImportError::DiffId {
                image,
                index: index + 1,
                expected: diff_id.clone(),
                actual: layer.digest.clone(),
            });
        }
    }
    let bytes = serde_json::to_vec(&manifest).expect("a manifest serialises");
    let digest = Digest::of(&bytes);
    staging
        .blobs()
        .ingest(&digest, bytes.len() as u64, &mut &bytes[..])
        .map_err(|e| blob_error(store, "manifest", e))?;
    Ok(digest)
}

impl Contents {
    /// The content behind a (validated) manifest.json path, following legacy links.
    fn lookup(&self, path: &str) -> Result<(Digest, u64), ImportError> {
        let not_found = || ImportError::LegacyPath {
            path: path.to_string(),
            why: "not in the archive",
        };
        let mut name = clean_name(path.as_bytes()).map_err(|_| not_found())?;
        for _ in 0..=MAX_LINK_HOPS {
            if let Some(found) = self.files.get(&name) {
                return Ok(found.clone());
            }
            name = self.links.get(&name).ok_or_else(not_found)?.clone();
        }
        Err(ImportError::LegacyPath {
            path: path.to_string(),
            why: "too many links",
        })
    }
}

fn missing(digest: &Digest, what: &str) -> ImportError {
    ImportError::MissingBlob {
        digest: digest.clone(),
        what: what.to_string(),
    }
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        platform: None,
        annotations: None,
        urls: None,
    }
}

/// `docker save` layers are plain tars, but `docker load` sniffs: so do we.
fn sniff(path: &Path) -> &'static str {
    let mut head = [0u8; 4];
    let n = File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .unwrap_or(0);
    match &head[..n] {
        [0x1f, 0x8b, ..] => DOCKER_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => OCI_LAYER_ZSTD,
        _ => DOCKER_LAYER_TAR,
    }
}

fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn names_are_cleaned_or_refused() {
        assert_eq!(clean_name(b"./index.json").unwrap(), "index.json");
        assert_eq!(clean_name(b"blobs/sha256/").unwrap(), "blobs/sha256");
        assert_eq!(clean_name(b"./").unwrap(), "");
        for bad in [
            &b"../x"[..],
            b"/etc/passwd",
            b"a/../../x",
            b"blobs//sha256",
            b"a/./b",
            b"\xff",
        ] {
            assert!(clean_name(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn classification_of_layout_and_docker_names() {
        assert_eq!(classify("index.json"), Ok(Kind::Doc));
        assert_eq!(
            classify(&format!("blobs/sha256/{HEX}")),
            Ok(Kind::Blob(format!("sha256:{HEX}").parse().unwrap()))
        );
        assert!(classify("blobs/sha256/abc").is_err());
        assert!(classify(&format!("blobs/sha256/{}", HEX.to_uppercase())).is_err());
        assert!(classify("blobs/sha512/abc").is_err());
        assert_eq!(classify(&format!("{HEX}/layer.tar")), Ok(Kind::Legacy));
        assert_eq!(classify(&format!("{HEX}.json")), Ok(Kind::Legacy));
        assert_eq!(classify(&format!("{HEX}/json")), Ok(Kind::Ignored));
        assert_eq!(classify(HEX), Ok(Kind::Dir));
        assert_eq!(classify("README.md"), Ok(Kind::Ignored));
    }

    #[test]
    fn hostile_manifest_json_paths_are_refused() {
        for bad in [
            r#"[{"Config":"x.json","RepoTags":[],"Layers":[]}]"#,
            &format!(r#"[{{"Config":"{HEX}.json","Layers":["../../etc/shadow"]}}]"#),
            &format!(r#"[{{"Config":"{HEX}.json","Layers":["/etc/shadow"]}}]"#),
            &format!(r#"[{{"Config":"{HEX}.json","Layers":["{HEX}/../../x/layer.tar"]}}]"#),
            &format!(r#"[{{"Config":"{HEX}/layer.tar","Layers":[]}}]"#),
            &format!(r#"[{{"Config":"{HEX}.json","Layers":["{HEX}.json"]}}]"#),
        ] {
            let err = parse_legacy(bad.as_bytes()).unwrap_err();
            assert!(
                matches!(err, ImportError::LegacyPath { .. }),
                "{bad}: {err}"
            );
        }
        let good = format!(
            r#"[{{"Config":"{HEX}.json","RepoTags":["a:1"],"Layers":["{HEX}/layer.tar","blobs/sha256/{HEX}"]}}]"#
        );
        assert_eq!(parse_legacy(good.as_bytes()).unwrap()[0].layers.len(), 2);
    }

    #[test]
    fn dots_resolve_lexically_and_never_climb_out() {
        assert_eq!(
            resolve_dots(&format!("{HEX}/../x/layer.tar")).as_deref(),
            Some("x/layer.tar")
        );
        assert_eq!(resolve_dots("a/../../b"), None);
        assert_eq!(resolve_dots("/a"), None);
    }
}
