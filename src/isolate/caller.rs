//! Who isolate acts for: the real uid and gid, or `--as-uid/--as-gid` when root invokes it
//! on behalf of another user; and doing a piece of work with an identity's file
//! permissions (in a short-lived thread whose credentials alone are dropped).

use super::options::Options;

/// isolate's `orig_uid`/`orig_gid` and whether root invoked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// The real uid is 0 (isolate's `invoked_by_root`).
    pub by_root: bool,
}

/// A bad `--as-uid/--as-gid` use; the messages are isolate's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallerError {
    #[error("You must be root to use --as-uid or --as-gid")]
    NotRoot,
    #[error("--as-uid and --as-gid must be used either both or none")]
    OnlyOne,
}

impl Caller {
    /// The caller of this process, as isolate's get_credentials decides it.
    pub fn of_process(o: &Options) -> Result<Caller, CallerError> {
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Caller::decide(uid, gid, o.as_uid, o.as_gid)
    }

    fn decide(
        uid: u32,
        gid: u32,
        as_uid: Option<u32>,
        as_gid: Option<u32>,
    ) -> Result<Caller, CallerError> {
        let by_root = uid == 0;
        match (as_uid, as_gid) {
            (None, None) => Ok(Caller { uid, gid, by_root }),
            _ if !by_root => Err(CallerError::NotRoot),
            (Some(uid), Some(gid)) => Ok(Caller { uid, gid, by_root }),
            _ => Err(CallerError::OnlyOne),
        }
    }

    /// The identity whose permissions the caller's paths are checked with; None when
    /// the caller is root (then judgebox's own checks apply).
    pub fn restricted(&self) -> Option<(u32, u32)> {
        (self.uid != 0).then_some((self.uid, self.gid))
    }
}

/// Runs `f` in a thread with uid/gid and no supplementary groups, returning its result
/// or the errno that kept the thread from taking the identity.
pub fn with_identity<T: Send>(
    (uid, gid): (u32, u32),
    f: impl FnOnce() -> Result<T, i32> + Send,
) -> Result<T, i32> {
    std::thread::scope(|s| {
        s.spawn(|| {
            become_user(uid, gid)?;
            f()
        })
        .join()
        .unwrap_or(Err(libc::EIO))
    })
}

/// Drops this thread's (only this thread's: raw syscalls, not glibc's process-wide
/// wrappers) credentials to uid/gid with no supplementary groups.
fn become_user(uid: u32, gid: u32) -> Result<(), i32> {
    // SAFETY: raw credential syscalls with plain integer arguments; they change only the
    // calling thread's credentials, and this thread ends right after its work.
    let rc = unsafe {
        if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
            || libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0
            || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
        {
            -1
        } else {
            0
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EPERM))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_uid_and_as_gid_follow_isolate() {
        let root = Caller::decide(0, 0, None, None).unwrap();
        assert_eq!(root.restricted(), None);
        let user = Caller::decide(0, 0, Some(1000), Some(1001)).unwrap();
        assert_eq!(user.restricted(), Some((1000, 1001)));
        assert!(user.by_root);
        assert_eq!(
            Caller::decide(0, 0, Some(1000), None),
            Err(CallerError::OnlyOne)
        );
        assert_eq!(
            Caller::decide(5, 5, Some(1000), Some(1000)),
            Err(CallerError::NotRoot)
        );
        let setuid = Caller::decide(5, 6, None, None).unwrap();
        assert_eq!((setuid.restricted(), setuid.by_root), (Some((5, 6)), false));
    }

    #[test]
    fn with_identity_drops_only_the_thread() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return; // changing credentials needs root
        }
        let got = with_identity((65534, 65534), || {
            // SAFETY: geteuid has no preconditions.
            Ok(unsafe { libc::geteuid() })
        });
        assert_eq!(got, Ok(65534));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::geteuid() }, 0);
    }
}
