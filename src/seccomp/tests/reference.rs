//! seccompiler as the reference: the same resolved rules compiled the straightforward
//! way (one linear filter per action, stacked, allow-list first) must answer exactly
//! like our single program, for every syscall number and many argument values. Also
//! gives the perf test the stacked alternative to compare against.

use std::collections::BTreeMap;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

use crate::seccomp::action::Action;
use crate::seccomp::arch::Arch;
use crate::seccomp::resolve::{Cond, Env, Op, Profile, Rule};
use crate::seccomp::sim::{self, SeccompData};
use crate::seccomp::{codegen, profile, resolve, DEFAULT_JSON, STRICT_JSON};

pub(crate) const DOCKER_JSON: &str = include_str!("../testdata/docker-default.json");

/// Docker's default capability set for containers.
pub(crate) const DOCKER_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub(crate) fn resolved(text: &str, env: &Env) -> Profile {
    resolve::resolve(&profile::parse(text, "test").unwrap(), "test", env).unwrap()
}

pub(crate) fn docker_env() -> Env {
    let mut env = Env::running().unwrap();
    env.caps = DOCKER_CAPS.iter().map(|c| c.to_string()).collect();
    env
}

fn action(a: Action) -> SeccompAction {
    match a {
        Action::Allow => SeccompAction::Allow,
        Action::Log => SeccompAction::Log,
        Action::Errno(e) => SeccompAction::Errno(e),
        Action::Trace(m) => SeccompAction::Trace(m),
        Action::Trap => SeccompAction::Trap,
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
    }
}

fn condition(c: &Cond) -> SeccompCondition {
    let len = if c.narrow {
        SeccompCmpArgLen::Dword
    } else {
        SeccompCmpArgLen::Qword
    };
    let (op, value) = match c.op {
        Op::Eq => (SeccompCmpOp::Eq, c.value),
        Op::Ne => (SeccompCmpOp::Ne, c.value),
        Op::Lt => (SeccompCmpOp::Lt, c.value),
        Op::Le => (SeccompCmpOp::Le, c.value),
        Op::Ge => (SeccompCmpOp::Ge, c.value),
        Op::Gt => (SeccompCmpOp::Gt, c.value),
        Op::MaskedEq => (SeccompCmpOp::MaskedEq(c.value), c.value_two),
    };
    SeccompCondition::new(c.index, len, op, value).unwrap()
}

/// One seccompiler filter matching `rules`.
fn filter<'r>(
    rules: impl Iterator<Item = &'r Rule>,
    mismatch: Action,
    matched: Action,
    arch: Arch,
) -> Vec<libc::sock_filter> {
    let mut map: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    for r in rules {
        let entry = map
            .entry(i64::from(r.nr))
            .or_insert_with(|| Some(Vec::new()));
        match (entry.as_mut(), r.conds.is_empty()) {
            (_, true) => *entry = None,
            (Some(list), false) => {
                list.push(SeccompRule::new(r.conds.iter().map(condition).collect()).unwrap())
            }
            (None, false) => {}
        }
    }
    let rules = map
        .into_iter()
        .map(|(nr, r)| (nr, r.unwrap_or_default()))
        .collect();
    let target = match arch {
        Arch::X86_64 => TargetArch::x86_64,
        Arch::Aarch64 => TargetArch::aarch64,
    };
    let f = SeccompFilter::new(rules, action(mismatch), action(matched), target).unwrap();
    let prog: seccompiler::BpfProgram = f.try_into().unwrap();
    prog.iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

/// The stacked filters, in installation order: the allow-list first, then one filter
/// per other action.
pub(crate) fn stacked(p: &Profile, arch: Arch) -> Vec<Vec<libc::sock_filter>> {
    let mut progs = Vec::new();
    if p.default != Action::Allow {
        progs.push(filter(p.rules.iter(), p.default, Action::Allow, arch));
    }
    let mut actions: Vec<Action> = Vec::new();
    for r in &p.rules {
        if r.action != Action::Allow && !actions.contains(&r.action) {
            actions.push(r.action);
        }
    }
    for a in actions {
        progs.push(filter(
            p.rules.iter().filter(|r| r.action == a),
            Action::Allow,
            a,
            arch,
        ));
    }
    progs
}

/// Argument vectors around every constant the rules compare with.
fn argument_samples(p: &Profile, nr: u32) -> Vec<[u64; 6]> {
    let high = 1u64 << 32;
    let mut out = vec![[0u64; 6], [u64::MAX; 6], [high; 6]];
    for c in p
        .rules
        .iter()
        .filter(|r| r.nr == nr)
        .flat_map(|r| r.conds.iter())
    {
        for v in [c.value, c.value_two, c.value | c.value_two] {
            for x in [
                v,
                v.wrapping_sub(1),
                v.wrapping_add(1),
                v | high,
                v ^ high,
                !v,
                v & 0xffff_ffff,
            ] {
                let mut one = [0u64; 6];
                one[usize::from(c.index)] = x;
                out.push(one);
                out.push([x; 6]);
            }
        }
    }
    out
}

fn assert_equivalent(text: &str, env: &Env) {
    let p = resolved(text, env);
    let ours = codegen::compile(&p, env.arch);
    let reference = stacked(&p, env.arch);
    let refs: Vec<&[libc::sock_filter]> = reference.iter().map(Vec::as_slice).collect();
    let audit = env.arch.audit();
    let floor = env.arch.legacy_abi_floor().unwrap_or(u32::MAX);
    let guard = codegen::guard_action(&p).ret();
    let mut checked = 0;
    for nr in (0..600).chain(
        env.arch
            .legacy_abi_floor()
            .map(|f| f..f + 600)
            .into_iter()
            .flatten(),
    ) {
        for args in argument_samples(&p, nr) {
            let d = SeccompData {
                nr,
                arch: audit,
                ip: 0,
                args,
            };
            let a = sim::run(&ours, &d).unwrap();
            if nr >= floor && p.default.lets_through() {
                // The reference has no allow-list to catch x32 numbers; we deny them.
                assert_eq!(a, guard, "x32 nr {nr:#x}");
                continue;
            }
            let b = sim::run_stack(&refs, &d).unwrap();
            assert_eq!(
                a, b,
                "nr {nr} args {args:x?}: ours {a:#x}, stacked seccompiler {b:#x}"
            );
            checked += 1;
        }
    }
    assert!(checked > 1200);
}

#[test]
fn default_matches_stacked_seccompiler_filters() {
    assert_equivalent(DEFAULT_JSON, &Env::running().unwrap());
}

#[test]
fn strict_matches_stacked_seccompiler_filters() {
    assert_equivalent(STRICT_JSON, &Env::running().unwrap());
}

#[test]
fn docker_matches_stacked_seccompiler_filters() {
    assert_equivalent(DOCKER_JSON, &Env::running().unwrap());
    assert_equivalent(DOCKER_JSON, &docker_env());
}

#[test]
fn a_profile_with_every_operator_matches() {
    let text = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["mmap"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"args":[{"index":2,"value":4,"op":"SCMP_CMP_MASKED_EQ","valueTwo":4}]},
        {"names":["lseek"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":4294967301,"op":"SCMP_CMP_GT"}]},
        {"names":["pread64"],"action":"SCMP_ACT_ERRNO","args":[{"index":3,"value":4294967301,"op":"SCMP_CMP_GE"},{"index":3,"value":8589934592,"op":"SCMP_CMP_LE"}]},
        {"names":["pwrite64"],"action":"SCMP_ACT_KILL_PROCESS","args":[{"index":3,"value":4294967296,"op":"SCMP_CMP_LT"}]},
        {"names":["mremap"],"action":"SCMP_ACT_TRAP","args":[{"index":1,"value":12884901888,"op":"SCMP_CMP_NE"}]},
        {"names":["madvise"],"action":"SCMP_ACT_LOG","args":[{"index":0,"value":7,"op":"SCMP_CMP_EQ"}]},
        {"names":["madvise"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":7,"op":"SCMP_CMP_EQ"},{"index":2,"value":4,"op":"SCMP_CMP_EQ"}]},
        {"names":["socket"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":40,"op":"SCMP_CMP_EQ"}]},
        {"names":["getpid"],"action":"SCMP_ACT_TRACE","errnoRet":5}
    ]}"#;
    assert_equivalent(text, &Env::running().unwrap());
}

#[test]
fn aarch64_programs_match_too() {
    let env = Env {
        arch: Arch::Aarch64,
        ..Env::running().unwrap()
    };
    assert_equivalent(DEFAULT_JSON, &env);
    assert_equivalent(STRICT_JSON, &env);
    assert_equivalent(DOCKER_JSON, &env);
    let p = resolved(DEFAULT_JSON, &env);
    assert!(p
        .notes
        .iter()
        .any(|n| n.contains("syscall open does not exist on SCMP_ARCH_AARCH64")));
    crate::seccomp::compile_text(DEFAULT_JSON, "default", "default", &env).unwrap();
}
