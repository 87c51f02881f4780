//! `judgebox serve`: the Judge0-compatible HTTP API. Reads judge0.conf and the environment
//! (Judge0's keys), opens the store (SQLite, or PostgreSQL for API and worker roles on many
//! hosts) and serves until SIGTERM; `--migrate` brings a PostgreSQL schema up to date.

use super::judge::{cgroup_manager, Languages};
use anyhow::{Context, Result};
use clap::Args;
use judgebox::image::store::Store as ImageStore;
use judgebox::sandbox;
use judgebox::server::config::{Config, Source};
use judgebox::server::languages::Table;
use judgebox::server::runner::Runner;
use judgebox::server::{self, log, Database, Options, Role};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Serve a Judge0 CE 1.13-compatible HTTP API (submissions, languages, statuses, ...).
///
/// Configuration comes from Judge0's judge0.conf (--config) and the environment, with
/// Judge0's keys and defaults; Redis, PostgreSQL and Rails keys are ignored.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  judgebox serve\n  judgebox serve --config /etc/judge0.conf --listen 0.0.0.0:2358\n  judgebox serve --database postgres://judgebox@db/judgebox --migrate\n  judgebox serve --database postgres://judgebox@db/judgebox --role api --listen 0.0.0.0:2358\n  judgebox serve --database postgres://judgebox@db/judgebox --role worker --workers 4"
)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; see the README before exposing it).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2358")]
    listen: SocketAddr,
    /// Judge0's judge0.conf (KEY=VALUE); the environment overrides it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The SQLite database (default: serve/judgebox.db under the store root).
    #[arg(long, value_name = "PATH", conflicts_with = "database")]
    db: Option<PathBuf>,
    /// A PostgreSQL database shared by every API and worker process, instead of SQLite
    /// (postgres://user:password@host:port/db?sslmode=require; TLS with the system's roots).
    #[arg(
        long,
        value_name = "URL",
        env = "JUDGEBOX_DATABASE",
        hide_env_values = true
    )]
    database: Option<String>,
    /// api: the HTTP API only; worker: workers only (no listener); all: both. api and
    /// worker need --database.
    #[arg(long, value_enum, default_value = "all")]
    role: Role,
    /// Bring the --database schema up to date, then exit.
    #[arg(long, requires = "database")]
    migrate: bool,
    /// Seconds a claimed submission stays with its worker's process without a renewal;
    /// after that another worker judges it (a dead or cut-off process's submissions).
    #[arg(long, value_name = "SECONDS", default_value = "30")]
    lease: f64,
    /// Worker threads judging submissions (default: COUNT, else the number of CPUs).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    #[command(flatten)]
    languages: Languages,
    /// Use this rootfs directory for every language instead of its image.
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,
    /// Parent cgroup for the runs (as `judgebox run --cgroup-root`).
    #[arg(long, value_name = "PATH")]
    cgroup_root: Option<PathBuf>,
    /// Do not use cgroups (degraded mode, reported in every result).
    #[arg(long)]
    no_cgroup: bool,
}

fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    let mut source = match path {
        Some(p) => Source::from_file(p)?,
        None => Source::default(),
    };
    source.overlay_env();
    for key in &source.ignored {
        log(
            "config",
            serde_json::json!({"ignored": key, "note": "not used by judgebox"}),
        );
    }
    for key in source.unknown() {
        log(
            "config",
            serde_json::json!({"unknown": key, "note": "not a Judge0 key; ignored"}),
        );
    }
    Ok(Config::from_source(&source)?)
}

/// `--migrate`: applies the missing migrations and says which version the schema is at.
fn migrate(url: &str) -> Result<i32> {
    let (before, after) = server::postgres::migrate(url).context("migrate")?;
    if before == after {
        println!("database schema is up to date (version {after})");
    } else {
        println!("database schema migrated from version {before} to {after}");
    }
    Ok(0)
}

pub fn execute(a: ServeArgs) -> Result<i32> {
    if a.migrate {
        return migrate(a.database.as_deref().unwrap_or_default());
    }
    if a.role != Role::All && a.database.is_none() {
        anyhow::bail!(
            "--role api and --role worker share a PostgreSQL database between processes: \
             give --database postgres://... (SQLite serves one process, --role all)"
        );
    }
    if !(a.lease.is_finite() && a.lease >= 0.5) {
        anyhow::bail!("--lease {}: give at least 0.5 seconds", a.lease);
    }
    sandbox::ensure_root()?;
    let config = load_config(a.config.as_ref())?;
    let catalog = a.languages.catalog()?;
    let root = a.languages.root.clone();
    let images = match &a.rootfs {
        Some(_) => None,
        None => Some(
            ImageStore::open(&root).with_context(|| format!("image store {}", root.display()))?,
        ),
    };
    let languages = Table::build(&catalog, images.as_ref());
    let cgroups = cgroup_manager(a.cgroup_root.clone(), a.no_cgroup)?;
    let workers = a
        .workers
        .or(config.count)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // Scratch directories of servers that were killed (-9) go at start-up.
    judgebox::scratch::remove_stale("judgebox-serve-");
    let scratch = judgebox::scratch::base().join(format!("judgebox-serve-{}", std::process::id()));
    judgebox::scratch::private_dir(&scratch)
        .with_context(|| format!("scratch directory {}", scratch.display()))?;
    let runner = Runner {
        cgroups,
        images,
        rootfs: a.rootfs.clone(),
        scratch: scratch.clone(),
        memory_ceiling_kb: config.max_memory_limit,
    };
    let database = match &a.database {
        Some(url) => Database::Postgres(url.clone()),
        None => Database::Sqlite(
            a.db.clone()
                .unwrap_or_else(|| root.join("serve/judgebox.db")),
        ),
    };
    let result = server::serve(Options {
        listen: a.listen,
        config,
        database,
        role: a.role,
        lease: std::time::Duration::from_secs_f64(a.lease),
        workers,
        languages,
        runner,
    });
    let _ = std::fs::remove_dir_all(&scratch);
    result?;
    Ok(0)
}
