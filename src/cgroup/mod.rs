//! Thin cgroupfs layer: detects the host's cgroup mode (unified v2, hybrid, legacy v1, or
//! none usable), creates one cgroup per run with memory/pids/cpu limits, reads accounting
//! back, kills and removes it. It knows nothing of sandboxes: callers hand it pids.
//!
//! INTERFACE CONTRACT (the sandbox relies on exactly this; see the helper brief):
//! - `Manager::new(&ManagerOptions) -> Manager` (never fails: falls back to `Mode::None`
//!   and records why in `Manager::diagnostics()`).
//! - `Manager::enforcement(&Limits) -> Enforcement`
//! - `Manager::create_run(&Limits) -> Result<RunCgroup, CgroupError>`
//! - `RunCgroup::clone_into_fd() -> Option<RawFd>` (v2 only; for clone3 CLONE_INTO_CGROUP)
//! - `RunCgroup::attach(pid) -> Result<(), CgroupError>` (writes cgroup.procs everywhere)
//! - `RunCgroup::cpu_usage_ns() -> Option<u64>` (cheap; polled while the run is live)
//! - `RunCgroup::stats() -> Stats`, `RunCgroup::kill()`, `RunCgroup::remove()` (+ Drop)
