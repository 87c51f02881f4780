//! Live tests against the host's real cgroupfs (need root and a usable cgroup mode; each
//! test prints why it skips otherwise). Processes are started behind a stdin gate, moved
//! into the run with `attach`, then released, as the sandbox does before exec. Workloads
//! re-execute this test binary (see `workload`), so only `sh`, `sleep` and `true` are
//! needed: the same tests run in the busybox cgroup-v2 VM.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

fn skip(why: &str) {
    eprintln!("SKIP live cgroup test: {why}");
}

/// A manager on the real host, or `None` (with a printed reason) when tests cannot run.
fn live_manager(opts: &ManagerOptions) -> Option<Manager> {
    if fs::euid() != 0 {
        skip("not root");
        return None;
    }
    let m = Manager::new(opts);
    if m.mode() == Mode::None {
        skip(&format!(
            "no usable cgroups: {}",
            m.none_reason().unwrap_or("")
        ));
        return None;
    }
    Some(m)
}

fn default_manager() -> Option<Manager> {
    live_manager(&ManagerOptions::default())
}

/// A command where `sh` waits for a line on stdin, then execs `prog` (add args to it).
fn gated(prog: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("read _; exec \"$@\"")
        .arg("sh")
        .arg(prog)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    cmd
}

fn spawn_gated(prog: &str, args: &[&str]) -> Child {
    gated(prog).args(args).spawn().expect("spawn sh")
}

fn release(child: &mut Child) {
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"\n");
}

const WORKLOAD_ENV: &str = "JUDGEBOX_CGROUP_WORKLOAD";

/// Runs workload `what` (see `workload`) inside `run`; (wait status, rusage ns, stdout).
fn run_workload(run: &RunCgroup, what: &str) -> (i32, u64, String) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = gated(exe.to_str().unwrap());
    cmd.args([
        "cgroup::live_tests::workload",
        "--exact",
        "--test-threads=1",
    ])
    .args(["--nocapture", "-q"])
    .env(WORKLOAD_ENV, what);
    run_cmd_in(run, cmd)
}

/// Not a check of its own: the body of the processes the live tests start. Without the
/// environment variable it does nothing. Exits directly, printing one result line.
#[test]
fn workload() {
    let Ok(what) = std::env::var(WORKLOAD_ENV) else {
        return;
    };
    let (kind, arg) = what.split_once(':').unwrap_or((what.as_str(), "0"));
    let arg: u64 = arg.parse().unwrap();
    match kind {
        // Touch `arg` MiB.
        "alloc" => {
            let v = vec![1u8; (arg as usize) << 20];
            println!("allocated {}", std::hint::black_box(v).len());
        }
        // Fork until the kernel refuses; the children sleep. Prints how many were made.
        "forkbomb" => println!("forked {}", fork_until_refused()),
        // Burn `arg` ms of this process's CPU time.
        "burn" => spin_until(libc::CLOCK_PROCESS_CPUTIME_ID, arg),
        // Spin for `arg` ms of wall time.
        "spin" => spin_until(libc::CLOCK_MONOTONIC, arg),
        // A judgebox that gets SIGKILLed mid-run: run cgroup with a sleeping task.
        "crash" => hold_a_run(),
        _ => {}
    }
    std::process::exit(0);
}

/// Creates a run with a `sleep` in it, prints "run <name> <sleep pid>" and waits to be
/// killed.
fn hold_a_run() {
    let m = Manager::new(&ManagerOptions::default());
    let run = m.create_run(&Limits::default()).unwrap();
    let mut sleeper = spawn_gated("sleep", &["30"]);
    run.attach(sleeper.id() as i32).unwrap();
    release(&mut sleeper);
    println!("run {} {}", run.name(), sleeper.id());
    std::thread::sleep(Duration::from_secs(30));
}

fn fork_until_refused() -> u64 {
    let mut n = 0;
    loop {
        // SAFETY: the child only calls async-signal-safe functions (sleep, _exit).
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: plain libc calls in the forked child; _exit skips atexit.
                unsafe {
                    libc::sleep(30);
                    libc::_exit(0);
                }
            }
            pid if pid > 0 => n += 1,
            _ => return n,
        }
    }
}

fn clock_ms(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is valid for writes; clock_gettime is async-signal-safe.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

fn spin_until(clock: libc::clockid_t, ms: u64) {
    let start = clock_ms(clock);
    while ms == 0 || clock_ms(clock) - start < ms {
        std::hint::spin_loop();
    }
}

/// Runs `prog args` inside `run` and waits; returns (wait status, rusage cpu ns, stdout).
fn run_in(run: &RunCgroup, prog: &str, args: &[&str]) -> (i32, u64, String) {
    let mut cmd = gated(prog);
    cmd.args(args);
    run_cmd_in(run, cmd)
}

fn run_cmd_in(run: &RunCgroup, mut cmd: Command) -> (i32, u64, String) {
    let mut child = cmd.spawn().expect("spawn sh");
    run.attach(child.id() as i32).unwrap();
    release(&mut child);
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let (status, cpu) = wait4(child.id() as i32);
    (status, cpu, reader.join().unwrap())
}

/// waitpid with rusage: (raw status, user+system ns of the child and its waited children).
fn wait4(pid: i32) -> (i32, u64) {
    let mut status = 0;
    // SAFETY: rusage is plain old data; an all-zero value is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: status and ru are valid for writes for the duration of the call.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(rc, pid, "wait4");
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    (status, tv(ru.ru_utime) + tv(ru.ru_stime))
}

fn killed_by(status: i32, sig: i32) -> bool {
    libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == sig
}

fn procs(dir: &Path) -> Vec<i32> {
    fs::parse_pids(&fs::read_file(&dir.join("cgroup.procs")).unwrap_or_default())
}

#[test]
fn live_oom_kill_is_reported() {
    let Some(m) = default_manager() else { return };
    let limits = Limits {
        memory: Some(64 << 20),
        ..Default::default()
    };
    let run = m.create_run(&limits).unwrap();
    let (status, _, _) = run_workload(&run, "alloc:200");
    assert!(killed_by(status, libc::SIGKILL), "status {status:#x}");
    let stats = run.stats();
    eprintln!("oom stats: {stats:?}");
    assert!(stats.oom_killed);
    assert!(stats.memory_peak.unwrap() <= 64 << 20);
    if let Backend::V1(p) = &m.backend {
        // With swap, memsw (same limit) fails first and newer kernels do not count it.
        assert!(p.swap || stats.memory_failcnt.unwrap() > 0);
    }
    run.remove().unwrap();
}

fn peak_of(m: &Manager, what: &str) -> u64 {
    let limits = Limits {
        memory: Some(256 << 20),
        ..Default::default()
    };
    let run = m.create_run(&limits).unwrap();
    let (status, _, _) = run_workload(&run, what);
    assert_eq!(status, 0);
    let stats = run.stats();
    assert!(!stats.oom_killed);
    run.remove().unwrap();
    stats.memory_peak.unwrap()
}

#[test]
fn live_memory_peak_is_accurate() {
    let Some(m) = default_manager() else { return };
    let base = peak_of(&m, "alloc:0");
    let big = peak_of(&m, "alloc:100");
    let delta = big.saturating_sub(base) as f64;
    let want = (100u64 << 20) as f64;
    eprintln!(
        "memory peak: baseline {} KiB, with 100 MiB {} KiB, delta {:.1} MiB",
        base >> 10,
        big >> 10,
        delta / (1 << 20) as f64
    );
    assert!(
        (delta - want).abs() <= want * 0.10,
        "delta {delta} vs {want}"
    );
}

#[test]
fn live_reset_starts_the_figures_over_for_the_next_run() {
    let Some(m) = default_manager() else { return };
    let limits = Limits {
        memory: Some(64 << 20),
        ..Default::default()
    };
    let mut run = m.create_run(&limits).unwrap();
    // First run: OOM-killed after burning CPU and filling its memory.
    let (status, _, _) = run_workload(&run, "alloc:200");
    assert!(killed_by(status, libc::SIGKILL), "status {status:#x}");
    let first = run.stats();
    assert!(
        first.oom_killed && first.memory_peak.unwrap() > 48 << 20,
        "{first:?}"
    );
    // A task still in the cgroup: no reset (its figures would leak into the next run).
    let mut held = spawn_gated("sleep", &["30"]);
    run.attach(held.id() as i32).unwrap();
    assert!(!run.reset().unwrap(), "reset with a task inside");
    run.kill();
    let _ = held.wait();
    if !run.reset().unwrap() {
        skip("this kernel cannot reset the memory peak (v2 before 6.12)");
        run.remove().unwrap();
        return;
    }
    // Second run: small, quick, exits normally. Its figures are its own.
    let (status, rusage_ns, _) = run_workload(&run, "alloc:8");
    assert_eq!(status, 0);
    let second = run.stats();
    eprintln!("after reset: {second:?}, rusage {rusage_ns} ns (first: {first:?})");
    assert!(!second.oom_killed, "the first run's OOM kill carried over");
    assert_eq!(second.memory_failcnt.unwrap_or(0), 0, "{second:?}");
    let peak = second.memory_peak.unwrap();
    assert!((8 << 20..40 << 20).contains(&peak), "peak {peak}");
    let cpu = second.cpu_ns.unwrap();
    assert!(
        cpu <= rusage_ns * 2 + 20_000_000,
        "cpu {cpu} vs rusage {rusage_ns}"
    );
    assert_eq!(second.pids_peak, None, "pids.peak cannot be reset");
    // Third run, in the leaf made ahead while the second ran: the memory limit still
    // holds (it moved to the leaf), and what it counts is its own again.
    run.prepare_reset();
    assert!(run.reset().unwrap());
    let (status, _, _) = run_workload(&run, "alloc:200");
    assert!(
        killed_by(status, libc::SIGKILL),
        "limit lost: status {status:#x}"
    );
    let third = run.stats();
    assert!(third.oom_killed, "{third:?}");
    run.prepare_reset();
    let dirs = run.dirs();
    let leaves: Vec<_> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        leaves.len(),
        2,
        "the leaf in use and the next one only: {leaves:?}"
    );
    run.remove().unwrap();
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
}

#[test]
fn live_pids_limit_stops_fork_bomb() {
    let Some(m) = default_manager() else { return };
    let limits = Limits {
        pids: Some(32),
        ..Default::default()
    };
    let run = m.create_run(&limits).unwrap();
    let (status, _, out) = run_workload(&run, "forkbomb");
    assert_eq!(status, 0);
    let forked: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("forked "))
        .unwrap_or_else(|| panic!("no result in {out:?}"))
        .parse()
        .unwrap();
    let stats = run.stats();
    eprintln!("fork bomb: forked {forked}, stats {stats:?}");
    assert!(forked < 32, "forked {forked}");
    if let Some(peak) = stats.pids_peak {
        assert!(peak <= 32);
    }
    run.kill();
    for d in run.dirs() {
        assert!(procs(&d).is_empty(), "{} not empty after kill", d.display());
    }
    run.remove().unwrap();
}

#[test]
fn live_cpu_usage_matches_rusage() {
    let Some(m) = default_manager() else { return };
    let run = m.create_run(&Limits::default()).unwrap();
    let (status, rusage_ns, _) = run_workload(&run, "burn:1000");
    assert_eq!(status, 0);
    let cg = run.cpu_usage_ns().unwrap();
    let ratio = cg as f64 / rusage_ns as f64;
    eprintln!("cpu: cgroup {cg} ns, rusage {rusage_ns} ns, ratio {ratio:.4}");
    assert!((ratio - 1.0).abs() <= 0.05, "ratio {ratio}");
    assert_eq!(run.stats().cpu_ns.map(|n| n >= cg), Some(true));
    run.remove().unwrap();
}

#[test]
fn live_cpus_limit_throttles() {
    let Some(m) = default_manager() else { return };
    let limits = Limits {
        cpus: Some(0.2),
        ..Default::default()
    };
    assert_ne!(m.enforcement(&limits).cpus, Mechanism::None);
    let run = m.create_run(&limits).unwrap();
    let start = Instant::now();
    let (status, _, _) = run_workload(&run, "spin:1000");
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(status, 0);
    let cpu = run.cpu_usage_ns().unwrap() as f64 / 1e9;
    eprintln!(
        "cpus 0.2: {cpu:.3} s of cpu in {wall:.3} s of wall time ({:.2} cpus)",
        cpu / wall
    );
    // Unthrottled this is ~1.0; the kernel enforces quota per tick, so allow overrun.
    assert!(cpu / wall < 0.45, "cpu {cpu} in {wall}");
    run.remove().unwrap();
}

#[test]
fn live_attach_kill_and_remove_leave_nothing() {
    let Some(m) = default_manager() else { return };
    let run = m.create_run(&Limits::default()).unwrap();
    let mut child = spawn_gated("sh", &["-c", "sleep 30 & sleep 30 & wait"]);
    let pid = child.id() as i32;
    run.attach(pid).unwrap();
    release(&mut child);
    let own = fs::read_file(Path::new(&format!("/proc/{pid}/cgroup"))).unwrap();
    assert!(
        own.lines().filter(|l| l.ends_with(run.name())).count() >= run.dirs().len(),
        "{own}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while procs(&run.dirs()[0]).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(procs(&run.dirs()[0]).len(), 3);
    let start = Instant::now();
    run.kill();
    eprintln!("kill of 3 tasks took {:?}", start.elapsed());
    for d in run.dirs() {
        assert!(procs(&d).is_empty());
    }
    let (status, _) = wait4(pid);
    assert!(killed_by(status, libc::SIGKILL));
    let dirs = run.dirs();
    run.remove().unwrap();
    for d in dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn live_drop_kills_and_removes() {
    let Some(m) = default_manager() else { return };
    let run = m.create_run(&Limits::default()).unwrap();
    let mut child = spawn_gated("sleep", &["30"]);
    let pid = child.id() as i32;
    run.attach(pid).unwrap();
    release(&mut child);
    let dirs = run.dirs();
    drop(run);
    let (status, _) = wait4(pid);
    assert!(killed_by(status, libc::SIGKILL));
    assert!(dirs.iter().all(|d| !d.exists()));
}

/// Makes a run-named directory in every parent, like a crashed owner would leave.
fn fake_run(parents: &[PathBuf], name: &str) -> Vec<PathBuf> {
    parents
        .iter()
        .map(|p| {
            let d = p.join(name);
            std::fs::create_dir(&d).unwrap();
            d
        })
        .collect()
}

#[test]
fn live_stale_runs_are_reaped_and_live_ones_kept() {
    let Some(m) = default_manager() else { return };
    let parents = m.parents();
    let me = owner::Owner::current().unwrap();
    let dead = fake_run(&parents, "run-999999999-1-0");
    let reused = fake_run(&parents, &format!("run-{}-{}-0", me.pid, me.start + 1));
    let live = fake_run(&parents, &format!("run-{}-{}-999999999", me.pid, me.start));
    // An owner in another pid namespace: its pid means nothing here, but it holds the lock.
    let foreign = fake_run(&parents, "run-999999998-1-0");
    let foreign_lock = fs::open_dir(&foreign[0]).unwrap();
    assert!(fs::try_lock(&foreign_lock).unwrap());
    // A crashed owner's sandbox process still running in the stale run.
    let mut child = spawn_gated("sleep", &["30"]);
    let pid = child.id() as i32;
    for d in &dead {
        fs::write_file(&d.join("cgroup.procs"), &pid.to_string()).unwrap();
    }
    release(&mut child);

    let start = Instant::now();
    let m2 = Manager::new(&ManagerOptions::default());
    eprintln!(
        "Manager::new with stale runs: {:?}, reaped {}",
        start.elapsed(),
        m2.reaped()
    );
    let (status, _) = wait4(pid);
    assert!(killed_by(status, libc::SIGKILL), "status {status:#x}");
    assert!(dead.iter().chain(&reused).all(|d| !d.exists()));
    assert!(live.iter().chain(&foreign).all(|d| d.exists()));

    drop(foreign_lock);
    for d in live.iter().chain(&foreign) {
        std::fs::remove_dir(d).unwrap();
    }
}

#[test]
fn live_sigkilled_judgebox_run_is_reaped_by_next_start() {
    let Some(m) = default_manager() else { return };
    let exe = std::env::current_exe().unwrap();
    let mut owner = Command::new(exe)
        .args([
            "cgroup::live_tests::workload",
            "--exact",
            "--nocapture",
            "-q",
        ])
        .env(WORKLOAD_ENV, "crash")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = std::io::BufReader::new(owner.stdout.take().unwrap());
    while !line.starts_with("run ") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0);
    }
    let mut parts = line.split_whitespace().skip(1);
    let name = parts.next().unwrap().to_string();
    let sleeper: i32 = parts.next().unwrap().parse().unwrap();
    // Every hierarchy the run uses (a cpu-only v1 hierarchy is skipped without --cpus).
    let dirs: Vec<PathBuf> = m.parents().iter().map(|p| p.join(&name)).collect();
    assert!(dirs[0].exists(), "{} missing", dirs[0].display());

    owner.kill().unwrap(); // SIGKILL: no Drop, no cleanup
    owner.wait().unwrap();
    let next = Manager::new(&ManagerOptions::default());
    assert!(next.reaped() >= 1 || dirs.iter().all(|d| !d.exists()));
    assert!(dirs.iter().all(|d| !d.exists()), "{name} left behind");
    // The orphaned sleep (reparented, reaped by init) was killed with the run.
    let deadline = Instant::now() + Duration::from_secs(2);
    let alive = || {
        fs::read_file(Path::new(&format!("/proc/{sleeper}/stat")))
            .is_ok_and(|s| !s.contains(") Z "))
    };
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!alive(), "sleep {sleeper} survived");
}

#[test]
fn live_concurrent_managers_share_a_fresh_root() {
    let Some(m) = default_manager() else { return };
    // A parent nobody created yet, so all 16 race on creating and preparing it.
    let first = m.parents()[0].clone();
    let mount = m
        .layout
        .v2
        .iter()
        .map(|v| v.mount.mount_point.clone())
        .chain(m.layout.v1.iter().map(|h| h.mount.mount_point.clone()))
        .find(|mp| first.starts_with(mp))
        .unwrap();
    let root = mount.join(format!("judgebox-race-{}", std::process::id()));
    let limits = Limits {
        memory: Some(64 << 20),
        pids: Some(16),
        cpus: Some(1.0),
        pid_namespace: false,
    };
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (root, limits) = (root.clone(), limits.clone());
            std::thread::spawn(move || {
                let m = Manager::new(&ManagerOptions {
                    root: Some(root),
                    disabled: false,
                });
                assert_ne!(m.mode(), Mode::None, "{:?}", m.none_reason());
                let run = m.create_run(&limits).unwrap();
                let (status, _, _) = run_in(&run, "true", &[]);
                assert_eq!(status, 0);
                let dirs = run.dirs();
                run.remove().unwrap();
                (m.parents(), dirs)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (_, dirs) in &results {
        assert!(dirs.iter().all(|d| !d.exists()));
    }
    for parent in &results[0].0 {
        let left: Vec<_> = std::fs::read_dir(parent)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().unwrap().is_dir())
            .collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::remove_dir(parent).unwrap();
    }
}

#[test]
fn live_setup_teardown_cost() {
    let Some(m) = default_manager() else { return };
    let limits = Limits {
        memory: Some(256 << 20),
        pids: Some(64),
        cpus: Some(1.0),
        pid_namespace: false,
    };
    let mut times = Vec::new();
    for _ in 0..300 {
        let start = Instant::now();
        let run = m.create_run(&limits).unwrap();
        run.kill();
        run.remove().unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    let floor = mkdir_rmdir_floor(&m.parents());
    let start = Instant::now();
    let _ = Manager::new(&ManagerOptions::default());
    let new_cost = start.elapsed();
    eprintln!(
        "setup+teardown ({} mode, {} dirs): median {median:?}, p90 {p90:?}, min {:?}; bare mkdir+rmdir in the same parents {floor:?}; Manager::new {new_cost:?}",
        m.mode(),
        m.parents().len(),
        times[0]
    );
    // Generous bound for a noisy shared debug build (and for the TCG VM, where every
    // syscall is ~40x slower): relative to the kernel's own mkdir+rmdir floor.
    assert!(
        median < floor * 5 + Duration::from_millis(2),
        "median {median:?}"
    );
}

/// Median cost of a bare mkdir+rmdir in every parent: the kernel's floor for a run.
fn mkdir_rmdir_floor(parents: &[PathBuf]) -> Duration {
    let mut times: Vec<Duration> = (0..100)
        .map(|i| {
            let start = Instant::now();
            for p in parents {
                let d = p.join(format!("floor-{}-{i}", std::process::id()));
                std::fs::create_dir(&d).unwrap();
                std::fs::remove_dir(&d).unwrap();
            }
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

#[test]
fn live_doctor_can_create() {
    let Some(m) = default_manager() else { return };
    let r = m.doctor();
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    assert!(r.can_create, "{:?}", r.create_error);
    assert_eq!(r.mode, m.mode());
    assert!(r.controllers.iter().any(|c| c.name == "memory" && c.usable));
}

/// clone3(CLONE_INTO_CGROUP) of a child that busy-loops for `busy_ms` (forever if 0).
fn clone_into(fd: RawFd, busy_ms: u64) -> i32 {
    // SAFETY: clone_args is plain old data; all-zero is its documented default.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = libc::SIGCHLD as u64;
    args.cgroup = fd as u64;
    // SAFETY: args is a valid clone_args of the size passed; without CLONE_VM the child
    // gets a copy of the address space and only calls async-signal-safe functions.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    assert!(pid >= 0, "clone3: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let now = || {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: ts is valid for writes; clock_gettime is async-signal-safe.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
            ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
        };
        let start = now();
        while busy_ms == 0 || now() - start < busy_ms {
            std::hint::spin_loop();
        }
        // SAFETY: _exit ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(0) };
    }
    pid as i32
}

#[test]
fn live_v2_clone_into_cgroup_kill_and_remove() {
    if fs::euid() != 0 {
        return skip("not root");
    }
    let view = HostView::read().unwrap();
    let Some(v2) = view.layout.v2.as_ref().filter(|v| !v.mount.read_only) else {
        return skip("no writable cgroup2 mount");
    };
    let root = v2
        .mount
        .mount_point
        .join(format!("judgebox-v2test-{}", std::process::id()));
    let Some(m) = live_manager(&ManagerOptions {
        root: Some(root.clone()),
        disabled: false,
    }) else {
        return;
    };
    assert!(matches!(m.backend, Backend::V2(_)));
    assert_eq!(
        m.enforcement(&Limits::default()).cpu_time,
        Mechanism::Cgroup2
    );
    let run = m.create_run(&Limits::default()).unwrap();
    let fd = run.clone_into_fd().expect("v2 gives a cgroup fd");

    let pid = clone_into(fd, 200);
    let cg = fs::read_file(Path::new(&format!("/proc/{pid}/cgroup"))).unwrap_or_default();
    let (status, rusage) = wait4(pid);
    assert_eq!(status, 0);
    assert!(cg.contains(run.name()), "{cg}");
    let used = run.cpu_usage_ns().unwrap();
    eprintln!("v2 cpu.stat {used} ns vs rusage {rusage} ns");
    // cpu.stat has µs resolution; the child ran nowhere else.
    assert!(used.abs_diff(rusage) <= rusage / 20 + 1000, "cpu {used}");

    let spinner = clone_into(fd, 0);
    let start = Instant::now();
    run.kill();
    eprintln!("v2 kill via cgroup.kill took {:?}", start.elapsed());
    let (status, _) = wait4(spinner);
    assert!(killed_by(status, libc::SIGKILL), "status {status:#x}");

    // The fallback for kernels without cgroup.kill: freeze, SIGKILL each pid, thaw.
    let spinner = clone_into(fd, 0);
    let events = std::fs::File::open(run.dirs()[0].join("cgroup.events")).unwrap();
    v2::freeze_and_kill(&run.dirs()[0], &events, Duration::from_secs(2));
    let (status, _) = wait4(spinner);
    assert!(killed_by(status, libc::SIGKILL), "status {status:#x}");
    assert_eq!(
        fs::read_file(&run.dirs()[0].join("cgroup.freeze"))
            .unwrap()
            .trim(),
        "0"
    );

    let limits = Limits {
        memory: Some(256 << 20),
        pids: Some(64),
        cpus: Some(1.0),
        pid_namespace: false,
    };
    let mut times = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let r = m.create_run(&limits).unwrap();
        r.kill();
        r.remove().unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    eprintln!(
        "v2 setup+teardown (explicit root, {:?}): median {:?}; bare mkdir+rmdir {:?}",
        m.enforcement(&limits),
        times[times.len() / 2],
        mkdir_rmdir_floor(&m.parents())
    );

    let dir = run.dirs().remove(0);
    run.remove().unwrap();
    assert!(!dir.exists());
    drop(m);
    std::fs::remove_dir(&root).unwrap();
}

#[test]
fn live_v2_leaf_move_writes_one_pid_per_write() {
    if fs::euid() != 0 {
        return skip("not root");
    }
    let view = HostView::read().unwrap();
    let Some(v2) = view.layout.v2.as_ref().filter(|v| !v.mount.read_only) else {
        return skip("no writable cgroup2 mount");
    };
    let dir = v2
        .mount
        .mount_point
        .join(format!("judgebox-leaftest-{}", std::process::id()));
    fs::mkdir(&dir).unwrap();
    let mut a = spawn_gated("sleep", &["30"]);
    let mut b = spawn_gated("sleep", &["30"]);
    let pids = [a.id() as i32, b.id() as i32];
    for pid in pids {
        fs::write_file(&dir.join("cgroup.procs"), &pid.to_string()).unwrap();
    }
    assert_eq!(v2::move_processes(&dir).unwrap(), 2);
    let leaf = dir.join(v2::LEAF);
    let mut moved = procs(&leaf);
    moved.sort();
    assert_eq!(moved, pids.to_vec());
    assert!(procs(&dir).is_empty());
    for (child, pid) in [(&mut a, pids[0]), (&mut b, pids[1])] {
        fs::sigkill(pid);
        release(child);
        wait4(pid);
    }
    v2::remove_dir(&leaf, Duration::from_secs(1)).unwrap();
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn live_v2_root_with_processes_moves_them_to_a_leaf() {
    if fs::euid() != 0 {
        return skip("not root");
    }
    let view = HostView::read().unwrap();
    let Some(v2) = view.layout.v2.as_ref().filter(|v| !v.mount.read_only) else {
        return skip("no writable cgroup2 mount");
    };
    // Like a delegated unit: a cgroup holding a foreign process, controllers not enabled.
    let root = v2
        .mount
        .mount_point
        .join(format!("judgebox-delegtest-{}", std::process::id()));
    fs::mkdir(&root).unwrap();
    let mut foreign = spawn_gated("sleep", &["30"]);
    let pid = foreign.id() as i32;
    fs::write_file(&root.join("cgroup.procs"), &pid.to_string()).unwrap();
    let m = live_manager(&ManagerOptions {
        root: Some(root.clone()),
        disabled: false,
    })
    .unwrap();
    let Backend::V2(parent) = &m.backend else {
        panic!("expected the v2 backend")
    };
    let offered = view
        .v2_controllers
        .split_whitespace()
        .any(|c| c == "memory");
    eprintln!("delegated-like root: enabled {:?}", parent.enabled);
    if offered {
        // Enabling needed the leaf move: the foreign process now lives in the leaf.
        assert!(parent.enabled.memory);
        assert_eq!(procs(&root.join(v2::LEAF)), vec![pid]);
        let limits = Limits {
            memory: Some(64 << 20),
            ..Default::default()
        };
        let run = m.create_run(&limits).unwrap();
        let (status, _, _) = run_workload(&run, "alloc:200");
        assert!(killed_by(status, libc::SIGKILL), "status {status:#x}");
        assert!(run.stats().oom_killed);
        run.remove().unwrap();
    } else {
        skip("cgroup2 offers no memory controller here; leaf move not needed");
    }
    // The foreign process is still alive and untouched.
    assert!(fs::read_file(Path::new(&format!("/proc/{pid}/stat"))).is_ok());
    fs::sigkill(pid);
    release(&mut foreign);
    wait4(pid);
    let _ = v2::remove_dir(&root.join(v2::LEAF), Duration::from_secs(1));
    std::fs::remove_dir(&root).unwrap();
}
