//! `judgebox image`: minimal wiring of `image pull` for the registry branch; the image
//! store's `image` command replaces this file and calls [`pull::execute`].

pub mod pull;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use judgebox::image::blobs::BlobDir;

/// Manage images.
#[derive(Args)]
pub struct ImageArgs {
    /// judgebox's state directory (blobs in ROOT/blobs).
    #[arg(
        long,
        global = true,
        env = "JUDGEBOX_ROOT",
        value_name = "DIR",
        default_value = "/var/lib/judgebox"
    )]
    root: PathBuf,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand)]
enum ImageCommand {
    Pull(pull::PullArgs),
}

/// Runs an `image` subcommand; prints the pulled manifest's digest on stdout.
pub fn execute(args: ImageArgs) -> Result<i32> {
    match args.command {
        ImageCommand::Pull(pull_args) => {
            let blobs = BlobDir::open(&args.root.join("blobs"))?;
            let pulled = pull::execute(&pull_args, &blobs)?;
            println!("{}", pulled.manifest_digest);
            Ok(0)
        }
    }
}
