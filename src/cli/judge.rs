//! `judgebox judge`: compile a submission once, run it on every test in fresh sandboxes,
//! print Judge0-style verdicts as a table or one JSON object.

use super::{images, parse};
use anyhow::{Context, Result};
use clap::Args;
use judgebox::cgroup::{self, Manager, ManagerOptions};
use judgebox::display::escape_controls as esc;
use judgebox::image::store::DEFAULT_ROOT;
use judgebox::judge::{
    self, cases, Compare, Job, Overrides, Report, TestCase, TestReport, Verdict,
};
use judgebox::lang::Catalog;
use judgebox::sandbox;
use judgebox::seccomp::Filter;
use std::path::PathBuf;

/// Judge a submission: compile once, run each test in its own sandbox, compare output.
///
/// Verdicts: accepted, wrong_answer, time_limit, memory_limit, output_limit, runtime_error,
/// compilation_error, security_violation, internal_error; each with cpu and wall time, peak
/// memory and the Judge0 status id. Exit code: 0 accepted, 1 any other verdict, 2 bad input.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  judgebox judge --lang cpp main.cpp --tests tests/\n  \
    judgebox judge --lang python3 sol.py --stdin 1.in --expected 1.out --json"
)]
pub struct JudgeArgs {
    /// Language name or Judge0 language id (see `judgebox lang ls`).
    #[arg(long, value_name = "LANG")]
    lang: String,
    /// The submission's source file.
    #[arg(value_name = "SOURCE")]
    source: PathBuf,
    /// The test's stdin (one test).
    #[arg(long, value_name = "FILE", conflicts_with = "tests")]
    stdin: Option<PathBuf>,
    /// The expected output (one test); without it any normal exit is accepted.
    #[arg(long, value_name = "FILE", conflicts_with = "tests")]
    expected: Option<PathBuf>,
    /// A directory of NAME.in / NAME.out pairs, run in natural order.
    #[arg(long, value_name = "DIR")]
    tests: Option<PathBuf>,
    /// How output is compared: trim (Judge0: trailing whitespace and blank lines ignored) or exact.
    #[arg(long, value_name = "MODE", default_value = "trim", value_parser = parse_compare)]
    compare: Compare,
    /// Tests run at once, each in its own sandbox and cgroup (default: number of CPUs).
    #[arg(long, value_name = "N")]
    parallel: Option<usize>,
    /// Skip the remaining tests after the first that is not accepted.
    #[arg(long)]
    stop_on_first_failure: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Print a line to stderr as each test finishes ("test 17/300 NAME: verdict, cpu s");
    /// on by default when stderr is a terminal.
    #[arg(long)]
    progress: bool,
    /// Extra compiler options, split on whitespace (Judge0's compiler_options).
    #[arg(
        long,
        value_name = "OPTIONS",
        allow_hyphen_values = true,
        default_value = ""
    )]
    compiler_options: String,
    /// A command-line argument for the program (repeatable).
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    args: Vec<String>,
    /// CPU time limit per test, seconds (default: the language's).
    #[arg(long, value_name = "SECONDS", value_parser = parse::seconds)]
    time: Option<f64>,
    /// Wall time limit per test, seconds (default: the language's).
    #[arg(long, value_name = "SECONDS", value_parser = parse::seconds)]
    wall_time: Option<f64>,
    /// Memory limit per test (default: the language's).
    #[arg(long, value_name = "SIZE", value_parser = parse::size)]
    memory: Option<u64>,
    /// Process/thread limit per test (default: the language's).
    #[arg(long, value_name = "N")]
    pids: Option<u64>,
    /// Output limit per test (default: the language's).
    #[arg(long, value_name = "SIZE", value_parser = parse::size)]
    output_limit: Option<u64>,
    /// Seccomp profile (default: the language's, normally `default`).
    #[arg(long, value_name = "NAME|PATH")]
    seccomp: Option<String>,
    /// Use this rootfs directory instead of the language's image.
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,
    #[command(flatten)]
    languages: Languages,
    /// Parent cgroup for the runs (as `judgebox run --cgroup-root`).
    #[arg(long, value_name = "PATH")]
    cgroup_root: Option<PathBuf>,
    /// Do not use cgroups (degraded mode, reported in every result).
    #[arg(long)]
    no_cgroup: bool,
    /// Build a fresh sandbox for every test instead of reusing each worker's warm one
    /// (slower; every test is isolated either way).
    #[arg(long)]
    no_reuse: bool,
    /// The uids the runs lease one of, each run its own (as `judgebox run --uid-range`).
    #[arg(long, value_name = "FIRST-LAST", env = "JUDGEBOX_UID_RANGE", value_parser = parse::uid_range)]
    uid_range: Option<judgebox::sandbox::uid::UidRange>,
}

fn parse_compare(s: &str) -> Result<Compare, String> {
    s.parse()
}

/// Where languages come from: their manifests and the image store (`judge`, `lang ls`).
#[derive(Args)]
pub struct Languages {
    /// Language manifests directory (default: the shipped manifests).
    #[arg(long, value_name = "DIR", env = "JUDGEBOX_MANIFESTS")]
    manifests: Option<PathBuf>,
    /// Image store (as `judgebox image --root`).
    #[arg(long, value_name = "DIR", env = "JUDGEBOX_ROOT", default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
}

impl Languages {
    /// The catalog of languages: `--manifests DIR` or the shipped ones.
    pub fn catalog(&self) -> Result<Catalog> {
        Ok(match &self.manifests {
            Some(d) => Catalog::from_dir(d)?,
            None => Catalog::shipped()?,
        })
    }
}

/// The cgroup manager for `--cgroup-root` / `--no-cgroup` (judge, serve); an unusable
/// `--cgroup-root` is an error.
pub fn cgroup_manager(root: Option<PathBuf>, disabled: bool) -> Result<Manager> {
    let explicit = root.is_some();
    let cgroups = Manager::new(&ManagerOptions { root, disabled });
    if explicit && cgroups.mode() == cgroup::Mode::None {
        anyhow::bail!(
            "--cgroup-root: not usable: {}",
            cgroups.none_reason().unwrap_or("unknown reason")
        );
    }
    Ok(cgroups)
}

fn test_cases(a: &JudgeArgs) -> Result<Vec<TestCase>> {
    Ok(match &a.tests {
        Some(dir) => cases::from_dir(dir)?,
        None => vec![TestCase::single(a.stdin.as_deref(), a.expected.as_deref())?],
    })
}

pub fn execute(a: JudgeArgs) -> Result<i32> {
    sandbox::ensure_root()?;
    // Under systemd without delegation: continue in a delegated transient scope (re-exec).
    cgroup::enter_delegated_scope(&ManagerOptions {
        root: a.cgroup_root.clone(),
        disabled: a.no_cgroup,
    })?;
    parse::use_uid_range(a.uid_range)?;
    let catalog = a.languages.catalog()?;
    let lang = catalog.find(&a.lang)?;
    // Checked before the image and tests (the judge checks again as it starts): without
    // following a symlink, regular files only.
    judgebox::safe_open::open_regular(&a.source)
        .map_err(|e| anyhow::anyhow!("source {}: {}", a.source.display(), e.into_io()))?;
    let tests = test_cases(&a)?;
    // `_lease` keeps the image's rootfs from being pruned while the tests run.
    let (env, _lease) = match &a.rootfs {
        Some(dir) => (
            judge::Environment {
                rootfs: dir.clone(),
                image_env: Vec::new(),
            },
            None,
        ),
        None => {
            let (env, lease) = images::environment(&a.languages.root, lang)?;
            (env, Some(lease))
        }
    };
    let profile = a.seccomp.as_deref().unwrap_or(&lang.seccomp);
    let filter = Filter::load(profile).with_context(|| format!("seccomp profile {profile}"))?;
    let cgroups = cgroup_manager(a.cgroup_root.clone(), a.no_cgroup)?;
    let parallel = a
        .parallel
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let total = tests.len();
    let show_progress = move |done: usize, t: &TestReport| print_progress(done, total, t);
    let progress = a.progress || std::io::IsTerminal::is_terminal(&std::io::stderr());
    let job = Job {
        lang,
        env,
        source: a.source.clone(),
        compiler_options: a
            .compiler_options
            .split_whitespace()
            .map(String::from)
            .collect(),
        args: a.args.clone(),
        tests,
        compare: a.compare,
        parallel,
        stop_on_first_failure: a.stop_on_first_failure,
        overrides: Overrides {
            time: a.time,
            wall_time: a.wall_time,
            memory: a.memory,
            pids: a.pids,
            output: a.output_limit,
            ..Overrides::default()
        },
        filter,
        reuse: !a.no_reuse,
        cgroups: &cgroups,
        network: false,
        on_test: progress.then_some(&show_progress as &judge::OnTest),
    };
    let report = judge::judge(&job)?;
    if a.json {
        print_json(&report)?;
    } else {
        print_table(&report);
    }
    Ok(if report.verdict == Verdict::Accepted {
        0
    } else {
        1
    })
}

/// Serialized straight to stdout: a report of thousands of tests is never also held as
/// one string.
fn print_json(r: &Report) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer(&mut out, &r.json()).context("writing the JSON result")?;
    writeln!(out)
        .and_then(|_| out.flush())
        .context("writing the JSON result")
}

/// One finished test on stderr, escaped (test names and messages are the caller's).
fn print_progress(done: usize, total: usize, t: &TestReport) {
    let cpu = t
        .run
        .as_ref()
        .map_or(String::new(), |r| format!(", cpu {:.3} s", r.cpu_time));
    eprintln!(
        "judgebox: test {done}/{total} {}: {}{cpu}",
        esc(&t.name),
        t.verdict.as_str()
    );
}

fn print_table(r: &Report) {
    println!("{} ({})", esc(&r.language), esc(&r.display));
    if let Some(c) = &r.compile {
        println!(
            "compile: {}  cpu {:.3} s  wall {:.3} s  memory {}",
            c.verdict.as_str(),
            c.run.cpu_time,
            c.run.wall_time,
            mib(c.run.memory_peak)
        );
        if c.verdict != Verdict::Accepted {
            let out = judge::compile_output(&c.run);
            for line in out.lines().take(40) {
                println!("  | {}", esc(line));
            }
            if !c.run.message.is_empty() {
                println!("  {}", esc(&c.run.message));
            }
        }
    }
    if !r.tests.is_empty() {
        println!(
            "{:>4}  {:<12} {:<4} {:>8} {:>8} {:>9}  detail",
            "#", "test", "", "cpu s", "wall s", "memory"
        );
    }
    for (i, t) in r.tests.iter().enumerate() {
        let (cpu, wall, mem, detail) = match &t.run {
            Some(run) => (
                format!("{:.3}", run.cpu_time),
                format!("{:.3}", run.wall_time),
                mib(run.memory_peak),
                if t.verdict == Verdict::Accepted || t.verdict == Verdict::WrongAnswer {
                    String::new()
                } else {
                    esc(&run.message).into_owned()
                },
            ),
            None => ("-".into(), "-".into(), "-".into(), String::new()),
        };
        println!(
            "{:>4}  {:<12} {:<4} {:>8} {:>8} {:>9}  {}",
            i + 1,
            esc(&t.name),
            t.verdict.short(),
            cpu,
            wall,
            mem,
            detail
        );
    }
    println!(
        "{}: {}/{} tests accepted (Judge0 {} {}), {:.2} s",
        r.verdict.as_str(),
        r.passed(),
        r.tests.len(),
        r.judge0.id,
        r.judge0.description,
        r.elapsed
    );
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    })
}
