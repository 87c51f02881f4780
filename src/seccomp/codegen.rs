//! Compiles a resolved profile into ONE classic-BPF program:
//!
//! ```text
//!   A = arch;  if A != NATIVE -> RET guard        (i386 via int 0x80, arm32, ...)
//!   A = nr;    binary search over number ranges -> RET action | argument block
//!   argument block: rules in precedence order, each a chain of comparisons -> RET action
//! ```
//!
//! Why not seccompiler's stacked filters (one filter per action, each a linear list)?
//! Installing a filter costs the kernel time proportional to its length (JIT) and to
//! the work of pre-computing its action cache (it emulates the filter for every syscall
//! number). Measured on the 6.18 test VM: ~35 us for any filter, plus ~0.25 us per
//! instruction, plus ~5 ns per instruction the emulation walks; three stacked linear
//! filters for our allow-list cost over 1 ms per run. One program with the allowed
//! numbers merged into ranges and a balanced search tree is a few hundred instructions
//! and visits ~10 of them per syscall. The kernel's cache still works: the tree reads
//! only `arch` and `nr`, so every unconditionally allowed syscall skips the filter at
//! run time. seccompiler remains the reference in the tests: the same rules compiled
//! into its stacked filters must give the same answers.
//!
//! The guard action (the default action, or EPERM when the default lets calls through)
//! also answers x32 calls (x86_64 numbers with bit 30 set) and any number above the
//! table, so legacy ABIs never reach a rule meant for native calls.

use std::collections::{BTreeMap, HashMap};

use libc::sock_filter;

use super::action::Action;
use super::arch::Arch;
use super::asm::{Asm, Label, BPF_JEQ, BPF_JGE, BPF_JGT};
use super::resolve::{Cond, Op, Profile, Rule};

/// `offsetof(struct seccomp_data, nr)`, `arch` and `args`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// What a range of syscall numbers leads to.
#[derive(Debug, Clone)]
enum Leaf<'p> {
    /// A fixed answer (a `SECCOMP_RET_*` value).
    Ret(u32),
    /// Rules with argument comparisons, highest precedence first; `fallback` applies
    /// when none matches.
    Block { rules: Vec<&'p Rule>, fallback: u32 },
}

/// `[lo, next interval's lo)` leads to `leaf`.
#[derive(Debug)]
struct Interval<'p> {
    lo: u32,
    leaf: Leaf<'p>,
}

/// The action for anything that is not a native call of a known number.
pub(crate) fn guard_action(p: &Profile) -> Action {
    if p.default.lets_through() {
        Action::Errno(libc::EPERM as u32)
    } else {
        p.default
    }
}

/// Whether some path of the filter kills the process.
pub(crate) fn kills(p: &Profile) -> bool {
    guard_action(p).kills() || p.default.kills() || p.rules.iter().any(|r| r.action.kills())
}

/// The program for `p` on `arch`.
pub(crate) fn compile(p: &Profile, arch: Arch) -> Vec<sock_filter> {
    let guard = guard_action(p).ret();
    let intervals = intervals(p, arch, guard);
    let mut g = Gen {
        asm: Asm::default(),
        rets: HashMap::new(),
        blocks: Vec::new(),
    };
    let (native, foreign) = (g.asm.label(), g.ret_label(guard));
    g.asm.load(OFF_ARCH);
    g.asm.jump(BPF_JEQ, arch.audit(), native, foreign);
    g.asm.bind(native);
    g.asm.load(OFF_NR);
    let targets: Vec<(u32, Label)> = intervals
        .iter()
        .map(|iv| (iv.lo, g.target(&iv.leaf)))
        .collect();
    g.tree(&targets);
    g.flush_blocks();
    g.flush_rets();
    g.asm.finish()
}

/// Splits the 32-bit number space into ranges with one leaf each, merging neighbours.
fn intervals<'p>(p: &'p Profile, arch: Arch, guard: u32) -> Vec<Interval<'p>> {
    let default = Leaf::Ret(p.default.ret());
    let floor = arch.legacy_abi_floor().unwrap_or(u32::MAX);
    let mut points = vec![Interval {
        lo: 0,
        leaf: default.clone(),
    }];
    for (nr, rules) in by_number(p) {
        // The tables hold native numbers only; never let one shadow the legacy ABI range.
        if nr < floor {
            points.push(Interval {
                lo: nr,
                leaf: leaf_for(rules, p.default.ret()),
            });
            points.push(Interval {
                lo: nr + 1,
                leaf: default.clone(),
            });
        }
    }
    if floor != u32::MAX {
        points.push(Interval {
            lo: floor,
            leaf: Leaf::Ret(guard),
        });
    }
    merge(points)
}

/// Keeps the last leaf of points sharing a start, then joins equal neighbours.
fn merge(points: Vec<Interval<'_>>) -> Vec<Interval<'_>> {
    let mut out: Vec<Interval<'_>> = Vec::with_capacity(points.len());
    for iv in points {
        if out.last().is_some_and(|last| last.lo == iv.lo) {
            out.pop();
        }
        if !out
            .last()
            .is_some_and(|last| last.leaf.same_answer(&iv.leaf))
        {
            out.push(iv);
        }
    }
    out
}

impl Leaf<'_> {
    /// Whether two leaves are the same fixed answer (blocks never merge).
    fn same_answer(&self, other: &Leaf<'_>) -> bool {
        matches!((self, other), (Leaf::Ret(a), Leaf::Ret(b)) if a == b)
    }
}

/// Rules grouped by syscall number, each group sorted by precedence (stable).
fn by_number(p: &Profile) -> BTreeMap<u32, Vec<&Rule>> {
    let mut map: BTreeMap<u32, Vec<&Rule>> = BTreeMap::new();
    for r in &p.rules {
        map.entry(r.nr).or_default().push(r);
    }
    for rules in map.values_mut() {
        rules.sort_by_key(|r| r.action.rank());
    }
    map
}

/// The leaf for one number: the first unconditional rule ends the evaluation (nothing
/// after it can match with higher precedence).
fn leaf_for(rules: Vec<&Rule>, default: u32) -> Leaf<'_> {
    let cut = rules.iter().position(|r| r.conds.is_empty());
    match cut {
        Some(0) => Leaf::Ret(rules[0].action.ret()),
        Some(i) => Leaf::Block {
            fallback: rules[i].action.ret(),
            rules: rules[..i].to_vec(),
        },
        None => Leaf::Block {
            rules,
            fallback: default,
        },
    }
}

/// Code generation state: shared `RET` instructions and argument blocks to place after
/// the search tree.
struct Gen<'p> {
    asm: Asm,
    rets: HashMap<u32, Label>,
    blocks: Vec<(Label, Vec<&'p Rule>, u32)>,
}

impl<'p> Gen<'p> {
    fn ret_label(&mut self, ret: u32) -> Label {
        if let Some(&l) = self.rets.get(&ret) {
            return l;
        }
        let l = self.asm.label();
        self.rets.insert(ret, l);
        l
    }

    fn target(&mut self, leaf: &Leaf<'p>) -> Label {
        match leaf {
            Leaf::Ret(ret) => self.ret_label(*ret),
            Leaf::Block { rules, fallback } => {
                let l = self.asm.label();
                self.blocks.push((l, rules.clone(), *fallback));
                l
            }
        }
    }

    /// Emits a balanced search over `(lo, target)` ranges; `A` holds the number.
    fn tree(&mut self, ranges: &[(u32, Label)]) {
        if let [(_, only)] = ranges {
            self.asm.ja(*only);
            return;
        }
        let root = self.asm.label();
        self.node(ranges, root);
    }

    fn node(&mut self, ranges: &[(u32, Label)], entry: Label) {
        self.asm.bind(entry);
        let (left, right) = ranges.split_at(ranges.len() / 2);
        let left_entry = self.subtree_label(left);
        let right_entry = self.subtree_label(right);
        self.asm.jump(BPF_JGE, right[0].0, right_entry, left_entry);
        if left.len() > 1 {
            self.node(left, left_entry);
        }
        if right.len() > 1 {
            self.node(right, right_entry);
        }
    }

    /// A single range is jumped to directly; a bigger one gets a node label.
    fn subtree_label(&mut self, ranges: &[(u32, Label)]) -> Label {
        match ranges {
            [(_, only)] => *only,
            _ => self.asm.label(),
        }
    }

    /// Emits the argument blocks. A rule's last comparison jumps straight to the shared
    /// `RET` of its action, the last rule's failure straight to the fallback's, and an
    /// argument word already in `A` on every path is not loaded again.
    fn flush_blocks(&mut self) {
        for (label, rules, fallback) in std::mem::take(&mut self.blocks) {
            self.asm.bind(label);
            let mut acc = Acc::Word(OFF_NR);
            let fallback = self.ret_label(fallback);
            for (i, rule) in rules.iter().enumerate() {
                let last = i + 1 == rules.len();
                let next = if last { fallback } else { self.asm.label() };
                let action = self.ret_label(rule.action.ret());
                acc = rule_code(&mut self.asm, &rule.conds, acc, action, next);
                if !last {
                    self.asm.bind(next);
                }
            }
        }
    }

    fn flush_rets(&mut self) {
        let mut rets: Vec<(u32, Label)> = self.rets.drain().collect();
        rets.sort_by_key(|&(ret, _)| ret);
        for (ret, label) in rets {
            self.asm.bind(label);
            self.asm.ret(ret);
        }
    }
}

/// What the accumulator is known to hold on every path reaching a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acc {
    /// The raw 32-bit word at this `seccomp_data` offset.
    Word(u32),
    Unknown,
}

/// Emits one rule: jumps to `ok` when every comparison holds, to `fail` otherwise.
/// `acc` is the accumulator on entry; returns it as known at `fail`.
fn rule_code(asm: &mut Asm, conds: &[Cond], mut acc: Acc, ok: Label, fail: Label) -> Acc {
    debug_assert!(
        !conds.is_empty(),
        "unconditional rules end a block before this"
    );
    let mut at_fail: Option<Acc> = None;
    for (i, c) in conds.iter().enumerate() {
        let holds = if i + 1 == conds.len() {
            ok
        } else {
            asm.label()
        };
        let (on_fail, after) = cond(asm, c, acc, holds, fail);
        at_fail = Some(match at_fail {
            Some(prev) if prev != on_fail => Acc::Unknown,
            _ => on_fail,
        });
        acc = after;
        if i + 1 != conds.len() {
            asm.bind(holds);
        }
    }
    at_fail.unwrap_or(Acc::Unknown)
}

/// Emits comparison `c`: jumps to `ok` when it holds, to `fail` otherwise. Returns the
/// accumulator as known at the jumps to `fail` and at `ok`.
fn cond(asm: &mut Asm, c: &Cond, acc: Acc, ok: Label, fail: Label) -> (Acc, Acc) {
    let lo_off = OFF_ARGS + 8 * u32::from(c.index);
    let hi_off = lo_off + 4;
    let (lo, hi) = (c.value as u32, (c.value >> 32) as u32);
    let after = if c.op == Op::MaskedEq {
        Acc::Unknown
    } else {
        Acc::Word(lo_off)
    };
    if c.narrow {
        if acc != Acc::Word(lo_off) {
            asm.load(lo_off);
        }
        compare_word(asm, c.op, lo, c.value_two as u32, ok, fail);
        return (after, after);
    }
    let low_word = asm.label();
    asm.load(hi_off);
    decide_high_word(asm, c, hi, low_word, ok, fail);
    asm.bind(low_word);
    asm.load(lo_off);
    compare_word(asm, c.op, lo, c.value_two as u32, ok, fail);
    // Only equality reaches `ok` solely from the low-word comparison.
    let after = if c.op == Op::Eq { after } else { Acc::Unknown };
    (Acc::Unknown, after)
}
/// On the high word of a 64-bit comparison: jump to `ok` or `fail` when it decides the
/// outcome, else to `low_word` (the high words are equal, or masked equal).
fn decide_high_word(asm: &mut Asm, c: &Cond, hi: u32, low_word: Label, ok: Label, fail: Label) {
    match c.op {
        Op::Eq => asm.jump(BPF_JEQ, hi, low_word, fail),
        Op::Ne => asm.jump(BPF_JEQ, hi, low_word, ok),
        Op::Gt | Op::Ge => ordered_high(asm, hi, (ok, fail), low_word),
        Op::Lt | Op::Le => ordered_high(asm, hi, (fail, ok), low_word),
        Op::MaskedEq => {
            asm.and(hi);
            asm.jump(BPF_JEQ, (c.value_two >> 32) as u32, low_word, fail);
        }
    }
}

/// `if hi_word > hi -> above; if < -> below; else -> equal`.
fn ordered_high(asm: &mut Asm, hi: u32, (above, below): (Label, Label), equal: Label) {
    let not_above = asm.label();
    asm.jump(BPF_JGT, hi, above, not_above);
    asm.bind(not_above);
    asm.jump(BPF_JEQ, hi, equal, below);
}

/// Compares the loaded 32-bit word with `v` (for MaskedEq: `word & v == two`).
fn compare_word(asm: &mut Asm, op: Op, v: u32, two: u32, ok: Label, fail: Label) {
    match op {
        Op::Eq => asm.jump(BPF_JEQ, v, ok, fail),
        Op::Ne => asm.jump(BPF_JEQ, v, fail, ok),
        Op::Gt => asm.jump(BPF_JGT, v, ok, fail),
        Op::Ge => asm.jump(BPF_JGE, v, ok, fail),
        Op::Lt => asm.jump(BPF_JGE, v, fail, ok),
        Op::Le => asm.jump(BPF_JGT, v, fail, ok),
        Op::MaskedEq => {
            asm.and(v);
            asm.jump(BPF_JEQ, two, ok, fail);
        }
    }
}
