//! Integration tests of `judgebox judge` on the test rootfs (busybox + static probes), with
//! test manifests: `sh` (interpreted) and `shc` ("compiled": a syntax check that copies the
//! script to an artifact). They exercise every verdict, Judge0 ids, parallel runs and bad
//! input without language images; tests/languages.rs covers the real languages.

mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const SH: &str = r#"
name = "sh"
display = "busybox sh"
judge0_ids = [9001]
image = "judgebox-test/none:1"
source_file = "main.sh"
[run]
command = ["/bin/sh", "main.sh", "{args}"]
time = 1.0
wall_time = 3.0
memory = "64M"
pids = 16
output = "1M"
"#;

const SHC: &str = r#"
name = "shc"
display = "busybox sh, checked"
judge0_ids = [9002]
image = "judgebox-test/none:1"
source_file = "main.sh"
artifacts = ["prog"]
[compile]
command = ["/bin/sh", "-c", "sh -n main.sh && cp main.sh prog && chmod 755 prog && echo compiled \"$@\"", "cc", "{compiler_options}"]
time = 2.0
wall_time = 5.0
memory = "64M"
pids = 8
output = "64K"
[run]
command = ["/bin/sh", "prog"]
time = 1.0
wall_time = 3.0
memory = "64M"
pids = 16
output = "1M"
"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("manifests")).unwrap();
        std::fs::write(dir.path().join("manifests/sh.toml"), SH).unwrap();
        std::fs::write(dir.path().join("manifests/shc.toml"), SHC).unwrap();
        Fixture { dir }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    fn judge(&self, lang: &str, source: &str, extra: &[&str]) -> Output {
        let src = self.file("src/main.sh", source);
        judge_source(self, lang, &src, extra)
    }

    fn judge_json(&self, lang: &str, source: &str, extra: &[&str]) -> Value {
        let mut args = extra.to_vec();
        args.push("--json");
        let out = self.judge(lang, source, &args);
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| {
            panic!(
                "no JSON ({e}): {text:?} stderr={:?}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    fn one_test(&self, input: &str, expected: &str) -> Vec<String> {
        let i = self.file("one/in", input);
        let o = self.file("one/out", expected);
        vec![
            "--stdin".into(),
            i.display().to_string(),
            "--expected".into(),
            o.display().to_string(),
        ]
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

const SUM: &str = "read a b; echo $((a + b))";

#[test]
fn a_correct_program_is_accepted_with_judge0_status_3() {
    let f = Fixture::new();
    let t = f.one_test("2 40\n", "42\n");
    let v = f.judge_json("sh", SUM, &strs(&t));
    assert_eq!(v["verdict"], "accepted", "{v}");
    assert_eq!(v["status"]["id"], 3);
    assert_eq!(v["status"]["description"], "Accepted");
    assert_eq!(
        (v["passed"].as_u64(), v["total"].as_u64()),
        (Some(1), Some(1))
    );
    let t0 = &v["tests"][0];
    assert!(
        t0["cpu_time"].is_number() && t0["wall_time"].is_number(),
        "{v}"
    );
    assert!(t0["memory_peak"].as_u64().unwrap_or(0) > 0, "{v}");
    // By Judge0 language id too, and the exit code says accepted.
    let out = f.judge("9001", SUM, &strs(&t));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn wrong_output_is_a_wrong_answer_and_trim_follows_judge0() {
    let f = Fixture::new();
    let t = f.one_test("2 40\n", "43\n");
    let v = f.judge_json("sh", SUM, &strs(&t));
    assert_eq!(
        (v["verdict"].as_str(), v["status"]["id"].as_u64()),
        (Some("wrong_answer"), Some(4)),
        "{v}"
    );
    // Trailing spaces and blank lines do not matter under trim, but do under exact.
    let t = f.one_test("", "42\n");
    let v = f.judge_json("sh", "echo '42   '; echo; echo", &strs(&t));
    assert_eq!(v["verdict"], "accepted", "{v}");
    let mut exact = strs(&t);
    exact.extend(["--compare", "exact"]);
    let v = f.judge_json("sh", "echo '42   '; echo; echo", &exact);
    assert_eq!(v["verdict"], "wrong_answer", "{v}");
}

#[test]
fn a_failing_compile_is_a_compilation_error_with_the_compiler_output() {
    let f = Fixture::new();
    let t = f.one_test("", "");
    let out = f.judge(
        "shc",
        "if then fi (",
        &[&strs(&t)[..], &["--json"]].concat(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "compilation_error", "{v}");
    assert_eq!(v["status"]["id"], 6);
    assert_eq!(v["compile"]["verdict"], "compilation_error");
    assert!(
        v["compile"]["output"]
            .as_str()
            .unwrap()
            .contains("syntax error"),
        "{v}"
    );
    assert_eq!(
        v["tests"].as_array().unwrap().len(),
        0,
        "no test runs after a CE"
    );
}

#[test]
fn a_compiled_program_runs_with_read_only_artifacts_and_compiler_options() {
    let f = Fixture::new();
    let t = f.one_test("", "ro\n");
    let src = "echo x >> prog 2>/dev/null && echo rw || echo ro";
    let mut args = strs(&t);
    args.extend(["--compiler-options", "-O2 -DX"]);
    let v = f.judge_json("shc", src, &args);
    assert_eq!(v["compile"]["verdict"], "accepted", "{v}");
    assert_eq!(v["compile"]["output"], "compiled -O2 -DX\n", "{v}");
    assert_eq!(
        v["verdict"], "accepted",
        "the artifact must not be writable: {v}"
    );
}

#[test]
fn runtime_errors_carry_judge0_ids_by_exit_code_or_signal() {
    let f = Fixture::new();
    for (src, id, desc) in [
        ("exit 3", 11, "Runtime Error (NZEC)"),
        ("kill -SEGV $$", 7, "Runtime Error (SIGSEGV)"),
        ("kill -FPE $$", 9, "Runtime Error (SIGFPE)"),
        ("kill -ABRT $$", 10, "Runtime Error (SIGABRT)"),
        ("kill -USR1 $$", 12, "Runtime Error (Other)"),
    ] {
        let v = f.judge_json("sh", src, &[]);
        assert_eq!(v["verdict"], "runtime_error", "{src}: {v}");
        assert_eq!(v["status"]["id"], id, "{src}: {v}");
        assert_eq!(v["status"]["description"], desc, "{src}: {v}");
    }
}

#[test]
fn limits_give_time_memory_and_output_verdicts() {
    let f = Fixture::new();
    // A generous wall limit: on a loaded host the loop gets a fraction of a CPU, and the
    // CPU limit is what is under test.
    let v = f.judge_json("sh", "while :; do :; done", &["--wall-time", "30"]);
    assert_eq!(
        (v["verdict"].as_str(), v["status"]["id"].as_u64()),
        (Some("time_limit"), Some(5)),
        "{v}"
    );
    let cpu = v["tests"][0]["cpu_time"].as_f64().unwrap();
    assert!(
        (1.0..1.3).contains(&cpu),
        "stopped at the manifest's 1 s: {cpu}"
    );
    let v = f.judge_json(
        "sh",
        "while :; do :; done",
        &["--time", "0.3", "--wall-time", "30"],
    );
    let cpu = v["tests"][0]["cpu_time"].as_f64().unwrap();
    assert!(
        (0.3..0.55).contains(&cpu),
        "--time overrides the manifest: {cpu}"
    );
    if cgroups_usable() {
        let v = f.judge_json("sh", "/probes/alloc 200", &["--memory", "48M"]);
        assert_eq!(v["verdict"], "memory_limit", "{v}");
        assert_eq!(v["status"]["id"], 12, "{v}");
    }
    let v = f.judge_json("sh", "yes", &["--output-limit", "64K"]);
    assert_eq!(
        (v["verdict"].as_str(), v["status"]["id"].as_u64()),
        (Some("output_limit"), Some(8)),
        "{v}"
    );
}

#[test]
fn a_forbidden_call_under_strict_is_a_security_violation() {
    let f = Fixture::new();
    let v = f.judge_json(
        "sh",
        "exec /probes/seccomp_probe ptrace",
        &["--seccomp", "strict"],
    );
    assert_eq!(v["verdict"], "security_violation", "{v}");
    assert_eq!(
        v["tests"][0]["message"], "forbidden system call ptrace",
        "{v}"
    );
}

fn tests_dir(f: &Fixture, n: usize) -> PathBuf {
    for i in 1..=n {
        // Every 7th test expects a wrong sum, so verdicts differ between tests.
        let expected = if i % 7 == 0 { i * 2 + 1 } else { i * 2 };
        f.file(&format!("tests/t{i}.in"), &format!("{i} {i}\n"));
        f.file(&format!("tests/t{i}.out"), &format!("{expected}\n"));
    }
    f.dir.path().join("tests")
}

fn verdicts(v: &Value) -> Vec<(String, String)> {
    v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().into(),
                t["verdict"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn a_tests_dir_runs_in_natural_order_and_parallel_gives_the_same_verdicts() {
    let f = Fixture::new();
    let dir = tests_dir(&f, 30);
    let dir = dir.to_str().unwrap();
    let serial = f.judge_json("shc", SUM, &["--tests", dir, "--parallel", "1"]);
    let parallel = f.judge_json("shc", SUM, &["--tests", dir, "--parallel", "2"]);
    let names: Vec<String> = (1..=30).map(|i| format!("t{i}")).collect();
    let got: Vec<String> = verdicts(&serial).into_iter().map(|(n, _)| n).collect();
    assert_eq!(got, names, "natural order");
    assert_eq!(verdicts(&serial), verdicts(&parallel));
    let wrong = verdicts(&serial)
        .iter()
        .filter(|(_, v)| v == "wrong_answer")
        .count();
    assert_eq!(wrong, 4, "t7 t14 t21 t28");
    assert_eq!(serial["verdict"], "wrong_answer");
    assert_eq!(serial["passed"], 26);
}

#[test]
fn progress_prints_one_line_per_finished_test_and_the_json_stays_clean() {
    let f = Fixture::new();
    let dir = tests_dir(&f, 9);
    let out = f.judge(
        "sh",
        SUM,
        &[
            "--tests",
            dir.to_str().unwrap(),
            "--progress",
            "--json",
            "--parallel",
            "2",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut counts: Vec<usize> = stderr
        .lines()
        .map(|l| {
            let rest = l.strip_prefix("judgebox: test ").expect(l);
            let (done, total) = rest.split_once(' ').unwrap().0.split_once('/').unwrap();
            assert_eq!(total, "9", "{l}");
            done.parse().unwrap()
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=9).collect::<Vec<_>>(), "{stderr}");
    assert!(stderr.contains("t7: wrong_answer"), "{stderr}");
    assert!(stderr.contains("t1: accepted, cpu "), "{stderr}");
    // stdout is still exactly one JSON document.
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tests"].as_array().unwrap().len(), 9);
    // Without the flag (stderr is not a terminal here) nothing is printed.
    let quiet = f.judge("sh", SUM, &["--tests", dir.to_str().unwrap(), "--json"]);
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
}

#[test]
fn stop_on_first_failure_skips_the_rest() {
    let f = Fixture::new();
    let dir = tests_dir(&f, 10);
    let v = f.judge_json(
        "sh",
        SUM,
        &[
            "--tests",
            dir.to_str().unwrap(),
            "--parallel",
            "1",
            "--stop-on-first-failure",
        ],
    );
    let got = verdicts(&v);
    assert_eq!(got[6].1, "wrong_answer", "{v}");
    assert_eq!(got.len(), 10, "{v}");
    assert!(
        got[7..].iter().all(|(_, verdict)| verdict == "skipped"),
        "{v}"
    );
    assert!(
        got[..6].iter().all(|(_, verdict)| verdict == "accepted"),
        "{v}"
    );
}

/// Every run cgroup of a judge process (`run-<pid>-...`) that still exists.
fn cgroups_of(pid: u32) -> Vec<String> {
    let prefix = format!("run-{pid}-");
    let mut found = Vec::new();
    let mut dirs = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) {
                    found.push(entry.path().display().to_string());
                }
                dirs.push(entry.path());
            }
        }
    }
    found
}

#[test]
fn no_cgroup_outlives_a_judging_even_with_skipped_tests() {
    // Tests take pre-created cgroups and hand them to a remover thread; skipped tests
    // must still consume (and retire) theirs. Enough tests after the first failure (t7)
    // that the other worker cannot have finished them all before it is known.
    let f = Fixture::new();
    let dir = tests_dir(&f, 60);
    let child = Command::new(env!("CARGO_BIN_EXE_judgebox"))
        .args(["judge", "--lang", "sh"])
        .arg(f.file("src/main.sh", SUM))
        .arg("--manifests")
        .arg(f.dir.path().join("manifests"))
        .arg("--rootfs")
        .arg(rootfs())
        .args([
            "--tests",
            dir.to_str().unwrap(),
            "--parallel",
            "2",
            "--stop-on-first-failure",
            "--json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(verdicts(&v).iter().any(|(_, x)| x == "skipped"), "{v}");
    assert_eq!(
        cgroups_of(pid),
        Vec::<String>::new(),
        "run cgroups left behind"
    );
}

#[test]
fn every_test_sees_only_lo_down_even_though_a_worker_reuses_its_netns() {
    // Each worker joins one network namespace for all its tests: a test that tries to
    // change it (no CAP_NET_ADMIN) must fail, and the next test must see it unchanged.
    let f = Fixture::new();
    let dir = tests_dir(&f, 6);
    let src = "ip link set lo up 2>/dev/null && echo changed; ip -o link show | cut -d' ' -f2,3; read a b; echo $((a + b))";
    let v = f.judge_json(
        "sh",
        src,
        &[
            "--tests",
            dir.to_str().unwrap(),
            "--parallel",
            "2",
            "--compare",
            "exact",
        ],
    );
    for t in v["tests"].as_array().unwrap() {
        let out = t["stdout"].as_str().unwrap();
        let first = out.lines().next().unwrap_or("");
        assert_eq!(first, "lo: <LOOPBACK>", "test {}: {out:?}", t["name"]);
        assert_eq!(
            out.lines().count(),
            2,
            "only lo, and lo stays down: {out:?}"
        );
    }
}

#[test]
fn human_output_is_a_table_with_a_summary() {
    let f = Fixture::new();
    let dir = tests_dir(&f, 8);
    let out = f.judge("sh", SUM, &["--tests", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" t7 ") && text.contains("WA"), "{text}");
    assert!(
        text.contains("wrong_answer: 7/8 tests accepted (Judge0 4 Wrong Answer)"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_input_is_refused_with_exit_2_and_a_clear_message() {
    let f = Fixture::new();
    let err = |out: &Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let out = f.judge("cobol", SUM, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err(&out).contains("unknown language 'cobol'") && err(&out).contains("sh, shc"),
        "{}",
        err(&out)
    );

    let empty = tempfile::tempdir().unwrap();
    let out = f.judge("sh", SUM, &["--tests", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("no NAME.in files"), "{}", err(&out));

    let missing = f.dir.path().join("nope.in");
    let out = f.judge("sh", SUM, &["--stdin", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("nope.in"), "{}", err(&out));

    let out = Command::new(env!("CARGO_BIN_EXE_judgebox"))
        .args([
            "judge",
            "--lang",
            "sh",
            "/nonexistent/main.sh",
            "--manifests",
        ])
        .arg(f.dir.path().join("manifests"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("/nonexistent/main.sh"), "{}", err(&out));
}

#[test]
fn a_language_whose_image_is_missing_says_how_to_get_it() {
    let store = tempfile::tempdir().unwrap();
    let src = store.path().join("main.py");
    std::fs::write(&src, "print(1)").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_judgebox"))
        .args(["judge", "--lang", "python3"])
        .arg(&src)
        .arg("--root")
        .arg(store.path().join("store"))
        .env_remove("JUDGEBOX_MANIFESTS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("judgebox lang build python3"), "{stderr}");
}

// ---- Hardening (issue 15): hostile inputs, bounded memory, escaped output ----

/// A root-only host file whose marker must never show up in anything judgebox prints.
const MARKER: &str = "HOST-SECRET-7f3a91";

fn host_secret(f: &Fixture) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = f.file("host/secret", &format!("{MARKER}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// `judgebox judge --lang LANG SOURCE ...` with SOURCE used as is (it may be a symlink).
fn judge_source(f: &Fixture, lang: &str, source: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_judgebox"))
        .args(["judge", "--lang", lang])
        .arg(source)
        .arg("--manifests")
        .arg(f.dir.path().join("manifests"))
        .arg("--rootfs")
        .arg(rootfs())
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Exit 2, an error naming `name` and `why`, and the secret nowhere in the output.
fn assert_refused(out: &Output, name: &str, why: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains(MARKER) && !stderr.contains(MARKER),
        "host file leaked: {stdout} {stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{stdout} {stderr}");
    assert!(
        stderr.contains(name) && stderr.contains(why),
        "expected {name:?} and {why:?} in: {stderr}"
    );
}

#[test]
fn symlinked_inputs_are_refused_and_no_host_file_is_read() {
    use std::os::unix::fs::symlink;
    let f = Fixture::new();
    let secret = host_secret(&f);
    let echo_stdin = "cat";

    // A tests dir whose input, or expected output, is a symlink to the host file.
    for (link, other) in [("1.in", "1.out"), ("2.out", "2.in")] {
        let dir = f.dir.path().join(format!("tests-{link}"));
        std::fs::create_dir_all(&dir).unwrap();
        symlink(&secret, dir.join(link)).unwrap();
        std::fs::write(dir.join(other), format!("{MARKER}\n")).unwrap();
        let out = f.judge(
            "sh",
            echo_stdin,
            &["--tests", dir.to_str().unwrap(), "--json"],
        );
        assert_refused(&out, link, "symlink");
    }

    // --stdin and --expected naming a symlink.
    let link = f.dir.path().join("stdin-link");
    symlink(&secret, &link).unwrap();
    let plain = f.file("plain.in", "1 2\n");
    for flag in ["--stdin", "--expected"] {
        let other = if flag == "--stdin" {
            "--expected"
        } else {
            "--stdin"
        };
        let out = f.judge(
            "sh",
            echo_stdin,
            &[flag, link.to_str().unwrap(), other, plain.to_str().unwrap()],
        );
        assert_refused(&out, "stdin-link", "symlink");
    }

    // A source that is a symlink: neither the interpreter nor a compiler may see it.
    let source = f.dir.path().join("main.sh");
    symlink(&secret, &source).unwrap();
    for lang in ["sh", "shc"] {
        let out = judge_source(&f, lang, &source, &["--json"]);
        assert_refused(&out, "main.sh", "symlink");
    }
}

/// Runs `cmd` and fails the test if it is still running after `secs` (then kills it).
fn output_within(mut cmd: Command, secs: u64) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("judgebox hung for {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// `judgebox judge` of a program that echoes its stdin, to be given its tests.
fn cat_judge(f: &Fixture) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_judgebox"));
    cmd.args(["judge", "--lang", "sh"])
        .arg(f.file("src/main.sh", "cat"))
        .arg("--manifests")
        .arg(f.dir.path().join("manifests"))
        .arg("--rootfs")
        .arg(rootfs());
    cmd
}

#[test]
fn a_fifo_among_the_inputs_is_refused_without_hanging() {
    let f = Fixture::new();
    for fifo_name in ["1.in", "1.out"] {
        let dir = f.dir.path().join(format!("fifo-{fifo_name}"));
        std::fs::create_dir_all(&dir).unwrap();
        mkfifo(&dir.join(fifo_name));
        let other = if fifo_name == "1.in" { "1.out" } else { "1.in" };
        std::fs::write(dir.join(other), "1\n").unwrap();
        let mut cmd = cat_judge(&f);
        cmd.arg("--tests").arg(&dir);
        let out = output_within(cmd, 20);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(fifo_name) && stderr.contains("fifo"),
            "{stderr}"
        );
    }
    let fifo = f.dir.path().join("stdin.fifo");
    mkfifo(&fifo);
    let mut cmd = cat_judge(&f);
    cmd.arg("--stdin").arg(&fifo);
    let out = output_within(cmd, 20);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin.fifo"));
}

/// Peak resident memory (KiB) of judgebox itself, polled from its VmHWM (monotonic, so
/// the last reading before exit is its peak up to then), and its stdout. wait4's
/// ru_maxrss cannot be used: it keeps the forking test process's size across exec.
fn peak_rss_kib(mut cmd: Command) -> (u64, Vec<u8>) {
    use std::io::Read;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).unwrap();
        v
    });
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        let hwm = std::fs::read_to_string(&status).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        peak = peak.max(hwm.unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(peak > 0, "VmHWM never read");
    (peak, reader.join().unwrap())
}

#[test]
fn the_judges_memory_stays_bounded_with_huge_outputs_and_expected_files() {
    const OUTPUT: u64 = 64 << 20;
    const TESTS: usize = 24;
    let f = Fixture::new();
    let dir = f.dir.path().join("big");
    std::fs::create_dir_all(&dir).unwrap();
    // The even tests expect exactly what the program prints (64 MiB, one file hard-linked);
    // the odd ones a sparse 4 GiB .out (judgebox used to read each .out whole).
    let expected = f.dir.path().join("expected-64M");
    let line = b"abcdefghijklmno\n";
    let text: Vec<u8> = line.iter().copied().cycle().take(OUTPUT as usize).collect();
    std::fs::write(&expected, &text).unwrap();
    drop(text);
    for i in 1..=TESTS {
        std::fs::write(dir.join(format!("{i}.in")), "").unwrap();
        let out = dir.join(format!("{i}.out"));
        if i % 2 == 0 {
            std::fs::hard_link(&expected, &out).unwrap();
        } else {
            std::fs::File::create(&out)
                .unwrap()
                .set_len(4 << 30)
                .unwrap();
        }
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_judgebox"));
    cmd.args(["judge", "--lang", "sh"])
        .arg(f.file(
            "src/main.sh",
            &format!("yes abcdefghijklmno | head -c {OUTPUT}"),
        ))
        .arg("--manifests")
        .arg(f.dir.path().join("manifests"))
        .arg("--rootfs")
        .arg(rootfs())
        .arg("--tests")
        .arg(&dir)
        .args(["--parallel", "2", "--output-limit", "65M", "--time", "10"])
        .args(["--wall-time", "60", "--json"]);
    let (peak_kib, stdout) = peak_rss_kib(cmd);
    let v: Value = serde_json::from_slice(&stdout).expect("one JSON object");
    for (i, (name, verdict)) in verdicts(&v).iter().enumerate() {
        let want = if (i + 1) % 2 == 0 {
            "accepted"
        } else {
            "wrong_answer"
        };
        assert_eq!(verdict, want, "test {name}: {v}");
    }
    eprintln!(
        "judge peak RSS: {:.1} MiB for {TESTS} tests of 64 MiB output",
        peak_kib as f64 / 1024.0
    );
    assert!(
        peak_kib <= 64 * 1024,
        "judgebox peaked at {peak_kib} KiB for {TESTS} tests of 64 MiB output"
    );
}

#[test]
fn control_characters_in_names_are_escaped_in_human_output() {
    let f = Fixture::new();
    let dir = f.dir.path().join("ctl");
    std::fs::create_dir_all(&dir).unwrap();
    // A name that, printed raw, would end its row and forge an accepted one below it.
    let forged = "a\n   9  forged       AC     0.000    0.000   0.1 MiB  \x1b[2K";
    for name in ["1", forged] {
        std::fs::write(dir.join(format!("{name}.in")), "1 1\n").unwrap();
        std::fs::write(dir.join(format!("{name}.out")), "3\n").unwrap();
    }
    let out = f.judge("sh", SUM, &["--tests", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\x1b'), "raw ESC in: {text:?}");
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("9  forged")),
        "a forged row: {text}"
    );
    assert!(text.contains("a\\n   9  forged"), "{text}");
    assert!(text.contains("\\x1b[2K"), "{text}");
    // Language, header, one row per test, summary.
    assert_eq!(text.lines().count(), 5, "{text}");
    // Progress lines (stderr) escape the name too: one line per test, nothing forged.
    let out = f.judge("sh", SUM, &["--tests", dir.to_str().unwrap(), "--progress"]);
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(!progress.contains('\x1b'), "raw ESC in: {progress:?}");
    assert_eq!(progress.lines().count(), 2, "{progress}");
    assert!(
        progress.contains("/2 a\\n   9  forged"),
        "escaped name in: {progress}"
    );

    // Error messages naming a path escape it too.
    let missing = f.dir.path().join("no\x1b[31mpe\n.in");
    let out = f.judge("sh", SUM, &["--stdin", missing.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !stderr.contains('\x1b') && stderr.trim_end().lines().count() == 1,
        "{stderr:?}"
    );
    assert!(stderr.contains("no\\x1b[31mpe\\n.in"), "{stderr}");
}

/// The program's pid in each test, in test order (the script prints `$$` first).
fn pids_of(v: &Value) -> Vec<String> {
    v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["stdout"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn a_reused_sandbox_shows_a_test_nothing_of_the_previous_one() {
    let f = Fixture::new();
    for (name, input, expected) in [
        ("1", "leave", "left"),
        ("2", "check", "clean"),
        ("3", "leave-odd", "left"),
        ("4", "check", "clean"),
        ("5", "leave", "left"),
        ("6", "check", "clean"),
    ] {
        f.file(&format!("tests/{name}.in"), &format!("{input}\n"));
        f.file(&format!("tests/{name}.out"), &format!("{expected}\n"));
    }
    let tests = f.dir.path().join("tests").display().to_string();
    let src = "read what; exec /probes/leftovers $what";
    for mode in [None, Some("--no-reuse")] {
        let mut args = vec!["--tests", &tests, "--parallel", "1"];
        args.extend(mode);
        let v = f.judge_json("sh", src, &args);
        // `check` prints what it still sees of an earlier test (files in /box, /tmp,
        // /dev/shm, a directory tree, /box's mode or xattr, SysV shm and message queues,
        // a POSIX queue, an abstract socket, a background process) and fails; `leave`'s
        // mount attempt must fail too. A warm sandbox empties a scratch dir in place
        // after `leave` and mounts it anew after `leave-odd`: both must leave nothing.
        assert_eq!(v["verdict"], "accepted", "{mode:?}: {v}");
        for t in v["tests"].as_array().unwrap() {
            // A reused cgroup's figures start after the previous test's files are gone
            // (what they freed must not hide this test's own use).
            let peak = t["memory_peak"].as_f64().unwrap_or(0.0);
            assert!(peak > 0.0, "{mode:?}: no memory figure: {t}");
        }
    }
    // A later submission (another judge) sees nothing of an earlier one either.
    let one = f.one_test("check\n", "clean\n");
    let v = f.judge_json("sh", src, &strs(&one));
    assert_eq!(v["verdict"], "accepted", "{v}");
}

#[test]
fn tests_of_one_worker_share_one_warm_sandbox_unless_told_not_to() {
    let f = Fixture::new();
    for i in 1..=4 {
        f.file(&format!("tests/{i}.in"), "");
    }
    let tests = f.dir.path().join("tests").display().to_string();
    let v = f.judge_json("sh", "echo $$", &["--tests", &tests, "--parallel", "1"]);
    let pids = pids_of(&v);
    let mut unique = pids.clone();
    unique.dedup();
    assert_eq!(
        unique.len(),
        4,
        "one pid namespace, a new program each test: {pids:?}"
    );
    let v = f.judge_json(
        "sh",
        "echo $$",
        &["--tests", &tests, "--parallel", "1", "--no-reuse"],
    );
    assert_eq!(
        pids_of(&v),
        ["2", "2", "2", "2"],
        "a fresh sandbox per test: {v}"
    );
}

#[test]
fn a_test_that_ooms_forkbombs_or_spins_does_not_change_the_next_one() {
    let f = Fixture::new();
    let cases = [
        "sum 1 2", "oom", "sum 2 3", "bomb", "sum 3 4", "spin", "sum 4 5",
    ];
    for (i, c) in cases.iter().enumerate() {
        f.file(&format!("tests/{}.in", i + 1), &format!("{c}\n"));
        if let Some(rest) = c.strip_prefix("sum ") {
            let (a, b) = rest.split_once(' ').unwrap();
            let sum: i64 = a.parse::<i64>().unwrap() + b.parse::<i64>().unwrap();
            f.file(&format!("tests/{}.out", i + 1), &format!("{sum}\n"));
        } else {
            f.file(&format!("tests/{}.out", i + 1), "never\n");
        }
    }
    let tests = f.dir.path().join("tests").display().to_string();
    let src = "read what a b; case $what in oom) exec /probes/alloc 200;; \
               bomb) exec /probes/forkbomb;; spin) while :; do :; done;; \
               *) echo $((a + b));; esac";
    let verdicts = |extra: Option<&str>| {
        let mut args = vec!["--tests", &tests, "--parallel", "1", "--time", "0.5"];
        args.extend(extra);
        let v = f.judge_json("sh", src, &args);
        let t = v["tests"].as_array().unwrap().clone();
        t.iter()
            .map(|t| t["verdict"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let reused = verdicts(None);
    for i in [0, 2, 4, 6] {
        assert_eq!(reused[i], "accepted", "test {}: {reused:?}", i + 1);
    }
    assert_eq!(reused[1], "memory_limit", "{reused:?}");
    assert_eq!(reused[5], "time_limit", "{reused:?}");
    assert_eq!(
        reused,
        verdicts(Some("--no-reuse")),
        "same verdicts without reuse"
    );
}

#[test]
fn verdicts_and_figures_match_with_and_without_reuse_over_100_tests() {
    let f = Fixture::new();
    for i in 1..=100 {
        f.file(&format!("tests/{i}.in"), &format!("{i} {}\n", i * 2));
        let expected = if i % 10 == 0 { 0 } else { i * 3 };
        f.file(&format!("tests/{i}.out"), &format!("{expected}\n"));
    }
    let tests = f.dir.path().join("tests").display().to_string();
    let judged = |extra: Option<&str>| {
        let mut args = vec!["--tests", &tests, "--parallel", "2"];
        args.extend(extra);
        f.judge_json("sh", SUM, &args)["tests"]
            .as_array()
            .unwrap()
            .clone()
    };
    let (reused, fresh) = (judged(None), judged(Some("--no-reuse")));
    let mem = |t: &Value| t["memory_peak"].as_f64().unwrap_or(0.0);
    // A fresh sandbox's figure also counts its init's setup; a reused one's only the
    // program. Neither may read low: a memory cgroup takes charges 64 pages at a time,
    // and a reused one's leftover pre-charge once hid that much, down to a peak of 0.
    let smallest_fresh = fresh.iter().map(mem).fold(f64::INFINITY, f64::min);
    for (r, c) in reused.iter().zip(&fresh) {
        assert_eq!(r["verdict"], c["verdict"], "{r} vs {c}");
        assert_eq!(r["stdout"], c["stdout"], "{r} vs {c}");
        assert!(
            mem(r) <= mem(c) * 2.0 + 1e6 && mem(c) <= mem(r) * 2.0 + 1e6,
            "memory figures far apart: {r} vs {c}"
        );
        assert!(
            mem(r) * 2.0 >= smallest_fresh && mem(r) >= 64.0 * 4096.0,
            "a reused sandbox's memory figure reads low: {r} (fresh ones from {smallest_fresh})"
        );
        let cpu = |t: &Value| t["cpu_time"].as_f64().unwrap();
        assert!(cpu(r) < 0.1 && cpu(c) < 0.1, "{r} vs {c}");
    }
    let wrong = reused
        .iter()
        .filter(|t| t["verdict"] == "wrong_answer")
        .count();
    assert_eq!(wrong, 10, "every tenth test expects a wrong sum");
}
