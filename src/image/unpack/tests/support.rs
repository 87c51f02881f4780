//! Test fixtures: a jail (the unpack root inside a directory of "host" canaries, with a
//! snapshot of everything outside the root), a raw tar writer that can write hostile
//! headers, and helpers to look at the result.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::image::digest::Digest;
use crate::image::spec::LayerCompression;
use crate::image::unpack::resolve::Resolver;
use crate::image::unpack::{
    apply_layer_with, unpack_layers_with, LayerSource, LayerStats, Limits, Progress, Refusal,
    UnpackError, UnpackStats,
};

/// A fixed mtime for entries (2020-09-13).
pub const T: u64 = 1_600_000_000;

/// The unpack root, `OUTER/j1/j2/j3/root`, so that four `..` from it reach OUTER, and
/// OUTER holds the canaries a broken unpacker would hit: `etc/passwd`, `etc/w`, `f`,
/// `outside/`, `run/`, `tmp/`. An absolute host path in a test layer is `jail.abs("/etc")`
/// (inside OUTER), never a real host path.
pub struct Jail {
    _dir: TempDir,
    _blobs: TempDir,
    pub outer: PathBuf,
    pub root: PathBuf,
    pub blobs: PathBuf,
    pub resolver: Resolver,
    before: Snapshot,
    /// The root was deleted and made again (as the store discards a failed staging dir),
    /// so its parent's times and link count changed legitimately.
    recreated: std::sync::atomic::AtomicBool,
}

impl Jail {
    pub fn new(resolver: Resolver) -> Jail {
        let dir = tempfile::Builder::new()
            .prefix("judgebox-unpack-test.")
            .tempdir()
            .unwrap();
        let blobs = tempfile::tempdir().unwrap();
        let outer = dir.path().to_path_buf();
        let mkdir = |p: &str, mode: u32| {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(outer.join(p))
                .unwrap();
            fs::set_permissions(outer.join(p), fs::Permissions::from_mode(mode)).unwrap();
        };
        mkdir("etc", 0o755);
        mkdir("outside", 0o755);
        mkdir("run", 0o755);
        mkdir("tmp", 0o1777);
        mkdir("j1/j2/j3/root", 0o755);
        let file = |p: &str, content: &str| {
            fs::write(outer.join(p), content).unwrap();
            fs::set_permissions(outer.join(p), fs::Permissions::from_mode(0o644)).unwrap();
        };
        file("etc/passwd", "canary passwd\n");
        file("etc/w", "canary w\n");
        file("f", "canary f\n");
        let root = outer.join("j1/j2/j3/root");
        let before = snapshot(&outer, &root);
        Jail {
            blobs: blobs.path().to_path_buf(),
            _dir: dir,
            _blobs: blobs,
            outer,
            root,
            resolver,
            before,
            recreated: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Discards the root with `remove_tree`, as the store does after a failed unpack,
    /// checks it is gone, and makes an empty one for the next step of the test.
    pub fn discard_root(&self) {
        crate::image::unpack::remove_tree(&self.root).unwrap();
        assert!(
            fs::symlink_metadata(&self.root).is_err(),
            "root still there"
        );
        fs::create_dir(&self.root).unwrap();
        self.recreated
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// An absolute "host" path: `p` (starting with `/`) below OUTER.
    pub fn abs(&self, p: &str) -> String {
        format!("{}{p}", self.outer.display())
    }

    /// `abs(p)` as an entry name or in-root path (no leading `/`).
    pub fn abs_rel(&self, p: &str) -> String {
        self.abs(p).trim_start_matches('/').to_string()
    }

    /// Where `p` is inside the root.
    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    pub fn apply(&self, layer: &Layer) -> Result<LayerStats, UnpackError> {
        apply_layer_with(
            &self.root,
            &layer.tar()[..],
            &Limits::default(),
            self.resolver,
        )
    }

    pub fn apply_with(&self, tar: &[u8], limits: &Limits) -> Result<LayerStats, UnpackError> {
        apply_layer_with(&self.root, tar, limits, self.resolver)
    }

    /// Applies layers in order, each of which must succeed.
    pub fn apply_ok(&self, layers: &[&Layer]) -> Vec<LayerStats> {
        layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                self.apply(l)
                    .unwrap_or_else(|e| panic!("layer {i} ({:?}): {e}", self.resolver))
            })
            .collect()
    }

    /// Writes blobs and runs `unpack_layers` on them.
    pub fn unpack(
        &self,
        blobs: &[(Vec<u8>, LayerCompression, Digest)],
        limits: &Limits,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<UnpackStats, UnpackError> {
        let layers: Vec<LayerSource> = blobs
            .iter()
            .enumerate()
            .map(|(i, (bytes, compression, diff_id))| {
                let path = self.blobs.join(format!("layer{i}"));
                fs::write(&path, bytes).unwrap();
                LayerSource {
                    path,
                    compression: *compression,
                    diff_id: diff_id.clone(),
                }
            })
            .collect();
        unpack_layers_with(&self.root, &layers, limits, progress, self.resolver)
    }

    /// Everything in the root, sorted: `d dir`, `f file`, `l link -> target`, `p fifo`.
    pub fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        list(&self.root, &self.root, &mut out);
        out.sort();
        out
    }

    pub fn read(&self, p: &str) -> String {
        fs::read_to_string(self.path(p)).unwrap_or_else(|e| panic!("read {p}: {e}"))
    }

    pub fn meta(&self, p: &str) -> fs::Metadata {
        fs::symlink_metadata(self.path(p)).unwrap_or_else(|e| panic!("lstat {p}: {e}"))
    }

    pub fn mode(&self, p: &str) -> u32 {
        self.meta(p).mode() & 0o7777
    }

    pub fn link(&self, p: &str) -> String {
        fs::read_link(self.path(p))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    pub fn exists(&self, p: &str) -> bool {
        fs::symlink_metadata(self.path(p)).is_ok()
    }

    /// Nothing outside the root changed: same paths, types, modes, owners, link counts,
    /// times, contents and link targets as before the test.
    pub fn assert_host_untouched(&self) {
        let mut after = snapshot(&self.outer, &self.root);
        let parent = self.root.parent().unwrap().to_path_buf();
        if self.recreated.load(std::sync::atomic::Ordering::Relaxed) {
            let (Some(was), Some(now)) = (self.before.get(&parent), after.get_mut(&parent)) else {
                panic!("the root's parent is gone");
            };
            now.mtime = was.mtime;
        }
        for (path, node) in &self.before {
            assert_eq!(
                after.get(path),
                Some(node),
                "host path {} changed ({:?} resolver)",
                path.display(),
                self.resolver
            );
        }
        for path in after.keys() {
            assert!(
                self.before.contains_key(path),
                "host path {} appeared ({:?} resolver)",
                path.display(),
                self.resolver
            );
        }
        assert!(
            fs::symlink_metadata(&self.root).unwrap().is_dir(),
            "the root is no longer a directory"
        );
    }
}

/// Runs `test` once with each resolver (openat2, and the forced component walk), each in
/// a fresh jail, and checks the host canaries afterwards.
pub fn both(test: impl Fn(&Jail)) {
    for resolver in [Resolver::Openat2, Resolver::Walk] {
        let jail = Jail::new(resolver);
        test(&jail);
        jail.assert_host_untouched();
    }
}

fn list(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        if ft.is_symlink() {
            out.push(format!(
                "l {rel} -> {}",
                fs::read_link(&path).unwrap().display()
            ));
        } else if ft.is_dir() {
            out.push(format!("d {rel}"));
            list(root, &path, out);
        } else if ft.is_file() {
            out.push(format!("f {rel}"));
        } else {
            out.push(format!("? {rel}"));
        }
    }
}

#[derive(Debug, PartialEq)]
struct Node {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    content: Option<Vec<u8>>,
    link: Option<PathBuf>,
}

type Snapshot = BTreeMap<PathBuf, Node>;

/// Every path below `top` except `skip` and its contents, never following symlinks.
fn snapshot(top: &Path, skip: &Path) -> Snapshot {
    let mut snap = Snapshot::new();
    let mut todo = vec![top.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        snap.insert(
            path.clone(),
            Node {
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                nlink: meta.nlink(),
                ino: meta.ino(),
                size: if ft.is_dir() { 0 } else { meta.size() },
                mtime: (meta.mtime(), meta.mtime_nsec()),
                content: ft.is_file().then(|| fs::read(&path).unwrap()),
                link: ft.is_symlink().then(|| fs::read_link(&path).unwrap()),
            },
        );
        if ft.is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                let child = entry.unwrap().path();
                if child != skip {
                    todo.push(child);
                }
            }
        }
    }
    snap
}

/// One tar entry to write, with every header field under the test's control.
#[derive(Clone)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub mtime: u64,
    pub link: Vec<u8>,
    pub data: Vec<u8>,
    /// Size written in the header when it should differ from the data's length.
    pub header_size: Option<u64>,
    pub dev: (u64, u64),
    pub pax: Vec<(String, Vec<u8>)>,
}

impl Entry {
    pub fn new(kind: u8, path: &str) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            kind,
            mode: if kind == b'5' { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            uname: String::new(),
            mtime: T,
            link: Vec::new(),
            data: Vec::new(),
            header_size: None,
            dev: (0, 0),
            pax: Vec::new(),
        }
    }

    pub fn mode(mut self, mode: u32) -> Entry {
        self.mode = mode;
        self
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn mtime(mut self, mtime: u64) -> Entry {
        self.mtime = mtime;
        self
    }

    pub fn uname(mut self, name: &str) -> Entry {
        self.uname = name.to_string();
        self
    }

    pub fn link(mut self, target: &str) -> Entry {
        self.link = target.as_bytes().to_vec();
        self
    }

    pub fn data(mut self, data: &[u8]) -> Entry {
        self.data = data.to_vec();
        self
    }

    pub fn header_size(mut self, size: u64) -> Entry {
        self.header_size = Some(size);
        self
    }

    pub fn dev(mut self, major: u64, minor: u64) -> Entry {
        self.dev = (major, minor);
        self
    }

    pub fn pax(mut self, key: &str, value: &[u8]) -> Entry {
        self.pax.push((key.to_string(), value.to_vec()));
        self
    }
}

/// A tar stream written block by block.
#[derive(Clone, Default)]
pub struct Layer {
    buf: Vec<u8>,
}

impl Layer {
    pub fn new() -> Layer {
        Layer::default()
    }

    pub fn dir(self, path: &str, mode: u32) -> Layer {
        self.entry(Entry::new(b'5', path).mode(mode))
    }

    pub fn file(self, path: &str, content: &str) -> Layer {
        self.entry(Entry::new(b'0', path).data(content.as_bytes()))
    }

    pub fn symlink(self, path: &str, target: &str) -> Layer {
        self.entry(Entry::new(b'2', path).link(target).mode(0o777))
    }

    pub fn hardlink(self, path: &str, target: &str) -> Layer {
        self.entry(Entry::new(b'1', path).link(target))
    }

    /// A PAX or GNU header would precede the entry if needed; long names go into PAX.
    pub fn entry(mut self, mut e: Entry) -> Layer {
        if e.path.len() > 100 {
            e.pax.push(("path".into(), e.path.clone()));
        }
        if e.link.len() > 100 {
            e.pax.push(("linkpath".into(), e.link.clone()));
        }
        if !e.pax.is_empty() {
            let body: Vec<u8> = e.pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
            self = self.special(b'x', b"PaxHeaders/entry", &body);
        }
        let size = e.header_size.unwrap_or(e.data.len() as u64);
        let header = header(&e, size);
        self.buf.extend_from_slice(&header);
        self.buf.extend_from_slice(&e.data);
        self.pad();
        self
    }

    /// An extension entry (`x`, `g`, `L`, `K`) with a raw body.
    pub fn special(mut self, kind: u8, name: &[u8], body: &[u8]) -> Layer {
        let e = Entry::new(kind, "").data(body);
        let mut e = e;
        e.path = name.to_vec();
        let header = header(&e, body.len() as u64);
        self.buf.extend_from_slice(&header);
        self.buf.extend_from_slice(body);
        self.pad();
        self
    }

    pub fn raw(mut self, bytes: &[u8]) -> Layer {
        self.buf.extend_from_slice(bytes);
        self
    }

    fn pad(&mut self) {
        let rem = self.buf.len() % 512;
        if rem != 0 {
            self.buf.resize(self.buf.len() + 512 - rem, 0);
        }
    }

    /// The stream with its end-of-archive marker (two zero blocks).
    pub fn tar(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.resize(out.len() + 1024, 0);
        out
    }

    /// The entries only, no end marker.
    pub fn body(&self) -> Vec<u8> {
        self.buf.clone()
    }
}

/// `"<len> key=value\n"`, where len counts the whole record.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    loop {
        let next = base + len.to_string().len();
        if next == len {
            break;
        }
        len = next;
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    assert_eq!(rec.len(), len);
    rec
}

fn header(e: &Entry, size: u64) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    let name: &[u8] = if e.path.len() <= 100 {
        &e.path
    } else {
        b"long-name-in-pax"
    };
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    let link: &[u8] = if e.link.len() <= 100 {
        &e.link
    } else {
        b"long-link-in-pax"
    };
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_mode(e.mode);
    h.set_uid(e.uid);
    h.set_gid(e.gid);
    h.set_mtime(e.mtime);
    h.set_size(size);
    h.set_entry_type(tar::EntryType::new(e.kind));
    if !e.uname.is_empty() {
        h.set_username(&e.uname).unwrap();
        h.set_groupname(&e.uname).unwrap();
    }
    let gnu = h.as_gnu_mut().unwrap();
    numeric(&mut gnu.dev_major, e.dev.0);
    numeric(&mut gnu.dev_minor, e.dev.1);
    h.set_cksum();
    *h.as_bytes()
}

/// Octal when it fits in 7 digits, else GNU base-256.
fn numeric(field: &mut [u8; 8], value: u64) {
    if value < 0o7777777 {
        let text = format!("{value:07o}\0");
        field.copy_from_slice(text.as_bytes());
    } else {
        field.copy_from_slice(&value.to_be_bytes());
        field[0] = 0x80;
    }
}

/// `d a`, `d a/b`, `d a/b/c` for `a/b/c`: the tree lines of a chain of directories.
pub fn dirs(rel: &str) -> Vec<String> {
    let parts: Vec<&str> = rel.split('/').collect();
    (1..=parts.len())
        .map(|n| format!("d {}", parts[..n].join("/")))
        .collect()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The refusal inside an error, if it is one.
pub fn refusal(e: &UnpackError) -> Option<Refusal> {
    match e.innermost() {
        UnpackError::Refused { why, .. } => Some(why.clone()),
        _ => None,
    }
}

/// The errno of a failed filesystem step, if the error is one.
pub fn errno(e: &UnpackError) -> Option<i32> {
    match e.innermost() {
        UnpackError::Entry { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// An extended attribute of a path (not following symlinks), if set.
pub fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = CString::new(name).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: both strings are NUL-terminated and `buf` is valid for its length.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

pub fn sha(bytes: &[u8]) -> Digest {
    Digest::of(bytes)
}
