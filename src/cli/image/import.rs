//! `judgebox image import`: an OCI layout (directory or tar) or a docker save archive.

use judgebox::display::escape_controls as esc;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use judgebox::image::import::{import, ImportOptions};
use judgebox::image::spec::Platform;
use judgebox::sandbox;

use super::{mib, open_store, short, UnpackBar};

/// Import images from an OCI image layout directory, a tar of one, or a `docker save`
/// archive (both forms; gzip-compressed too), and unpack each image's rootfs.
#[derive(Args)]
#[command(
    after_help = "Example: judgebox image import /var/cache/judgebox/oci --tag judgebox/python3:bookworm"
)]
pub struct ImportArgs {
    /// Layout directory or archive file; `-` reads an archive from stdin.
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Import the image named so in the input (ref.name or RepoTags) and store it under
    /// this name; with a single image in the input, names it. Default: every named image.
    #[arg(long, value_name = "NAME")]
    tag: Option<String>,
    /// Platform to pick from multi-platform indexes (default: the host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    platform: Option<Platform>,
    /// Print one JSON object: the imported images, ignored archive entries, seconds taken.
    #[arg(long)]
    json: bool,
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    Platform::parse(s).map_err(|e| e.to_string())
}

pub fn execute(args: ImportArgs, root: &Path) -> Result<i32> {
    sandbox::ensure_root()?;
    let store = open_store(root)?;
    let options = ImportOptions {
        tag: args.tag.clone(),
        platform: args.platform.clone(),
    };
    let started = Instant::now();
    let mut bar = UnpackBar::new(args.json);
    let result = import(&store, &args.path, &options, &mut |p| bar.update(p));
    bar.finish();
    let report = result?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let images: Vec<_> = report
            .images
            .iter()
            .map(|i| {
                let r = &i.added.record;
                serde_json::json!({
                    "name": r.name,
                    "manifest": r.manifest,
                    "platform": r.platform,
                    "layers": r.layers.len(),
                    "rootfs": store.rootfs_path(&r.manifest),
                    "rootfs_bytes": r.rootfs_bytes,
                    "unpacked": i.added.unpacked.is_some(),
                    "skipped": i.added.unpacked.as_ref().map(|s| &s.skipped),
                    "replaced": i.added.replaced,
                })
            })
            .collect();
        let out =
            serde_json::json!({"images": images, "ignored": report.ignored, "seconds": seconds});
        println!("{out}");
        return Ok(0);
    }
    for i in &report.images {
        let r = &i.added.record;
        let how = match &i.added.unpacked {
            Some(_) => format!("{} rootfs", mib(r.rootfs_bytes.unwrap_or(0))),
            None => "rootfs already unpacked".to_string(),
        };
        println!(
            "imported {} ({}, {}, {} layers, {how})",
            esc(&r.name),
            short(&r.manifest),
            esc(&r.platform),
            r.layers.len()
        );
        for note in i.added.unpacked.iter().flat_map(|s| &s.skipped) {
            eprintln!(
                "judgebox: note: {}: not applied: {}",
                esc(&r.name),
                esc(&note.to_string())
            );
        }
    }
    if !report.ignored.is_empty() {
        eprintln!(
            "judgebox: note: ignored archive entries: {}",
            esc(&report.ignored.join(", "))
        );
    }
    eprintln!("done in {seconds:.1} s");
    Ok(0)
}
