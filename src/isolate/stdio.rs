//! `-i/-o/-r`: paths as the program would see them, mapped through the mount plan to the
//! host and opened with the box user's credentials, never following a symlink and
//! refusing anything but regular files (and harmless character devices).

use crate::sandbox::{MountPlan, MountSource};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::caller::with_identity;
use crate::sandbox::sys::errno_text;
use libc::{RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS};
/// Devices of judgebox's /dev that `-i/-o/-r` may name.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

/// Why a redirection could not be opened; the text follows isolate's `open("…"): …`.
#[derive(Debug, thiserror::Error)]
#[error("open(\"{path}\"): {reason}")]
pub struct StdioError {
    pub path: String,
    pub reason: String,
}

fn fail(path: &str, reason: impl Into<String>) -> StdioError {
    StdioError {
        path: super::meta::escape(path),
        reason: reason.into(),
    }
}

/// Where a sandbox path lives on the host.
enum Place {
    /// `rel` beneath directory `dir` (opened following symlinks only when `trusted`).
    Dir {
        dir: PathBuf,
        trusted: bool,
        rel: String,
        rw: bool,
        dev: bool,
    },
    /// One of judgebox's /dev nodes.
    Device(String),
}

/// The components of `path` inside the sandbox (relative paths are relative to /box, as
/// isolate opens them before --chdir applies).
fn components(path: &str) -> Option<Vec<String>> {
    let full = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/box/{path}")
    };
    let mut out = Vec::new();
    for c in Path::new(&full).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(s) => out.push(s.to_str()?.to_string()),
            _ => return None,
        }
    }
    Some(out)
}

/// The last rule whose inside path is a prefix of `parts` (later rules cover earlier).
fn locate(plan: &MountPlan, path: &str) -> Result<Place, StdioError> {
    let parts = components(path).ok_or_else(|| fail(path, "Invalid path (no '..' allowed)"))?;
    let rule = plan
        .rules
        .iter()
        .rev()
        .filter(|r| {
            let inside: Vec<&str> = r.inside.split('/').collect();
            inside.len() < parts.len() && parts.iter().zip(&inside).all(|(a, b)| a == b)
        })
        .max_by_key(|r| r.inside.split('/').count())
        .ok_or_else(|| fail(path, "No such file or directory"))?;
    let rest = parts[rule.inside.split('/').count()..].join("/");
    let (dir, trusted) = match &rule.source {
        MountSource::Host(dir) => (dir.clone(), true),
        MountSource::Beneath { base, rel } => (base.join(rel), false),
        MountSource::Dev if DEVICES.contains(&rest.as_str()) => return Ok(Place::Device(rest)),
        _ => {
            return Err(fail(
                path,
                "judgebox creates that filesystem fresh inside the sandbox; name a file in /box or a bound directory",
            ))
        }
    };
    Ok(Place::Dir {
        dir,
        trusted,
        rel: rest,
        rw: rule.rw,
        dev: rule.dev,
    })
}

fn cstring(p: &Path) -> Result<CString, i32> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)
}

fn openat2(dir: i32, rel: &CString, flags: i32, resolve: u64) -> Result<OwnedFd, i32> {
    // openat2 refuses a mode without O_CREAT.
    let mode = if flags & libc::O_CREAT != 0 { 0o666 } else { 0 };
    let fd = crate::sandbox::sys::openat2(dir, rel.as_ptr(), flags as u64, mode, resolve)?;
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The directory a place's file is resolved beneath, opened by us (root, or the caller):
/// the box user needs no access to its ancestors, as in the sandbox.
fn open_base(place: &Place) -> Result<OwnedFd, i32> {
    let dir_flags = libc::O_PATH | libc::O_DIRECTORY;
    match place {
        Place::Device(_) => openat2(
            libc::AT_FDCWD,
            &cstring(Path::new("/dev"))?,
            dir_flags,
            RESOLVE_NO_SYMLINKS,
        ),
        Place::Dir { dir, trusted, .. } => {
            let flags = if *trusted {
                dir_flags
            } else {
                dir_flags | libc::O_NOFOLLOW
            };
            openat2(libc::AT_FDCWD, &cstring(dir)?, flags, 0)
        }
    }
}

/// Opens the place's file beneath `base` with the calling thread's credentials.
fn open_beneath(place: &Place, base: &OwnedFd, flags: i32) -> Result<(OwnedFd, bool), i32> {
    let strict = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    let (name, devices_ok) = match place {
        Place::Device(name) => (name.as_str(), true),
        Place::Dir { rel, dev, .. } => (rel.as_str(), *dev),
    };
    let name = CString::new(name).map_err(|_| libc::EINVAL)?;
    let fd = openat2(std::os::fd::AsRawFd::as_raw_fd(base), &name, flags, strict)?;
    Ok((fd, devices_ok))
}

/// Accepts regular files, and character devices where devices are allowed; clears
/// O_NONBLOCK (it only kept the open from blocking on a FIFO).
fn check_type(fd: OwnedFd, devices_ok: bool) -> Result<File, i32> {
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    if !(ft.is_file() || (devices_ok && ft.is_char_device())) {
        return Err(libc::EINVAL);
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // SAFETY: F_GETFL/F_SETFL on an fd we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
    }
    Ok(file)
}

/// Opens `path` (as the sandboxed program would name it) for reading or writing, as the
/// box user (`box_ids`), beneath the directory it maps to, which is opened as `caller`
/// when given (isolate binds that directory with the caller's permissions). Writing
/// creates or truncates a regular file.
pub fn open(
    plan: &MountPlan,
    path: &str,
    write: bool,
    box_ids: (u32, u32),
    caller: Option<(u32, u32)>,
) -> Result<File, StdioError> {
    let place = locate(plan, path)?;
    if let (true, Place::Dir { rw: false, .. }) = (write, &place) {
        return Err(fail(path, "Read-only file system"));
    }
    let flags = libc::O_NONBLOCK
        | libc::O_NOCTTY
        | if write {
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC
        } else {
            libc::O_RDONLY
        };
    let base = match (caller, &place) {
        (Some(ids), Place::Dir { .. }) => with_identity(ids, || open_base(&place)),
        _ => open_base(&place),
    };
    let base = base.map_err(|e| fail(path, errno_text(e)))?;
    let opened = with_identity(box_ids, || open_beneath(&place, &base, flags));
    let (fd, devices_ok) = opened.map_err(|e| fail(path, errno_text(e)))?;
    check_type(fd, devices_ok).map_err(|e| match e {
        libc::EINVAL => fail(path, "Not a regular file"),
        e => fail(path, errno_text(e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::MountRule;

    fn plan() -> MountPlan {
        let rule = |inside: &str, source, rw| MountRule {
            inside: inside.into(),
            source,
            rw,
            dev: false,
            noexec: false,
            recursive: true,
        };
        MountPlan {
            caller: None,
            rules: vec![
                rule(
                    "box",
                    MountSource::Beneath {
                        base: "/b/1".into(),
                        rel: "box".into(),
                    },
                    true,
                ),
                rule("dev", MountSource::Dev, false),
                rule("usr", MountSource::Host("/usr".into()), false),
                rule("tmp", MountSource::Tmp, true),
            ],
        }
    }

    #[test]
    fn paths_map_through_the_plan() {
        let p = plan();
        match locate(&p, "out.txt").unwrap() {
            Place::Dir {
                dir,
                trusted,
                rel,
                rw,
                ..
            } => {
                assert_eq!(
                    (dir, trusted, rel.as_str(), rw),
                    (PathBuf::from("/b/1/box"), false, "out.txt", true)
                );
            }
            _ => panic!("box file"),
        }
        assert!(matches!(locate(&p, "/dev/null").unwrap(), Place::Device(n) if n == "null"));
        assert!(locate(&p, "/dev/sda").is_err());
        assert!(locate(&p, "/tmp/x").is_err());
        assert!(locate(&p, "../etc/passwd").is_err());
        assert!(locate(&p, "/etc/passwd").is_err());
        assert!(locate(&p, "/box").is_err());
        assert!(matches!(
            locate(&p, "/usr/share/x").unwrap(),
            Place::Dir { trusted: true, .. }
        ));
    }
}
