//! A cgroup handle that adds up the time spent in its calls, so `judgebox run --timings`
//! can say what cgroup work cost during a run (polling, accounting, kill) without the
//! sandbox or the cgroup layer knowing about timing.

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cgroup::{Cgroup, CgroupError, Stats};

pub struct TimedCgroup<'a> {
    inner: &'a dyn Cgroup,
    nanos: AtomicU64,
}

impl<'a> TimedCgroup<'a> {
    pub fn new(inner: &'a dyn Cgroup) -> TimedCgroup<'a> {
        TimedCgroup {
            inner,
            nanos: AtomicU64::new(0),
        }
    }

    /// Time spent in the wrapped handle's calls so far.
    pub fn spent(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(ns, Ordering::Relaxed);
        out
    }
}

impl Cgroup for TimedCgroup<'_> {
    fn clone_into_fd(&self) -> Option<RawFd> {
        self.timed(|| self.inner.clone_into_fd())
    }
    fn join_fds(&self) -> Vec<RawFd> {
        self.timed(|| self.inner.join_fds())
    }
    fn attach(&self, pid: i32) -> Result<(), CgroupError> {
        self.timed(|| self.inner.attach(pid))
    }
    fn cpu_usage_ns(&self) -> Option<u64> {
        self.timed(|| self.inner.cpu_usage_ns())
    }
    fn stats(&self) -> Stats {
        self.timed(|| self.inner.stats())
    }
    fn kill(&self) {
        self.timed(|| self.inner.kill())
    }
    /// A timing view is for one run (`judgebox run`): it never starts another.
    fn reset(&mut self) -> Result<bool, CgroupError> {
        Ok(false)
    }
    fn prepare_reset(&self) {
        self.timed(|| self.inner.prepare_reset())
    }
    fn remove(&self) -> Result<(), CgroupError> {
        self.timed(|| self.inner.remove())
    }
    fn dirs(&self) -> Vec<PathBuf> {
        self.inner.dirs()
    }
}
