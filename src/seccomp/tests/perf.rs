//! Cost of the filters: compile time per profile (once per process) and install time
//! per run (in a forked child, as the sandbox does), against the stacked seccompiler
//! filters the straightforward design would install. Run with `--nocapture` to see
//! the numbers.

use std::time::{Duration, Instant};

use super::reference::{self, resolved, DOCKER_JSON};
use crate::seccomp::resolve::Env;
use crate::seccomp::{compile_text, Filter, DEFAULT_JSON, STRICT_JSON};

const RUNS: usize = 25;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn compile_time(text: &str) -> Duration {
    let env = Env::running().unwrap();
    median(
        (0..7)
            .map(|_| {
                let t = Instant::now();
                compile_text(text, "perf", "perf", &env).unwrap();
                t.elapsed()
            })
            .collect(),
    )
}

/// Nanoseconds the child spent installing `progs`, one seccomp(2) call each.
fn install_ns(progs: &[Vec<libc::sock_filter>]) -> u64 {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 into a local array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child makes raw calls only, then _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: prctl, clock reads and seccomp on programs built before the fork.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            let t = Instant::now();
            for p in progs {
                let prog = libc::sock_fprog {
                    len: p.len() as u16,
                    filter: p.as_ptr().cast_mut(),
                };
                libc::syscall(libc::SYS_seccomp, 1, 0, &prog as *const libc::sock_fprog);
            }
            let ns = t.elapsed().as_nanos() as u64;
            libc::write(fds[1], (&ns as *const u64).cast(), 8);
            libc::_exit(0);
        }
    }
    let mut ns = 0u64;
    // SAFETY: closing our write end and reading 8 bytes into a local.
    unsafe {
        libc::close(fds[1]);
        libc::read(fds[0], (&mut ns as *mut u64).cast(), 8);
        libc::close(fds[0]);
    }
    super::child::wait(pid);
    ns
}

fn install_time(progs: &[Vec<libc::sock_filter>]) -> Duration {
    median(
        (0..RUNS)
            .map(|_| Duration::from_nanos(install_ns(progs)))
            .collect(),
    )
}

/// The production path: `Filter::install` in a forked child.
fn filter_install_time(f: &Filter) -> Duration {
    let prog = vec![f.program().to_vec()];
    median(
        (0..RUNS)
            .map(|_| Duration::from_nanos(install_ns(&prog)))
            .collect(),
    )
}

#[test]
fn report_compile_and_install_costs() {
    let env = Env::running().unwrap();
    let docker = Filter::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/seccomp/testdata/docker-default.json"
    ))
    .unwrap()
    .unwrap();
    let rows = [
        (
            "default",
            DEFAULT_JSON,
            Filter::load("default").unwrap().unwrap(),
        ),
        (
            "strict",
            STRICT_JSON,
            Filter::load("strict").unwrap().unwrap(),
        ),
        ("docker", DOCKER_JSON, docker),
    ];
    eprintln!("profile   compile   insns  install   | stacked seccompiler: filters insns install");
    let mut worst = Duration::ZERO;
    for (name, text, filter) in rows {
        let stacked = reference::stacked(&resolved(text, &env), env.arch);
        let stacked_len: usize = stacked.iter().map(Vec::len).sum();
        let ours = filter_install_time(&filter);
        worst = worst.max(ours);
        eprintln!(
            "{name:8} {:>8.2?} {:>6} {:>9.1?}   | {:>2} {:>6} {:>9.1?}",
            compile_time(text),
            filter.instructions(),
            ours,
            stacked.len(),
            stacked_len,
            install_time(&stacked),
        );
    }
    // The kernel needs ~35 us for any filter on the test VM; a regression to linear or
    // stacked filters shows up as 0.5-2 ms. Generous bound: the machine is shared.
    assert!(
        worst < Duration::from_micros(400),
        "install takes {worst:?}"
    );
}
