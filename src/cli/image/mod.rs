//! `judgebox image`: the local image store under `--root` (pull, import, ls, inspect,
//! rm, prune) and the helpers `run --image` uses. Each subcommand is one thin file.

mod import;
mod inspect;
mod ls;
mod prune;
mod pull;
mod rm;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use judgebox::image::digest::Digest;
use judgebox::image::store::{Quota, Resolved, Store, StoreError, UnpackProgress, DEFAULT_ROOT};

/// Manage the local image store: pull from registries, import OCI layouts and docker save
/// archives, list,
/// inspect, remove and prune images.
#[derive(Args)]
pub struct ImageArgs {
    /// Image store directory (created 0700, root-owned).
    #[arg(long, global = true, env = "JUDGEBOX_ROOT", default_value = DEFAULT_ROOT, value_name = "DIR")]
    pub root: PathBuf,
    /// What the whole store (blobs and unpacked rootfs) may take; an import or pull that
    /// would go over stops and keeps nothing.
    #[arg(long, global = true, env = "JUDGEBOX_STORE_MAX", default_value = "64G", value_name = "SIZE", value_parser = super::parse::size)]
    pub max_store: u64,
    /// Free space an import or pull must leave on the store's filesystem.
    #[arg(long, global = true, env = "JUDGEBOX_STORE_MIN_FREE", default_value = "1G", value_name = "SIZE", value_parser = super::parse::size)]
    pub min_free: u64,
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// The quota of this process's store (set once from the flags, before any command runs).
static QUOTA: std::sync::OnceLock<Quota> = std::sync::OnceLock::new();

#[derive(Subcommand)]
pub enum ImageCommand {
    Import(import::ImportArgs),
    Ls(ls::LsArgs),
    Inspect(inspect::InspectArgs),
    Rm(rm::RmArgs),
    Prune(prune::PruneArgs),
    Pull(pull::PullArgs),
}

pub fn execute(args: ImageArgs) -> Result<i32> {
    let root = args.root.as_path();
    let _ = QUOTA.set(Quota {
        max_bytes: args.max_store,
        min_free: args.min_free,
    });
    match args.command {
        ImageCommand::Import(a) => import::execute(a, root),
        ImageCommand::Ls(a) => ls::execute(a, root),
        ImageCommand::Inspect(a) => inspect::execute(a, root),
        ImageCommand::Rm(a) => rm::execute(a, root),
        ImageCommand::Prune(a) => prune::execute(a, root),
        ImageCommand::Pull(a) => pull::execute_into_store(&a, root),
    }
}

/// Opens the store (which also clears what killed imports left behind).
pub fn open_store(root: &Path) -> Result<Store> {
    let mut store = Store::open(root)
        .with_context(|| format!("cannot open the image store {}", root.display()))?;
    store.set_quota(QUOTA.get().copied().unwrap_or_default());
    Ok(store)
}

/// The image `run --image` asks for, from the store only (never the network). A missing
/// image is an error that says how to get it.
pub fn resolve_for_run(root: &Path, name: &str) -> Result<Resolved> {
    match open_store(root)?.resolve(name) {
        Ok(resolved) => Ok(resolved),
        Err(StoreError::NotFound(_)) => {
            let root_flag = if root == Path::new(DEFAULT_ROOT) {
                String::new()
            } else {
                format!(" --root {}", root.display())
            };
            anyhow::bail!(
                "image '{name}' is not in the store {}; get it first with one of:\n  \
                 judgebox image pull {name}{root_flag}\n  \
                 judgebox image import PATH --tag {name}{root_flag}",
                root.display()
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// `123.4 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The 12 hex digits `image ls` shows for a digest.
pub fn short(digest: &Digest) -> &str {
    &digest.encoded()[..12]
}

/// An indicatif bar per image unpack, in compressed layer bytes; shown on a TTY only.
pub struct UnpackBar {
    enabled: bool,
    current: Option<(String, ProgressBar)>,
}

impl UnpackBar {
    pub fn new(quiet: bool) -> UnpackBar {
        UnpackBar {
            enabled: !quiet && std::io::stderr().is_terminal(),
            current: None,
        }
    }

    pub fn update(&mut self, p: UnpackProgress<'_>) {
        if !self.enabled {
            return;
        }
        if self
            .current
            .as_ref()
            .is_none_or(|(image, _)| image != p.image)
        {
            self.finish();
            let bar = ProgressBar::new(p.total);
            let style = ProgressStyle::with_template(
                "[{bar:25}] {binary_bytes:>10}/{binary_total_bytes} {eta:>3} {wide_msg}",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(format!("unpacking {}", p.image));
            self.current = Some((p.image.to_string(), bar));
        }
        if let Some((_, bar)) = &self.current {
            bar.set_position(p.done);
        }
    }

    pub fn finish(&mut self) {
        if let Some((_, bar)) = self.current.take() {
            bar.finish_and_clear();
        }
    }
}
