//! Drops every capability set of the program before execve: bounding and ambient in init
//! (while CAP_SETPCAP is held; every program it forks inherits them empty), then
//! effective/permitted/inheritable in the program after the uid change.

use super::protocol::{ChildError, SetupStep};
use super::sys;

/// Empties the bounding set (needs CAP_SETPCAP, so call before setuid) and the ambient set.
pub fn drop_bounding_and_ambient(cap_last: u32) -> Result<(), ChildError> {
    for cap in 0..=cap_last {
        if let Err(e) = sys::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) {
            // EINVAL: the kernel knows fewer caps than cap_last_cap claimed; nothing to drop.
            if e != libc::EINVAL {
                return Err(ChildError::new(SetupStep::DropBoundingCaps, e));
            }
        }
    }
    // SAFETY: prctl with integer arguments.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    if r < 0 {
        let e = sys::errno();
        if e != libc::EINVAL {
            return Err(ChildError::new(SetupStep::ClearAmbientCaps, e));
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Sets effective, permitted and inheritable to empty.
pub fn clear_all() -> Result<(), ChildError> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and two data structs as capset(2) requires for version 3.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if r < 0 {
        Err(ChildError::new(SetupStep::ClearCaps, sys::errno()))
    } else {
        Ok(())
    }
}
