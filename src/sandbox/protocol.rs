//! The supervisor/init handshake: every byte that crosses between the host-side supervisor
//! and the sandbox's init, and the setup steps a failure can name. Both sides import it
//! from here, so the whole exchange reads in one place.
//!
//! Channels (pipes made by the supervisor before clone):
//! 1. **sync** (supervisor -> init). init blocks reading it until the run is in its
//!    cgroup; the supervisor then writes the *go* byte [`GO`]. EOF instead means the
//!    supervisor died, and init exits. With a seccomp profile that kills, the supervisor
//!    keeps the pipe open and later writes the *ack* byte [`PID_NOTED`] once it has noted
//!    the program's host pid (so the kernel's record of a kill can be matched); init does
//!    not reap the program before that.
//! 2. **report** (init -> supervisor): fixed-size [`Message`]s, one `write` each (smaller
//!    than PIPE_BUF, so atomic): [`Kind::Started`] once the program runs,
//!    [`Kind::CopyOut`] per copied-out file, then [`Kind::Finished`] with the exact
//!    rusage; or a single [`Kind::SetupFailed`] / [`Kind::ExecFailed`] naming the
//!    [`SetupStep`] and errno. EOF means init is gone.
//! 3. **exec error** (program child -> init, CLOEXEC): empty at a successful execve; one
//!    [`Kind::ExecFailed`] message otherwise, which init forwards.

/// The go byte: the run is in its cgroup, init may build the sandbox.
pub const GO: &[u8] = b"g";
/// The ack byte: the supervisor noted the program's host pid; init may reap it.
pub const PID_NOTED: &[u8] = b"a";

/// Declares [`SetupStep`] with each step's description, and its decoding, in one list.
macro_rules! setup_steps {
    ($($(#[$doc:meta])* $step:ident => $text:literal,)*) => {
        /// One step of a run's setup, on either side of the clone; a failure names the
        /// step and the errno (and an index when the step works through a list).
        #[repr(u32)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum SetupStep {
            $($(#[$doc])* $step,)*
        }

        impl SetupStep {
            /// The step a [`Message::step`] names; `None` for a value no step has.
            pub fn from_u32(v: u32) -> Option<SetupStep> {
                match v {
                    $(x if x == SetupStep::$step as u32 => Some(SetupStep::$step),)*
                    _ => None,
                }
            }

            /// Lowercase description used in error messages.
            pub fn describe(self) -> &'static str {
                match self {
                    $(SetupStep::$step => $text,)*
                }
            }
        }
    };
}

setup_steps! {
    // Supervisor side, before and around the clone.
    StatHostRoot => "stat /",
    CreatePipe => "create pipe",
    CloneInit => "clone sandbox init (needs CAP_SYS_ADMIN)",
    AttachCgroup => "attach sandbox to its cgroup",
    ReleaseInit => "release sandbox init",
    // init, in the new namespaces.
    JoinCgroup => "join the run's cgroup",
    UnshareCgroup => "unshare cgroup namespace",
    MakeMountsPrivate => "make mounts private",
    BindRootfs => "bind-mount rootfs",
    RemountRootfsReadonly => "remount rootfs read-only",
    MountProc => "mount /proc",
    MaskProcPath => "mask a /proc path",
    ReadonlyProcPath => "make a /proc path read-only",
    MountDev => "mount /dev tmpfs",
    MakeDevNode => "create a /dev node",
    MakeDevSymlink => "create a /dev symlink",
    MountDevShm => "mount /dev/shm",
    MountTmp => "mount /tmp",
    MountBox => "mount /box",
    BindBoxDir => "bind --box-dir at /box",
    RemountBoxDir => "remount /box nosuid,nodev",
    CopyIn => "copy a --file into /box",
    SetHostname => "set hostname",
    JoinNetns => "join the network namespace",
    LoopbackUp => "bring lo up",
    ChdirNewRoot => "chdir into new root",
    PivotRoot => "pivot_root",
    DetachOldRoot => "detach old root",
    ChdirSlash => "chdir /",
    ForkProgram => "fork the program",
    ExecErrorPipe => "create exec error pipe",
    // The program's own process, after fork, before execve.
    Setsid => "setsid",
    SetStdio => "set up stdin/stdout/stderr",
    SetRlimit => "set rlimits",
    DropBoundingCaps => "drop bounding capabilities",
    ClearAmbientCaps => "clear ambient capabilities",
    SetGroups => "clear supplementary groups",
    SetGid => "set gid",
    SetUid => "set uid",
    ClearCaps => "clear capability sets",
    NoNewPrivs => "set no_new_privs",
    Chdir => "chdir into the work dir",
    Seccomp => "install seccomp filter",
    Execve => "execve",
}

/// A failure on the child side of the clone: which step, the errno, and the index of the
/// list item involved (a masked path, an rlimit, a --file), 0 otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildError {
    pub step: SetupStep,
    pub errno: i32,
    pub index: u32,
}

impl ChildError {
    pub fn new(step: SetupStep, errno: i32) -> ChildError {
        ChildError::at(step, errno, 0)
    }

    pub fn at(step: SetupStep, errno: i32, index: u32) -> ChildError {
        ChildError { step, errno, index }
    }
}

/// Tags a raw syscall result with the step it belongs to.
pub fn step<T>(step: SetupStep, r: Result<T, i32>) -> Result<T, ChildError> {
    r.map_err(|errno| ChildError::new(step, errno))
}

/// What a [`Message`] says.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Started = 1,
    Finished = 2,
    SetupFailed = 3,
    ExecFailed = 4,
    CopyOut = 5,
}

impl Kind {
    pub fn from_u32(v: u32) -> Option<Kind> {
        match v {
            1 => Some(Kind::Started),
            2 => Some(Kind::Finished),
            3 => Some(Kind::SetupFailed),
            4 => Some(Kind::ExecFailed),
            5 => Some(Kind::CopyOut),
            _ => None,
        }
    }
}

/// One message from init (or, for exec failures, from the program child via init).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Message {
    /// A [`Kind`].
    pub kind: u32,
    /// A [`SetupStep`] (failures).
    pub step: u32,
    pub errno: i32,
    pub wait_status: i32,
    /// Index of the file / path involved, when the step concerns a list.
    pub index: u32,
    pub _pad: u32,
    pub utime_us: u64,
    pub stime_us: u64,
    pub maxrss_kb: u64,
    pub nvcsw: u64,
    pub nivcsw: u64,
    pub start_ns: u64,
    pub end_ns: u64,
}

pub const MESSAGE_SIZE: usize = std::mem::size_of::<Message>();

impl Message {
    pub fn to_bytes(self) -> [u8; MESSAGE_SIZE] {
        // SAFETY: Message is repr(C) plain data with explicit padding fields.
        unsafe { std::mem::transmute_copy(&self) }
    }

    pub fn from_bytes(b: &[u8; MESSAGE_SIZE]) -> Message {
        // SAFETY: any bit pattern is a valid Message (all fields are integers).
        unsafe { std::mem::transmute_copy(b) }
    }

    pub fn new(kind: Kind) -> Message {
        Message {
            kind: kind as u32,
            ..Message::default()
        }
    }

    pub fn failure(kind: Kind, e: ChildError) -> Message {
        Message {
            step: e.step as u32,
            errno: e.errno,
            index: e.index,
            ..Message::new(kind)
        }
    }

    pub fn kind(&self) -> Option<Kind> {
        Kind::from_u32(self.kind)
    }

    /// The failure this message reports (`step` may name no known step: a garbled message).
    pub fn child_error(&self) -> Option<ChildError> {
        SetupStep::from_u32(self.step).map(|s| ChildError::at(s, self.errno, self.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_kinds_round_trip_through_u32() {
        for s in [
            SetupStep::StatHostRoot,
            SetupStep::PivotRoot,
            SetupStep::Execve,
        ] {
            assert_eq!(SetupStep::from_u32(s as u32), Some(s));
        }
        assert_eq!(SetupStep::from_u32(SetupStep::Execve as u32 + 1), None);
        assert_eq!(SetupStep::from_u32(u32::MAX), None);
        for k in [Kind::Started, Kind::Finished, Kind::CopyOut] {
            assert_eq!(Kind::from_u32(k as u32), Some(k));
        }
        assert_eq!(Kind::from_u32(0), None);
    }

    #[test]
    fn a_failure_survives_the_pipe() {
        let sent = Message::failure(Kind::ExecFailed, ChildError::at(SetupStep::SetRlimit, 1, 3));
        let got = Message::from_bytes(&sent.to_bytes());
        assert_eq!(got.kind(), Some(Kind::ExecFailed));
        assert_eq!(
            got.child_error(),
            Some(ChildError::at(SetupStep::SetRlimit, 1, 3))
        );
    }
}
