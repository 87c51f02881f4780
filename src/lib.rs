//! judgebox: a daemonless sandbox for online judges.
//!
//! The library holds every mechanism (sandbox, cgroups, seccomp, images, judging);
//! `src/main.rs` and `src/cli/` are a thin command-line edge over it.

pub mod boxdir;
pub mod cgroup;
pub mod display;
pub mod flock;
pub mod fsinfo;
pub mod image;
pub mod isolate;
pub mod judge;
pub mod lang;
pub mod safe_open;
pub mod sandbox;
pub mod scratch;
pub mod seccomp;
pub mod server;
pub mod units;
