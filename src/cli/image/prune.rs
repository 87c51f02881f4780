//! `judgebox image prune`: deletes what no name refers to.

use std::path::Path;

use anyhow::Result;
use clap::Args;

use super::{mib, open_store, short};

/// Delete every rootfs and blob that no image name refers to (rootfs in use by a run
/// are kept for a later prune).
#[derive(Args)]
pub struct PruneArgs {
    /// Print one JSON object: what was removed and how many bytes were freed.
    #[arg(long)]
    json: bool,
}

pub fn execute(args: PruneArgs, root: &Path) -> Result<i32> {
    let report = open_store(root)?.prune()?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(0);
    }
    for f in &report.rootfs {
        println!("removed rootfs {}  {}", short(&f.digest), mib(f.bytes));
    }
    for d in &report.in_use {
        println!("kept rootfs {} (in use by a run)", short(d));
    }
    println!(
        "removed {} rootfs and {} blobs, freed {}",
        report.rootfs.len(),
        report.blobs.len(),
        mib(report.bytes)
    );
    Ok(0)
}
