//! judgebox: a daemonless sandbox for online judges.
//!
//! The library holds every mechanism (sandbox, cgroups, seccomp, images, judging);
//! `src/main.rs` and `src/cli/` are a thin command-line edge over it.

pub mod cgroup;
pub mod flock;
pub mod image;
pub mod judge;
pub mod lang;
pub mod sandbox;
pub mod seccomp;
pub mod server;
pub mod units;
