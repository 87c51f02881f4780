//! `judgebox image inspect`: one image's record, config, layers and rootfs.

use judgebox::display::escape_controls as esc;
use std::path::Path;

use anyhow::Result;
use clap::Args;

use super::{mib, open_store};

/// Show an image: manifest, platform, rootfs path, layers with sizes and diff_ids, and
/// its config (Entrypoint, Cmd, Env, WorkingDir).
#[derive(Args)]
pub struct InspectArgs {
    /// Image name (`python3:bookworm`), manifest digest, or its first 12+ hex digits.
    #[arg(value_name = "NAME")]
    name: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn execute(args: InspectArgs, root: &Path) -> Result<i32> {
    let image = open_store(root)?.resolve(&args.name)?;
    let r = &image.record;
    if args.json {
        let out = serde_json::json!({
            "name": r.name,
            "manifest": r.manifest,
            "media_type": r.media_type,
            "config_digest": r.config,
            "platform": r.platform,
            "added": r.added,
            "rootfs": image.rootfs,
            "rootfs_bytes": r.rootfs_bytes,
            "layers": r.layers,
            "diff_ids": image.config.rootfs.diff_ids,
            "config": image.config,
        });
        println!("{out}");
        return Ok(0);
    }
    let exec = image.config.config.clone().unwrap_or_default();
    let list = |v: &Option<Vec<String>>| v.as_ref().map_or("-".to_string(), |v| format!("{v:?}"));
    println!("Name:        {}", esc(&r.name));
    println!("Manifest:    {}", r.manifest);
    println!("Config:      {}", r.config);
    println!("Platform:    {}", esc(&r.platform));
    println!("Added:       {}", esc(&r.added));
    println!(
        "Rootfs:      {} ({})",
        image.rootfs.display(),
        r.rootfs_bytes.map_or("?".into(), mib)
    );
    println!("Entrypoint:  {}", esc(&list(&exec.entrypoint)));
    println!("Cmd:         {}", esc(&list(&exec.cmd)));
    println!(
        "WorkingDir:  {}",
        esc(exec
            .working_dir
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or("-"))
    );
    println!("Env:");
    for e in exec.env.iter().flatten() {
        println!("  {}", esc(e));
    }
    println!(
        "Layers:      {} ({} compressed)",
        r.layers.len(),
        mib(r.layers_size())
    );
    for (i, l) in r.layers.iter().enumerate() {
        println!(
            "  {:>2}  {}  {:>10}  {}",
            i + 1,
            l.digest,
            mib(l.size),
            esc(&l.media_type)
        );
        println!("      diff_id {}", l.diff_id);
    }
    Ok(0)
}
