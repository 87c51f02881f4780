//! The isolate-compatible front end, driven as judges drive isolate: through an `isolate`
//! symlink to the binary (and `judgebox isolate`), with a temporary config file, box root
//! and lock root per test, checking printed dirs, files, meta keys, verdicts and exit codes.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_judgebox");

/// Each fixture gets its own uid range, so rlimits per uid never meet across tests.
static NEXT_RANGE: AtomicU32 = AtomicU32::new(0);

struct Fixture {
    dir: tempfile::TempDir,
    config: PathBuf,
    isolate: PathBuf,
    first_uid: u32,
}

impl Fixture {
    fn new() -> Fixture {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(euid, 0, "the isolate tests must run as root");
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let first_uid = 62000 + 20 * NEXT_RANGE.fetch_add(1, Ordering::SeqCst);
        let config = dir.path().join("isolate.cf");
        std::fs::write(
            &config,
            format!(
                "# test config\nbox_root = {0}/boxes\nlock_root = {0}/locks\ncg_root = auto:/run/isolate/cgroup\nfirst_uid = {1}\nfirst_gid = {1}\nnum_boxes = 10\n",
                dir.path().display(),
                first_uid
            ),
        )
        .unwrap();
        let isolate = dir.path().join("bin/isolate");
        std::fs::create_dir_all(isolate.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(BIN, &isolate).unwrap();
        Fixture {
            dir,
            config,
            isolate,
            first_uid,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.isolate);
        c.args(args)
            .env("ISOLATE_CONFIG_FILE", &self.config)
            .stdin(Stdio::null());
        c
    }

    fn isolate(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn box_dir(&self, id: u32) -> PathBuf {
        self.dir.path().join(format!("boxes/{id}/box"))
    }

    fn init(&self, id: u32, cg: bool) -> PathBuf {
        let id_s = id.to_string();
        let mut args = vec!["-b", &id_s, "--init"];
        if cg {
            args.insert(0, "--cg");
        }
        let out = self.isolate(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let printed = PathBuf::from(text(&out.stdout).trim());
        assert_eq!(printed, self.dir.path().join(format!("boxes/{id}")));
        printed
    }

    fn write(&self, id: u32, name: &str, content: &str) {
        std::fs::write(self.box_dir(id).join(name), content).unwrap();
    }

    /// Compiles a small C program into the box with the host's gcc.
    fn compile(&self, id: u32, name: &str, source: &str) {
        let src = self.dir.path().join(format!("{name}.c"));
        std::fs::write(&src, source).unwrap();
        let out = Command::new("gcc")
            .args(["-O0", "-o"])
            .arg(self.box_dir(id).join(name))
            .arg(&src)
            .output()
            .expect("gcc");
        assert!(out.status.success(), "gcc: {}", text(&out.stderr));
    }

    fn meta_path(&self) -> PathBuf {
        self.dir.path().join("meta.txt")
    }

    /// Processes still running as one of this fixture's box uids.
    fn leftover_processes(&self) -> Vec<String> {
        let range = self.first_uid..self.first_uid + 10;
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(meta) = std::fs::metadata(entry.path()) {
                if entry.file_name().to_string_lossy().parse::<u32>().is_ok()
                    && range.contains(&meta.uid())
                {
                    found.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        found
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read_meta(path: &Path) -> HashMap<String, String> {
    let content = std::fs::read_to_string(path).unwrap();
    content
        .lines()
        .map(|l| {
            let (k, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("bad meta line {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn assert_meta_time_format(m: &HashMap<String, String>) {
    for key in ["time", "time-wall"] {
        let v = &m[key];
        let (s, ms) = v.split_once('.').unwrap();
        assert!(
            s.parse::<u64>().is_ok() && ms.len() == 3 && ms.parse::<u32>().is_ok(),
            "{key}:{v}"
        );
    }
    for key in ["max-rss", "csw-voluntary", "csw-forced"] {
        assert!(m[key].parse::<u64>().is_ok(), "{key}:{}", m[key]);
    }
}

#[test]
fn judge0_worker_sequence() {
    let f = Fixture::new();
    let id = 3;
    let workdir = f.init(id, true);
    let boxdir = workdir.join("box");
    assert_eq!(std::fs::metadata(&boxdir).unwrap().uid(), f.first_uid + id);
    f.write(id, "main.c", "#include <stdio.h>\nint main(void){int a,b;if(scanf(\"%d %d\",&a,&b)!=2)return 1;printf(\"%d\\n\",a+b);return 0;}\n");
    f.write(id, "compile.sh", "/usr/bin/gcc -O2 -o a.out main.c\n");
    f.write(id, "run.sh", "./a.out\n");
    let meta = f.dir.path().join("metadata.txt");
    let meta_s = meta.to_str().unwrap();
    let id_s = id.to_string();
    let compile = f.isolate(&[
        "--cg",
        "-s",
        "-b",
        &id_s,
        "-M",
        meta_s,
        "--stderr-to-stdout",
        "-i",
        "/dev/null",
        "-t",
        "5",
        "-x",
        "0",
        "-w",
        "10",
        "-k",
        "128000",
        "-p120",
        "--cg-mem=512000",
        "-f",
        "4096",
        "-E",
        "HOME=/tmp",
        "-E",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "-d",
        "/etc:noexec",
        "--run",
        "--",
        "/bin/bash",
        "compile.sh",
    ]);
    assert_eq!(
        compile.status.code(),
        Some(0),
        "compile: {}{}",
        text(&compile.stdout),
        text(&compile.stderr)
    );
    assert!(
        compile.stderr.is_empty(),
        "-s prints nothing on success: {}",
        text(&compile.stderr)
    );
    let m = read_meta(&meta);
    assert_meta_time_format(&m);
    assert_eq!(m["exitcode"], "0");
    assert!(m["cg-mem"].parse::<u64>().unwrap() > 0);
    assert!(boxdir.join("a.out").is_file());

    let stdin = f.dir.path().join("stdin.txt");
    std::fs::write(&stdin, "2 40\n").unwrap();
    let run = f
        .command(&[
            "--cg",
            "-s",
            "-b",
            &id_s,
            "-M",
            meta_s,
            "-t",
            "2",
            "-x",
            "1",
            "-w",
            "5",
            "-k",
            "64000",
            "-p60",
            "--cg-timing",
            "--cg-mem=128000",
            "-f",
            "1024",
            "-E",
            "HOME=/tmp",
            "-E",
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "-E",
            "LANG",
            "-d",
            "/etc:noexec",
            "--run",
            "--",
            "/bin/bash",
            "run.sh",
        ])
        .stdin(std::fs::File::open(&stdin).unwrap())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "run: {}", text(&run.stderr));
    assert_eq!(text(&run.stdout), "42\n");
    let m = read_meta(&meta);
    assert_eq!(m["exitcode"], "0");
    assert!(!m.contains_key("status"));

    let cleanup = f.isolate(&["--cg", "-b", &id_s, "--cleanup"]);
    assert_eq!(cleanup.status.code(), Some(0));
    assert!(!workdir.exists());
    let again = f.isolate(&["--cg", "-b", &id_s, "--run", "--", "/bin/true"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("Box not found, did you run `isolate --cg --init'?"));
}

#[test]
fn cms_style_long_options() {
    let f = Fixture::new();
    f.init(5, true);
    f.write(5, "isolated.stdin", "hello cms\n");
    std::fs::create_dir(f.box_dir(5).join("work")).unwrap();
    let meta = f.meta_path();
    let out = f.isolate(&[
        "--cg",
        "--cg-timing",
        "--cg-mem=262144",
        "--box-id=5",
        "--time=2",
        "--wall-time=4",
        "--extra-time=0.5",
        "--stdin=isolated.stdin",
        "--stdout=isolated.stdout",
        "--stderr=isolated.stderr",
        &format!("--meta={}", meta.display()),
        "--dir=/etc",
        "--chdir=work",
        "--processes=8",
        "--env=HOME=/box",
        "--run",
        "--",
        "/bin/sh",
        "-c",
        "cat; pwd; echo to-stderr >&2; test -r /etc/passwd && echo etc-visible",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("OK ("),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains(" sec real, "));
    let stdout = std::fs::read_to_string(f.box_dir(5).join("isolated.stdout")).unwrap();
    assert_eq!(stdout, "hello cms\n/box/work\netc-visible\n");
    let stderr = std::fs::read_to_string(f.box_dir(5).join("isolated.stderr")).unwrap();
    assert_eq!(stderr, "to-stderr\n");
    let owner = std::fs::metadata(f.box_dir(5).join("isolated.stdout"))
        .unwrap()
        .uid();
    assert_eq!(
        owner,
        f.first_uid + 5,
        "output files belong to the box user"
    );
    assert_eq!(read_meta(&meta)["exitcode"], "0");
}

#[test]
fn homebrew_judge_through_judgebox_isolate() {
    let f = Fixture::new();
    f.init(3, true);
    f.compile(
        3,
        "a.out",
        "#include <stdio.h>\nint main(void){puts(\"out\");fprintf(stderr,\"err\\n\");return 0;}\n",
    );
    let out = Command::new(BIN)
        .args([
            "isolate",
            "--box-id",
            "3",
            "--meta",
            f.meta_path().to_str().unwrap(),
            "--cg",
            "--cg-mem",
            "256000",
            "--dir=/etc:maybe",
            "--fsize",
            "1024",
            "--processes=64",
            "--time",
            "1",
            "--wall-time",
            "3",
            "--stdout=stdout.txt",
            "--stderr-to-stdout",
            "--run",
            "--",
            "./a.out",
        ])
        .env("ISOLATE_CONFIG_FILE", &f.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let got = std::fs::read_to_string(f.box_dir(3).join("stdout.txt")).unwrap();
    assert!(got == "out\nerr\n" || got == "err\nout\n", "{got:?}");
    assert_eq!(read_meta(&f.meta_path())["exitcode"], "0");
}

fn run_verdict(
    f: &Fixture,
    id: u32,
    extra: &[&str],
    cmd: &[&str],
) -> (Output, HashMap<String, String>) {
    let id_s = id.to_string();
    let meta = f.dir.path().join(format!("meta-{id}.txt"));
    let mut args = vec!["-b", &id_s, "-M", meta.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push("--run");
    args.push("--");
    args.extend_from_slice(cmd);
    let out = f.isolate(&args);
    let m = read_meta(&meta);
    (out, m)
}

#[test]
fn verdicts_ok_re_sg_to() {
    let f = Fixture::new();
    f.init(1, false);
    let (out, m) = run_verdict(&f, 1, &[], &["/bin/sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!((m["status"].as_str(), m["exitcode"].as_str()), ("RE", "3"));
    assert_eq!(m["message"], "Exited with error status 3");
    assert_eq!(text(&out.stderr).trim(), "Exited with error status 3");

    f.compile(
        1,
        "segv",
        "int main(void){volatile int *p=0;*p=1;return 0;}\n",
    );
    let (out, m) = run_verdict(&f, 1, &[], &["./segv"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!((m["status"].as_str(), m["exitsig"].as_str()), ("SG", "11"));
    assert_eq!(m["message"], "Caught fatal signal 11");

    let started = Instant::now();
    let (out, m) = run_verdict(
        &f,
        1,
        &["-t", "0.3", "-w", "5"],
        &["/bin/sh", "-c", "while :; do :; done"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        (m["status"].as_str(), m["message"].as_str()),
        ("TO", "Time limit exceeded")
    );
    assert_eq!(m["killed"], "1");
    assert!(m["time"].parse::<f64>().unwrap() >= 0.3);
    assert!(started.elapsed() < Duration::from_secs(4));

    let (out, m) = run_verdict(&f, 1, &["-t", "2", "-w", "0.3"], &["/bin/sleep", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(m["message"], "Time limit exceeded (wall clock)");
    assert_eq!(m["status"], "TO");

    let (out, m) = run_verdict(
        &f,
        1,
        &["-f", "4", "-o", "yes.txt", "-w", "5"],
        &["/usr/bin/yes"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!((m["status"].as_str(), m["exitsig"].as_str()), ("SG", "25"));
    assert_eq!(
        std::fs::metadata(f.box_dir(1).join("yes.txt"))
            .unwrap()
            .len(),
        4096
    );

    let (out, m) = run_verdict(&f, 1, &["-s"], &["/bin/true"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
    assert_eq!(m["exitcode"], "0");

    let (out, m) = run_verdict(&f, 1, &[], &["/nonexistent-program"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        (m["status"].as_str(), m["exitcode"].as_str()),
        ("RE", "127")
    );
    assert!(text(&out.stderr).contains("execve(\"/nonexistent-program\")"));
}

#[test]
fn memory_hog_is_oom_killed_under_cg_mem() {
    let f = Fixture::new();
    f.init(2, true);
    f.compile(
        2,
        "hog",
        "#include <stdlib.h>\n#include <string.h>\nint main(void){for(int i=0;i<64;i++){char*p=malloc(16<<20);if(!p)return 7;memset(p,1,16<<20);}return 0;}\n",
    );
    let (out, m) = run_verdict(
        &f,
        2,
        &["--cg", "--cg-mem=65536", "-t", "5", "-w", "10"],
        &["./hog"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        m.get("cg-oom-killed").map(String::as_str),
        Some("1"),
        "{m:?}"
    );
    assert_eq!(m["status"], "SG");
    assert_eq!(m["exitsig"], "9");
    let peak: u64 = m["cg-mem"].parse().unwrap();
    assert!(peak > 32 * 1024 && peak <= 80 * 1024, "cg-mem {peak} KB");
}

#[test]
fn fork_bomb_under_p1_cannot_fork_and_leaves_nothing() {
    let f = Fixture::new();
    f.init(4, false);
    f.compile(
        4,
        "bomb",
        "#include <unistd.h>\n#include <stdio.h>\nint main(void){int ok=0;for(int i=0;i<100;i++){pid_t p=fork();if(p==0){for(;;)pause();}if(p>0)ok++;}printf(\"%d\\n\",ok);return ok?1:0;}\n",
    );
    let (out, m) = run_verdict(
        &f,
        4,
        &["-p1", "-t", "2", "-w", "5", "-o", "forks.txt"],
        &["./bomb"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(m["exitcode"], "0");
    assert_eq!(
        std::fs::read_to_string(f.box_dir(4).join("forks.txt")).unwrap(),
        "0\n"
    );
    // With -p 8 it can fork (7 more), and every child is gone after the run.
    let (out, _) = run_verdict(
        &f,
        4,
        &["-p8", "-t", "2", "-w", "5", "-o", "forks.txt"],
        &["./bomb"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(f.box_dir(4).join("forks.txt")).unwrap(),
        "7\n"
    );
    assert!(
        f.leftover_processes().is_empty(),
        "{:?}",
        f.leftover_processes()
    );
}

#[test]
fn bad_setup_is_xx_with_exit_2() {
    let f = Fixture::new();
    f.init(1, false);
    let (out, m) = run_verdict(
        &f,
        1,
        &["-d", "/data=/nonexistent-judgebox-dir"],
        &["/bin/true"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(m["status"], "XX");
    assert!(m["message"].contains("/nonexistent-judgebox-dir"), "{m:?}");
    // Usage errors: exit 2 and isolate's wording.
    let cases: &[(&[&str], &str)] = &[
        (
            &["-b", "10", "--init"],
            "Sandbox ID out of range (allowed: 0-9)",
        ),
        (&["-b", "x", "--init"], "Invalid numeric parameter: x"),
        (&["--run"], "--run mode requires a command to run"),
        (&["-b", "1"], "Please specify an isolate command"),
        (
            &["--cg-mem=100", "--run", "--", "/bin/true"],
            "Options related to control groups require --cg",
        ),
        (
            &["-d", "a:bogus", "--init"],
            "Invalid directory rule 'a:bogus': Unknown option 'bogus'",
        ),
        (
            &["-b", "7", "--run", "--", "/bin/true"],
            "Box not found, did you run `isolate --init'?",
        ),
        (
            &["--cg", "-b", "1", "--run", "--", "/bin/true"],
            "incompatible control group mode",
        ),
        (
            &["-b", "1", "--quota=100,100", "--run", "--", "/bin/true"],
            "--quota must be given to --init",
        ),
        (
            &["--syscalls=1", "-b", "1", "--run", "--", "/bin/true"],
            "judgebox cannot honour --syscalls",
        ),
    ];
    for (args, want) in cases {
        let out = f.isolate(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(want),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn box_one_cannot_read_box_two() {
    let f = Fixture::new();
    f.init(1, false);
    f.init(2, false);
    f.write(2, "secret.txt", "box two's secret\n");
    let box2 = f.box_dir(2);
    // Even with box 2's directory bound into box 1, its owner (box 2's uid) and mode 0700
    // keep box 1's program out; without the rule, the path does not exist at all.
    let rule = format!("/other={}", box2.display());
    let common = ["-p", "-o", "out.txt", "--stderr-to-stdout"];
    let mut args = vec!["-d", rule.as_str()];
    args.extend(common);
    let (out, m) = run_verdict(&f, 1, &args, &["/bin/sh", "-c", "cat /other/secret.txt"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(m["status"], "RE");
    let got = std::fs::read_to_string(f.box_dir(1).join("out.txt")).unwrap();
    assert!(got.contains("Permission denied"), "{got}");
    let host_path = format!("cat {}/secret.txt", box2.display());
    let (_, m) = run_verdict(&f, 1, &common, &["/bin/sh", "-c", &host_path]);
    assert_eq!(m["status"], "RE");
    let got = std::fs::read_to_string(f.box_dir(1).join("out.txt")).unwrap();
    assert!(got.contains("No such file"), "{got}");
}

#[test]
fn stdout_symlink_to_a_host_file_is_never_written() {
    let f = Fixture::new();
    f.init(1, false);
    let host = f.dir.path().join("host-file");
    std::fs::write(&host, "precious\n").unwrap();
    std::os::unix::fs::symlink(&host, f.box_dir(1).join("out.txt")).unwrap();
    // With --special-files the symlink survives into the run: opening -o refuses it.
    let (out, m) = run_verdict(
        &f,
        1,
        &["--special-files", "-o", "out.txt"],
        &["/bin/echo", "pwned"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(m["status"], "XX");
    assert!(m["message"].starts_with("open(\"out.txt\")"), "{m:?}");
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "precious\n");
    // -i through the symlink is refused too (no reading host files as root).
    let (out, _) = run_verdict(&f, 1, &["--special-files", "-i", "out.txt"], &["/bin/cat"]);
    assert_eq!(out.status.code(), Some(2));
    // By default isolate removes special files from the box before the run.
    let (out, _) = run_verdict(&f, 1, &["-o", "out.txt"], &["/bin/echo", "pwned"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "precious\n");
    assert_eq!(
        std::fs::read_to_string(f.box_dir(1).join("out.txt")).unwrap(),
        "pwned\n"
    );
    // A meta file named inside the box (Judge0 before 1.13.1) is not written through a
    // symlink the program planted there.
    let planted = f.box_dir(1).join("meta.txt");
    let out = f.isolate(&[
        "-b",
        "1",
        "-M",
        planted.to_str().unwrap(),
        "--run",
        "--",
        "/bin/ln",
        "-s",
        host.to_str().unwrap(),
        "meta.txt",
    ]);
    assert!(std::fs::symlink_metadata(&planted)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(
        text(&out.stderr).contains("Failed to write meta file"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "precious\n");
    // A symlink in a directory of the path is refused as well.
    std::fs::create_dir(f.dir.path().join("hostdir")).unwrap();
    std::os::unix::fs::symlink(f.dir.path().join("hostdir"), f.box_dir(1).join("d")).unwrap();
    let (out, _) = run_verdict(
        &f,
        1,
        &["--special-files", "-o", "d/x"],
        &["/bin/echo", "pwned"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!f.dir.path().join("hostdir/x").exists());
}

#[test]
fn program_sees_isolate_filesystem_and_identity() {
    let f = Fixture::new();
    f.init(6, false);
    let script = "id -u; ls /; touch /usr/x 2>/dev/null && echo usr-writable; touch /tmp/t && echo tmp-ok; test -e /etc/passwd && echo etc-present; true";
    let (out, m) = run_verdict(&f, 6, &["-p", "-o", "o.txt"], &["/bin/sh", "-c", script]);
    assert_eq!(out.status.code(), Some(0), "{} {m:?}", text(&out.stderr));
    let o = std::fs::read_to_string(f.box_dir(6).join("o.txt")).unwrap();
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], (f.first_uid + 6).to_string());
    for d in ["bin", "box", "dev", "lib", "proc", "tmp", "usr"] {
        assert!(lines.contains(&d), "{d} missing: {o}");
    }
    assert!(
        !lines.contains(&"etc") && !o.contains("etc-present"),
        "no /etc without -d: {o}"
    );
    assert!(!o.contains("usr-writable"));
    assert!(o.contains("tmp-ok"));
    // -D with only /box and the host's directories the shell needs.
    let (out, _) = run_verdict(
        &f,
        6,
        &[
            "-D",
            "-d",
            "box=./box:rw",
            "-d",
            "usr",
            "-d",
            "bin",
            "-d",
            "lib",
            "-d",
            "lib64:maybe",
            "-p",
            "-o",
            "o.txt",
        ],
        &["/bin/sh", "-c", "ls /"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o = std::fs::read_to_string(f.box_dir(6).join("o.txt")).unwrap();
    assert!(!o.contains("proc") && !o.contains("tmp"), "{o}");
}

#[test]
fn concurrent_runs_on_two_boxes_and_a_busy_box() {
    let f = Fixture::new();
    f.init(7, false);
    f.init(8, false);
    let started = Instant::now();
    let spawn = |id: &str| {
        f.command(&[
            "-b",
            id,
            "-p",
            "-o",
            "o.txt",
            "--run",
            "--",
            "/bin/sh",
            "-c",
            "sleep 1; echo done",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let a = spawn("7");
    let b = spawn("8");
    std::thread::sleep(Duration::from_millis(300));
    let busy = f.isolate(&["-b", "7", "--run", "--", "/bin/true"]);
    assert_eq!(busy.status.code(), Some(2));
    assert!(text(&busy.stderr).contains("This box is currently in use by another process"));
    let waited = f.isolate(&["-b", "8", "--wait", "-s", "--run", "--", "/bin/true"]);
    assert_eq!(waited.status.code(), Some(0));
    for (child, id) in [(a, 7), (b, 8)] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(
            std::fs::read_to_string(f.box_dir(id).join("o.txt")).unwrap(),
            "done\n"
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "runs were not concurrent"
    );
}

#[test]
fn version_check_config_and_print_cg_root() {
    let f = Fixture::new();
    let v = f.isolate(&["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(text(&v.stdout).starts_with("The process isolator "));
    let c = f.isolate(&["--check-config"]);
    assert_eq!(c.status.code(), Some(0));
    assert!(text(&c.stdout).contains(&format!("first_uid: {}", f.first_uid)));
    let bad = f.dir.path().join("bad.cf");
    std::fs::write(&bad, "box_root = /x\nwhat = 1\n").unwrap();
    let c = Command::new(&f.isolate)
        .arg("--check-config")
        .env("ISOLATE_CONFIG_FILE", &bad)
        .output()
        .unwrap();
    assert_eq!(c.status.code(), Some(2));
    assert!(text(&c.stderr).contains("Error in config file, line 2: Unknown configuration item"));
    let p = f.isolate(&["--print-cg-root"]);
    assert!(matches!(p.status.code(), Some(0) | Some(2)));
    if p.status.code() == Some(0) {
        assert!(
            text(&p.stdout).starts_with("/sys/fs/cgroup"),
            "{}",
            text(&p.stdout)
        );
    }
}

#[test]
fn directory_rule_options() {
    let f = Fixture::new();
    f.init(9, false);
    let host = f.dir.path().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::copy("/bin/true", host.join("prog")).unwrap();
    let rw = format!("/w={}:rw", host.display());
    let ro = format!("/r={}", host.display());
    let noexec = format!("/n={}:noexec", host.display());
    let script = "echo hi > /w/made && echo rw-ok; echo x > /r/no 2>/dev/null || echo ro-refused; \
                  /r/prog && echo exec-ok; /n/prog 2>/dev/null || echo noexec-refused; \
                  echo t > /scratch/t && echo tmp-ok; test -d /maybe || echo maybe-skipped; \
                  test -e /sys/kernel && echo sysfs-mounted";
    let (out, m) = run_verdict(
        &f,
        9,
        &[
            "-p",
            "-d",
            &rw,
            "-d",
            &ro,
            "-d",
            &noexec,
            "-d",
            "/scratch:tmp",
            "-d",
            "/maybe=/nonexistent-judgebox:maybe",
            "-d",
            "/sys=sysfs:fs",
            "-o",
            "o.txt",
        ],
        &["/bin/sh", "-c", script],
    );
    assert_eq!(out.status.code(), Some(0), "{} {m:?}", text(&out.stderr));
    let o = std::fs::read_to_string(f.box_dir(9).join("o.txt")).unwrap();
    for want in [
        "rw-ok",
        "ro-refused",
        "exec-ok",
        "noexec-refused",
        "tmp-ok",
        "maybe-skipped",
        "sysfs-mounted",
    ] {
        assert!(o.contains(want), "{want} missing in {o}");
    }
    assert_eq!(std::fs::read_to_string(host.join("made")).unwrap(), "hi\n");
    assert!(!host.join("no").exists());
    // -o into a read-only rule is refused before the run.
    let (out, m) = run_verdict(&f, 9, &["-d", &ro, "-o", "/r/out"], &["/bin/true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(m["message"].contains("Read-only file system"), "{m:?}");
}

#[test]
fn cg_mode_degrades_to_rlimits_without_cgroups() {
    let f = Fixture::new();
    f.init(2, true);
    f.compile(
        2,
        "hog",
        "#include <stdlib.h>\n#include <string.h>\nint main(void){for(int i=0;i<64;i++){char*p=malloc(16<<20);if(!p)return 7;memset(p,1,16<<20);}return 0;}\n",
    );
    let meta = f.meta_path();
    let out = f
        .command(&[
            "--cg",
            "-b",
            "2",
            "-M",
            meta.to_str().unwrap(),
            "--cg-mem=65536",
            "-t",
            "5",
            "--run",
            "--",
            "./hog",
        ])
        .env("JUDGEBOX_ISOLATE_NO_CGROUP", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let m = read_meta(&meta);
    // --cg-mem became RLIMIT_AS: malloc failed and the program said so.
    assert_eq!((m["status"].as_str(), m["exitcode"].as_str()), ("RE", "7"));
    assert!(
        !m.contains_key("cg-mem") && !m.contains_key("cg-oom-killed"),
        "{m:?}"
    );
}

/// Mount points at `path` in our mount namespace (the host's: the tests run there).
fn mounts_at(path: &Path) -> usize {
    let path = path.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(path))
        .count()
}

/// Total size in bytes of the filesystem at `path`, and whether it is a tmpfs.
fn fs_size_and_tmpfs(path: &Path) -> (u64, bool) {
    let st = statfs(path);
    let bsize = u64::try_from(st.f_bsize).unwrap();
    (st.f_blocks * bsize, st.f_type == TMPFS_MAGIC)
}

fn statfs(path: &Path) -> libc::statfs {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: an all-zero statfs is a valid out buffer; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut st) }, 0);
    st
}

const TMPFS_MAGIC: i64 = 0x0102_1994;

#[test]
fn quota_box_is_a_capped_tmpfs_and_no_mount_outlives_cleanup() {
    let f = Fixture::new();
    let out = f.isolate(&["-b", "1", "-q", "256,16", "--init"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let boxdir = f.box_dir(1);
    assert_eq!(mounts_at(&boxdir), 1);
    let (size, tmpfs) = fs_size_and_tmpfs(&boxdir);
    assert!(tmpfs, "the box is a tmpfs, not host disk");
    assert!(size <= 256 << 10, "{size}");
    assert_eq!(std::fs::metadata(&boxdir).unwrap().uid(), f.first_uid + 1);
    // What the caller writes between --init and --run is what the program sees.
    f.write(1, "input.txt", "from the caller\n");
    let script = "cat input.txt; dd if=/dev/zero of=big bs=1k count=1024 2>&1; echo dd=$?; \
                  i=0; while touch f$i 2>/dev/null; do i=$((i+1)); done; echo files=$i; \
                  touch last; exit 3";
    let (out, m) = run_verdict(&f, 1, &["-p"], &["/bin/sh", "-c", script]);
    let o = text(&out.stdout);
    assert!(o.contains("from the caller"), "{o}");
    assert!(o.contains("No space left on device"), "{o}");
    assert!(o.contains("dd=1"), "{o}");
    let files: u64 = o
        .lines()
        .find_map(|l| l.strip_prefix("files="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(files < 16, "inode cap not applied: {files} files");
    assert_eq!((m["status"].as_str(), m["exitcode"].as_str()), ("RE", "3"));
    let big = std::fs::metadata(boxdir.join("big")).unwrap().len();
    assert!(big <= 256 << 10, "box grew to {big} bytes");
    // -q at --run of a box with a quota is accepted; of one without, refused.
    let (out, _) = run_verdict(&f, 1, &["-q", "256,16"], &["/bin/true"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    f.init(2, false);
    let (out, m) = run_verdict(&f, 2, &["-q", "256,16"], &["/bin/true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        m["message"].contains("--quota must be given to --init"),
        "{m:?}"
    );
    // A box never cleaned up (a crashed caller) is re-initialised over: still one mount.
    let out = f.isolate(&["-b", "1", "-q", "128,8", "--init"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(mounts_at(&boxdir), 1);
    assert!(!boxdir.join("input.txt").exists(), "--init starts empty");
    assert!(fs_size_and_tmpfs(&boxdir).0 <= 128 << 10);
    // A plain --init over a quota box leaves no tmpfs behind.
    f.init(1, false);
    assert_eq!(mounts_at(&boxdir), 0);
    assert!(!fs_size_and_tmpfs(&boxdir).1);
    let out = f.isolate(&["-b", "1", "-q", "64,0", "--init"]);
    assert_eq!(out.status.code(), Some(0));
    let out = f.isolate(&["-b", "1", "--cleanup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(mounts_at(&boxdir), 0);
    assert!(!f.dir.path().join("boxes/1").exists());
    // A mount left where the lock says nothing exists is still removed by --cleanup.
    std::fs::create_dir_all(&boxdir).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&boxdir)
        .status()
        .unwrap();
    assert!(status.success());
    let out = f.isolate(&["-b", "1", "--cleanup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(mounts_at(&boxdir), 0);
    // A quota larger than judgebox allows (half the RAM) is refused with nothing mounted.
    let out = f.isolate(&["-b", "3", "-q", "2147483647,0", "--init"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("Cannot set disk quota"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(mounts_at(&f.box_dir(3)), 0);
}

#[test]
fn as_uid_acts_for_the_caller() {
    let f = Fixture::new();
    let caller = (f.first_uid + 15).to_string();
    let as_uid = format!("--as-uid={caller}");
    let as_gid = format!("--as-gid={caller}");
    let out = f.isolate(&[&as_uid, "-b", "1", "--init"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--as-uid and --as-gid must be used either both or none"));
    let out = f.isolate(&[&as_uid, &as_gid, "-b", "1", "--init"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The box belongs to the caller between runs; the lock records the caller.
    let boxdir = f.box_dir(1);
    assert_eq!(
        std::fs::metadata(&boxdir).unwrap().uid().to_string(),
        caller
    );
    let lock = std::fs::read(f.dir.path().join("locks/1")).unwrap();
    assert_eq!(
        u32::from_ne_bytes(lock[4..8].try_into().unwrap()).to_string(),
        caller
    );
    // Directories the caller cannot reach are not bound, as isolate binds as the caller.
    let secret = f.dir.path().join("secret");
    std::fs::create_dir_all(secret.join("data")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(secret.join("data/x"), "root only\n").unwrap();
    let rule = format!("/data={}/data", secret.display());
    let base = [as_uid.as_str(), as_gid.as_str(), "-p"];
    let mut args = base.to_vec();
    args.extend(["-d", rule.as_str()]);
    let (out, m) = run_verdict(&f, 1, &args, &["/bin/cat", "/data/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(m["message"].starts_with("Cannot mount"), "{m:?}");
    assert!(m["message"].contains("Permission denied"), "{m:?}");
    let maybe = format!("{rule}:maybe");
    let mut args = base.to_vec();
    args.extend(["-d", maybe.as_str(), "-o", "ls.txt"]);
    let (out, _) = run_verdict(&f, 1, &args, &["/bin/ls", "/"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ls = std::fs::read_to_string(boxdir.join("ls.txt")).unwrap();
    assert!(!ls.lines().any(|l| l == "data"), "{ls}");
    // The output the program wrote is handed back to the caller after the run.
    assert_eq!(
        std::fs::metadata(boxdir.join("ls.txt"))
            .unwrap()
            .uid()
            .to_string(),
        caller
    );
    assert_eq!(
        std::fs::metadata(&boxdir).unwrap().uid().to_string(),
        caller
    );
    // Root without --as-uid binds it (root can reach it), and the program ran as the box.
    f.init(2, false);
    let (out, _) = run_verdict(&f, 2, &["-p", "-d", rule.as_str()], &["/bin/ls", "/data"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Once the caller can reach it, the caller's bind works.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o711)).unwrap();
    let mut args = base.to_vec();
    args.extend(["-d", rule.as_str(), "-o", "x.txt"]);
    let (out, _) = run_verdict(&f, 1, &args, &["/bin/cat", "/data/x"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(boxdir.join("x.txt")).unwrap(),
        "root only\n"
    );
}

/// `f.command(args)` with `fd` of ours placed at `at` in the child (not close-on-exec).
fn with_fd_at(mut c: Command, fd: i32, at: i32) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(fd, at) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

#[test]
fn inherit_fds_passes_the_callers_descriptors_only_when_asked() {
    use std::os::fd::AsRawFd;
    let f = Fixture::new();
    f.init(1, false);
    let host = f.dir.path().join("via-fd.txt");
    let file = std::fs::File::create(&host).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["-b", "1", "-p"];
        args.extend_from_slice(extra);
        args.extend(["--run", "--", "/bin/sh", "-c", "echo through-7 >&7"]);
        with_fd_at(f.command(&args), file.as_raw_fd(), 7)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1), "by default fd 7 is closed");
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "");
    let out = run(&["--inherit-fds"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "through-7\n");
    // A directory descriptor would let the program out of the box: refused.
    let dir = std::fs::File::open(f.dir.path()).unwrap();
    let args = ["-b", "1", "--inherit-fds", "--run", "--", "/bin/true"];
    let out = with_fd_at(f.command(&args), dir.as_raw_fd(), 8)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("descriptor 8 is a directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn core_limit_is_applied_and_cores_land_in_the_box() {
    let f = Fixture::new();
    f.init(1, false);
    let limits = |extra: &[&str]| {
        let mut args = vec!["-b", "1", "-o", "limits.txt"];
        args.extend_from_slice(extra);
        args.extend(["--run", "--", "/bin/cat", "/proc/self/limits"]);
        let out = f.isolate(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let l = std::fs::read_to_string(f.box_dir(1).join("limits.txt")).unwrap();
        let line = l
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap()
            .to_string();
        line.split_whitespace().nth(4).unwrap().to_string()
    };
    assert_eq!(limits(&[]), "0");
    assert_eq!(limits(&["--core=100"]), "102400");
    // Where the host's core_pattern is a plain file name, the core is written in the
    // program's working directory: the box.
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    if pattern.trim() != "core" {
        return;
    }
    f.compile(1, "ab", "#include <stdlib.h>\nint main(void){abort();}\n");
    let (out, m) = run_verdict(&f, 1, &[], &["./ab"]);
    assert_eq!((out.status.code(), m["exitsig"].as_str()), (Some(1), "6"));
    assert!(
        !f.box_dir(1).join("core").exists(),
        "no core without --core"
    );
    let (_, m) = run_verdict(&f, 1, &["--core=4096"], &["./ab"]);
    assert_eq!(m["exitsig"], "6");
    let core = std::fs::metadata(f.box_dir(1).join("core")).unwrap();
    assert!(core.len() > 0 && core.len() <= 4096 << 10);
}

/// A pseudo-terminal pair: (master, slave).
fn pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname on the fd just opened; ptsname's
    // static buffer is copied at once (tests in this file do not call it concurrently).
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let name = std::ffi::CStr::from_ptr(libc::ptsname(m)).to_owned();
        let s = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(s >= 0, "open slave");
        (std::fs::File::from_raw_fd(m), std::fs::File::from_raw_fd(s))
    }
}

/// Everything the master side got until every slave descriptor was closed.
fn drain(mut master: std::fs::File) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match master.read(&mut chunk) {
            Ok(0) | Err(_) => break, // EIO once the slave is closed everywhere
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    text(&buf)
}

#[test]
fn tty_hack_lets_the_program_use_the_callers_terminal() {
    let f = Fixture::new();
    f.init(1, false);
    let script = "if test -t 1; then echo stdout-is-a-tty; else echo stdout-is-not; fi";
    let run = |extra: &[&str]| {
        let (master, slave) = pty();
        let mut args = vec!["-b", "1", "-p", "-s"];
        args.extend_from_slice(extra);
        args.extend(["--run", "--", "/bin/sh", "-c", script]);
        let mut c = f.command(&args);
        c.stdout(Stdio::from(slave));
        let status = c.status().unwrap();
        drop(c);
        (status, drain(master))
    };
    let (status, got) = run(&["--tty-hack"]);
    assert!(status.success());
    assert!(got.contains("stdout-is-a-tty"), "{got:?}");
    let (status, got) = run(&[]);
    assert!(status.success());
    assert!(got.contains("stdout-is-not"), "{got:?}");
    // Not on a terminal, --tty-hack changes nothing (as isolate's isatty check).
    let out = f.isolate(&[
        "-b",
        "1",
        "-p",
        "--tty-hack",
        "--run",
        "--",
        "/bin/sh",
        "-c",
        script,
    ]);
    assert!(text(&out.stdout).contains("stdout-is-not"));
}

#[test]
fn meta_dash_is_stdout() {
    let f = Fixture::new();
    f.init(1, false);
    let out = f.isolate(&["-b", "1", "-s", "-M", "-", "--run", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(o.contains("time:") && o.contains("exitcode:0"), "{o}");
    assert!(!f.box_dir(1).join("-").exists() && !Path::new("-").exists());
}
