//! Run cgroup names and their owners: `run-<pid>-<starttime>-<seq>` encodes the judgebox
//! process that created a run, so the next judgebox start can tell a crashed owner's
//! leftovers (reap them) from a live run (leave it alone).

use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of every run cgroup name; other entries in a parent are never touched.
pub const RUN_PREFIX: &str = "run-";

/// Process-wide sequence, so several managers in one process never reuse a name.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// A process identity that survives pid reuse: pid plus start time (clock ticks after boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    pub start: u64,
}

impl Owner {
    /// This process, or `None` if /proc cannot tell its start time.
    pub fn current() -> Option<Owner> {
        let pid = std::process::id() as i32;
        let stat = super::fs::read_file(std::path::Path::new("/proc/self/stat")).ok()?;
        Some(Owner {
            pid,
            start: parse_starttime(&stat)?,
        })
    }

    /// A fresh, process-unique run name.
    pub fn next_run_name(&self) -> String {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        format!("{RUN_PREFIX}{}-{}-{seq}", self.pid, self.start)
    }

    /// True while the process this identity names is still running (same pid, same start).
    pub fn is_alive(&self) -> bool {
        match super::fs::read_file(std::path::Path::new(&format!("/proc/{}/stat", self.pid))) {
            Ok(stat) => parse_starttime(&stat) == Some(self.start),
            Err(_) => false,
        }
    }
}

/// Field 22 (starttime) of `/proc/<pid>/stat`; the comm field may hold spaces and ')'.
pub fn parse_starttime(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // after_comm starts at field 3 (state); starttime is field 22.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// Owner of a run cgroup name, `None` if `name` is not a run name.
pub fn parse_run_name(name: &str) -> Option<Owner> {
    let mut parts = name.strip_prefix(RUN_PREFIX)?.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u64>().ok()?;
    Some(Owner { pid, start })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starttime_with_odd_comm() {
        let stat = "7816 (a) b) c) R 7809 7809 6073 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 45771 3133440 390";
        assert_eq!(parse_starttime(stat), Some(45771));
        assert_eq!(parse_starttime("garbage"), None);
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        let me = Owner::current().unwrap();
        assert!(me.is_alive());
        let a = me.next_run_name();
        let b = me.next_run_name();
        assert_ne!(a, b);
        assert_eq!(parse_run_name(&a), Some(me));
        assert_eq!(parse_run_name("supervisor"), None);
        assert_eq!(parse_run_name("run-12-x-1"), None);
        assert_eq!(parse_run_name("run-12-34"), None);
    }

    #[test]
    fn dead_or_reused_owner() {
        let me = Owner::current().unwrap();
        let reused = Owner {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(!reused.is_alive());
        let gone = Owner {
            pid: i32::MAX,
            start: 1,
        };
        assert!(!gone.is_alive());
    }
}
