//! Differential: random seccomp profiles compiled by judgebox's own BPF generator and, rule
//! for rule, by seccompiler (stacked filters: the allow-list first, then one per other
//! action, as the kernel would combine them). Both programs are run on random (arch,
//! syscall number, arguments) inputs by a BPF interpreter written here, independent of
//! judgebox's own `sim`, and must give the same action every time. Inputs the reference
//! cannot express (a foreign arch, x32 numbers) are checked against the guard action.
#![no_main]
use judgebox::seccomp::fuzzing::{compile_profile, rank_of_ret, CmpOp, CompiledView, RuleView};
use libfuzzer_sys::fuzz_target;
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};
use std::collections::BTreeMap;

/// Syscalls the random profiles name: common ones, ones with 32-bit arguments (narrow
/// comparisons), and ones that exist on one architecture only.
const NAMES: &[&str] = &[
    "read", "write", "open", "openat", "close", "mmap", "mprotect", "munmap", "ioctl",
    "socket", "clone", "personality", "lseek", "pread64", "pwrite64", "madvise", "mremap",
    "getpid", "kill", "prctl", "fcntl", "execve", "futex", "clock_gettime", "unshare",
    "setns", "mount", "bpf", "keyctl", "chmod", "fchmodat", "ptrace", "wait4", "exit_group",
    "tgkill", "sendto", "bind", "connect", "clone3", "dup2", "getrandom", "prlimit64",
];
const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
];
const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// The fuzz input read as a stream of choices (zeros once it runs out).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[usize::from(self.u8()) % items.len()]
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |v, _| (v << 8) | u64::from(self.u8()))
    }
    /// Mostly values near the edges a comparison has (0, 32-bit and 64-bit limits).
    fn value(&mut self) -> u64 {
        match self.u8() % 8 {
            0 => 0,
            1 => u64::from(self.u8()),
            2 => 0xffff_ffff,
            3 => 1 << 32,
            4 => u64::MAX,
            5 => u64::from(u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])),
            6 => (u64::from(self.u8()) << 32) | u64::from(self.u8()),
            _ => self.u64(),
        }
    }
    fn empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn action_json(b: &mut Bytes) -> String {
    let name = b.pick(ACTIONS);
    let data = match name.contains("ERRNO") || name.contains("TRACE") {
        true if b.u8() % 2 == 0 => format!(r#","errnoRet":{}"#, b.u8()),
        _ => String::new(),
    };
    format!(r#""action":"{name}"{data}"#)
}

/// A random profile in the OCI/Docker JSON format.
fn profile_json(b: &mut Bytes) -> String {
    let default = b.pick(ACTIONS);
    let mut rules = Vec::new();
    for _ in 0..b.u8() % 12 {
        let names: Vec<String> = (0..1 + b.u8() % 3)
            .map(|_| format!("\"{}\"", b.pick(NAMES)))
            .collect();
        let args: Vec<String> = (0..b.u8() % 3)
            .map(|_| {
                format!(
                    r#"{{"index":{},"value":{},"valueTwo":{},"op":"{}"}}"#,
                    b.u8() % 6,
                    b.value(),
                    b.value(),
                    b.pick(OPS)
                )
            })
            .collect();
        rules.push(format!(
            r#"{{"names":[{}],{},"args":[{}]}}"#,
            names.join(","),
            action_json(b),
            args.join(",")
        ));
    }
    format!(
        r#"{{"defaultAction":"{default}","syscalls":[{}]}}"#,
        rules.join(",")
    )
}

/// seccompiler's action for a `SECCOMP_RET_*` value.
fn action_of(ret: u32) -> SeccompAction {
    let data = ret & 0xffff;
    match ret & 0xffff_0000 {
        0x7fff_0000 => SeccompAction::Allow,
        0x7ffc_0000 => SeccompAction::Log,
        0x0005_0000 => SeccompAction::Errno(data),
        0x7ff0_0000 => SeccompAction::Trace(data),
        0x0003_0000 => SeccompAction::Trap,
        0x0000_0000 => SeccompAction::KillThread,
        0x8000_0000 => SeccompAction::KillProcess,
        other => panic!("judgebox resolved an action to unknown ret {other:#x}"),
    }
}

/// seccompiler's conditions for one of ours. SCMP_CMP_MASKED_EQ is `(arg & mask) == value`
/// as libseccomp (and the kernel's view of a Docker profile) has it: a value with bits
/// outside the mask never matches. seccompiler masks the value first instead (so such a
/// rule would match whenever `arg & mask == value & mask`), so that case is written for it
/// as a pair of conditions that cannot both hold.
fn conditions(c: &judgebox::seccomp::fuzzing::CondView) -> Option<Vec<SeccompCondition>> {
    let len = || {
        if c.narrow {
            SeccompCmpArgLen::Dword
        } else {
            SeccompCmpArgLen::Qword
        }
    };
    let compared = if c.narrow { 0xffff_ffff } else { u64::MAX };
    if c.op == CmpOp::MaskedEq && c.value_two & !c.value & compared != 0 {
        return Some(vec![
            SeccompCondition::new(c.index, len(), SeccompCmpOp::Eq, 0).ok()?,
            SeccompCondition::new(c.index, len(), SeccompCmpOp::Ne, 0).ok()?,
        ]);
    }
    let (op, value) = match c.op {
        CmpOp::Eq => (SeccompCmpOp::Eq, c.value),
        CmpOp::Ne => (SeccompCmpOp::Ne, c.value),
        CmpOp::Lt => (SeccompCmpOp::Lt, c.value),
        CmpOp::Le => (SeccompCmpOp::Le, c.value),
        CmpOp::Ge => (SeccompCmpOp::Ge, c.value),
        CmpOp::Gt => (SeccompCmpOp::Gt, c.value),
        CmpOp::MaskedEq => (SeccompCmpOp::MaskedEq(c.value), c.value_two),
    };
    Some(vec![SeccompCondition::new(c.index, len(), op, value).ok()?])
}

/// One seccompiler filter: `matched` for the rules, `mismatch` for everything else.
fn reference_filter<'r>(
    rules: impl Iterator<Item = &'r RuleView>,
    mismatch: u32,
    matched: u32,
    aarch64: bool,
) -> Option<Vec<Insn>> {
    let mut map: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    for r in rules {
        let entry = map.entry(i64::from(r.nr)).or_insert_with(|| Some(Vec::new()));
        match (entry.as_mut(), r.conds.is_empty()) {
            (_, true) => *entry = None,
            (Some(list), false) => {
                let conds = r.conds.iter().map(conditions).collect::<Option<Vec<_>>>()?;
                list.push(SeccompRule::new(conds.concat()).ok()?)
            }
            (None, false) => {}
        }
    }
    let rules = map
        .into_iter()
        .map(|(nr, r)| (nr, r.unwrap_or_default()))
        .collect();
    let target = if aarch64 {
        TargetArch::aarch64
    } else {
        TargetArch::x86_64
    };
    let f = SeccompFilter::new(rules, action_of(mismatch), action_of(matched), target).ok()?;
    let prog: seccompiler::BpfProgram = f.try_into().ok()?;
    Some(
        prog.iter()
            .map(|i| Insn {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect(),
    )
}

/// The stacked reference filters in installation order (the allow-list first).
fn reference(v: &CompiledView, aarch64: bool) -> Option<Vec<Vec<Insn>>> {
    const ALLOW: u32 = 0x7fff_0000;
    let mut progs = Vec::new();
    if v.default_ret != ALLOW {
        progs.push(reference_filter(v.rules.iter(), v.default_ret, ALLOW, aarch64)?);
    }
    let mut actions: Vec<u32> = Vec::new();
    for r in &v.rules {
        if r.ret != ALLOW && !actions.contains(&r.ret) {
            actions.push(r.ret);
        }
    }
    for a in actions {
        let rules = v.rules.iter().filter(|r| r.ret == a);
        progs.push(reference_filter(rules, ALLOW, a, aarch64)?);
    }
    Some(progs)
}

#[derive(Clone, Copy)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `struct seccomp_data`: nr, arch, ip, args (little-endian words).
struct Data {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

impl Data {
    fn word(&self, off: u32) -> Option<u32> {
        Some(match off {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => 0,
            16..=63 if off % 4 == 0 => {
                let arg = self.args[(off as usize - 16) / 8];
                if off % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => return None,
        })
    }
}

/// A classic-BPF interpreter for what seccomp filters use, checking what the kernel's
/// verifier would: valid loads, jumps inside the program, no falling off its end.
fn interpret(prog: &[Insn], d: &Data) -> Result<u32, String> {
    if prog.is_empty() || prog.len() > 4096 {
        return Err(format!("program length {}", prog.len()));
    }
    let mut acc = 0u32;
    let mut pc = 0usize;
    for _ in 0..=prog.len() {
        let i = *prog.get(pc).ok_or(format!("pc {pc} past the end"))?;
        pc += 1;
        let jump = |off: usize| -> Result<usize, String> {
            let to = pc + off;
            if to >= prog.len() {
                return Err(format!("jump to {to} past the end"));
            }
            Ok(to)
        };
        match i.code {
            0x20 => acc = d.word(i.k).ok_or(format!("load offset {}", i.k))?, // LD|W|ABS
            0x54 => acc &= i.k,                                                // ALU|AND|K
            0x06 => return Ok(i.k),                                            // RET|K
            0x05 => pc = jump(i.k as usize)?,                                  // JMP|JA
            0x15 | 0x25 | 0x35 | 0x45 => {
                let taken = match i.code {
                    0x15 => acc == i.k,
                    0x25 => acc > i.k,
                    0x35 => acc >= i.k,
                    _ => acc & i.k != 0,
                };
                pc = jump(usize::from(if taken { i.jt } else { i.jf }))?;
            }
            c => return Err(format!("instruction {c:#x}")),
        }
    }
    Err("no return".into())
}

/// What the kernel returns for stacked filters: the highest-precedence answer, and among
/// equals the most recently installed filter's.
fn interpret_stack(progs: &[Vec<Insn>], d: &Data) -> Option<u32> {
    let mut best: Option<u32> = None;
    for p in progs.iter().rev() {
        let ret = interpret(p, d).ok()?;
        if best.is_none_or(|b| rank_of_ret(ret) < rank_of_ret(b)) {
            best = Some(ret);
        }
    }
    best
}

/// Arguments around each constant the rules for `nr` compare with.
fn samples(v: &CompiledView, nr: u32) -> Vec<[u64; 6]> {
    let high = 1u64 << 32;
    let mut out = vec![[0u64; 6], [u64::MAX; 6], [high; 6]];
    for c in v.rules.iter().filter(|r| r.nr == nr).flat_map(|r| &r.conds) {
        for x in [c.value, c.value_two, c.value | c.value_two, c.value & c.value_two] {
            for y in [x, x.wrapping_sub(1), x.wrapping_add(1), x ^ high, !x, x & 0xffff_ffff] {
                let mut one = [0u64; 6];
                one[usize::from(c.index)] = y;
                out.push(one);
                out.push([y; 6]);
            }
        }
    }
    out
}

/// Whether rules for `nr` have one action with different data (errno or trace values).
fn data_is_ambiguous(v: &CompiledView, nr: u32) -> bool {
    let rets: Vec<u32> = v.rules.iter().filter(|r| r.nr == nr).map(|r| r.ret).collect();
    rets.iter()
        .any(|a| rets.iter().any(|b| a & 0xffff_0000 == b & 0xffff_0000 && a != b))
}

fn check(v: &CompiledView, refs: &[Vec<Insn>], d: &Data) {
    let ours: Vec<Insn> = v
        .program
        .iter()
        .map(|i| Insn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let a = interpret(&ours, d).unwrap_or_else(|e| panic!("judgebox's program is invalid: {e}"));
    let legacy = v.legacy_floor.is_some_and(|f| d.nr >= f);
    let default_lets_through = matches!(v.default_ret & 0xffff_0000, 0x7fff_0000 | 0x7ffc_0000);
    if d.arch != v.audit_arch || (legacy && default_lets_through) {
        assert_eq!(
            a, v.guard_ret,
            "arch {:#x} nr {:#x}: not the guard action",
            d.arch, d.nr
        );
        return;
    }
    let Some(mut b) = interpret_stack(refs, d) else {
        return;
    };
    if data_is_ambiguous(v, d.nr) {
        // Rules of one action with different data (ERRNO(1) and ERRNO(2) for one call): the
        // profile leaves the tie open. We take the first such rule that matches; stacked
        // filters give the most recently installed one. Both must still agree on the action.
        b = (b & 0xffff_0000) | (a & 0xffff);
    }
    assert_eq!(
        a, b,
        "nr {} args {:x?}: judgebox {a:#x}, seccompiler {b:#x}\nrules {:?}",
        d.nr, d.args, v.rules
    );
}

fuzz_target!(|input: &[u8]| {
    let mut b = Bytes(input);
    let aarch64 = b.u8() % 2 == 1;
    let json = profile_json(&mut b);
    let Some(v) = compile_profile(&json, aarch64) else {
        return;
    };
    let Some(refs) = reference(&v, aarch64) else {
        return;
    };
    let audit = v.audit_arch;
    let mut nrs: Vec<u32> = v.rules.iter().map(|r| r.nr).collect();
    nrs.extend([0, 1, 59, 221, 435, 0x4000_0000, 0x4000_0001, u32::MAX]);
    for nr in nrs {
        for args in samples(&v, nr) {
            check(&v, &refs, &Data { nr, arch: audit, args });
        }
    }
    // Then random calls from what is left of the input.
    while !b.empty() {
        let arch = match b.u8() % 4 {
            0 => 0x4000_0003, // i386
            1 => b.u64() as u32,
            _ => audit,
        };
        let nr = match b.u8() % 3 {
            0 => *b.pick(&v.rules.iter().map(|r| r.nr).chain([0]).collect::<Vec<_>>()),
            1 => u32::from(b.u8()) | (u32::from(b.u8() % 4) << 8),
            _ => b.u64() as u32,
        };
        let args = [b.value(), b.value(), b.value(), b.value(), b.value(), b.value()];
        check(&v, &refs, &Data { nr, arch, args });
    }
});
