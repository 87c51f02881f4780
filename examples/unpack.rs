//! Dev entry point for benchmarks and cross-checks (not the CLI): unpacks a tagged image
//! from an OCI image layout with `judgebox::image::unpack::unpack_layers`.
//!
//!     cargo run --release --example unpack -- LAYOUT_DIR TAG DEST
//!     cargo run --release --example unpack -- LAYOUT_DIR TAG --list   # layer blobs, in order

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use judgebox::image::digest::Digest;
use judgebox::image::spec::{parse_document, Document, ImageConfig, LayerCompression};
use judgebox::image::unpack::{unpack_layers, LayerSource, Limits};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [layout, tag, dest] = args.as_slice() else {
        bail!("usage: unpack LAYOUT_DIR TAG (DEST | --list)");
    };
    let layout = Path::new(layout);
    let layers = layers_of(layout, tag)?;
    if dest == "--list" {
        for layer in &layers {
            println!("{}", layer.path.display());
        }
        return Ok(());
    }
    let dest = Path::new(dest);
    if !dest.exists() {
        std::fs::create_dir(dest).with_context(|| format!("create {}", dest.display()))?;
    }
    let start = Instant::now();
    let stats = unpack_layers(dest, &layers, &Limits::default(), &mut |_| {})?;
    eprintln!(
        "unpacked {} layers, {} entries, {} bytes in {:.3} s",
        stats.layers,
        stats.entries,
        stats.bytes,
        start.elapsed().as_secs_f64()
    );
    for note in &stats.skipped {
        eprintln!("  note: {note}");
    }
    Ok(())
}

fn read_blob(layout: &Path, digest: &Digest) -> Result<Vec<u8>> {
    let path = blob_path(layout, digest);
    std::fs::read(&path).with_context(|| format!("read {}", path.display()))
}

fn blob_path(layout: &Path, digest: &Digest) -> PathBuf {
    layout.join("blobs").join(digest.blob_path())
}

/// index.json -> the manifest tagged `tag` -> config -> layer blobs with their DiffIDs.
fn layers_of(layout: &Path, tag: &str) -> Result<Vec<LayerSource>> {
    let index_path = layout.join("index.json");
    let bytes =
        std::fs::read(&index_path).with_context(|| format!("read {}", index_path.display()))?;
    let Document::Index(index) = parse_document("index.json", &bytes, None)? else {
        bail!("index.json is not an index");
    };
    let wanted = |d: &&judgebox::image::spec::Descriptor| {
        let name = d.annotation(REF_NAME).unwrap_or("");
        name == tag || tag.rsplit_once(':').is_some_and(|(_, t)| t == name)
    };
    let Some(desc) = index.manifests.iter().find(wanted) else {
        bail!("no manifest tagged {tag} in {}", index_path.display());
    };
    let what = desc.digest.to_string();
    let Document::Manifest(manifest) =
        parse_document(&what, &read_blob(layout, &desc.digest)?, None)?
    else {
        bail!("{what} is not a manifest");
    };
    let config_bytes = read_blob(layout, &manifest.config.digest)?;
    let config = ImageConfig::parse(
        &manifest.config.digest.to_string(),
        &config_bytes,
        &manifest,
    )?;
    manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(layer, diff_id)| {
            Ok(LayerSource {
                path: blob_path(layout, &layer.digest),
                compression: LayerCompression::of(&layer.media_type)?,
                diff_id: diff_id.clone(),
            })
        })
        .collect()
}
