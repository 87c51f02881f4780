//! Shared test fixtures: a small rootfs built at test time (busybox-static plus static C
//! probes compiled with gcc), and helpers that drive the built `judgebox` binary.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_judgebox");

/// The test rootfs: /bin (busybox applets), /probes (static C programs from tests/probes).
pub fn rootfs() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(build_rootfs)
}

fn build_rootfs() -> PathBuf {
    assert!(
        is_root(),
        "the judgebox tests must run as root (they create namespaces and mounts)"
    );
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    remove_stale_rootfs(&base);
    let final_dir = base.join(format!("rootfs-{}", std::process::id()));
    let staging = base.join(format!(".rootfs-staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(staging.join("bin")).unwrap();
    std::fs::create_dir_all(staging.join("probes")).unwrap();
    std::fs::create_dir_all(staging.join("etc")).unwrap();
    let busybox = find_busybox();
    std::fs::copy(&busybox, staging.join("bin/busybox")).unwrap();
    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", staging.join("bin").join(applet));
        }
    }
    std::fs::write(
        staging.join("etc/passwd"),
        "root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
    )
    .unwrap();
    compile_probes(&staging.join("probes"));
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&staging, &final_dir).unwrap();
    final_dir
}

/// Each test process builds its own rootfs (`rootfs-<pid>`); drop those of processes
/// that are gone, so repeated runs do not pile them up.
fn remove_stale_rootfs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("rootfs-")
            .or_else(|| name.strip_prefix(".rootfs-staging-"))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

pub fn find_busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        let path = PathBuf::from(p);
        if let Ok(out) = Command::new("file").arg(&path).output() {
            if String::from_utf8_lossy(&out.stdout).contains("statically linked") {
                return path;
            }
        }
    }
    panic!("a static busybox is needed: apt-get install busybox-static");
}

fn compile_probes(dest: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("c") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let status = Command::new("gcc")
            .args(["-static", "-O2", "-pthread", "-o"])
            .arg(dest.join(&name))
            .arg(&path)
            .status()
            .expect("gcc is needed to build the test probes");
        assert!(status.success(), "compiling probe {name} failed");
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `judgebox run --rootfs <test rootfs> --json <args> -- <cmd>`.
pub fn run_json(args: &[&str], cmd: &[&str]) -> (Value, Output) {
    let out = Command::new(BIN)
        .arg("run")
        .arg("--rootfs")
        .arg(rootfs())
        .arg("--json")
        .args(args)
        .arg("--")
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .expect("run judgebox");
    let text = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "judgebox did not print one JSON object ({e}): stdout={text:?} stderr={:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (json, out)
}

/// Runs a shell command line in the sandbox and returns the result JSON.
pub fn sh(args: &[&str], script: &str) -> Value {
    run_json(args, &["/bin/sh", "-c", script]).0
}

pub fn stdout_of(v: &Value) -> &str {
    v["stdout"].as_str().unwrap_or("")
}

/// Runs judgebox with raw arguments (for bad-input tests).
pub fn judgebox(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run judgebox")
}

/// Host processes whose command line contains `needle`.
pub fn host_processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{pid}: {cmd}"));
            }
        }
    }
    found
}

/// The host's mount table lines that mention `needle`.
pub fn host_mounts_with(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}{}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Skips (with a message) on hosts where no cgroup is writable; CI's host has them.
pub fn cgroups_usable() -> bool {
    let out = judgebox(&["doctor", "--json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON");
    let ok = v["cgroup"]["can_create"].as_bool().unwrap_or(false);
    if !ok {
        eprintln!(
            "skipping: this host has no writable cgroup ({})",
            v["cgroup"]["none_reason"]
        );
    }
    ok
}
