//! Files across the sandbox's edge: `--file`s copied into /box by init before the
//! program starts, `--copy-out` files copied from /box by init after every process is
//! gone (into host temp files), and the supervisor renaming those into place.

use super::prepare::{OutFile, Prepared};
use super::protocol::{step, ChildError, Kind, Message, SetupStep};
use super::rootfs::Place;
use super::sys;
use super::RunResult;
use std::os::fd::AsRawFd;

/// Copies each --file into /box (at its pre-pivot path, or `/box` in a warm sandbox), owned by the
/// program's uid. unlink + O_EXCL|O_NOFOLLOW: a name can never redirect the write.
pub fn copy_in(p: &Prepared, at: Place) -> Result<(), ChildError> {
    if p.files.is_empty() {
        return Ok(());
    }
    let box_dir = match at {
        Place::Rootfs => p.box_dir.as_c_str(),
        Place::NewRoot => c"/box",
    };
    let dir = step(
        SetupStep::CopyIn,
        sys::openat(
            libc::AT_FDCWD,
            box_dir.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY,
            0,
        ),
    )?;
    for (i, f) in p.files.iter().enumerate() {
        // A --box-dir may hold leftovers of an earlier run (a symlink, a hard link to some
        // other file): replace, never write through, whatever is there.
        // SAFETY: unlinkat on a NUL-terminated name relative to an open directory.
        unsafe { libc::unlinkat(dir, f.name.as_ptr(), 0) };
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let out = sys::openat(dir, f.name.as_ptr(), flags, f.mode)
            .map_err(|e| ChildError::at(SetupStep::CopyIn, e, i as u32))?;
        let result = copy_fd(f.fd.as_raw_fd(), out, u64::MAX).and_then(|_| {
            if f.root_owned {
                return Ok(());
            }
            // SAFETY: fchown on an fd we just created.
            if unsafe { libc::fchown(out, p.uid, p.gid) } < 0 {
                Err(sys::errno())
            } else {
                Ok(())
            }
        });
        sys::close(out);
        result.map_err(|e| ChildError::at(SetupStep::CopyIn, e, i as u32))?;
    }
    sys::close(dir);
    Ok(())
}

/// Copies `from` (from offset 0) to `to`, at most `limit` bytes; returns bytes copied.
fn copy_fd(from: i32, to: i32, limit: u64) -> Result<u64, i32> {
    let mut offset: libc::off_t = 0;
    let mut total = 0u64;
    loop {
        let chunk = (limit - total).min(1 << 30) as usize;
        if chunk == 0 {
            return Ok(total);
        }
        // SAFETY: sendfile between two valid fds with a valid offset pointer.
        let n = unsafe { libc::sendfile(to, from, &mut offset, chunk) };
        if n < 0 {
            match sys::errno() {
                libc::EINTR => continue,
                e => return Err(e),
            }
        }
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// After every process is gone: copies each requested /box file to its host temp file.
/// The name is resolved beneath /box without following any symlink; only regular files
/// up to the size cap are copied. Each result is passed to `send`.
pub fn copy_out(p: &Prepared, mut send: impl FnMut(&Message)) {
    if p.outs.is_empty() {
        return;
    }
    let dir = sys::openat(
        libc::AT_FDCWD,
        c"/box".as_ptr(),
        libc::O_DIRECTORY | libc::O_PATH,
        0,
    );
    for (i, o) in p.outs.iter().enumerate() {
        let result =
            dir.and_then(|d| copy_out_one(d, o.name.as_ptr(), o.fd.as_raw_fd(), p.copy_out_limit));
        let mut m = Message {
            index: i as u32,
            ..Message::new(Kind::CopyOut)
        };
        if let Err(e) = result {
            m.errno = e;
        }
        send(&m);
    }
    if let Ok(d) = dir {
        sys::close(d);
    }
}

fn copy_out_one(dir: i32, name: *const libc::c_char, to: i32, limit: u64) -> Result<u64, i32> {
    let flags = (libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK) as u64;
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let fd = sys::openat2(dir, name, flags, 0, resolve)?;
    // SAFETY: stat is plain data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-buffer.
    let result = if unsafe { libc::fstat(fd, &mut st) } < 0 {
        Err(sys::errno())
    } else if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        Err(libc::EINVAL)
    } else if st.st_nlink > 1 {
        // A hard link could name a file the program cannot read itself; we read as root.
        Err(libc::EMLINK)
    } else if st.st_size as u64 > limit {
        Err(libc::EFBIG)
    } else {
        copy_fd(fd, to, limit)
    };
    sys::close(fd);
    result
}

/// Host side, after the run: renames each successfully copied file into place; removes
/// the others' temp files and says why in the result's message.
pub fn finish_copy_out(outs: &[OutFile], limit: u64, reports: &[Message], r: &mut RunResult) {
    for (i, out) in outs.iter().enumerate() {
        let report = reports.iter().find(|c| c.index as usize == i);
        let problem = match report {
            Some(c) if c.errno == 0 => match std::fs::rename(&out.temp, &out.dest) {
                Ok(()) => None,
                Err(e) => Some(format!("cannot move into place: {e}")),
            },
            Some(c) => Some(copy_out_problem(c.errno, limit)),
            None => Some("not copied (the run did not finish normally)".to_string()),
        };
        if let Some(problem) = problem {
            let _ = std::fs::remove_file(&out.temp);
            let name = out.name.to_string_lossy();
            let note = format!("copy-out {name}: {problem}");
            r.message = if r.message.is_empty() {
                note
            } else {
                format!("{}; {note}", r.message)
            };
        }
    }
}

fn copy_out_problem(errno: i32, limit: u64) -> String {
    match errno {
        libc::EINVAL => "not a regular file".to_string(),
        libc::EFBIG => format!(
            "larger than the copy-out cap of {}",
            crate::units::human_bytes(limit)
        ),
        libc::EMLINK => "refused: the file has other hard links".to_string(),
        libc::ELOOP | libc::EXDEV => "refused: the path goes through a symlink".to_string(),
        e => sys::errno_text(e),
    }
}
