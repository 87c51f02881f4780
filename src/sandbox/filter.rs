//! The seccomp side of `ExecFilter`: a compiled profile plus, for profiles that kill,
//! the kernel-audit watch that names the syscall a killed program made. The watch is
//! opened before the run starts so the kill record cannot be missed.

use std::sync::Mutex;

use super::ExecFilter;
use crate::seccomp::violation::KmsgWatch;
use crate::seccomp::Filter;

/// One run's seccomp filter.
pub struct SeccompGate {
    filter: Filter,
    watch: Mutex<Option<KmsgWatch>>,
}

impl SeccompGate {
    /// Wraps a compiled filter; opens the audit watch only when the profile can kill.
    pub fn new(filter: Filter) -> SeccompGate {
        let watch = if filter.kills() {
            KmsgWatch::open()
        } else {
            None
        };
        SeccompGate {
            filter,
            watch: Mutex::new(watch),
        }
    }
}

impl ExecFilter for SeccompGate {
    fn install(&self) -> Result<(), i32> {
        self.filter.install()
    }

    fn kills(&self) -> bool {
        self.filter.kills()
    }

    fn explain_kill(&self, pid: i32) -> Option<String> {
        self.watch.lock().ok()?.as_mut()?.find(pid)
    }
}
