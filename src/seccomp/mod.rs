//! Seccomp profiles in the OCI runtime-spec / Docker JSON format, compiled once per
//! process into one BPF program and installed as the very last step before execve.
//!
//! - `Filter::load("default" | "strict" | "none" | PATH)`: the shipped profiles are
//!   embedded (`seccomp/default.json`, `seccomp/strict.json`), so the binary is
//!   self-contained; compiled programs are cached, so later loads are free.
//! - `Filter::install()` is async-signal-safe: one seccomp(2) call, no allocation.
//! - `violation::KmsgWatch` names the syscall that got a program killed, from the
//!   kernel's audit records (see `violation` and `README.md` in this directory).
//!
//! Pipeline: `profile` (serde structs, unknown fields rejected) -> `resolve`
//! (includes/excludes, names -> numbers, 32-bit arguments) -> `codegen` (one program:
//! arch check, binary search on the number, argument blocks) -> `sim` (a BPF interpreter
//! used to refuse profiles that would block execve).

mod action;
mod arch;
mod argwidth;
mod error;
mod profile;
mod resolve;

pub use error::SeccompError;
