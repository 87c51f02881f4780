//! The fixed-size messages init sends the supervisor over a pipe (each one write, smaller
//! than PIPE_BUF, so atomic), and the setup steps they can name when something fails.

/// One step of sandbox setup; a failure report names the step and the errno.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    None = 0,
    JoinCgroup,
    UnshareCgroup,
    MakeMountsPrivate,
    BindRootfs,
    RemountRootfsReadonly,
    MountProc,
    MaskProcPath,
    ReadonlyProcPath,
    MountDev,
    MakeDevNode,
    MakeDevSymlink,
    MountDevShm,
    MountTmp,
    MountBox,
    BindBoxDir,
    RemountBoxDir,
    MountRoot,
    MountRule,
    CopyIn,
    SetHostname,
    JoinNetns,
    LoopbackUp,
    ChdirNewRoot,
    PivotRoot,
    DetachOldRoot,
    ChdirSlash,
    ForkProgram,
    ExecErrorPipe,
    // Program-side steps (after fork, before execve).
    Setsid,
    SetStdio,
    SetRlimit,
    DropBoundingCaps,
    ClearAmbientCaps,
    SetGroups,
    SetGid,
    SetUid,
    ClearCaps,
    NoNewPrivs,
    Chdir,
    Seccomp,
    Execve,
}

impl Step {
    pub fn from_u32(v: u32) -> Step {
        if v <= Step::Execve as u32 {
            // SAFETY: Step is repr(u32) with contiguous discriminants 0..=Execve (no explicit
            // values after `None = 0`), so every v in that range names a variant.
            unsafe { std::mem::transmute::<u32, Step>(v) }
        } else {
            Step::None
        }
    }

    /// Lowercase description used in error messages.
    pub fn describe(self) -> &'static str {
        use Step::*;
        match self {
            None => "unknown step",
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
            MountRoot => "mount the tmpfs root of the mount plan",
            MountRule => "apply a mount plan rule",
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
    }
}

pub const KIND_STARTED: u32 = 1;
pub const KIND_FINISHED: u32 = 2;
pub const KIND_SETUP_FAILED: u32 = 3;
pub const KIND_EXEC_FAILED: u32 = 4;
pub const KIND_COPY_OUT: u32 = 5;

/// A message from init (or, for exec failures, from the program child via init).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    pub kind: u32,
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
    /// Bytes copied (copy-out), or 1 when the copy was truncated in `wait_status`.
    pub bytes: u64,
}

pub const REPORT_SIZE: usize = std::mem::size_of::<Report>();

impl Report {
    pub fn to_bytes(&self) -> [u8; REPORT_SIZE] {
        // SAFETY: Report is repr(C) plain data with explicit padding fields.
        unsafe { std::mem::transmute_copy(self) }
    }

    pub fn from_bytes(b: &[u8; REPORT_SIZE]) -> Report {
        // SAFETY: any bit pattern is a valid Report (all fields are integers).
        unsafe { std::mem::transmute_copy(b) }
    }

    pub fn failure(kind: u32, step: Step, errno: i32, index: u32) -> Report {
        Report {
            kind,
            step: step as u32,
            errno,
            index,
            ..Report::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_through_u32() {
        assert_eq!(Step::from_u32(Step::Execve as u32), Step::Execve);
        assert_eq!(Step::from_u32(Step::PivotRoot as u32), Step::PivotRoot);
        assert_eq!(Step::from_u32(Step::Execve as u32 + 1), Step::None);
        assert_eq!(Step::from_u32(u32::MAX), Step::None);
    }
}
