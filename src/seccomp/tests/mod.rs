//! Behaviour tests for the seccomp module. Filters are installed only in forked
//! children (`child`), never in the test process. Tests that need root, gcc or the
//! kernel's audit records say so and pass vacuously, printing why, when those are
//! missing.

mod child;
mod docker;
mod loader;
mod perf;
mod probe_program;
mod probes;
mod reference;
mod shipped;
