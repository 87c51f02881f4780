//! The supervisor/init handshake: every byte that crosses between the host-side supervisor
//! and the sandbox's init, and the setup steps a failure can name. Both sides import it
//! from here, so the whole exchange reads in one place.
//!
//! Channels (made by the supervisor before clone):
//! 1. **sync** (supervisor -> init), a SOCK_SEQPACKET socket. A one-shot init builds the
//!    sandbox at once (the supervisor makes the run's cgroup meanwhile), then blocks on
//!    the socket for one [`RunRequest`]: the program's stdin, stdout and stderr and where
//!    it goes in the cgroup (a v2 directory for `CLONE_INTO_CGROUP`, or v1 `tasks` files
//!    the program writes "0" to), as SCM_RIGHTS. EOF instead means the supervisor died,
//!    and init exits. With a seccomp profile that kills, the supervisor keeps the socket
//!    open and later writes the *ack* byte [`PID_NOTED`] once it has noted the program's
//!    host pid (so the kernel's record of a kill can be matched); init does not reap the
//!    program before that.
//! 2. **report** (init -> supervisor, a pipe): fixed-size [`Message`]s, one `write` each
//!    (smaller than PIPE_BUF, so atomic): [`Kind::Started`] once the program runs,
//!    [`Kind::CopyOut`] per copied-out file, then [`Kind::Finished`] with the exact
//!    rusage; or a single [`Kind::SetupFailed`] / [`Kind::ExecFailed`] naming the
//!    [`SetupStep`] and errno. EOF means init is gone.
//! 3. **exec error** (program child -> init, CLOEXEC): empty at a successful execve; one
//!    [`Kind::ExecFailed`] message otherwise, which init forwards.
//!
//! A **warm** sandbox (one init serving many runs of one program) waits for the *go* byte
//! [`GO`] before it builds, then sends [`Kind::Ready`] (or [`Kind::SetupFailed`]). Each
//! run is then one [`RunRequest`], answered on the report pipe exactly as a one-shot run
//! (Started, then Finished, or a failure); init waits for the next request. Closing the
//! socket ends init.

/// The go byte: a warm init may build the sandbox.
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
    MountDev => "mount /dev tmpfs",
    MakeDevNode => "make a /dev device node",
    RemountDevNodev => "remount /dev nodev (device nodes bound instead)",
    BindDevNode => "bind a host /dev node",
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
    // A warm sandbox, between runs.
    DetachScratch => "detach the previous run's /dev/shm, /tmp or /box",
    ReceiveRun => "receive the next run",
    ForkProgram => "fork the program",
    ExecErrorPipe => "create exec error pipe",
    // The program's own process, after fork, before execve.
    JoinRunCgroup => "join the run's cgroup",
    UnshareRunNamespaces => "unshare the run's cgroup (and ipc) namespaces",
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
    InheritFd => "keep an inherited descriptor open",
    MountRuleAsCaller => "switch to the caller's identity for a mount rule",
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
    Ready = 6,
}

impl Kind {
    pub fn from_u32(v: u32) -> Option<Kind> {
        match v {
            1 => Some(Kind::Started),
            2 => Some(Kind::Finished),
            3 => Some(Kind::SetupFailed),
            4 => Some(Kind::ExecFailed),
            5 => Some(Kind::CopyOut),
            6 => Some(Kind::Ready),
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

/// More cgroup fds than a run needs (v1: memory, pids, cpu, cpuacct, freezer).
pub const MAX_CGROUP_FDS: usize = 8;

/// The fixed part of a run request; the fds travel beside it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RunHeader {
    /// 1: the last fd is a v2 cgroup directory for CLONE_INTO_CGROUP; 0: the fds after
    /// the three stdio ones are v1 `tasks` files the program writes "0" to.
    clone_into: u32,
    /// How many cgroup fds follow stdin, stdout and stderr.
    cgroup_fds: u32,
}

/// One run, as init received it (the fds are init's own copies).
pub struct RunRequest {
    pub stdin: i32,
    pub stdout: i32,
    pub stderr: i32,
    pub clone_into: Option<i32>,
    pub cgroup_join: [i32; MAX_CGROUP_FDS],
}

impl RunRequest {
    /// Closes what init still holds after the program started (stdout and stderr are
    /// closed right after the fork).
    pub fn close(&self) {
        let cgroup = self.cgroup_join.iter().chain(self.clone_into.iter());
        for &fd in std::iter::once(&self.stdin).chain(cgroup) {
            if fd >= 0 {
                super::sys::close(fd);
            }
        }
    }
}

const MAX_RUN_FDS: usize = 3 + MAX_CGROUP_FDS;
/// Room for one SCM_RIGHTS header and MAX_RUN_FDS fds (CMSG_SPACE of 44 bytes is 64).
const CONTROL_WORDS: usize = 16;

/// Supervisor side: sends one run's fds. `clone_into`: a v2 cgroup directory fd, or else
/// `join` holds v1 `tasks` fds.
pub fn send_run(
    socket: i32,
    stdio: [i32; 3],
    clone_into: Option<i32>,
    join: &[i32],
) -> std::io::Result<()> {
    let mut fds: Vec<i32> = stdio.to_vec();
    match clone_into {
        Some(fd) => fds.push(fd),
        None => fds.extend(join.iter().take(MAX_CGROUP_FDS)),
    }
    let header = RunHeader {
        clone_into: clone_into.is_some() as u32,
        cgroup_fds: (fds.len() - 3) as u32,
    };
    let mut control = [0u64; CONTROL_WORDS];
    let data_len = std::mem::size_of_val(fds.as_slice());
    let mut iov = libc::iovec {
        iov_base: &header as *const RunHeader as *mut libc::c_void,
        iov_len: std::mem::size_of::<RunHeader>(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(data_len as u32) } as _;
    // SAFETY: msg_control points at `control`, large enough for one header with
    // MAX_RUN_FDS fds (checked above by taking at most MAX_CGROUP_FDS cgroup fds), so the
    // first header and its data lie inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(data_len as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg) as *mut i32, fds.len());
    }
    // SAFETY: msg describes valid buffers for the duration of the call.
    if unsafe { libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// init side, allocation-free: waits for the next run. `Ok(None)`: the supervisor closed
/// the socket (no more runs).
pub fn receive_run(socket: i32) -> Result<Option<RunRequest>, ChildError> {
    let mut header = RunHeader::default();
    let mut control = [0u64; CONTROL_WORDS];
    let mut iov = libc::iovec {
        iov_base: &mut header as *mut RunHeader as *mut libc::c_void,
        iov_len: std::mem::size_of::<RunHeader>(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = loop {
        // SAFETY: msg describes valid buffers; MSG_CMSG_CLOEXEC keeps the fds from leaking
        // into the program (it gets them through dup2 only).
        let n = unsafe { libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        match super::sys::errno() {
            libc::EINTR => continue,
            e => return Err(ChildError::new(SetupStep::ReceiveRun, e)),
        }
    };
    if n == 0 {
        return Ok(None);
    }
    let mut fds = [-1i32; MAX_RUN_FDS];
    let mut count = 0;
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of well-formed
    // control messages; CMSG_FIRSTHDR/CMSG_NXTHDR stay within them.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let got = (bytes / 4).min(MAX_RUN_FDS - count);
                let data = libc::CMSG_DATA(cmsg) as *const i32;
                for i in 0..got {
                    fds[count] = *data.add(i);
                    count += 1;
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let cgroup_fds = header.cgroup_fds as usize;
    if n != std::mem::size_of::<RunHeader>()
        || count != 3 + cgroup_fds
        || cgroup_fds > MAX_CGROUP_FDS
    {
        for &fd in &fds[..count] {
            super::sys::close(fd);
        }
        return Err(ChildError::new(SetupStep::ReceiveRun, libc::EPROTO));
    }
    let mut request = RunRequest {
        stdin: fds[0],
        stdout: fds[1],
        stderr: fds[2],
        clone_into: None,
        cgroup_join: [-1; MAX_CGROUP_FDS],
    };
    if header.clone_into == 1 && cgroup_fds == 1 {
        request.clone_into = Some(fds[3]);
    } else {
        request.cgroup_join[..cgroup_fds].copy_from_slice(&fds[3..3 + cgroup_fds]);
    }
    Ok(Some(request))
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
            SetupStep::InheritFd,
            SetupStep::MountRuleAsCaller,
        ] {
            assert_eq!(SetupStep::from_u32(s as u32), Some(s));
        }
        // The last step (new steps go at the end, keeping the others' numbers).
        assert_eq!(
            SetupStep::from_u32(SetupStep::MountRuleAsCaller as u32 + 1),
            None
        );
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
