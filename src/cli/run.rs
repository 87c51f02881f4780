//! `judgebox run`: one command in a sandbox, with a JSON, meta-file or human result.

use super::parse;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use judgebox::cgroup::{self, ManagerOptions};
use judgebox::display::escape_controls as esc;
use judgebox::image::store::Resolved;
use judgebox::sandbox::{self, Config, CopyIn, CopyOut, Enforced, Limits, TimedCgroup};
use judgebox::seccomp;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Net {
    /// An empty network namespace with lo down: no network at all.
    None,
    /// Only the loopback interface, up.
    Loopback,
}

/// Run a command inside a rootfs directory, fully isolated.
///
/// Exit code: 0 when the program ran and succeeded, 1 when it failed or hit a limit,
/// 2 for bad input or an internal error.
#[derive(Args)]
#[command(
    after_help = "Example: judgebox run --rootfs ./rootfs --time 1 --json -- /bin/sh -c 'echo hi'"
)]
pub struct RunArgs {
    /// Root filesystem directory (e.g. an unpacked image); mounted read-only as /.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "image",
        conflicts_with = "image"
    )]
    rootfs: Option<PathBuf>,
    /// Run an image from the store (see `judgebox image`): its rootfs, and unless a command
    /// is given its Entrypoint+Cmd; its Env (then --env) and WorkingDir. Never pulls.
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// Image store directory, for --image.
    #[arg(long, env = "JUDGEBOX_ROOT", default_value = judgebox::image::store::DEFAULT_ROOT, value_name = "DIR")]
    root: PathBuf,

    /// CPU time limit for the whole process tree, seconds (fractions allowed).
    #[arg(long, allow_hyphen_values = true, value_name = "SECONDS", value_parser = parse::seconds)]
    time: Option<f64>,
    /// Wall-clock time limit, seconds.
    #[arg(long, allow_hyphen_values = true, value_name = "SECONDS", value_parser = parse::seconds)]
    wall_time: Option<f64>,
    /// Grace period after a time limit before the kill (the reported time can exceed the limit by this).
    #[arg(long, allow_hyphen_values = true, value_name = "SECONDS", value_parser = parse::seconds, default_value = "0")]
    extra_time: f64,
    /// Cap on captured stdout+stderr; beyond it output is discarded and the run ends with output_limit.
    #[arg(long, allow_hyphen_values = true, value_name = "SIZE", value_parser = parse::size, default_value = "64M")]
    output_limit: u64,

    /// Program's stdin (a host file); default /dev/null.
    #[arg(long, value_name = "FILE")]
    stdin: Option<PathBuf>,
    /// Write the program's stdout to this host file instead of capturing it.
    #[arg(long, value_name = "FILE")]
    stdout: Option<PathBuf>,
    /// Write the program's stderr to this host file instead of capturing it.
    #[arg(long, value_name = "FILE")]
    stderr: Option<PathBuf>,

    /// Copy a host file into /box before the run (NAME defaults to the file's name). Repeatable.
    #[arg(long = "file", value_name = "HOSTPATH[:NAME]")]
    files: Vec<String>,
    /// Bind-mount a host directory read-write at /box instead of a fresh tmpfs. Needs
    /// --box-dir-size: what the run writes there stays on the host.
    #[arg(long, value_name = "HOSTDIR")]
    box_dir: Option<PathBuf>,
    /// What --box-dir may hold: SIZE (its filesystem, e.g. a tmpfs mounted there, must be no
    /// larger; that is what bounds the run) or `unlimited` (the run may fill that filesystem).
    #[arg(long, value_name = "SIZE|unlimited", value_parser = parse::box_dir_size, requires = "box_dir")]
    box_dir_size: Option<judgebox::boxdir::BoxDirSize>,
    /// Copy a file out of /box after the run (no symlinks followed, regular files only). Repeatable.
    #[arg(long = "copy-out", value_name = "NAME:HOSTPATH")]
    copy_out: Vec<String>,
    /// Largest file --copy-out copies back; larger ones are refused.
    #[arg(long, allow_hyphen_values = true, value_name = "SIZE", value_parser = parse::size, default_value = "64M")]
    copy_out_limit: u64,
    /// Size of the private /tmp (and /dev/shm) tmpfs.
    #[arg(long, allow_hyphen_values = true, value_name = "SIZE", value_parser = parse::size, default_value = "64M")]
    tmp_size: u64,
    /// Size of the /box tmpfs (ignored with --box-dir).
    #[arg(long, allow_hyphen_values = true, value_name = "SIZE", value_parser = parse::size, default_value = "64M")]
    box_size: u64,

    /// Environment variable for the program (the environment is otherwise empty but for PATH). Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse::env_pair)]
    env: Vec<String>,
    /// Hostname inside the sandbox.
    #[arg(long, default_value = "judgebox")]
    hostname: String,
    /// Network: none (default) or loopback.
    #[arg(long, value_enum, default_value = "none")]
    net: Net,
    /// Unprivileged uid the program runs as (default: a uid of its own leased from
    /// --uid-range, so per-user kernel limits such as RLIMIT_NPROC or inotify instances are
    /// this run's alone).
    #[arg(long)]
    uid: Option<u32>,
    /// The uids runs lease one of (FIRST-LAST; each also used as the gid). Must not touch any
    /// account, group or /etc/subuid/subgid range.
    #[arg(long, value_name = "FIRST-LAST", env = "JUDGEBOX_UID_RANGE", value_parser = parse::uid_range)]
    uid_range: Option<judgebox::sandbox::uid::UidRange>,
    /// Unprivileged gid the program runs as (default: as the uid).
    #[arg(long)]
    gid: Option<u32>,

    /// Memory limit of the whole run (cgroup; RLIMIT_AS per process when no cgroup is usable).
    #[arg(long, allow_hyphen_values = true, value_name = "SIZE", value_parser = parse::size, default_value = "256M")]
    memory: u64,
    /// Most tasks (processes + threads) at once (cgroup pids; RLIMIT_NPROC without cgroups).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pids: u64,
    /// CPU bandwidth as a fraction of one CPU, e.g. 0.5 (cgroup only). Default: unlimited.
    #[arg(long, value_name = "FRACTION", value_parser = parse::fraction)]
    cpus: Option<f64>,
    /// Create run cgroups under this cgroup directory instead of the detected parent.
    #[arg(long, value_name = "PATH")]
    cgroup_root: Option<PathBuf>,
    /// Do not use cgroups: the degraded mode (rlimits and the supervisor's clock), as on hosts
    /// where no cgroup is writable. Every result says so in "enforcement".
    #[arg(long)]
    no_cgroup: bool,
    /// Print where judgebox's own time went (setup, cgroup work, the sandboxed run) as one
    /// line on stderr, e.g. to see what cgroup limits cost on this host.
    #[arg(long)]
    timings: bool,

    /// Seccomp profile, installed as the last step before execve: `default` (an allow-list;
    /// anything else fails with EPERM), `strict` (the same list; anything else kills the
    /// program: status security_violation naming the call), `none` (no filter: debugging
    /// only), or the path of a profile in the OCI/Docker JSON format.
    #[arg(
        long,
        value_name = "NAME|PATH",
        default_value = "default",
        env = "JUDGEBOX_SECCOMP"
    )]
    seccomp: String,

    /// RLIMIT_NOFILE: open files per process.
    #[arg(long, value_name = "N", default_value_t = 64)]
    nofile: u64,
    /// RLIMIT_FSIZE: largest file the program may write.
    #[arg(long, allow_hyphen_values = true, value_name = "SIZE", value_parser = parse::size, default_value = "64M")]
    fsize: u64,
    /// RLIMIT_STACK, or "unlimited".
    #[arg(long, allow_hyphen_values = true, value_name = "SIZE|unlimited", value_parser = parse::size_or_unlimited, default_value = "64M")]
    stack: parse::MaybeUnlimited,

    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// In JSON, give stdout/stderr as base64 instead of UTF-8 with lossy replacement.
    #[arg(long)]
    base64: bool,
    /// Write an isolate-compatible meta file (key:value lines).
    #[arg(long, value_name = "FILE")]
    meta: Option<PathBuf>,
    /// Allow the host's / as rootfs (debugging only: the host tree becomes the sandbox's).
    #[arg(long)]
    allow_host_root: bool,

    /// The program and its arguments (after --); with --image it replaces the image's
    /// Entrypoint and Cmd.
    #[arg(last = true, required_unless_present = "image", value_name = "CMD")]
    command: Vec<String>,
}

fn parse_file(spec: &str) -> Result<CopyIn> {
    let (source, name) = match spec.rsplit_once(':') {
        Some((src, name)) if !src.is_empty() && !name.is_empty() => {
            (PathBuf::from(src), name.to_string())
        }
        _ => {
            let source = PathBuf::from(spec);
            let name = source
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| {
                    format!("--file {spec}: cannot tell the file name; use HOSTPATH:NAME")
                })?
                .to_string();
            (source, name)
        }
    };
    Ok(CopyIn {
        source,
        name,
        read_only: false,
    })
}

fn parse_copy_out(spec: &str) -> Result<CopyOut> {
    match spec.split_once(':') {
        Some((name, dest)) if !name.is_empty() && !dest.is_empty() => Ok(CopyOut {
            name: name.to_string(),
            dest: PathBuf::from(dest),
        }),
        _ => anyhow::bail!("invalid --copy-out '{spec}': expected NAME:HOSTPATH"),
    }
}

fn build_config(a: &RunArgs) -> Result<Config> {
    Ok(Config {
        rootfs: a.rootfs.clone().unwrap_or_default(),
        argv: a.command.clone(),
        env: a.env.clone(),
        hostname: a.hostname.clone(),
        loopback: a.net == Net::Loopback,
        uid: a.uid.unwrap_or(65534),
        gid: a.gid.or(a.uid).unwrap_or(65534),
        tmp_size: a.tmp_size,
        box_size: a.box_size,
        files: a
            .files
            .iter()
            .map(|f| parse_file(f))
            .collect::<Result<_>>()?,
        box_dir: a.box_dir.clone(),
        copy_out: a
            .copy_out
            .iter()
            .map(|c| parse_copy_out(c))
            .collect::<Result<_>>()?,
        copy_out_limit: a.copy_out_limit,
        stdin: a.stdin.clone(),
        stdout_file: a.stdout.clone(),
        stderr_file: a.stderr.clone(),
        limits: Limits {
            cpu_time: a.time,
            cpu_per_process: false,
            wall_time: a.wall_time,
            extra_time: a.extra_time,
            output: a.output_limit,
            nofile: a.nofile,
            fsize: a.fsize,
            stack: a.stack.0,
            memory: Some(a.memory),
            pids: Some(a.pids),
            cpus: a.cpus,
            core: 0,
        },
        allow_host_root: a.allow_host_root,
        workdir: "/box".into(),
        stream_output: !a.json,
        ..Config::default()
    })
}

/// With --image: rootfs, command, env and working dir from the store. The returned
/// image holds a lease on its rootfs (so `image prune` keeps it) until dropped.
fn apply_image(a: &RunArgs, config: &mut Config) -> Result<Option<Resolved>> {
    let Some(name) = &a.image else {
        return Ok(None);
    };
    let image = super::image::resolve_for_run(&a.root, name)?;
    config.rootfs = image.rootfs.clone();
    config.argv = image.argv(&a.command)?;
    config.env = image.env(&a.env);
    if let Some(dir) = image.working_dir() {
        config.workdir = dir.to_string();
    }
    Ok(Some(image))
}

pub fn execute(args: RunArgs) -> Result<i32> {
    let started = Instant::now();
    sandbox::ensure_root()?;
    // Under systemd without delegation: continue in a delegated transient scope (re-exec).
    let cgroup_options = ManagerOptions {
        root: args.cgroup_root.clone(),
        disabled: args.no_cgroup,
    };
    let scoped = cgroup::enter_delegated_scope(&cgroup_options)?;
    parse::use_uid_range(args.uid_range)?;
    let mut config = build_config(&args)?;
    let _image = apply_image(&args, &mut config)?;
    let filter = seccomp::Filter::load(&args.seccomp)
        .with_context(|| format!("--seccomp {}", args.seccomp))?;
    if let Some(dir) = &args.box_dir {
        let capacity = judgebox::boxdir::check(dir, args.box_dir_size)?;
        if args.box_dir_size == Some(judgebox::boxdir::BoxDirSize::Unlimited) {
            eprintln!(
                "judgebox: warning: --box-dir {} --box-dir-size unlimited: the run may fill its filesystem ({})",
                esc(&dir.display().to_string()),
                judgebox::units::human_bytes(capacity)
            );
        }
    }
    let cgroup_started = Instant::now();
    let manager = scoped.manager(&cgroup_options);
    if let (Some(root), cgroup::Mode::None) = (&args.cgroup_root, manager.mode()) {
        anyhow::bail!(
            "--cgroup-root {}: not usable: {}",
            root.display(),
            manager.none_reason().unwrap_or("unknown reason")
        );
    }
    let limits = config.limits.cgroup();
    let enforcement = manager.enforcement(&limits);
    let manager_setup = cgroup_started.elapsed();
    let sandbox_started = Instant::now();
    // A pinned, empty network namespace from the pool (a fresh one when none is free, or
    // when the run wants `lo` up).
    let netns = (!config.loopback)
        .then(sandbox::netns_pool::lease)
        .flatten();
    // init builds the sandbox while the run's cgroup is made here.
    let one_shot = sandbox::OneShot::start(
        config,
        Enforced {
            cgroup: None,
            enforcement,
            filter: filter.as_ref(),
            netns: netns.as_ref().map(|n| n.fd.as_raw_fd()),
            fixed_uid: args.uid.is_some(),
            fixed_gid: args.gid.is_some(),
        },
    );
    let cgroup_started = Instant::now();
    let run_cgroup = match manager.mode() {
        cgroup::Mode::None => None,
        _ => Some(
            manager
                .create_run(&limits)
                .context("cannot create the run's cgroup (see `judgebox doctor`)")?,
        ),
    };
    let cgroup_made = cgroup_started.elapsed();
    let cgroup_setup = manager_setup + cgroup_made;
    let timed = run_cgroup.as_deref().map(TimedCgroup::new);
    let outcome = one_shot.and_then(|o| o.finish(timed.as_ref().map(|c| c as &dyn cgroup::Cgroup)));
    // The sandbox's own time on this thread (the cgroup was made while init built).
    let sandbox_time = sandbox_started.elapsed().saturating_sub(cgroup_made);
    let in_run = timed.as_ref().map_or(Duration::ZERO, TimedCgroup::spent);
    let removal_started = Instant::now();
    if let Some(cg) = run_cgroup {
        if let Err(e) = cg.remove() {
            eprintln!("judgebox: warning: {}", esc(&e.to_string()));
        }
    }
    if args.timings {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let removal = removal_started.elapsed();
        eprintln!(
            "judgebox: timings: total {:.3} ms; cgroup {:.3} ms (setup {:.3}, during the run {:.3}, removal {:.3}); sandbox {:.3} ms",
            ms(started.elapsed()),
            ms(cgroup_setup + in_run + removal),
            ms(cgroup_setup),
            ms(in_run),
            ms(removal),
            ms(sandbox_time - in_run),
        );
    }
    let result = outcome?;
    if let Some(meta) = &args.meta {
        std::fs::write(meta, result.to_meta())
            .with_context(|| format!("--meta {}: cannot write", meta.display()))?;
    }
    if args.json {
        println!("{}", result.to_json(args.base64));
    } else {
        eprintln!("{}", esc(&result.summary()));
    }
    Ok(result.exit_code_for_cli())
}
