//! Builds the sandbox's filesystem inside its private mount namespace: the rootfs bound
//! read-only, a fresh read-only /proc with masked paths, a minimal /dev, tmpfs /tmp and
//! /box, then pivot_root so the host tree is unreachable. Runs in init, allocation-free.

use super::prepare::Prepared;
use super::protocol::{step, ChildError, SetupStep};
use super::sys::{self, SysResult, NULL};
use libc::c_ulong;
use std::ffi::CStr;

type StepResult = Result<(), ChildError>;

const TMPFS: &CStr = c"tmpfs";
const PROC: &CStr = c"proc";

/// Where the scratch mounts (/dev/shm, /tmp, /box) go: under the rootfs before
/// pivot_root (a fresh sandbox), or in the new root after it (a warm one, per run).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Rootfs,
    NewRoot,
}

/// The whole sequence before pivot_root, in order.
pub fn build(p: &Prepared) -> StepResult {
    make_mounts_private()?;
    if let Some(plan) = &p.mounts {
        return super::mounts::build(p, plan);
    }
    bind_rootfs_readonly(p)?;
    mount_proc(p)?;
    mount_dev(p)?;
    mount_scratch(p, Place::Rootfs)
}

/// Fresh tmpfs /dev/shm, /tmp and /box (or the --box-dir bind).
pub fn mount_scratch(p: &Prepared, at: Place) -> StepResult {
    let (shm, tmp, boxdir) = match at {
        Place::Rootfs => (
            p.shm_dir.as_c_str(),
            p.tmp_dir.as_c_str(),
            p.box_dir.as_c_str(),
        ),
        Place::NewRoot => (c"/dev/shm", c"/tmp", c"/box"),
    };
    mount_shm(p, shm)?;
    mount_tmp(p, tmp)?;
    mount_box(p, boxdir)
}

/// A warm sandbox between runs: makes /dev/shm, /tmp and /box fresh again. A scratch dir
/// that is provably simple (no subdirectory, no xattr, the mode and owner it was mounted
/// with) is emptied in place; any other is detached and mounted anew. Emptying avoids the
/// umount, whose RCU grace period (expedited: an IPI to every CPU, the caller blocked)
/// cost more than all the rest of a renewal.
pub fn renew_scratch(p: &Prepared) -> StepResult {
    let scratch: [(&CStr, u32, u32, u32); 3] = [
        (c"/dev/shm", 0o1777, 0, 0),
        (c"/tmp", 0o1777, 0, 0),
        (c"/box", 0o755, p.uid, p.gid),
    ];
    for (i, (dir, mode, uid, gid)) in scratch.into_iter().enumerate() {
        if empty_in_place(dir, mode, uid, gid) {
            continue;
        }
        match sys::umount_detach(dir.as_ptr()) {
            Ok(()) | Err(libc::EINVAL) => {}
            Err(e) => return Err(ChildError::at(SetupStep::DetachScratch, e, i as u32)),
        }
        match i {
            0 => mount_shm(p, dir)?,
            1 => mount_tmp(p, dir)?,
            _ => mount_box(p, dir)?,
        }
    }
    Ok(())
}

/// Unlinks every entry of the tmpfs mounted at `dir` when it holds no directory and its
/// root still has `mode`, `uid`, `gid` and no xattr; true once it is verified empty. false
/// (nothing is promised) sends the caller to a fresh mount. Only called between runs,
/// when every process of the sandbox but init is gone.
fn empty_in_place(dir: &CStr, mode: u32, uid: u32, gid: u32) -> bool {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let Ok(fd) = sys::openat(libc::AT_FDCWD, dir.as_ptr(), flags, 0) else {
        return false;
    };
    let emptied = root_is_pristine(fd, mode, uid, gid) && unlink_entries(fd).is_some();
    // A second pass from the start proves nothing is left (a readdir racing its own
    // unlinks could in principle skip an entry).
    // SAFETY: lseek on the directory fd opened above.
    let emptied = emptied
        && unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } == 0
        && unlink_entries(fd) == Some(0);
    sys::close(fd);
    emptied
}

/// The scratch root as it was mounted: a directory with the expected mode and owner, a
/// link count of 2 (so no subdirectory) and no extended attribute (ACLs included).
fn root_is_pristine(fd: i32, mode: u32, uid: u32, gid: u32) -> bool {
    // SAFETY: stat is plain data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills st for an fd we own.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return false;
    }
    // SAFETY: a NULL buffer of size 0 asks only for the size of the name list.
    let xattrs = unsafe { libc::flistxattr(fd, std::ptr::null_mut(), 0) };
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
        && st.st_mode & 0o7777 == mode
        && (st.st_uid, st.st_gid) == (uid, gid)
        && st.st_nlink == 2
        && xattrs == 0
}

/// Reads `fd`'s entries from its current offset and unlinks each; returns how many there
/// were that were not the root's own `.` and `..`, or None when one is a directory or an
/// unlink or read fails.
fn unlink_entries(fd: i32) -> Option<usize> {
    let mut buf = [0u8; 4096];
    let mut seen = 0;
    loop {
        // SAFETY: getdents64 writes at most buf.len() bytes into buf.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return None;
        }
        if n == 0 {
            return Some(seen);
        }
        let mut at = 0usize;
        while at < n as usize {
            // linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, then the name.
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            let kind = buf[at + 18];
            let name = &buf[at + 19..at + reclen];
            at += reclen;
            if name.starts_with(b".\0") || name.starts_with(b"..\0") {
                continue;
            }
            seen += 1;
            if kind == libc::DT_DIR {
                return None;
            }
            // SAFETY: the name is NUL-terminated within the record, relative to fd.
            if unsafe { libc::unlinkat(fd, name.as_ptr() as *const libc::c_char, 0) } != 0 {
                return None;
            }
        }
    }
}

fn make_mounts_private() -> StepResult {
    // Nothing done from here on may propagate back to the host's mount table.
    let flags = (libc::MS_REC | libc::MS_PRIVATE) as c_ulong;
    step(
        SetupStep::MakeMountsPrivate,
        sys::mount(NULL, c"/".as_ptr(), NULL, flags, NULL),
    )
}

fn bind_rootfs_readonly(p: &Prepared) -> StepResult {
    let root = p.root.as_ptr();
    step(
        SetupStep::BindRootfs,
        sys::mount(root, root, NULL, libc::MS_BIND as c_ulong, NULL),
    )?;
    let flags =
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
    step(
        SetupStep::RemountRootfsReadonly,
        sys::mount(NULL, root, NULL, flags as c_ulong, NULL),
    )
}

pub(super) fn mount_proc(p: &Prepared) -> StepResult {
    // Read-only as a whole, not only /proc/sys, /proc/irq, /proc/bus and /proc/fs as runc
    // makes them (a bind and a remount each): one mount instead of nine, and no /proc
    // file is writable from the sandbox, /proc/self's included.
    let flags = (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as c_ulong;
    step(
        SetupStep::MountProc,
        sys::mount(
            PROC.as_ptr(),
            p.proc_dir.as_ptr(),
            PROC.as_ptr(),
            flags,
            NULL,
        ),
    )?;
    for (i, path) in p.masked.iter().enumerate() {
        mask(path).map_err(|e| ChildError::at(SetupStep::MaskProcPath, e, i as u32))?;
    }
    Ok(())
}

/// Hides a path: /dev/null over files, an empty read-only tmpfs over directories.
fn mask(path: &CStr) -> SysResult {
    // SAFETY: stat is plain data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-buffer; path is NUL-terminated.
    if unsafe { libc::lstat(path.as_ptr(), &mut st) } != 0 {
        return match sys::errno() {
            libc::ENOENT => Ok(()),
            e => Err(e),
        };
    }
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let flags =
            (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as c_ulong;
        sys::mount(
            TMPFS.as_ptr(),
            path.as_ptr(),
            TMPFS.as_ptr(),
            flags,
            c"size=0,mode=0555".as_ptr(),
        )
    } else {
        sys::mount(
            c"/dev/null".as_ptr(),
            path.as_ptr(),
            NULL,
            libc::MS_BIND as c_ulong,
            NULL,
        )
    }
}

/// Device nodes offered in /dev: name, then (major, minor) from the kernel's fixed list
/// (Documentation/admin-guide/devices.txt: the `mem` driver's minors), then the host node
/// to bind when mknod is refused (a container without CAP_MKNOD).
const DEVICES: &[(&CStr, (u32, u32), &CStr)] = &[
    (c"null", (1, 3), c"/dev/null"),
    (c"zero", (1, 5), c"/dev/zero"),
    (c"full", (1, 7), c"/dev/full"),
    (c"random", (1, 8), c"/dev/random"),
    (c"urandom", (1, 9), c"/dev/urandom"),
];
const DEV_LINKS: &[(&CStr, &CStr)] = &[
    (c"/proc/self/fd", c"fd"),
    (c"/proc/self/fd/0", c"stdin"),
    (c"/proc/self/fd/1", c"stdout"),
    (c"/proc/self/fd/2", c"stderr"),
];

/// The /dev tmpfs: root-owned 0755, so only init (root, CAP_MKNOD) ever creates a node in
/// it; the program is never root and has no capabilities. Without nodev, as runc's /dev,
/// for the nodes init makes; where mknod is refused it is remounted nodev and the host's
/// nodes are bound instead (as bubblewrap does), each keeping its own mount's flags.
const DEV_FLAGS: libc::c_ulong = (libc::MS_NOSUID | libc::MS_NOEXEC) as c_ulong;
const DEV_OPTS: &CStr = c"mode=0755,size=64k,nr_inodes=64";

pub(super) fn mount_dev(p: &Prepared) -> StepResult {
    step(
        SetupStep::MountDev,
        sys::mount(
            TMPFS.as_ptr(),
            p.dev_dir.as_ptr(),
            TMPFS.as_ptr(),
            DEV_FLAGS,
            DEV_OPTS.as_ptr(),
        ),
    )?;
    let dir = sys::openat(
        libc::AT_FDCWD,
        p.dev_dir.as_ptr(),
        libc::O_DIRECTORY | libc::O_PATH,
        0,
    )
    .map_err(|e| ChildError::new(SetupStep::MountDev, e))?;
    let result = populate_dev(p, dir);
    sys::close(dir);
    result
}

fn mount_shm(p: &Prepared, dir: &CStr) -> StepResult {
    let flags = (libc::MS_NOSUID | libc::MS_NODEV) as c_ulong;
    step(
        SetupStep::MountDevShm,
        sys::mount(
            TMPFS.as_ptr(),
            dir.as_ptr(),
            TMPFS.as_ptr(),
            flags,
            p.shm_opts.as_ptr(),
        ),
    )
}

fn populate_dev(p: &Prepared, dir: i32) -> StepResult {
    // Bind targets are named relative to /dev (cwd), so no path is built here; pivot()
    // later changes the cwd to the new root anyway.
    // SAFETY: fchdir on an O_PATH directory fd this function's caller owns.
    if unsafe { libc::fchdir(dir) } != 0 {
        return Err(ChildError::new(SetupStep::MakeDevNode, sys::errno()));
    }
    if !make_dev_nodes(dir)? {
        let nodev = DEV_FLAGS | libc::MS_NODEV as c_ulong;
        step(
            SetupStep::RemountDevNodev,
            sys::mount(
                NULL,
                p.dev_dir.as_ptr(),
                NULL,
                libc::MS_REMOUNT as c_ulong | nodev,
                DEV_OPTS.as_ptr(),
            ),
        )?;
        for (i, (name, _, host)) in DEVICES.iter().enumerate() {
            bind_dev_node(dir, name, host)
                .map_err(|e| ChildError::at(SetupStep::BindDevNode, e, i as u32))?;
        }
    }
    for (i, (target, name)) in DEV_LINKS.iter().enumerate() {
        sys::symlinkat(target.as_ptr(), dir, name.as_ptr())
            .map_err(|e| ChildError::at(SetupStep::MakeDevSymlink, e, i as u32))?;
    }
    step(
        SetupStep::MountDevShm,
        sys::mkdirat(dir, c"shm".as_ptr(), 0o1777),
    )
}

/// mknod of every device node (one syscall each, where a bind is three and a mount to
/// tear down); false, with none left behind, when the kernel refuses (no CAP_MKNOD).
fn make_dev_nodes(dir: i32) -> Result<bool, ChildError> {
    for (i, (name, (major, minor), _)) in DEVICES.iter().enumerate() {
        let dev = libc::makedev(*major, *minor);
        // SAFETY: mknodat with a NUL-terminated name relative to a directory fd we own.
        if unsafe { libc::mknodat(dir, name.as_ptr(), libc::S_IFCHR | 0o666, dev) } == 0 {
            continue;
        }
        match sys::errno() {
            libc::EPERM | libc::EACCES => {
                for (made, _, _) in &DEVICES[..i] {
                    // SAFETY: unlinkat of a name this function just created in `dir`.
                    unsafe { libc::unlinkat(dir, made.as_ptr(), 0) };
                }
                return Ok(false);
            }
            e => return Err(ChildError::at(SetupStep::MakeDevNode, e, i as u32)),
        }
    }
    Ok(true)
}

/// An empty file `name` in the /dev tmpfs with the host's node `host` bound over it.
fn bind_dev_node(dir: i32, name: &CStr, host: &CStr) -> SysResult {
    let fd = sys::openat(
        dir,
        name.as_ptr(),
        libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY,
        0o666,
    )?;
    sys::close(fd);
    sys::mount(
        host.as_ptr(),
        name.as_ptr(),
        NULL,
        libc::MS_BIND as c_ulong,
        NULL,
    )
}

fn mount_tmp(p: &Prepared, dir: &CStr) -> StepResult {
    let flags = (libc::MS_NOSUID | libc::MS_NODEV) as c_ulong;
    step(
        SetupStep::MountTmp,
        sys::mount(
            TMPFS.as_ptr(),
            dir.as_ptr(),
            TMPFS.as_ptr(),
            flags,
            p.tmp_opts.as_ptr(),
        ),
    )
}

fn mount_box(p: &Prepared, dir: &CStr) -> StepResult {
    let flags = (libc::MS_NOSUID | libc::MS_NODEV) as c_ulong;
    match &p.box_bind {
        None => step(
            SetupStep::MountBox,
            sys::mount(
                TMPFS.as_ptr(),
                dir.as_ptr(),
                TMPFS.as_ptr(),
                flags,
                p.box_opts.as_ptr(),
            ),
        ),
        Some(host) => {
            step(
                SetupStep::BindBoxDir,
                sys::mount(
                    host.as_ptr(),
                    dir.as_ptr(),
                    NULL,
                    libc::MS_BIND as c_ulong,
                    NULL,
                ),
            )?;
            let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID | libc::MS_NODEV;
            step(
                SetupStep::RemountBoxDir,
                sys::mount(NULL, dir.as_ptr(), NULL, flags as c_ulong, NULL),
            )
        }
    }
}

/// pivot_root(".", ".") stacks the old root under the new one; detaching it leaves no path
/// (not `..`, not /proc/*/root) that leads back to the host tree. No put_old directory is
/// needed, so the read-only rootfs is never written.
pub fn pivot(p: &Prepared) -> StepResult {
    step(SetupStep::ChdirNewRoot, sys::chdir(p.root.as_ptr()))?;
    step(
        SetupStep::PivotRoot,
        sys::pivot_root(c".".as_ptr(), c".".as_ptr()),
    )?;
    step(SetupStep::DetachOldRoot, sys::umount_detach(c".".as_ptr()))?;
    step(SetupStep::ChdirSlash, sys::chdir(c"/".as_ptr()))
}
