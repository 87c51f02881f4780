//! The seccomp pipeline's internals as plain data, for the differential fuzz target
//! (tests/fuzz/fuzz_targets/seccomp_diff.rs) that checks our BPF generator against
//! seccompiler. Only built with the `fuzzing` feature: judgebox itself never needs it.

use super::arch::Arch;
use super::resolve::Env;
use super::{codegen, profile, resolve};

/// `SCMP_CMP_*`, as the resolved rules use them.
pub use super::resolve::Op as CmpOp;

/// One argument comparison; `narrow` compares the low 32 bits only.
#[derive(Debug, Clone, Copy)]
pub struct CondView {
    pub index: u8,
    pub narrow: bool,
    pub op: CmpOp,
    pub value: u64,
    pub value_two: u64,
}

/// One resolved rule: the syscall number, the `SECCOMP_RET_*` value, the conditions.
#[derive(Debug, Clone)]
pub struct RuleView {
    pub nr: u32,
    pub ret: u32,
    pub conds: Vec<CondView>,
}

/// A profile compiled by judgebox, with the resolved rules it was compiled from.
#[derive(Debug, Clone)]
pub struct CompiledView {
    pub program: Vec<libc::sock_filter>,
    pub default_ret: u32,
    /// What anything but a native call of a known number gets.
    pub guard_ret: u32,
    pub audit_arch: u32,
    /// The first number of the legacy ABI (x32) the filter denies, if the arch has one.
    pub legacy_floor: Option<u32>,
    pub rules: Vec<RuleView>,
}

/// Parses, resolves and compiles `json` for x86_64 or aarch64; None when the profile is
/// refused (the refusal itself is covered by the seccomp_profile target).
pub fn compile_profile(json: &str, aarch64: bool) -> Option<CompiledView> {
    let arch = if aarch64 { Arch::Aarch64 } else { Arch::X86_64 };
    let env = Env {
        arch,
        ..Env::running().ok()?
    };
    let raw = profile::parse(json, "fuzz").ok()?;
    let p = resolve::resolve(&raw, "fuzz", &env).ok()?;
    let rules = p
        .rules
        .iter()
        .map(|r| RuleView {
            nr: r.nr,
            ret: r.action.ret(),
            conds: r
                .conds
                .iter()
                .map(|c| CondView {
                    index: c.index,
                    narrow: c.narrow,
                    op: c.op,
                    value: c.value,
                    value_two: c.value_two,
                })
                .collect(),
        })
        .collect();
    Some(CompiledView {
        program: codegen::compile(&p, arch),
        default_ret: p.default.ret(),
        guard_ret: codegen::guard_action(&p).ret(),
        audit_arch: arch.audit(),
        legacy_floor: arch.legacy_abi_floor(),
        rules,
    })
}

/// The kernel's precedence of a `SECCOMP_RET_*` value (smaller wins).
pub fn rank_of_ret(ret: u32) -> i32 {
    super::action::rank_of_ret(ret)
}
