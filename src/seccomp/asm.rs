//! A small assembler for classic BPF with symbolic forward labels.
//!
//! Conditional jumps have 8-bit offsets. When a target lies more than 255 instructions
//! ahead, `finish` relaxes that branch into a hop to an unconditional `JA` (32-bit
//! offset) placed right after the jump, and repeats until every offset fits.

use libc::sock_filter;

pub(crate) const BPF_LD: u16 = 0x00;
pub(crate) const BPF_ALU: u16 = 0x04;
pub(crate) const BPF_JMP: u16 = 0x05;
pub(crate) const BPF_RET: u16 = 0x06;
pub(crate) const BPF_W: u16 = 0x00;
pub(crate) const BPF_ABS: u16 = 0x20;
pub(crate) const BPF_AND: u16 = 0x50;
pub(crate) const BPF_JA: u16 = 0x00;
pub(crate) const BPF_JEQ: u16 = 0x10;
pub(crate) const BPF_JGT: u16 = 0x20;
pub(crate) const BPF_JGE: u16 = 0x30;
pub(crate) const BPF_JSET: u16 = 0x40;
pub(crate) const BPF_K: u16 = 0x00;

/// A jump target, bound to a position with [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Label(usize);

#[derive(Debug)]
enum Item {
    Stmt {
        code: u16,
        k: u32,
    },
    /// A conditional jump; `far_*` says the branch goes through a trailing `JA`.
    Cond {
        code: u16,
        k: u32,
        jt: Label,
        jf: Label,
        far_t: bool,
        far_f: bool,
    },
    Ja(Label),
    Bind(Label),
}

impl Item {
    fn len(&self) -> usize {
        match self {
            Item::Stmt { .. } | Item::Ja(_) => 1,
            Item::Cond { far_t, far_f, .. } => 1 + usize::from(*far_t) + usize::from(*far_f),
            Item::Bind(_) => 0,
        }
    }
}

/// Collects instructions and labels; [`Asm::finish`] resolves the jumps.
#[derive(Debug, Default)]
pub(crate) struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    /// A fresh, unbound label.
    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Binds `l` to the next instruction emitted.
    pub(crate) fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }

    /// `A = *(u32 *)(seccomp_data + offset)`.
    pub(crate) fn load(&mut self, offset: u32) {
        self.items.push(Item::Stmt {
            code: BPF_LD | BPF_W | BPF_ABS,
            k: offset,
        });
    }

    /// `A &= k`.
    pub(crate) fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt {
            code: BPF_ALU | BPF_AND | BPF_K,
            k,
        });
    }

    /// Returns `k` (a `SECCOMP_RET_*` value) to the kernel.
    pub(crate) fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt {
            code: BPF_RET | BPF_K,
            k,
        });
    }

    /// `if (A <op> k) goto jt; else goto jf;` with `op` one of BPF_JEQ/JGT/JGE/JSET.
    pub(crate) fn jump(&mut self, op: u16, k: u32, jt: Label, jf: Label) {
        let code = BPF_JMP | op | BPF_K;
        self.items.push(Item::Cond {
            code,
            k,
            jt,
            jf,
            far_t: false,
            far_f: false,
        });
    }

    /// `goto l;`
    pub(crate) fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    /// Resolves every label into offsets and returns the program.
    ///
    /// Panics if a label is unbound, bound twice or jumped to backwards: these are
    /// bugs in the code generator, never consequences of a profile.
    pub(crate) fn finish(mut self) -> Vec<sock_filter> {
        loop {
            let at = self.positions();
            if !self.relax(&at) {
                return self.emit(&at);
            }
        }
    }

    /// Position of every label under the current relaxation state.
    fn positions(&self) -> Vec<usize> {
        let mut at = vec![usize::MAX; self.labels];
        let mut pos = 0;
        for item in &self.items {
            if let Item::Bind(l) = item {
                assert_eq!(at[l.0], usize::MAX, "bpf label bound twice");
                at[l.0] = pos;
            }
            pos += item.len();
        }
        assert!(at.iter().all(|&p| p != usize::MAX), "bpf label never bound");
        at
    }

    /// Marks branches whose offsets do not fit in 8 bits; true if anything changed.
    fn relax(&mut self, at: &[usize]) -> bool {
        let mut changed = false;
        let mut pos = 0;
        for item in &mut self.items {
            let len = item.len();
            if let Item::Cond {
                jt,
                jf,
                far_t,
                far_f,
                ..
            } = item
            {
                if !*far_t && distance(pos, at[jt.0]) > 255 {
                    *far_t = true;
                    changed = true;
                }
                if !*far_f && distance(pos, at[jf.0]) > 255 {
                    *far_f = true;
                    changed = true;
                }
            }
            pos += len;
        }
        changed
    }

    fn emit(&self, at: &[usize]) -> Vec<sock_filter> {
        let mut out = Vec::with_capacity(at.len() + self.items.len());
        for item in &self.items {
            let pos = out.len();
            match *item {
                Item::Stmt { code, k } => out.push(insn(code, k, 0, 0)),
                Item::Ja(l) => out.push(ja(pos, at[l.0])),
                Item::Cond {
                    code,
                    k,
                    jt,
                    jf,
                    far_t,
                    far_f,
                } => {
                    emit_cond(&mut out, (code, k), (at[jt.0], at[jf.0]), (far_t, far_f));
                }
                Item::Bind(_) => {}
            }
        }
        out
    }
}

/// Emits a conditional jump at `out.len()` plus the `JA`s of its far branches.
fn emit_cond(
    out: &mut Vec<sock_filter>,
    (code, k): (u16, u32),
    (t, f): (usize, usize),
    far: (bool, bool),
) {
    let pos = out.len();
    let near = |target: usize| u8::try_from(distance(pos, target)).expect("relaxed jump fits");
    match far {
        (false, false) => out.push(insn(code, k, near(t), near(f))),
        (true, false) => {
            out.push(insn(code, k, 0, near(f)));
            out.push(ja(pos + 1, t));
        }
        (false, true) => {
            out.push(insn(code, k, near(t), 0));
            out.push(ja(pos + 1, f));
        }
        (true, true) => {
            out.push(insn(code, k, 0, 1));
            out.push(ja(pos + 1, t));
            out.push(ja(pos + 2, f));
        }
    }
}

/// Offset of a jump at `from` to `to` (BPF jumps count from the next instruction).
fn distance(from: usize, to: usize) -> usize {
    assert!(to > from, "bpf jumps must go forward");
    to - from - 1
}

fn ja(from: usize, to: usize) -> sock_filter {
    let off = u32::try_from(distance(from, to)).expect("bpf program shorter than 4 GiB");
    insn(BPF_JMP | BPF_JA, off, 0, 0)
}

fn insn(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_jumps_use_short_offsets() {
        let mut a = Asm::default();
        let (t, f) = (a.label(), a.label());
        a.load(0);
        a.jump(BPF_JEQ, 5, t, f);
        a.bind(t);
        a.ret(1);
        a.bind(f);
        a.ret(2);
        let p = a.finish();
        assert_eq!(p.len(), 4);
        assert_eq!((p[1].jt, p[1].jf), (0, 1));
    }

    #[test]
    fn far_jumps_are_relaxed_through_ja() {
        let mut a = Asm::default();
        let (t, f) = (a.label(), a.label());
        a.jump(BPF_JEQ, 5, t, f);
        a.bind(f);
        for _ in 0..300 {
            a.load(0);
        }
        a.ret(2);
        a.bind(t);
        a.ret(1);
        let p = a.finish();
        // JEQ jt=0 -> JA over the 301 instructions; jf=1 skips the JA.
        assert_eq!((p[0].jt, p[0].jf), (0, 1));
        assert_eq!(p[1].code, BPF_JMP | BPF_JA);
        assert_eq!(p[1].k as usize, 301);
        assert_eq!(p[1 + 1 + 301].k, 1);
    }
}
