//! A classic-BPF interpreter for seccomp programs, covering the instructions our code
//! generator and seccompiler emit. It lets the loader check a compiled profile (does
//! execve get through?) and lets tests ask what a filter answers for any syscall number,
//! architecture and argument values, including ones a real process cannot easily issue.

use libc::sock_filter;

use super::asm::{
    BPF_ABS, BPF_ALU, BPF_AND, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K, BPF_LD,
    BPF_RET, BPF_W,
};

/// `struct seccomp_data` as the kernel hands it to a filter.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// A call of `nr` on `arch` with the given leading arguments (the rest zero).
    pub(crate) fn call(arch: u32, nr: u32, args: &[u64]) -> SeccompData {
        let mut d = SeccompData {
            nr,
            arch,
            ..SeccompData::default()
        };
        d.args[..args.len()].copy_from_slice(args);
        d
    }

    /// The 32-bit word at byte `offset` (little-endian layout, as on x86_64 and aarch64).
    fn word(&self, offset: u32) -> Option<u32> {
        let low = |v: u64| v as u32;
        let high = |v: u64| (v >> 32) as u32;
        match offset {
            0 => Some(self.nr),
            4 => Some(self.arch),
            8 => Some(low(self.ip)),
            12 => Some(high(self.ip)),
            16..=60 if offset.is_multiple_of(4) => {
                let arg = self.args[(offset as usize - 16) / 8];
                Some(if offset.is_multiple_of(8) {
                    low(arg)
                } else {
                    high(arg)
                })
            }
            _ => None,
        }
    }
}

/// Runs `prog` on `data`; returns the `SECCOMP_RET_*` value, or why the program is
/// invalid.
pub(crate) fn run(prog: &[sock_filter], data: &SeccompData) -> Result<u32, String> {
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = prog
            .get(pc)
            .ok_or_else(|| format!("fell off the program at {pc}"))?;
        pc += 1;
        match i.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => {
                acc = data
                    .word(i.k)
                    .ok_or_else(|| format!("bad load offset {} at {}", i.k, pc - 1))?;
            }
            c if c == BPF_ALU | BPF_AND | BPF_K => acc &= i.k,
            c if c == BPF_RET | BPF_K => return Ok(i.k),
            c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
            c if c & 0x07 == BPF_JMP => pc += usize::from(branch(c, acc, i)?),
            c => return Err(format!("unsupported instruction {c:#x} at {}", pc - 1)),
        }
    }
}

/// The offset a conditional jump takes for accumulator value `acc`.
fn branch(code: u16, acc: u32, i: &sock_filter) -> Result<u8, String> {
    let taken = match code {
        c if c == BPF_JMP | BPF_JEQ | BPF_K => acc == i.k,
        c if c == BPF_JMP | BPF_JGT | BPF_K => acc > i.k,
        c if c == BPF_JMP | BPF_JGE | BPF_K => acc >= i.k,
        c if c == BPF_JMP | BPF_JSET | BPF_K => acc & i.k != 0,
        c => return Err(format!("unsupported jump {c:#x}")),
    };
    Ok(if taken { i.jt } else { i.jf })
}

/// The kernel's answer for a stack of filters: every filter runs, the return value with
/// the highest precedence wins, and among equals the most recently installed one.
/// `progs` is in installation order.
#[cfg(test)]
pub(crate) fn run_stack(progs: &[&[sock_filter]], data: &SeccompData) -> Result<u32, String> {
    let mut best: Option<u32> = None;
    for prog in progs.iter().rev() {
        let ret = run(prog, data)?;
        let better =
            best.is_none_or(|b| super::action::rank_of_ret(ret) < super::action::rank_of_ret(b));
        if better {
            best = Some(ret);
        }
    }
    best.ok_or_else(|| "no filters".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::asm::Asm;

    #[test]
    fn reads_seccomp_data_words() {
        let d = SeccompData::call(7, 3, &[0x1111_2222_3333_4444, 5]);
        assert_eq!(d.word(0), Some(3));
        assert_eq!(d.word(4), Some(7));
        assert_eq!(d.word(16), Some(0x3333_4444));
        assert_eq!(d.word(20), Some(0x1111_2222));
        assert_eq!(d.word(24), Some(5));
        assert_eq!(d.word(18), None);
        assert_eq!(d.word(64), None);
    }

    #[test]
    fn runs_jumps_and_masks() {
        let mut a = Asm::default();
        let (yes, no) = (a.label(), a.label());
        a.load(16);
        a.and(0xf0);
        a.jump(BPF_JEQ, 0x30, yes, no);
        a.bind(yes);
        a.ret(1);
        a.bind(no);
        a.ret(2);
        let p = a.finish();
        assert_eq!(run(&p, &SeccompData::call(0, 0, &[0x3f])), Ok(1));
        assert_eq!(run(&p, &SeccompData::call(0, 0, &[0x4f])), Ok(2));
    }
}
