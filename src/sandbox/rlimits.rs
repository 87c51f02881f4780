//! Applies the program's resource limits (core, nofile, fsize, stack, the RLIMIT_CPU
//! backstop, and RLIMIT_AS/NPROC when no cgroup enforces memory or tasks).

use super::protocol::{ChildError, SetupStep};
use super::sys;

/// Sets every (resource, value) pair; a failure names the index of the one that failed.
pub fn apply(limits: &[(sys::RlimitResource, u64)]) -> Result<(), ChildError> {
    for (i, (resource, value)) in limits.iter().enumerate() {
        sys::set_rlimit(*resource, *value)
            .map_err(|e| ChildError::at(SetupStep::SetRlimit, e, i as u32))?;
    }
    Ok(())
}
