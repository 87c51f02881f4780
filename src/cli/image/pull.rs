//! `judgebox image pull`: flags to [`PullOptions`] (credentials from stdin or an auth
//! file), the pull itself, and a one-line summary on stderr.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use judgebox::image::blobs::BlobDir;
use judgebox::image::reference::Reference;
use judgebox::image::registry::{self, Credentials, PullOptions, Pulled, Timeouts};
use judgebox::image::spec::Platform;

use crate::cli::parse;

/// Pull an image from a registry into the local blob store.
///
/// Plain HTTP is used only for loopback registries and those named by
/// --insecure-registry; every other registry is reached over https.
#[derive(Args)]
#[command(after_help = "Examples:\n  judgebox image pull python:3.12-slim\n  \
    judgebox image pull --platform linux/arm64 localhost:5000/judge/gcc:13\n  \
    echo \"$TOKEN\" | judgebox image pull --username bot --password-stdin reg.example/team/img")]
pub struct PullArgs {
    /// Image reference: [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST].
    pub reference: String,
    /// Platform to take from a multi-platform image (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    pub platform: Option<Platform>,
    /// User name for the registry; the password (or token) is read from stdin.
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password for --username from stdin.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Credentials file (Docker config.json format, `auths.<host>.auth`). Default:
    /// $DOCKER_CONFIG/config.json or ~/.docker/config.json, if it exists.
    #[arg(long, env = "REGISTRY_AUTH_FILE", value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Reach this registry (HOST[:PORT]) over plain HTTP. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Give up on a registry that sends nothing for this long, seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse::seconds, default_value = "30")]
    pub timeout: f64,
    /// No progress bars, even on a terminal.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    Platform::parse(s).map_err(|e| e.to_string())
}

/// `judgebox image pull`: pulls into the store's blobs, then registers and unpacks the
/// image; prints the manifest digest on stdout (the name is in the summary on stderr).
pub fn execute_into_store(args: &PullArgs, root: &std::path::Path) -> Result<i32> {
    judgebox::sandbox::ensure_root()?;
    let store = super::open_store(root)?;
    let room = store.room()?;
    let pulled = execute(args, store.blobs(), Some((room.bytes, room.binding)))?;
    let reference = Reference::parse(&args.reference)?;
    let mut bar = super::UnpackBar::new(args.quiet);
    let added = store.add_image(&reference, &pulled.manifest_digest, &mut |p| bar.update(p));
    bar.finish();
    added?;
    println!("{}", pulled.manifest_digest);
    Ok(0)
}

/// Pulls `args.reference` into `blobs` and prints a summary line on stderr.
pub fn execute(
    args: &PullArgs,
    blobs: &BlobDir,
    max_download: Option<(u64, String)>,
) -> Result<Pulled> {
    let reference = Reference::parse(&args.reference)?;
    let timeout = Duration::from_secs_f64(args.timeout.max(0.001));
    let opts = PullOptions {
        platform: args.platform.clone(),
        insecure: args.insecure_registry.clone(),
        credentials: credentials(args, &reference)?,
        timeouts: Timeouts {
            connect: timeout,
            idle: timeout,
        },
        progress: !args.quiet && std::io::stderr().is_terminal(),
        max_download,
        ..PullOptions::default()
    };
    let start = Instant::now();
    let pulled = registry::pull(&reference, blobs, &opts)?;
    let esc = judgebox::display::escape_controls;
    eprintln!("{}", esc(&summary(&reference, &pulled, start.elapsed())));
    if args.platform.is_none() && !Platform::host().matches(&pulled.platform) {
        eprintln!(
            "judgebox: warning: {} is for {}, not this host's {}",
            esc(&reference.to_string()),
            esc(&pulled.platform.to_string()),
            Platform::host()
        );
    }
    Ok(pulled)
}

/// `pulled REF (linux/amd64) sha256:…: 3 layers, 84.1 MB in 1.2 s (70.1 MB/s), 1 blob reused`.
fn summary(reference: &Reference, pulled: &Pulled, elapsed: Duration) -> String {
    let mb = pulled.bytes_downloaded as f64 / 1e6;
    let secs = elapsed.as_secs_f64().max(1e-6);
    format!(
        "pulled {reference} ({}) {}: {} layer{}, {mb:.1} MB downloaded in {secs:.1} s ({:.1} MB/s), {} blob{} reused",
        pulled.platform,
        pulled.manifest_digest,
        pulled.layers.len(),
        if pulled.layers.len() == 1 { "" } else { "s" },
        mb / secs,
        pulled.reused,
        if pulled.reused == 1 { "" } else { "s" },
    )
}

/// --username with a password on stdin, else the auth file's entry for the registry.
fn credentials(args: &PullArgs, reference: &Reference) -> Result<Option<Credentials>> {
    if let Some(user) = &args.username {
        let mut password = String::new();
        std::io::stdin()
            .take(64 << 10)
            .read_to_string(&mut password)
            .context("reading the password from stdin")?;
        let password = password.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            bail!("--password-stdin: stdin was empty");
        }
        return Ok(Some(Credentials::new(user, password)));
    }
    let path = match &args.authfile {
        Some(path) => path.clone(),
        None => match default_auth_file() {
            Some(path) => path,
            None => return Ok(None),
        },
    };
    Ok(Credentials::from_auth_file(&path, &reference.auth_hosts())?)
}

/// `$DOCKER_CONFIG/config.json` or `$HOME/.docker/config.json`, if it exists.
fn default_auth_file() -> Option<PathBuf> {
    let dir = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(&std::env::var_os("HOME")?).join(".docker"),
    };
    let path = dir.join("config.json");
    path.is_file().then_some(path)
}
