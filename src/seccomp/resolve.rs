//! From a parsed profile to the rules that apply here: actions and comparison operators
//! checked, Docker's `includes`/`excludes` decided against the sandbox's capability set
//! (empty), the running architecture and kernel, syscall names mapped to this
//! architecture's numbers, and 32-bit arguments marked for low-word comparison.

use super::action::{Action, ActionError};
use super::arch::{self, Arch};
use super::argwidth;
use super::error::SeccompError;
use super::profile::{RawArg, RawCondition, RawProfile, RawSyscall};

/// `SECCOMP_FILTER_FLAG_*` values honoured at install time.
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;

/// What the rules are resolved against.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub arch: Arch,
    pub kernel: (u32, u32),
    /// Capabilities the sandboxed program keeps (judgebox drops them all).
    pub caps: Vec<String>,
}

impl Env {
    /// The running system, with the sandbox's empty capability set.
    pub(crate) fn running() -> Result<Env, SeccompError> {
        Ok(Env {
            arch: Arch::native()?,
            kernel: arch::kernel_version(),
            caps: Vec::new(),
        })
    }
}

/// A profile reduced to what the filter must do on this system.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub default: Action,
    pub rules: Vec<Rule>,
    /// `SECCOMP_FILTER_FLAG_*` bits to pass to seccomp(2).
    pub flags: u32,
    /// Debug-level remarks: skipped names and rules, ignored flags.
    pub notes: Vec<String>,
}

/// One syscall number with its action and the comparisons that must all hold.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub nr: u32,
    pub action: Action,
    pub conds: Vec<Cond>,
}

/// One argument comparison, ready for code generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cond {
    pub index: u8,
    /// The kernel reads this argument as 32 bits: compare the low word only.
    pub narrow: bool,
    pub op: Op,
    /// The operand; for `MaskedEq` the mask.
    pub value: u64,
    /// For `MaskedEq`, the value `arg & mask` must equal.
    pub value_two: u64,
}

/// `SCMP_CMP_*` operators (unsigned comparisons, like libseccomp's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "SCMP_CMP_NE" => Op::Ne,
            "SCMP_CMP_LT" => Op::Lt,
            "SCMP_CMP_LE" => Op::Le,
            "SCMP_CMP_EQ" => Op::Eq,
            "SCMP_CMP_GE" => Op::Ge,
            "SCMP_CMP_GT" => Op::Gt,
            "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
            _ => return None,
        })
    }
}

/// Resolves `raw` (from `file`) for `env`.
pub(crate) fn resolve(raw: &RawProfile, file: &str, env: &Env) -> Result<Profile, SeccompError> {
    let cx = Cx { file, env };
    let mut notes = Vec::new();
    cx.check_listener(raw, &mut notes)?;
    let default = cx.action(
        &raw.default_action,
        raw.default_errno_ret,
        "defaultAction",
        "defaultErrnoRet",
    )?;
    cx.check_architectures(raw, &mut notes)?;
    let flags = cx.flags(raw.flags.as_deref().unwrap_or_default(), &mut notes)?;
    let mut rules = Vec::new();
    for (i, rule) in raw.syscalls.iter().flatten().enumerate() {
        cx.rule(i, rule, default, &mut rules, &mut notes)?;
    }
    Ok(Profile {
        default,
        rules,
        flags,
        notes,
    })
}

/// Resolution context: the profile's name for errors and the environment.
struct Cx<'a> {
    file: &'a str,
    env: &'a Env,
}

impl Cx<'_> {
    fn invalid(&self, field: impl Into<String>, reason: impl Into<String>) -> SeccompError {
        SeccompError::Invalid {
            file: self.file.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn check_listener(
        &self,
        raw: &RawProfile,
        notes: &mut Vec<String>,
    ) -> Result<(), SeccompError> {
        if raw
            .listener_metadata
            .as_deref()
            .is_some_and(|m| !m.is_empty())
        {
            notes.push("listenerMetadata ignored: there is no seccomp agent".into());
        }
        match raw.listener_path.as_deref() {
            Some(p) if !p.is_empty() => Err(self.invalid(
                "listenerPath",
                "seccomp agents (SCMP_ACT_NOTIFY listeners) are not supported",
            )),
            _ => Ok(()),
        }
    }

    fn action(
        &self,
        name: &str,
        errno: Option<u32>,
        field: &str,
        errno_field: &str,
    ) -> Result<Action, SeccompError> {
        Action::parse(name, errno).map_err(|e| match e {
            ActionError::Unknown => SeccompError::UnknownAction {
                file: self.file.to_string(),
                field: field.to_string(),
                value: name.to_string(),
            },
            e if e.is_errno_fault() => self.invalid(errno_field, e.to_string()),
            e => self.invalid(field, e.to_string()),
        })
    }

    fn check_architectures(
        &self,
        raw: &RawProfile,
        notes: &mut Vec<String>,
    ) -> Result<(), SeccompError> {
        let plain = raw.architectures.as_deref().unwrap_or_default();
        let map = raw.arch_map.as_deref().unwrap_or_default();
        if !plain.is_empty() && !map.is_empty() {
            return Err(self.invalid(
                "archMap",
                "both 'architectures' and 'archMap' are specified; use one",
            ));
        }
        let mut listed = Vec::new();
        for (i, a) in plain.iter().enumerate() {
            self.scmp_arch(a, &format!("architectures[{i}]"))?;
            listed.push(a.as_str());
        }
        for (i, m) in map.iter().enumerate() {
            self.scmp_arch(&m.architecture, &format!("archMap[{i}].architecture"))?;
            for (j, sub) in m.sub_architectures.iter().flatten().enumerate() {
                self.scmp_arch(sub, &format!("archMap[{i}].subArchitectures[{j}]"))?;
            }
            listed.push(m.architecture.as_str());
        }
        let native = self.env.arch.scmp_name();
        if !listed.is_empty() && !listed.contains(&native) {
            notes.push(format!(
                "the profile does not list {native}; its rules are applied to it anyway"
            ));
        }
        notes.push(format!(
            "only native {native} system calls are filtered; other ABIs (i386, x32, arm32) are always denied"
        ));
        Ok(())
    }

    fn scmp_arch(&self, name: &str, field: &str) -> Result<(), SeccompError> {
        if arch::SCMP_ARCH_NAMES.contains(&name) {
            Ok(())
        } else {
            Err(self.invalid(
                field,
                format!("unknown architecture {name:?} (expected SCMP_ARCH_*)"),
            ))
        }
    }

    fn flags(&self, names: &[String], notes: &mut Vec<String>) -> Result<u32, SeccompError> {
        let mut bits = 0;
        for (i, name) in names.iter().enumerate() {
            match name.as_str() {
                "SECCOMP_FILTER_FLAG_LOG" => bits |= FLAG_LOG,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => bits |= FLAG_SPEC_ALLOW,
                "SECCOMP_FILTER_FLAG_TSYNC" | "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => {
                    notes.push(format!("flag {name} ignored: the filter is installed in a single-threaded process without a listener"));
                }
                _ => {
                    return Err(
                        self.invalid(format!("flags[{i}]"), format!("unknown flag {name:?}"))
                    )
                }
            }
        }
        Ok(bits)
    }

    /// Checks rule `i` and appends what it contributes on this system.
    fn rule(
        &self,
        i: usize,
        raw: &RawSyscall,
        default: Action,
        out: &mut Vec<Rule>,
        notes: &mut Vec<String>,
    ) -> Result<(), SeccompError> {
        let at = format!("syscalls[{i}]");
        let names = self.names(raw, &at)?;
        let action = self.action(
            &raw.action,
            raw.errno_ret,
            &format!("{at}.action"),
            &format!("{at}.errnoRet"),
        )?;
        let args = self.args(raw, &at)?;
        let skip = if !self.applies(raw, &at)? {
            Some("does not apply here (includes/excludes)")
        } else if action == default {
            Some("has the default action; ignored")
        } else {
            None
        };
        match skip {
            Some(why) => notes.push(format!("{at} ({}) {why}", names.join(", "))),
            None => self.expand(&names, action, &args, out, notes),
        }
        Ok(())
    }

    /// The rule's comparisons, checked.
    fn args<'r>(
        &self,
        raw: &'r RawSyscall,
        at: &str,
    ) -> Result<Vec<(Op, &'r RawArg)>, SeccompError> {
        let mut args = Vec::new();
        for (j, a) in raw.args.iter().flatten().enumerate() {
            args.push((self.check_arg(a, &format!("{at}.args[{j}]"))?, a));
        }
        Ok(args)
    }

    /// Whether the rule's includes hold and its excludes do not.
    fn applies(&self, raw: &RawSyscall, at: &str) -> Result<bool, SeccompError> {
        let included =
            self.condition_holds(raw.includes.as_ref(), &format!("{at}.includes"), true)?;
        let excluded =
            self.condition_holds(raw.excludes.as_ref(), &format!("{at}.excludes"), false)?;
        Ok(included && !excluded)
    }

    /// One rule per name that exists on this architecture.
    fn expand(
        &self,
        names: &[&str],
        action: Action,
        args: &[(Op, &RawArg)],
        out: &mut Vec<Rule>,
        notes: &mut Vec<String>,
    ) {
        for &name in names {
            let Some(nr) = self.env.arch.syscall_nr(name) else {
                notes.push(format!(
                    "syscall {name} does not exist on {}; skipped",
                    self.env.arch.scmp_name()
                ));
                continue;
            };
            let conds = args.iter().map(|&(op, a)| cond(name, op, a)).collect();
            out.push(Rule { nr, action, conds });
        }
    }

    /// The rule's syscall names, each known on some architecture.
    fn names<'r>(&self, raw: &'r RawSyscall, at: &str) -> Result<Vec<&'r str>, SeccompError> {
        let names: Vec<&str> = match (&raw.name, &raw.names) {
            (Some(_), Some(n)) if !n.is_empty() => {
                return Err(self.invalid(
                    format!("{at}.name"),
                    "both 'name' and 'names' are specified; use 'names'",
                ))
            }
            (Some(one), _) => vec![one.as_str()],
            (None, Some(many)) => many.iter().map(String::as_str).collect(),
            (None, None) => Vec::new(),
        };
        if names.is_empty() {
            return Err(self.invalid(format!("{at}.names"), "no syscall names"));
        }
        for (j, name) in names.iter().enumerate() {
            if !arch::is_known_anywhere(name) {
                return Err(SeccompError::UnknownSyscall {
                    file: self.file.to_string(),
                    field: format!("{at}.names[{j}]"),
                    name: name.to_string(),
                });
            }
        }
        Ok(names)
    }

    fn check_arg(&self, a: &RawArg, at: &str) -> Result<Op, SeccompError> {
        if a.index > 5 {
            return Err(SeccompError::ArgIndex {
                file: self.file.to_string(),
                field: format!("{at}.index"),
                index: a.index,
            });
        }
        let Some(op) = Op::parse(&a.op) else {
            return Err(self.invalid(format!("{at}.op"), format!("unknown operator {:?} (expected SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT or _MASKED_EQ)", a.op)));
        };
        if op != Op::MaskedEq && a.value_two != 0 {
            return Err(self.invalid(
                format!("{at}.valueTwo"),
                "valueTwo is only used by SCMP_CMP_MASKED_EQ",
            ));
        }
        Ok(op)
    }

    /// Whether an `includes` (all parts must hold) or `excludes` (any part suffices)
    /// condition holds here; validates it either way. No condition: includes hold,
    /// excludes do not.
    fn condition_holds(
        &self,
        c: Option<&RawCondition>,
        at: &str,
        is_include: bool,
    ) -> Result<bool, SeccompError> {
        let Some(c) = c else { return Ok(is_include) };
        let arches = self.arches_match(c.arches.as_deref(), &format!("{at}.arches"))?;
        let caps = self.caps_match(c.caps.as_deref(), &format!("{at}.caps"), is_include)?;
        let kernel = self.kernel_at_least(c.min_kernel.as_deref(), &format!("{at}.minKernel"))?;
        Ok(if is_include {
            arches.unwrap_or(true) && caps.unwrap_or(true) && kernel.unwrap_or(true)
        } else {
            arches.unwrap_or(false) || caps.unwrap_or(false) || kernel.unwrap_or(false)
        })
    }

    /// `None` when no arches are given; otherwise whether the native arch is listed.
    fn arches_match(
        &self,
        arches: Option<&[String]>,
        at: &str,
    ) -> Result<Option<bool>, SeccompError> {
        let arches = arches.unwrap_or_default();
        for (j, a) in arches.iter().enumerate() {
            if !arch::PROFILE_ARCH_NAMES.contains(&a.as_str()) {
                return Err(
                    self.invalid(format!("{at}[{j}]"), format!("unknown architecture {a:?}"))
                );
            }
        }
        if arches.is_empty() {
            return Ok(None);
        }
        let native = self.env.arch.profile_names();
        Ok(Some(arches.iter().any(|a| native.contains(&a.as_str()))))
    }

    /// `None` when no caps are given; for includes whether all are held, for excludes
    /// whether any is held.
    fn caps_match(
        &self,
        caps: Option<&[String]>,
        at: &str,
        all: bool,
    ) -> Result<Option<bool>, SeccompError> {
        let caps = caps.unwrap_or_default();
        for (j, c) in caps.iter().enumerate() {
            let body = c.strip_prefix("CAP_").unwrap_or("");
            if body.is_empty()
                || !body
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(self.invalid(
                    format!("{at}[{j}]"),
                    format!("{c:?} is not a capability name (CAP_*)"),
                ));
            }
        }
        if caps.is_empty() {
            return Ok(None);
        }
        let held = |c: &String| self.env.caps.contains(c);
        Ok(Some(if all {
            caps.iter().all(held)
        } else {
            caps.iter().any(held)
        }))
    }

    /// `None` when no version is given; otherwise whether the kernel is at least it.
    fn kernel_at_least(&self, min: Option<&str>, at: &str) -> Result<Option<bool>, SeccompError> {
        match min {
            None | Some("") => Ok(None),
            Some(v) => {
                let want = parse_min_kernel(v).ok_or_else(|| {
                    self.invalid(at, format!("invalid kernel version {v:?}, expected \"<kernel>.<major>\" such as \"4.8\""))
                })?;
                Ok(Some(self.env.kernel >= want))
            }
        }
    }
}

/// Docker's `minKernel` syntax: exactly "<kernel>.<major>", each 0..=255, not "0.0".
fn parse_min_kernel(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    let major: u8 = a.parse().ok()?;
    let minor: u8 = b.parse().ok()?;
    if (major, minor) == (0, 0) {
        return None;
    }
    Some((u32::from(major), u32::from(minor)))
}

/// The comparison for argument `a` of syscall `name`, narrowed to 32 bits when the
/// kernel reads that argument as 32 bits.
fn cond(name: &str, op: Op, a: &RawArg) -> Cond {
    let index = a.index as u8; // checked <= 5
    let narrow = argwidth::is_narrow(name, index);
    let cut = |v: u64| if narrow { v & 0xffff_ffff } else { v };
    Cond {
        index,
        narrow,
        op,
        value: cut(a.value),
        value_two: cut(a.value_two),
    }
}
