//! `judgebox cleanup`: removes what judgebox keeps between runs on purpose, the pinned
//! network namespaces of its pool (/run/judgebox/netns), skipping those in use.

use anyhow::{Context, Result};
use clap::Args;
use judgebox::sandbox::{self, netns_pool};

/// Remove the pool of pinned network namespaces (those not in use).
#[derive(Args)]
pub struct CleanupArgs {
    /// Print one JSON object instead of a line.
    #[arg(long)]
    json: bool,
}

pub fn execute(args: CleanupArgs) -> Result<i32> {
    sandbox::ensure_root()?;
    let removed = netns_pool::cleanup()
        .with_context(|| format!("cannot clean up {}", netns_pool::POOL_DIR))?;
    if args.json {
        println!("{}", serde_json::json!({ "netns_removed": removed }));
    } else {
        println!(
            "removed {removed} pinned network namespace(s) from {}",
            netns_pool::POOL_DIR
        );
    }
    Ok(0)
}
