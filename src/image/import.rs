//! `judgebox image import`: an OCI image layout (a directory, or a tar of one) or a
//! `docker save` archive, into the store. Blobs are copied into a private staging dir and
//! verified there; the store sees them only once the image's rootfs is in place, so a
//! refused import leaves nothing behind. `layout` and `archive` read the two formats.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::archive;
use super::blobs::BlobError;
use super::digest::Digest;
use super::layout::Layout;
use super::reference::{Reference, ReferenceError};
use super::spec::{ImageConfig, Platform, SpecError};
use super::store::{is_disk_full, Added, Store, StoreError, UnpackProgress};

#[derive(Debug, Error)]
pub enum ImportError {
    #[error("{}: {source}", path.display())]
    At {
        path: PathBuf,
        #[source]
        source: Box<ImportError>,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("neither an OCI image layout (oci-layout + index.json) nor a docker save archive (manifest.json)")]
    NotImage,
    #[error("{0}")]
    Layout(String),
    #[error("malformed tar archive: {0}")]
    Tar(#[source] io::Error),
    #[error("archive entry '{name}' refused: {why}")]
    Entry { name: String, why: String },
    #[error("{what}: {size} bytes is over the limit of {max}")]
    TooBig { what: String, size: u64, max: u64 },
    #[error("more than {0} archive entries")]
    TooManyEntries(u64),
    #[error("blob {digest} ({what}) is missing")]
    MissingBlob { digest: Digest, what: String },
    #[error("{what}: {source}")]
    Blob {
        what: String,
        #[source]
        source: BlobError,
    },
    #[error("{what}: size {actual} does not match its descriptor's {expected}")]
    Size {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("manifest.json: {0}")]
    DockerManifest(String),
    #[error("manifest.json: path '{path}' refused: {why}")]
    LegacyPath { path: String, why: &'static str },
    #[error(
        "image {image}: layer {index} has digest {actual} but the config's diff_id is {expected}"
    )]
    DiffId {
        image: String,
        index: usize,
        expected: Digest,
        actual: Digest,
    },
    #[error("--tag {tag}: no image by that name here (names found: {available})")]
    NoMatch { tag: String, available: String },
    #[error("{0}; give --tag NAME")]
    NeedTag(String),
    #[error("image {image} is for {found}, not {wanted}; pass --platform {found} to import it")]
    PlatformMismatch {
        image: String,
        found: String,
        wanted: String,
    },
    #[error("image indexes nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("invalid --tag: {0}")]
    Tag(ReferenceError),
    #[error("disk full under {0} while staging blobs; nothing was kept: free space or use another --root")]
    DiskFull(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to import and how to name it.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Select the image named so (`org.opencontainers.image.ref.name`, `RepoTags`) and
    /// store it under this name; with one image in the input, it names that image.
    pub tag: Option<String>,
    /// The platform to pick from indexes and to require of configs; default the host's.
    pub platform: Option<Platform>,
}

/// One name the import added.
#[derive(Debug)]
pub struct Imported {
    pub name: String,
    pub added: Added,
}

#[derive(Debug, Default)]
pub struct ImportReport {
    pub images: Vec<Imported>,
    /// Archive entries that were not used (neither refused nor needed), for the user.
    pub ignored: Vec<String>,
}

/// What the readers hand back: a name and a manifest staged (or already stored).
#[derive(Debug)]
pub(crate) struct Target {
    pub name: Reference,
    pub manifest: Digest,
}

/// `--tag` and `--platform`, checked before any I/O.
pub(crate) struct Selector {
    pub tag: Option<(String, Reference)>,
    pub platform: Platform,
}

/// An image found in the input, with the names it carries and a reader-specific handle.
pub(crate) struct Candidate<T> {
    pub names: Vec<String>,
    pub item: T,
}

/// Imports `path`: a layout directory, or a tar of a layout or of `docker save` (`-`
/// reads the tar from stdin, e.g. `docker save img | judgebox image import -`).
pub fn import(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
    progress: &mut dyn FnMut(UnpackProgress<'_>),
) -> Result<ImportReport, ImportError> {
    let at = |source: ImportError| ImportError::At {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let selector = Selector::new(options)?;
    let cannot_read = |source| {
        at(ImportError::Io {
            path: "cannot read it".into(),
            source,
        })
    };
    let stdin = path == Path::new("-");
    let is_dir = !stdin && std::fs::metadata(path).map_err(cannot_read)?.is_dir();
    let staging = store.staging()?;
    let (targets, ignored) = if is_dir {
        let layout = Layout::open_dir(path, store, &staging).map_err(at)?;
        (layout.plan(&selector).map_err(at)?, Vec::new())
    } else {
        let input: Box<dyn io::Read> = if stdin {
            Box::new(io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(path).map_err(cannot_read)?)
        };
        archive::plan(input, store, &staging, &selector).map_err(at)?
    };
    let mut report = ImportReport {
        images: Vec::new(),
        ignored,
    };
    for target in targets {
        let added = store.add_staged(&staging, &target.name, &target.manifest, progress)?;
        report.images.push(Imported {
            name: added.record.name.clone(),
            added,
        });
    }
    Ok(report)
}

impl Selector {
    fn new(options: &ImportOptions) -> Result<Selector, ImportError> {
        let tag = match &options.tag {
            Some(t) => Some((t.clone(), Reference::parse(t).map_err(ImportError::Tag)?)),
            None => None,
        };
        Ok(Selector {
            tag,
            platform: options.platform.clone().unwrap_or_else(Platform::host),
        })
    }

    /// Picks the images to import, grouped by the name each will get. A group holds
    /// several items when one name has several platforms.
    pub fn choose<T: Clone>(
        &self,
        candidates: Vec<Candidate<T>>,
    ) -> Result<Vec<(Reference, Vec<T>)>, ImportError> {
        match &self.tag {
            Some((text, wanted)) => choose_tagged(candidates, text, wanted),
            None => choose_all(candidates),
        }
    }

    /// The config's platform must be the one asked for (configs without one pass).
    pub fn check_platform(&self, image: &str, config: &ImageConfig) -> Result<(), ImportError> {
        if config.os.is_empty() || config.architecture.is_empty() {
            return Ok(());
        }
        let found = config.platform();
        if self.platform.matches(&found) {
            return Ok(());
        }
        Err(ImportError::PlatformMismatch {
            image: image.to_string(),
            found: found.to_string(),
            wanted: self.platform.to_string(),
        })
    }
}

fn choose_tagged<T>(
    candidates: Vec<Candidate<T>>,
    text: &str,
    wanted: &Reference,
) -> Result<Vec<(Reference, Vec<T>)>, ImportError> {
    let canonical = wanted.canonical();
    let matches = |c: &Candidate<T>| {
        c.names
            .iter()
            .any(|n| n == text || full_name(n).is_some_and(|r| r.canonical() == canonical))
    };
    let available = list_names(&candidates);
    let total = candidates.len();
    let chosen: Vec<T> = if candidates.iter().any(matches) {
        candidates
            .into_iter()
            .filter(matches)
            .map(|c| c.item)
            .collect()
    } else if total == 1 {
        candidates.into_iter().map(|c| c.item).collect()
    } else {
        return Err(ImportError::NoMatch {
            tag: text.to_string(),
            available,
        });
    };
    Ok(vec![(wanted.clone(), chosen)])
}

fn choose_all<T: Clone>(
    candidates: Vec<Candidate<T>>,
) -> Result<Vec<(Reference, Vec<T>)>, ImportError> {
    let available = list_names(&candidates);
    let total = candidates.len();
    let mut groups: Vec<(Reference, Vec<T>)> = Vec::new();
    for candidate in candidates {
        let mut seen: Vec<String> = Vec::new();
        for name in candidate.names.iter().filter_map(|n| full_name(n)) {
            let canonical = name.canonical();
            if seen.contains(&canonical) {
                continue;
            }
            match groups.iter().position(|(r, _)| r.canonical() == canonical) {
                Some(i) => groups[i].1.push(candidate.item.clone()),
                None => groups.push((name, vec![candidate.item.clone()])),
            }
            seen.push(canonical);
        }
    }
    if groups.is_empty() {
        let detail = match total {
            0 => "no image found".to_string(),
            1 => format!("the image has no full name (found: {available})"),
            _ => format!("no image has a full name (found: {available})"),
        };
        return Err(ImportError::NeedTag(detail));
    }
    Ok(groups)
}

fn list_names<T>(candidates: &[Candidate<T>]) -> String {
    let names: Vec<&str> = candidates
        .iter()
        .flat_map(|c| c.names.iter().map(String::as_str))
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// A name that says which repository it is (`judgebox/python3:bookworm`, `python:3`);
/// a bare word such as `bookworm` or `latest` is only a tag (the OCI convention).
pub(crate) fn full_name(name: &str) -> Option<Reference> {
    if !name.contains('/') && !name.contains(':') && !name.contains('@') {
        return None;
    }
    Reference::parse(name).ok()
}

/// Maps a blob error to a disk-full error, or says which blob it was.
pub(crate) fn blob_error(store: &Store, what: &str, e: BlobError) -> ImportError {
    if is_disk_full(&e) {
        return ImportError::DiskFull(store.root().to_path_buf());
    }
    ImportError::Blob {
        what: what.to_string(),
        source: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(names: &[&[&str]]) -> Vec<Candidate<usize>> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Candidate {
                names: n.iter().map(|s| s.to_string()).collect(),
                item: i,
            })
            .collect()
    }

    fn selector(tag: Option<&str>) -> Selector {
        Selector::new(&ImportOptions {
            tag: tag.map(str::to_string),
            platform: None,
        })
        .unwrap()
    }

    fn chosen(groups: Vec<(Reference, Vec<usize>)>) -> Vec<(String, Vec<usize>)> {
        groups
            .into_iter()
            .map(|(r, v)| (r.canonical(), v))
            .collect()
    }

    #[test]
    fn tag_selects_by_ref_name_and_names_the_image() {
        let c = cands(&[&["judgebox/base:bookworm"], &["judgebox/python3:bookworm"]]);
        let got = chosen(
            selector(Some("judgebox/python3:bookworm"))
                .choose(c)
                .unwrap(),
        );
        assert_eq!(
            got,
            vec![("docker.io/judgebox/python3:bookworm".into(), vec![1])]
        );
        let c = cands(&[&["bookworm"], &["trixie"]]);
        let got = chosen(selector(Some("trixie")).choose(c).unwrap());
        assert_eq!(
            got,
            vec![("docker.io/library/trixie:latest".into(), vec![1])]
        );
        let c = cands(&[&["a:1"], &["b:1"]]);
        assert!(matches!(
            selector(Some("c:1")).choose(c),
            Err(ImportError::NoMatch { .. })
        ));
        let one = cands(&[&["whatever"]]);
        let got = chosen(selector(Some("mine:v1")).choose(one).unwrap());
        assert_eq!(got, vec![("docker.io/library/mine:v1".into(), vec![0])]);
    }

    #[test]
    fn without_tag_every_full_name_is_imported() {
        let c = cands(&[&["a:1", "a:latest"], &["bookworm"], &["b:2"], &["a:1"]]);
        let got = chosen(selector(None).choose(c).unwrap());
        assert_eq!(
            got,
            vec![
                ("docker.io/library/a:1".into(), vec![0, 3]),
                ("docker.io/library/a:latest".into(), vec![0]),
                ("docker.io/library/b:2".into(), vec![2]),
            ]
        );
        assert!(matches!(
            selector(None).choose(cands(&[&["bookworm"]])),
            Err(ImportError::NeedTag(_))
        ));
    }
}
