//! Integration tests of the cgroup limits through `judgebox run` on this host (hybrid or v1
//! here; pure v2 runs the same scenarios in a VM, scripts/vm-test.sh), plus the degraded
//! mode and `judgebox doctor`.

mod common;

use common::*;
use std::time::Instant;

fn is_cgroup(m: &serde_json::Value) -> bool {
    m == "cgroup1" || m == "cgroup2"
}

#[test]
fn allocation_beyond_the_memory_limit_is_memory_limit() {
    if !cgroups_usable() {
        return;
    }
    let (v, out) = run_json(&["--memory", "64M"], &["/probes/alloc", "200"]);
    assert_eq!(v["status"], "memory_limit", "{v}");
    assert!(is_cgroup(&v["enforcement"]["memory"]), "{v}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn memory_peak_is_accurate() {
    if !cgroups_usable() {
        return;
    }
    let (v, _) = run_json(&["--memory", "256M"], &["/probes/alloc", "100"]);
    assert_eq!(v["status"], "ok", "{v}");
    let peak = v["memory_peak"].as_f64().unwrap();
    let want = 100.0 * 1024.0 * 1024.0;
    assert!(
        (peak - want).abs() / want < 0.10,
        "memory_peak {peak} not within 10% of 100 MiB"
    );
}

#[test]
fn pids_limit_caps_a_fork_bomb_and_the_run_ends() {
    if !cgroups_usable() {
        return;
    }
    rootfs(); // built on first use: not part of the timing
    let t = Instant::now();
    let (v, _) = run_json(&["--pids", "32", "--wall-time", "3"], &["/probes/forkbomb"]);
    assert!(
        t.elapsed().as_secs_f64() < 6.0,
        "the run did not end in time: {:?}",
        t.elapsed()
    );
    assert!(is_cgroup(&v["enforcement"]["pids"]), "{v}");
    assert_ne!(v["status"], "internal_error", "{v}");
    // Counting what a program manages to start at once: never more than the cap.
    let (v, _) = run_json(&["--pids", "16"], &["/probes/forkbomb", "40"]);
    let tasks: u32 = stdout_of(&v)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{v}"));
    assert!(tasks <= 16, "{tasks} tasks under --pids 16");
    assert!(
        tasks >= 8,
        "the cap should still allow a few processes, got {tasks}"
    );
}

#[test]
fn cpu_time_matches_the_programs_own_clock() {
    if !cgroups_usable() {
        return;
    }
    // burn reports nothing but "done"; its CPU use is 1 s by its own CLOCK_PROCESS_CPUTIME_ID.
    let (v, _) = run_json(&[], &["/probes/burn", "1"]);
    assert_eq!(v["status"], "ok", "{v}");
    assert!(is_cgroup(&v["enforcement"]["cpu_time"]), "{v}");
    let cpu = v["cpu_time"].as_f64().unwrap();
    assert!(
        (cpu - 1.0).abs() < 0.05,
        "cpu_time {cpu} not within 5% of 1 s"
    );
}

#[test]
fn cpus_fraction_throttles_a_burner() {
    if !cgroups_usable() {
        return;
    }
    let (v, _) = run_json(&["--cpus", "0.2"], &["/probes/burn", "0.3"]);
    assert_eq!(v["status"], "ok", "{v}");
    let (cpu, wall) = (
        v["cpu_time"].as_f64().unwrap(),
        v["wall_time"].as_f64().unwrap(),
    );
    assert!(
        wall > cpu * 3.0,
        "0.2 CPU must stretch {cpu} s of CPU over >= {} s, took {wall}",
        cpu * 3.0
    );
}

#[test]
fn no_run_cgroup_is_left_behind() {
    if !cgroups_usable() {
        return;
    }
    let out = judgebox(&["doctor", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let parents: Vec<String> = v["cgroup"]["parents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    for (args, cmd) in [
        (vec![], vec!["/bin/true"]),
        (vec!["--memory", "32M"], vec!["/probes/alloc", "100"]),
        (vec!["--time", "0.2"], vec!["/probes/burn", "0"]),
        (vec![], vec!["/no/such/program"]),
    ] {
        run_json(&args, &cmd);
    }
    let own = format!("run-{}-", std::process::id());
    for parent in &parents {
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        let left: Vec<_> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("run-") && !n.starts_with(&own))
            .collect();
        // Runs of concurrently running tests may be live; ours are all finished, so any
        // leftover must belong to a live judgebox. Check the owners are alive.
        for name in left {
            let pid: u32 = name
                .split('-')
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            assert!(
                std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "{parent}/{name} left behind by a dead judgebox"
            );
        }
    }
}

#[test]
fn degraded_mode_says_rlimit() {
    let (v, _) = run_json(
        &["--no-cgroup", "--memory", "64M"],
        &["/probes/alloc", "200"],
    );
    assert_eq!(v["enforcement"]["memory"], "rlimit", "{v}");
    assert_eq!(v["enforcement"]["pids"], "rlimit", "{v}");
    assert_eq!(v["enforcement"]["cpus"], "none", "{v}");
    assert_ne!(
        v["status"], "ok",
        "a 200 MiB allocation must fail under RLIMIT_AS=64M: {v}"
    );
    let (ok, _) = run_json(&["--no-cgroup"], &["/bin/true"]);
    assert_eq!(ok["status"], "ok", "{ok}");
}

#[test]
fn degraded_mode_caps_processes_per_run_not_per_host() {
    // RLIMIT_NPROC counts every process of a uid: each run gets a uid of its own, so a run
    // holding 12 processes does not eat into a concurrent run's cap of 16.
    let holder = std::process::Command::new(BIN)
        .args([
            "run",
            "--rootfs",
            rootfs().to_str().unwrap(),
            "--no-cgroup",
            "--pids",
            "16",
        ])
        .args(["--wall-time", "10", "--", "/bin/sh", "-c"])
        .arg("for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; wait")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while host_processes_with("sleep 5").len() < 12 {
        assert!(
            Instant::now() < deadline,
            "the holder run never started its sleeps"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (v, _) = run_json(
        &["--no-cgroup", "--pids", "16"],
        &["/probes/forkbomb", "12"],
    );
    assert_eq!(v["enforcement"]["pids"], "rlimit", "{v}");
    assert_eq!(stdout_of(&v), "13\n", "12 children + itself: {v}");
    // And the cap still holds within one run.
    let (v, _) = run_json(&["--no-cgroup", "--pids", "8"], &["/probes/forkbomb", "40"]);
    let peak: u32 = stdout_of(&v).trim().parse().unwrap();
    assert!(peak <= 8, "RLIMIT_NPROC 8 let {peak} processes run: {v}");
    let mut holder = holder;
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn doctor_reports_mode_mechanisms_and_exit_code() {
    let out = judgebox(&["doctor", "--json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON");
    for key in [
        "kernel",
        "seccomp",
        "user_namespaces",
        "overlayfs",
        "clone3",
        "pidfd_open",
    ] {
        assert!(!v["host"][key].is_null(), "doctor lacks host.{key}: {v}");
    }
    let mode = v["cgroup"]["mode"].as_str().unwrap();
    assert!(
        ["unified", "hybrid", "legacy", "none"].contains(&mode),
        "{mode}"
    );
    let all_cgroup = ["memory", "pids", "cpu_time"]
        .iter()
        .all(|k| is_cgroup(&v["enforcement"][k]));
    assert_eq!(
        out.status.code(),
        Some(if all_cgroup { 0 } else { 1 }),
        "{v}"
    );
    let human = judgebox(&["doctor"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("cgroup mode") && text.contains("memory"),
        "{text}"
    );
}

/// On v1, init moves itself into the run's cgroup (writing "0" to each hierarchy's
/// `tasks` through fds the supervisor opened). If that fails, here because the run's
/// directories were removed behind its back, the run must end as an internal error that
/// names the step, with no program started and nothing left running.
#[test]
fn failed_cgroup_join_is_reported_as_its_step() {
    use judgebox::cgroup::{Limits, Manager, ManagerOptions, Mode};
    use judgebox::sandbox::{self, Config, Enforced, Status};
    if !is_root() {
        return;
    }
    let manager = Manager::new(&ManagerOptions::default());
    if !matches!(manager.mode(), Mode::Hybrid | Mode::Legacy) {
        eprintln!(
            "skipped: the self-join is the v1 path; mode is {}",
            manager.mode()
        );
        return;
    }
    let limits = Limits {
        memory: Some(64 << 20),
        pids: Some(16),
        cpus: None,
        pid_namespace: true,
    };
    let run = manager.create_run(&limits).unwrap();
    assert!(!run.join_fds().is_empty(), "v1 runs join through tasks fds");
    for dir in run.dirs().iter().rev() {
        std::fs::remove_dir(dir).unwrap();
    }
    let marker = unique("joinfail");
    let config = Config {
        rootfs: rootfs().to_path_buf(),
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("sleep 30 # {marker}"),
        ],
        ..Config::default()
    };
    let result = sandbox::run_enforced(
        config,
        Enforced {
            cgroup: Some(&*run),
            enforcement: manager.enforcement(&limits),
            filter: None,
            netns: None,
            fixed_uid: false,
            fixed_gid: false,
        },
    )
    .unwrap();
    assert_eq!(result.status, Status::InternalError, "{result:?}");
    assert!(
        result.message.contains("join the run's cgroup"),
        "{}",
        result.message
    );
    assert!(host_processes_with(&marker).is_empty());
}
