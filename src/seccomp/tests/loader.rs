//! Bad input is a clear error before anything runs; the messages name the profile and
//! the field. Also: `none`, paths, caching, and the includes/excludes rules.

use std::io::Write;

use crate::seccomp::resolve::Env;
use crate::seccomp::{compile_text, Filter, SeccompError};

fn compile(text: &str) -> Result<crate::seccomp::Compiled, SeccompError> {
    compile_text(text, "p.json", "p", &Env::running().unwrap())
}

fn error(text: &str) -> String {
    match compile(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

const MINIMAL: &str = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve","exit_group"],"action":"SCMP_ACT_ALLOW"}]}"#;

#[test]
fn a_minimal_allow_list_compiles() {
    let c = compile(MINIMAL).unwrap();
    assert!(!c.kills);
    assert!(c.program.len() < 20);
}

#[test]
fn malformed_json() {
    let e = error(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [ }"#);
    assert!(e.starts_with("malformed seccomp profile p.json:"), "{e}");
}

#[test]
fn unknown_field() {
    let e = error(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscall":[]}"#);
    assert!(
        e.contains("p.json") && e.contains("unknown field `syscall`"),
        "{e}"
    );
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ","value2":3}]}]}"#,
    );
    assert!(e.contains("unknown field `value2`"), "{e}");
}

#[test]
fn unknown_action() {
    let e = error(r#"{"defaultAction":"SCMP_ACT_DENY"}"#);
    assert!(
        e.contains("p.json: defaultAction: unknown action \"SCMP_ACT_DENY\""),
        "{e}"
    );
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve"],"action":"SCMP_ACT_ALLOW"},{"names":["read"],"action":"allow"}]}"#,
    );
    assert!(
        e.contains("syscalls[1].action: unknown action \"allow\""),
        "{e}"
    );
}

#[test]
fn unsupported_action_and_errno() {
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert!(e.contains("syscalls[0].action: SCMP_ACT_NOTIFY"), "{e}");
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":1}]}"#,
    );
    assert!(
        e.contains("syscalls[0].errnoRet: errnoRet is only valid"),
        "{e}"
    );
    let e = error(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":99999}"#);
    assert!(e.contains("defaultErrnoRet: errnoRet 99999"), "{e}");
    let e = error(r#"{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/run/agent.sock"}"#);
    assert!(e.contains("listenerPath"), "{e}");
}

#[test]
fn syscall_unknown_on_every_arch() {
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve","fork_bomb"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert!(
        e.contains("p.json: syscalls[0].names[1]: unknown syscall \"fork_bomb\""),
        "{e}"
    );
}

#[test]
fn syscall_of_another_arch_is_skipped_not_refused() {
    let c = compile(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve","socketcall","exit_group"],"action":"SCMP_ACT_ALLOW"}]}"#).unwrap();
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("socketcall does not exist")),
        "{:?}",
        c.notes
    );
}

#[test]
fn argument_index_out_of_range() {
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve"],"action":"SCMP_ACT_ALLOW"},{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(
        e.contains("syscalls[1].args[0].index: argument index 6 is out of range"),
        "{e}"
    );
}

#[test]
fn bad_operators_and_values() {
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_MAYBE"}]}]}"#,
    );
    assert!(
        e.contains("syscalls[0].args[0].op: unknown operator"),
        "{e}"
    );
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"valueTwo":3,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(e.contains("syscalls[0].args[0].valueTwo"), "{e}");
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":-1,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(e.starts_with("malformed seccomp profile p.json"), "{e}");
}

#[test]
fn structural_conflicts() {
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert!(e.contains("syscalls[0].name: both"), "{e}");
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":[],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert!(e.contains("syscalls[0].names: no syscall names"), "{e}");
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
    );
    assert!(e.contains("archMap: both"), "{e}");
    let e = error(r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_Z80"]}"#);
    assert!(e.contains("architectures[0]: unknown architecture"), "{e}");
    let e = error(r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_FAST"]}"#);
    assert!(e.contains("flags[0]: unknown flag"), "{e}");
}

#[test]
fn bad_conditions_are_errors_even_when_they_would_not_apply() {
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["vax"]}}]}"#,
    );
    assert!(
        e.contains("syscalls[0].includes.arches[0]: unknown architecture \"vax\""),
        "{e}"
    );
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["SYS_ADMIN"]}}]}"#,
    );
    assert!(e.contains("syscalls[0].excludes.caps[0]"), "{e}");
    for v in ["4", "4.8.1", "x.y", "0.0", "300.1"] {
        let text = format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{{"minKernel":"{v}"}}}}]}}"#
        );
        let e = error(&text);
        assert!(
            e.contains("syscalls[0].includes.minKernel: invalid kernel version"),
            "{v}: {e}"
        );
    }
}

#[test]
fn an_empty_allow_list_would_block_execve() {
    let e = error(r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#);
    assert!(
        e.contains("p.json would block execve") && e.contains("SCMP_ACT_ERRNO(1)"),
        "{e}"
    );
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert!(
        e.contains("would block execve") && e.contains("SCMP_ACT_KILL_PROCESS"),
        "{e}"
    );
    let e = error(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["execve"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    assert!(e.contains("would block execve"), "{e}");
    // A deny-list without execve is fine.
    compile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
}

#[test]
fn includes_and_excludes_decide_per_environment() {
    let text = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["execve"],"action":"SCMP_ACT_ALLOW"},
        {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
        {"names":["chroot"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}},
        {"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["s390x"]}},
        {"names":["write"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["amd64","arm64"]}},
        {"names":["readv"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"99.0"}},
        {"names":["writev"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"3.0"}},
        {"names":["getpid"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"3.0","arches":["amd64","arm64"]}}
    ]}"#;
    let env = Env::running().unwrap();
    let p = super::reference::resolved(text, &env);
    let names: Vec<&str> = p
        .rules
        .iter()
        .map(|r| env.arch.syscall_name(r.nr).unwrap())
        .collect();
    assert_eq!(names, ["execve", "chroot", "getpid"]);
    let mut admin = env.clone();
    admin.caps = vec!["CAP_SYS_ADMIN".into()];
    let p = super::reference::resolved(text, &admin);
    let names: Vec<&str> = p
        .rules
        .iter()
        .map(|r| admin.arch.syscall_name(r.nr).unwrap())
        .collect();
    assert_eq!(names, ["execve", "mount", "getpid"]);
}

#[test]
fn none_disables_the_filter() {
    assert!(Filter::load("none").unwrap().is_none());
}

#[test]
fn paths_are_loaded_and_cached_until_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.json");
    std::fs::write(&path, MINIMAL).unwrap();
    let spec = path.to_str().unwrap();
    let a = Filter::load(spec).unwrap().unwrap();
    let b = Filter::load(spec).unwrap().unwrap();
    assert!(std::sync::Arc::ptr_eq(&a.inner, &b.inner));
    assert_eq!(a.name(), spec);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(f).unwrap();
    drop(f);
    let c = Filter::load(spec).unwrap().unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a.inner, &c.inner));
    let e = Filter::load(dir.path().join("missing.json").to_str().unwrap()).unwrap_err();
    assert!(
        e.to_string().starts_with("cannot read seccomp profile"),
        "{e}"
    );
}

#[test]
fn syscall_names_of_the_running_arch() {
    let arch = crate::seccomp::arch::Arch::native().unwrap();
    let nr = arch.syscall_nr("getpid").unwrap();
    assert_eq!(crate::seccomp::syscall_name(i64::from(nr)), Some("getpid"));
    assert_eq!(crate::seccomp::syscall_name(-1), None);
    assert_eq!(crate::seccomp::syscall_name(100_000), None);
}
