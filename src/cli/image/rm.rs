//! `judgebox image rm`: drops names; `image prune` frees the space.

use judgebox::display::escape_controls as esc;
use std::path::Path;

use anyhow::Result;
use clap::Args;

use super::open_store;

/// Remove image names from the store. The rootfs and blobs stay until `image prune`.
#[derive(Args)]
pub struct RmArgs {
    /// Image names (or manifest digests); all must exist, or nothing is removed.
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
}

pub fn execute(args: RmArgs, root: &Path) -> Result<i32> {
    let store = open_store(root)?;
    for name in &args.names {
        store.find(name)?;
    }
    for name in &args.names {
        let record = store.remove(name)?;
        println!("removed {}", esc(&record.name));
    }
    Ok(0)
}
