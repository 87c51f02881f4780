//! Seccomp profiles in the OCI/Docker JSON format, compiled once with seccompiler into
//! stacked BPF programs and installed as the very last step before execve.
//!
//! INTERFACE CONTRACT (the sandbox relies on exactly this; see the helper brief):
//! - `Filter::load(spec: &str) -> Result<Option<Filter>, SeccompError>`: "default",
//!   "strict" (embedded), "none" (Ok(None)), or a path to a JSON profile.
//! - `Filter::install(&self) -> Result<(), i32>`: async-signal-safe (no allocation);
//!   called in the forked child after caps are dropped and no_new_privs is set.
//! - `Filter::kills(&self) -> bool`: whether any rule can kill the process.
//! - `violation::KmsgWatch::open()` before the run, `watch.find(host_pid)` after a
//!   SIGSYS death -> `Option<String>` naming the syscall.
