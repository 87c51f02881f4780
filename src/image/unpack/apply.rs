//! Applies parsed entries to the root: each path is created (or replaced) by an `*at` call
//! on its in-root parent, whiteouts remove lower-layer content only, metadata goes on in a
//! safe order, and directory modes and mtimes are set when the layer ends.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use super::created::CreatedSet;
use super::entry::{keep_xattr, split_last, Item, Kind, Meta};
use super::resolve::{components, Root};
use super::{remove, stream, sys, Notes, Refusal, UnpackError};

/// Parent directories kept open between entries (tar lists siblings together).
const PARENT_CACHE: usize = 64;
/// Buffer for file data: few, large writes.
const COPY_BUFFER: usize = 256 << 10;

/// The state of one layer being applied.
pub(crate) struct Applier<'r> {
    root: &'r Root,
    parents: ParentCache,
    created: CreatedSet,
    deferred: Vec<Deferred>,
    /// Lower directories this layer changed without listing them, and their times before.
    restore: Vec<Restore>,
    /// (dev, ino) of the directories in `restore` or created by this layer.
    touched: HashSet<(u64, u64)>,
    buf: Vec<u8>,
}

/// Directory metadata applied at the end of the layer, so a 0555 or 0000 directory still
/// receives its children and its mtime is not bumped by them.
struct Deferred {
    path: Vec<u8>,
    /// The directory this was meant for; skipped if the path now holds another.
    ino: u64,
    mode: u32,
    mtime: libc::timespec,
}

/// A directory whose times the layer's changes bumped; restored at the end of the layer
/// (before deferred metadata, which wins for directories the layer lists), so a directory
/// the layer does not mention keeps its lower layer's mtime, as on an overlay mount.
struct Restore {
    path: Vec<u8>,
    ino: u64,
    atime: libc::timespec,
    mtime: libc::timespec,
}

/// Open parent directories by cleaned path. Valid until something that could be a
/// component of a cached path (a directory or symlink) is removed; then cleared.
#[derive(Default)]
struct ParentCache {
    map: HashMap<Vec<u8>, Rc<OwnedFd>>,
}

impl ParentCache {
    /// The directory, and whether it was resolved now (not cached).
    fn get(&mut self, root: &Root, dir: &[u8]) -> io::Result<(Rc<OwnedFd>, bool)> {
        if let Some(fd) = self.map.get(dir) {
            return Ok((fd.clone(), false));
        }
        let fd = Rc::new(root.open_dir_create(dir)?);
        if self.map.len() >= PARENT_CACHE {
            self.map.clear();
        }
        self.map.insert(dir.to_vec(), fd.clone());
        Ok((fd, true))
    }

    fn clear(&mut self) {
        self.map.clear();
    }
}

fn shown(path: &[u8]) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    String::from_utf8_lossy(path).into_owned()
}

/// Wraps an io error with the entry path and the step that failed.
fn at<'a>(path: &'a [u8], step: &'static str) -> impl FnOnce(io::Error) -> UnpackError + 'a {
    move |source| UnpackError::Entry {
        path: shown(path),
        step,
        source,
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    path.extend_from_slice(dir);
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

fn missing(e: &io::Error) -> bool {
    sys::errno_is(e, libc::ENOENT) || sys::errno_is(e, libc::ENOTDIR)
}

impl<'r> Applier<'r> {
    pub(crate) fn new(root: &'r Root) -> Self {
        Applier {
            root,
            parents: ParentCache::default(),
            created: CreatedSet::new(),
            deferred: Vec::new(),
            restore: Vec::new(),
            touched: HashSet::new(),
            buf: vec![0; COPY_BUFFER],
        }
    }

    /// Applies one entry; `data` is its content (read only for regular files).
    pub(crate) fn apply(
        &mut self,
        item: &Item,
        data: &mut dyn Read,
        notes: &mut Notes,
    ) -> Result<(), UnpackError> {
        let path = &item.path;
        match &item.kind {
            Kind::Skip(why) => {
                notes.push(format!("{}: skipped {why}", shown(path)));
                return Ok(());
            }
            Kind::Device {
                block,
                major,
                minor,
            } => {
                let kind = if *block { "block" } else { "character" };
                notes.push(format!(
                    "{}: refused {kind} device {major}:{minor}",
                    shown(path)
                ));
                return Ok(());
            }
            Kind::Whiteout(name) => return self.whiteout(path, name),
            Kind::Opaque => return self.opaque(path),
            _ => {}
        }
        if path.is_empty() {
            return self.root_entry(item, notes);
        }
        let (dir, name) = split_last(path);
        let (parent, fresh) = self
            .parents
            .get(self.root, dir)
            .map_err(at(path, "resolve parent directory"))?;
        let parent = parent.as_fd();
        if fresh {
            self.touch(dir, parent)?;
        }
        let name = sys::cstring(name).map_err(at(path, "name"))?;
        match &item.kind {
            Kind::File => self.file(parent, &name, item, data, notes)?,
            Kind::Dir => self.dir(parent, &name, item, notes)?,
            Kind::Symlink(target) => self.symlink(parent, &name, target, item, notes)?,
            Kind::Hardlink(target) => self.hardlink(parent, &name, target, path)?,
            Kind::Fifo => self.fifo(parent, &name, item, notes)?,
            Kind::Skip(_) | Kind::Device { .. } | Kind::Whiteout(_) | Kind::Opaque => {
                unreachable!("handled above")
            }
        }
        self.created.created(path);
        Ok(())
    }

    /// Records the times of directory `dir` before this layer first changes it.
    fn touch(&mut self, dir: &[u8], fd: BorrowedFd<'_>) -> Result<(), UnpackError> {
        let st = sys::fstat(fd).map_err(at(dir, "stat directory"))?;
        if self.touched.insert((st.st_dev, st.st_ino)) {
            self.restore.push(Restore {
                path: dir.to_vec(),
                ino: st.st_ino,
                atime: libc::timespec {
                    tv_sec: st.st_atime,
                    tv_nsec: st.st_atime_nsec,
                },
                mtime: libc::timespec {
                    tv_sec: st.st_mtime,
                    tv_nsec: st.st_mtime_nsec,
                },
            });
        }
        Ok(())
    }

    /// Runs `make`; if the name is taken (and `make` did not accept it), removes what is
    /// there, a whole tree for a directory, and runs `make` again.
    fn replacing<T>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        mut make: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        match make() {
            Err(e) if sys::errno_is(&e, libc::EEXIST) => {}
            other => return other,
        }
        self.remove_existing(parent, name)?;
        make()
    }

    fn remove_existing(&mut self, parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
        let st = sys::lstatat(parent, name)?;
        if sys::file_type(&st) != libc::S_IFREG {
            self.parents.clear();
        }
        if sys::is_dir(&st) {
            remove::remove_dir_tree(parent, name)
        } else {
            sys::unlinkat(parent, name, 0)
        }
    }

    fn file(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        item: &Item,
        data: &mut dyn Read,
        notes: &mut Notes,
    ) -> Result<(), UnpackError> {
        let path = &item.path;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let fd = self
            .replacing(parent, name, || sys::openat(parent, name, flags, 0o600))
            .map_err(at(path, "create file"))?;
        let mut file = File::from(fd);
        self.copy_data(data, &mut file, item)?;
        set_meta(file.as_fd(), &item.meta, path, notes)
    }

    /// Copies exactly `item.size` bytes; a stream that ends early is an error.
    fn copy_data(
        &mut self,
        data: &mut dyn Read,
        file: &mut File,
        item: &Item,
    ) -> Result<(), UnpackError> {
        let mut left = item.size;
        while left > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = stream::fill(data, &mut self.buf[..want]).map_err(UnpackError::Tar)?;
            if n == 0 {
                return Err(at(&item.path, "read file data")(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("layer ends {left} bytes before the end of the file"),
                )));
            }
            file.write_all(&self.buf[..n])
                .map_err(at(&item.path, "write file"))?;
            left -= n as u64;
        }
        Ok(())
    }

    fn dir(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        item: &Item,
        notes: &mut Notes,
    ) -> Result<(), UnpackError> {
        let path = &item.path;
        let existed = match sys::mkdirat(parent, name, 0o700) {
            Ok(()) => false,
            Err(e) if sys::errno_is(&e, libc::EEXIST) => {
                let st = sys::lstatat(parent, name).map_err(at(path, "inspect existing path"))?;
                if !sys::is_dir(&st) {
                    self.remove_existing(parent, name)
                        .map_err(at(path, "remove existing path"))?;
                    sys::mkdirat(parent, name, 0o700).map_err(at(path, "create directory"))?;
                }
                sys::is_dir(&st)
            }
            Err(e) => return Err(at(path, "create directory")(e)),
        };
        let fd = sys::openat(parent, name, sys::O_DIR_NOFOLLOW, 0)
            .map_err(at(path, "open directory"))?;
        self.dir_meta(fd.as_fd(), item, existed, notes)
    }

    /// A directory entry naming the root (`./`): its metadata applies to the root.
    fn root_entry(&mut self, item: &Item, notes: &mut Notes) -> Result<(), UnpackError> {
        if !matches!(item.kind, Kind::Dir) {
            return Err(UnpackError::Refused {
                path: ".".to_string(),
                why: Refusal::NonDirectoryAtRoot,
            });
        }
        let fd = self.root.fd();
        self.dir_meta(fd, item, true, notes)
    }

    /// Owner and xattrs now (chown before chmod), mode and mtime deferred.
    fn dir_meta(
        &mut self,
        fd: BorrowedFd<'_>,
        item: &Item,
        existed: bool,
        notes: &mut Notes,
    ) -> Result<(), UnpackError> {
        let (path, meta) = (&item.path, &item.meta);
        sys::fchown(fd, meta.uid, meta.gid).map_err(at(path, "chown directory"))?;
        if existed {
            clear_xattrs(fd).map_err(at(path, "clear xattrs"))?;
        }
        set_xattrs(fd, meta, path, notes)?;
        let st = sys::fstat(fd).map_err(at(path, "stat directory"))?;
        self.deferred.push(Deferred {
            path: path.clone(),
            ino: st.st_ino,
            mode: meta.mode,
            mtime: meta.mtime,
        });
        Ok(())
    }

    fn symlink(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        target: &CStr,
        item: &Item,
        notes: &mut Notes,
    ) -> Result<(), UnpackError> {
        let (path, meta) = (&item.path, &item.meta);
        self.replacing(parent, name, || sys::symlinkat(target, parent, name))
            .map_err(at(path, "create symlink"))?;
        // A symlink's own mode is meaningless and chmod would follow it: never chmod.
        sys::lchownat(parent, name, meta.uid, meta.gid).map_err(at(path, "chown symlink"))?;
        sys::lutimensat(parent, name, meta.mtime).map_err(at(path, "set symlink times"))?;
        if !meta.xattrs.is_empty() {
            notes.push(format!("{}: xattrs on a symlink not applied", shown(path)));
        }
        Ok(())
    }

    /// A hardlink shares its target's inode, so the entry's own metadata is not applied
    /// (it could only restate the target's, or chmod through a link to a symlink).
    fn hardlink(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        target: &[u8],
        path: &[u8],
    ) -> Result<(), UnpackError> {
        let refuse = || UnpackError::Refused {
            path: shown(path),
            why: Refusal::HardlinkToDirectory,
        };
        let (target_dir, target_name) = split_last(target);
        if target_name.is_empty() {
            return Err(refuse());
        }
        let target_parent = self
            .root
            .open_dir(target_dir)
            .map_err(at(path, "resolve hardlink target"))?;
        let target_parent = target_parent.as_fd();
        let target_name = sys::cstring(target_name).map_err(at(path, "hardlink target"))?;
        let st = sys::lstatat(target_parent, &target_name).map_err(at(path, "hardlink target"))?;
        if sys::is_dir(&st) {
            return Err(refuse());
        }
        self.replacing(parent, name, || {
            sys::linkat(target_parent, &target_name, parent, name)
        })
        .map_err(at(path, "create hardlink"))
    }

    fn fifo(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        item: &Item,
        notes: &mut Notes,
    ) -> Result<(), UnpackError> {
        let path = &item.path;
        self.replacing(parent, name, || sys::mkfifoat(parent, name))
            .map_err(at(path, "create fifo"))?;
        // Opening for reading with O_NONBLOCK does not wait for a writer.
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW;
        let fd = sys::openat(parent, name, flags, 0).map_err(at(path, "open fifo"))?;
        set_meta(fd.as_fd(), &item.meta, path, notes)
    }

    /// `.wh.NAME` in `dir`: removes the lower-layer NAME, sparing what this layer made.
    fn whiteout(&mut self, dir: &[u8], name: &[u8]) -> Result<(), UnpackError> {
        let target = join(dir, name);
        let parent = match self.root.open_dir(dir) {
            Ok(fd) => fd,
            Err(e) if missing(&e) => return Ok(()), // nothing below to hide
            Err(e) => return Err(at(&target, "resolve whiteout directory")(e)),
        };
        let name = sys::cstring(name).map_err(at(&target, "name"))?;
        self.touch(dir, parent.as_fd())?;
        self.parents.clear();
        match self.created.get(&target) {
            None => match remove::remove_at(parent.as_fd(), &name) {
                Err(e) if !sys::errno_is(&e, libc::ENOENT) => {
                    Err(at(&target, "remove whited-out path")(e))
                }
                _ => Ok(()),
            },
            Some(_) => match sys::lstatat(parent.as_fd(), &name) {
                Ok(st) if sys::is_dir(&st) => self.prune_children(target),
                Ok(_) => Ok(()),
                Err(e) if sys::errno_is(&e, libc::ENOENT) => Ok(()),
                Err(e) => Err(at(&target, "inspect whited-out path")(e)),
            },
        }
    }

    /// `DIR/.wh..wh..opq`: removes every lower-layer child of DIR, wherever the marker is
    /// in the layer (children this layer made are spared, before or after it).
    fn opaque(&mut self, dir: &[u8]) -> Result<(), UnpackError> {
        let (fd, _) = self
            .parents
            .get(self.root, dir)
            .map_err(at(dir, "resolve opaque directory"))?;
        self.touch(dir, fd.as_fd())?;
        self.created.kept(dir);
        self.parents.clear();
        self.prune_children(dir.to_vec())
    }

    /// Removes what this layer did not create below directory `dir`, descending into the
    /// directories it did create (or created something under).
    fn prune_children(&mut self, dir: Vec<u8>) -> Result<(), UnpackError> {
        let mut todo = vec![dir];
        while let Some(dir) = todo.pop() {
            let fd = match self.root.open_dir(&dir) {
                Ok(fd) => fd,
                Err(e) if missing(&e) => continue,
                Err(e) => return Err(at(&dir, "open directory to prune")(e)),
            };
            self.touch(&dir, fd.as_fd())?;
            let children = sys::read_dir(fd.as_fd()).map_err(at(&dir, "list directory"))?;
            for child in children {
                let path = join(&dir, child.name.to_bytes());
                if self.created.get(&path).is_none() {
                    match remove::remove_at(fd.as_fd(), &child.name) {
                        Err(e) if !sys::errno_is(&e, libc::ENOENT) => {
                            return Err(at(&path, "remove lower-layer path")(e))
                        }
                        _ => continue,
                    }
                }
                let is_dir = match child.kind {
                    libc::DT_DIR => true,
                    libc::DT_UNKNOWN => {
                        sys::lstatat(fd.as_fd(), &child.name).is_ok_and(|st| sys::is_dir(&st))
                    }
                    _ => false,
                };
                if is_dir {
                    todo.push(path);
                }
            }
        }
        Ok(())
    }

    /// Ends the layer: first the times of lower directories it changed without listing
    /// them, then the modes and mtimes of the directories it lists, deepest first (so a
    /// parent's 0000 mode never blocks reaching its children).
    pub(crate) fn finish(mut self) -> Result<(), UnpackError> {
        for r in std::mem::take(&mut self.restore) {
            if let Some(fd) = self.open_same_dir(&r.path, r.ino)? {
                sys::futimens2(fd.as_fd(), r.atime, r.mtime)
                    .map_err(at(&r.path, "restore directory times"))?;
            }
        }
        let mut deferred = std::mem::take(&mut self.deferred);
        deferred.sort_by_key(|d| Reverse(components(&d.path).count()));
        for d in &deferred {
            let Some(fd) = self.open_same_dir(&d.path, d.ino)? else {
                continue; // replaced later in the layer
            };
            sys::fchmod(fd.as_fd(), d.mode).map_err(at(&d.path, "chmod directory"))?;
            sys::futimens(fd.as_fd(), d.mtime).map_err(at(&d.path, "set directory times"))?;
        }
        Ok(())
    }

    /// The directory at `path` if it is still inode `ino`.
    fn open_same_dir(&mut self, path: &[u8], ino: u64) -> Result<Option<OwnedFd>, UnpackError> {
        let Some(fd) = self
            .open_deferred(path)
            .map_err(at(path, "open directory"))?
        else {
            return Ok(None);
        };
        let st = sys::fstat(fd.as_fd()).map_err(at(path, "stat directory"))?;
        Ok((st.st_ino == ino && sys::is_dir(&st)).then_some(fd))
    }

    fn open_deferred(&mut self, path: &[u8]) -> io::Result<Option<OwnedFd>> {
        if path.is_empty() {
            return sys::dup(self.root.fd()).map(Some);
        }
        let (dir, name) = split_last(path);
        let parent = match self.root.open_dir(dir) {
            Ok(fd) => fd,
            Err(e) if missing(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let name = sys::cstring(name)?;
        match sys::openat(parent.as_fd(), &name, sys::O_DIR_NOFOLLOW, 0) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if missing(&e) || sys::errno_is(&e, libc::ELOOP) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Owner, then mode (chown clears setuid), then xattrs (chown and writes clear
/// `security.capability`), then times, all on the open file.
fn set_meta(
    fd: BorrowedFd<'_>,
    meta: &Meta,
    path: &[u8],
    notes: &mut Notes,
) -> Result<(), UnpackError> {
    sys::fchown(fd, meta.uid, meta.gid).map_err(at(path, "chown"))?;
    sys::fchmod(fd, meta.mode).map_err(at(path, "chmod"))?;
    set_xattrs(fd, meta, path, notes)?;
    sys::futimens(fd, meta.mtime).map_err(at(path, "set times"))
}

/// Sets the kept xattrs; a filesystem without xattr support (ENOTSUP) or a namespace the
/// file type refuses (EPERM, `user.*` on a FIFO) is noted, not fatal.
fn set_xattrs(
    fd: BorrowedFd<'_>,
    meta: &Meta,
    path: &[u8],
    notes: &mut Notes,
) -> Result<(), UnpackError> {
    for (name, value) in &meta.xattrs {
        match sys::fsetxattr(fd, name, value) {
            Ok(()) => {}
            Err(e) if sys::errno_is(&e, libc::EOPNOTSUPP) || sys::errno_is(&e, libc::EPERM) => {
                notes.push(format!(
                    "{}: xattr {} not set: {e}",
                    shown(path),
                    name.to_string_lossy()
                ));
            }
            Err(e) => return Err(at(path, "set xattr")(e)),
        }
    }
    Ok(())
}

/// Dir over dir: the entry's xattrs replace the lower directory's (the kept namespaces).
fn clear_xattrs(fd: BorrowedFd<'_>) -> io::Result<()> {
    let names = match sys::flistxattr(fd) {
        Ok(names) => names,
        Err(e) if sys::errno_is(&e, libc::EOPNOTSUPP) => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in names {
        if keep_xattr(&name.to_string_lossy()) {
            match sys::fremovexattr(fd, &name) {
                Err(e) if !sys::errno_is(&e, libc::ENODATA) => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}
