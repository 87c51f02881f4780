//! Seccomp actions: parsing the `SCMP_ACT_*` names of the OCI/Docker format, their kernel
//! return values (`SECCOMP_RET_*`) and the kernel's precedence between them.

use std::fmt;

/// `SECCOMP_RET_*` values from `<linux/seccomp.h>`.
pub(crate) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(crate) const RET_KILL_THREAD: u32 = 0x0000_0000;
pub(crate) const RET_TRAP: u32 = 0x0003_0000;
pub(crate) const RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const RET_TRACE: u32 = 0x7ff0_0000;
pub(crate) const RET_LOG: u32 = 0x7ffc_0000;
pub(crate) const RET_ALLOW: u32 = 0x7fff_0000;
/// Mask of the action part of a return value (`SECCOMP_RET_ACTION_FULL`).
pub(crate) const RET_ACTION_FULL: u32 = 0xffff_0000;
/// Mask of the data part (errno or trace message).
pub(crate) const RET_DATA: u32 = 0x0000_ffff;
/// The kernel clamps errno values to MAX_ERRNO.
pub(crate) const MAX_ERRNO: u32 = 4095;

/// What the filter tells the kernel to do with a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Action {
    Allow,
    Log,
    /// Fail the call with this errno.
    Errno(u32),
    /// Notify a ptrace tracer with this message (ENOSYS when there is none).
    Trace(u32),
    /// Send a catchable SIGSYS.
    Trap,
    /// Kill the calling thread (what libseccomp's `SCMP_ACT_KILL` means).
    KillThread,
    /// Kill the whole process.
    KillProcess,
}

impl Action {
    /// Parses an `SCMP_ACT_*` name; `errno` is the rule's `errnoRet`, if any.
    pub(crate) fn parse(name: &str, errno: Option<u32>) -> Result<Action, ActionError> {
        let data = errno.unwrap_or(libc::EPERM as u32);
        let action = match name {
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_ERRNO" => Action::Errno(data),
            "SCMP_ACT_TRACE" => Action::Trace(data),
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_NOTIFY" => return Err(ActionError::Notify),
            _ => return Err(ActionError::Unknown),
        };
        if errno.is_some() && !action.takes_data() {
            return Err(ActionError::ErrnoNotAllowed);
        }
        if data > MAX_ERRNO {
            return Err(ActionError::ErrnoTooLarge(data));
        }
        Ok(action)
    }

    fn takes_data(self) -> bool {
        matches!(self, Action::Errno(_) | Action::Trace(_))
    }

    /// The `SECCOMP_RET_*` value a filter returns for this action.
    pub(crate) fn ret(self) -> u32 {
        match self {
            Action::Allow => RET_ALLOW,
            Action::Log => RET_LOG,
            Action::Errno(e) => RET_ERRNO | (e & RET_DATA),
            Action::Trace(m) => RET_TRACE | (m & RET_DATA),
            Action::Trap => RET_TRAP,
            Action::KillThread => RET_KILL_THREAD,
            Action::KillProcess => RET_KILL_PROCESS,
        }
    }

    /// Kernel precedence: when several rules (or stacked filters) match, the action with the
    /// smallest rank wins (the kernel compares `ret & SECCOMP_RET_ACTION_FULL` as s32).
    pub(crate) fn rank(self) -> i32 {
        rank_of_ret(self.ret())
    }

    /// Whether the call goes ahead (possibly logged).
    pub(crate) fn lets_through(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }

    /// Whether the action ends the process (the run is a security violation).
    pub(crate) fn kills(self) -> bool {
        matches!(self, Action::KillThread | Action::KillProcess)
    }
}

/// Why an action name (with its errnoRet) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionError {
    /// Not an `SCMP_ACT_*` name.
    Unknown,
    /// `SCMP_ACT_NOTIFY`: needs a seccomp agent, which judgebox does not have.
    Notify,
    /// `errnoRet` given for an action that returns no errno.
    ErrnoNotAllowed,
    /// `errnoRet` above MAX_ERRNO.
    ErrnoTooLarge(u32),
}

impl ActionError {
    /// Whether the fault lies in `errnoRet` rather than in the action name.
    pub(crate) fn is_errno_fault(self) -> bool {
        matches!(
            self,
            ActionError::ErrnoNotAllowed | ActionError::ErrnoTooLarge(_)
        )
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionError::Unknown => f.write_str("unknown action"),
            ActionError::Notify => f.write_str(
                "SCMP_ACT_NOTIFY needs a seccomp agent listening on listenerPath, which judgebox does not support",
            ),
            ActionError::ErrnoNotAllowed => {
                f.write_str("errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE")
            }
            ActionError::ErrnoTooLarge(e) => {
                write!(f, "errnoRet {e} is larger than the largest errno ({MAX_ERRNO})")
            }
        }
    }
}

/// Precedence rank of a raw return value (see [`Action::rank`]).
pub(crate) fn rank_of_ret(ret: u32) -> i32 {
    (ret & RET_ACTION_FULL) as i32
}

/// Human-readable form of a raw filter return value, e.g. `SCMP_ACT_ERRNO(1)`.
pub(crate) fn describe_ret(ret: u32) -> String {
    let data = ret & RET_DATA;
    match ret & RET_ACTION_FULL {
        RET_KILL_PROCESS => "SCMP_ACT_KILL_PROCESS".into(),
        RET_KILL_THREAD => "SCMP_ACT_KILL_THREAD".into(),
        RET_TRAP => "SCMP_ACT_TRAP".into(),
        RET_ERRNO => format!("SCMP_ACT_ERRNO({data})"),
        RET_TRACE => format!("SCMP_ACT_TRACE({data})"),
        RET_LOG => "SCMP_ACT_LOG".into(),
        RET_ALLOW => "SCMP_ACT_ALLOW".into(),
        other => format!("unknown action {other:#x}"),
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe_ret(self.ret()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_oci_action() {
        let p = |n: &str, e| Action::parse(n, e).unwrap();
        assert_eq!(p("SCMP_ACT_ALLOW", None), Action::Allow);
        assert_eq!(p("SCMP_ACT_ERRNO", None), Action::Errno(1));
        assert_eq!(p("SCMP_ACT_ERRNO", Some(38)), Action::Errno(38));
        assert_eq!(p("SCMP_ACT_TRACE", Some(7)), Action::Trace(7));
        assert_eq!(p("SCMP_ACT_KILL", None), Action::KillThread);
        assert_eq!(p("SCMP_ACT_KILL_THREAD", None), Action::KillThread);
        assert_eq!(p("SCMP_ACT_KILL_PROCESS", None), Action::KillProcess);
        assert_eq!(p("SCMP_ACT_TRAP", None), Action::Trap);
        assert_eq!(p("SCMP_ACT_LOG", None), Action::Log);
    }

    #[test]
    fn rejects_unknown_and_unsupported_actions() {
        use ActionError::*;
        assert_eq!(Action::parse("SCMP_ACT_MAYBE", None), Err(Unknown));
        assert_eq!(Action::parse("scmp_act_allow", None), Err(Unknown));
        assert_eq!(Action::parse("SCMP_ACT_NOTIFY", None), Err(Notify));
        assert_eq!(
            Action::parse("SCMP_ACT_ALLOW", Some(1)),
            Err(ErrnoNotAllowed)
        );
        assert_eq!(
            Action::parse("SCMP_ACT_ERRNO", Some(70000)),
            Err(ErrnoTooLarge(70000))
        );
    }

    #[test]
    fn precedence_matches_the_kernel() {
        let order = [
            Action::KillProcess,
            Action::KillThread,
            Action::Trap,
            Action::Errno(1),
            Action::Trace(0),
            Action::Log,
            Action::Allow,
        ];
        for pair in order.windows(2) {
            assert!(
                pair[0].rank() < pair[1].rank(),
                "{} before {}",
                pair[0],
                pair[1]
            );
        }
    }
}
