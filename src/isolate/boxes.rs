//! Boxes as isolate 2.x keeps them: `<box_root>/<id>/box` owned by the box's uid, a lock
//! file per box in lock_root (isolate's record format) held while a command works on the
//! box, and symlink-safe ownership fixes and removal.

use super::caller::Caller;
use super::config::Settings;
use super::quota::{self, Quota, QuotaError};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// isolate's lock record magic.
const LOCK_MAGIC: u32 = 0x4873_6f6c;
const RECORD_SIZE: usize = 12;

/// Errors about boxes; messages are isolate's wording where isolate has one.
#[derive(Debug, thiserror::Error)]
pub enum BoxError {
    #[error("Sandbox ID out of range (allowed: 0-{0})")]
    OutOfRange(u32),
    #[error("This box is currently in use by another process")]
    Busy,
    #[error("Lock file {0} has incompatible format")]
    LockFormat(PathBuf),
    #[error("This box was initialized with an incompatible control group mode")]
    CgMode,
    #[error("This box belongs to a different user (uid {0})")]
    OtherOwner(u32),
    #[error(transparent)]
    Quota(#[from] QuotaError),
    #[error("This box was not initialized properly")]
    NotInitialized,
    #[error("Box not found, did you run `{0} --init'?")]
    NotFound(&'static str),
    #[error("box_root {0} must be a directory owned by root and writable only by root")]
    UnsafeRoot(PathBuf),
    #[error("Cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BoxError + 'a {
    move |source| BoxError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// One box's identity and paths.
#[derive(Debug, Clone)]
pub struct BoxId {
    pub id: u32,
    /// `<box_root>/<id>`, what --init prints.
    pub dir: PathBuf,
    pub uid: u32,
    pub gid: u32,
    lock_path: PathBuf,
}

impl BoxId {
    pub fn new(s: &Settings, id: u32) -> Result<BoxId, BoxError> {
        if id >= s.num_boxes {
            return Err(BoxError::OutOfRange(s.num_boxes - 1));
        }
        Ok(BoxId {
            id,
            dir: s.box_root.join(id.to_string()),
            uid: s.first_uid + id,
            gid: s.first_gid + id,
            lock_path: s.lock_root.join(id.to_string()),
        })
    }

    /// The directory the program sees as /box.
    pub fn box_dir(&self) -> PathBuf {
        self.dir.join("box")
    }

    /// The empty directory the sandbox's tmpfs root is mounted on (in its own namespace).
    pub fn root_dir(&self) -> PathBuf {
        self.dir.join("root")
    }
}

/// What a command wants from the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Init,
    Run,
    Cleanup,
}

/// How a command may use a box: `--wait`, `--cg`, and who it acts for.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub wait: bool,
    pub cg: bool,
    pub caller: Caller,
}

/// A held box lock (released when dropped or when the process dies).
#[derive(Debug)]
pub struct Lock {
    file: File,
    cg: bool,
    owner_uid: u32,
}

fn flock(file: &File, wait: bool) -> std::io::Result<()> {
    let op = libc::LOCK_EX | if wait { 0 } else { libc::LOCK_NB };
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn make_dir(path: &Path, mode: u32) -> Result<(), BoxError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(io("create", path))
}

/// Takes the box's lock. `Ok(None)`: the box does not exist (not for Init).
pub fn lock(b: &BoxId, intent: Intent, a: &Access) -> Result<Option<Lock>, BoxError> {
    let (wait, cg) = (a.wait, a.cg);
    if let Some(parent) = b.lock_path.parent() {
        make_dir(parent, 0o755)?;
    }
    let mut opts = OpenOptions::new();
    opts.read(true)
        .write(true)
        .create(intent == Intent::Init)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    let mut file = match opts.open(&b.lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open", &b.lock_path)(e)),
    };
    if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(BoxError::LockFormat(b.lock_path.clone()));
    }
    match flock(&file, wait) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => return Err(BoxError::Busy),
        Err(e) => return Err(io("lock", &b.lock_path)(e)),
    }
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)
        .map_err(io("read", &b.lock_path))?;
    let lock = Lock {
        file,
        cg,
        owner_uid: a.caller.uid,
    };
    if buf.is_empty() {
        // Nobody initialised this box (or it was cleaned up).
        return Ok((intent == Intent::Init).then_some(lock));
    }
    if buf.len() != RECORD_SIZE || buf[..4] != LOCK_MAGIC.to_ne_bytes() {
        return Err(BoxError::LockFormat(b.lock_path.clone()));
    }
    let (was_cg, initialized) = (buf[8] != 0, buf[9] != 0);
    let owner = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if initialized && owner != a.caller.uid && !a.caller.by_root {
        return Err(BoxError::OtherOwner(owner));
    }
    if was_cg != cg && intent != Intent::Init {
        return Err(BoxError::CgMode);
    }
    if !initialized && intent == Intent::Run {
        return Err(BoxError::NotInitialized);
    }
    Ok(Some(lock))
}

impl Lock {
    fn write_record(&mut self, initialized: bool) -> Result<(), BoxError> {
        let mut rec = [0u8; RECORD_SIZE];
        rec[..4].copy_from_slice(&LOCK_MAGIC.to_ne_bytes());
        rec[4..8].copy_from_slice(&self.owner_uid.to_ne_bytes());
        rec[8] = self.cg as u8;
        rec[9] = initialized as u8;
        let path = PathBuf::from("lock file");
        self.file.set_len(0).map_err(io("write", &path))?;
        self.file.rewind().map_err(io("write", &path))?;
        self.file.write_all(&rec).map_err(io("write", &path))
    }

    /// Truncates the record (lock files are never unlinked, to avoid races).
    fn clear(self) -> Result<(), BoxError> {
        self.file
            .set_len(0)
            .map_err(io("truncate", Path::new("lock file")))
    }
}

/// Checks that box_root cannot be changed under us by anyone but root.
fn check_box_root(root: &Path) -> Result<(), BoxError> {
    make_dir(root, 0o755)?;
    let m = std::fs::symlink_metadata(root).map_err(io("stat", root))?;
    if !m.is_dir() || m.uid() != 0 || m.mode() & 0o022 != 0 {
        return Err(BoxError::UnsafeRoot(root.to_path_buf()));
    }
    Ok(())
}

/// Removes the box directory, first unmounting whatever is mounted in it (a quota
/// box's tmpfs, also one a crashed caller never cleaned up).
fn remove_box_dir(b: &BoxId) -> Result<(), BoxError> {
    quota::unmount_below(&b.dir)?;
    match std::fs::symlink_metadata(&b.dir) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&b.dir).map_err(io("remove", &b.dir)),
        Ok(_) => std::fs::remove_file(&b.dir).map_err(io("remove", &b.dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("stat", &b.dir)(e)),
    }
}

/// `--init`: a fresh, empty box owned by `owner` (a tmpfs of the quota's size when one
/// is given); returns the directory to print. Nothing is left mounted on failure.
pub fn init(
    s: &Settings,
    b: &BoxId,
    a: &Access,
    owner: (u32, u32),
    quota: Option<Quota>,
) -> Result<PathBuf, BoxError> {
    check_box_root(&s.box_root)?;
    let mut lock = lock(b, Intent::Init, a)?.ok_or(BoxError::NotInitialized)?;
    lock.write_record(false)?;
    remove_box_dir(b)?;
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&b.dir)
        .map_err(io("create", &b.dir))?;
    ensure_root_dir(b)?;
    let inner = b.box_dir();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&inner)
        .map_err(io("create", &inner))?;
    std::os::unix::fs::lchown(&inner, Some(owner.0), Some(owner.1)).map_err(io("chown", &inner))?;
    let quota = quota.filter(|q| q.blocks > 0);
    let made = match quota {
        Some(q) => quota::mount(&inner, q, owner).map_err(BoxError::from),
        None => Ok(()),
    }
    .and_then(|()| lock.write_record(true));
    if let Err(e) = made {
        // Nothing half-made stays: no mount, no box, and the lock says "no box".
        let _ = remove_box_dir(b);
        let _ = lock.clear();
        return Err(e);
    }
    Ok(b.dir.clone())
}

/// The root mount point, root-owned and empty (created when missing).
pub fn ensure_root_dir(b: &BoxId) -> Result<(), BoxError> {
    let root = b.root_dir();
    match std::fs::symlink_metadata(&root) {
        Ok(m) if m.is_dir() && m.uid() == 0 => Ok(()),
        Ok(_) => Err(BoxError::UnsafeRoot(root)),
        Err(_) => std::fs::DirBuilder::new()
            .mode(0o750)
            .create(&root)
            .map_err(io("create", &root)),
    }
}

/// `--cleanup`: removes the box; false when there was nothing to remove.
pub fn cleanup(s: &Settings, b: &BoxId, a: &Access) -> Result<bool, BoxError> {
    check_box_root(&s.box_root)?;
    let Some(lock) = lock(b, Intent::Cleanup, a)? else {
        // Never initialised (or cleaned up), yet a crash may have left a mount here.
        quota::unmount_below(&b.dir)?;
        return Ok(false);
    };
    remove_box_dir(b)?;
    lock.clear()?;
    Ok(true)
}

/// `--run`'s lock: the box must exist and be initialised.
pub fn lock_for_run(s: &Settings, b: &BoxId, a: &Access) -> Result<Lock, BoxError> {
    check_box_root(&s.box_root)?;
    let name = if a.cg { "isolate --cg" } else { "isolate" };
    let lock = lock(b, Intent::Run, a)?.ok_or(BoxError::NotFound(name))?;
    if !b.box_dir().is_dir() {
        return Err(BoxError::NotFound(name));
    }
    ensure_root_dir(b)?;
    Ok(lock)
}

/// Deepest directory nesting `chown_tree` follows (deeper trees are an error).
const MAX_DEPTH: usize = 256;

/// Gives everything under `dir` to uid/gid without following symlinks; anything but
/// regular files and directories is removed unless `keep_special` (isolate's behaviour).
/// Only called while the box is locked and nothing runs in it.
pub fn chown_tree(dir: &Path, uid: u32, gid: u32, keep_special: bool) -> Result<(), BoxError> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).map_err(io("chown", dir))?;
    chown_children(dir, uid, gid, keep_special, 0)
}

fn chown_children(
    dir: &Path,
    uid: u32,
    gid: u32,
    keep_special: bool,
    depth: usize,
) -> Result<(), BoxError> {
    if depth > MAX_DEPTH {
        return Err(io("walk", dir)(std::io::Error::other(
            "directory tree too deep",
        )));
    }
    for entry in std::fs::read_dir(dir).map_err(io("read", dir))? {
        let entry = entry.map_err(io("read", dir))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(io("stat", &path))?;
        if ft.is_dir() {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid)).map_err(io("chown", &path))?;
            chown_children(&path, uid, gid, keep_special, depth + 1)?;
        } else if ft.is_file() || keep_special {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid)).map_err(io("chown", &path))?;
        } else {
            std::fs::remove_file(&path).map_err(io("unlink special file", &path))?;
        }
    }
    Ok(())
}
