//! `judgebox image ls`: the names in the store.

use judgebox::display::escape_controls as esc;
use std::path::Path;

use anyhow::Result;
use clap::Args;

use super::{mib, open_store, short};

/// List the images in the store.
#[derive(Args)]
pub struct LsArgs {
    /// Print one JSON array of image records.
    #[arg(long)]
    json: bool,
}

pub fn execute(args: LsArgs, root: &Path) -> Result<i32> {
    let images = open_store(root)?.images()?;
    if args.json {
        println!("{}", serde_json::to_string(&images)?);
        return Ok(0);
    }
    let rows: Vec<[String; 6]> = images
        .iter()
        .map(|r| {
            [
                esc(&r.name).into_owned(),
                short(&r.manifest).to_string(),
                esc(&r.platform).into_owned(),
                r.layers.len().to_string(),
                r.rootfs_bytes.map_or_else(|| "?".to_string(), mib),
                esc(&r.added).into_owned(),
            ]
        })
        .collect();
    let header = ["NAME", "ID", "PLATFORM", "LAYERS", "SIZE", "ADDED"].map(String::from);
    print_table(&header, &rows);
    Ok(0)
}

/// Left-aligned columns, two spaces apart; numbers (LAYERS, SIZE) right-aligned.
fn print_table(header: &[String; 6], rows: &[[String; 6]]) {
    let mut widths = header.clone().map(|h| h.len());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| match i {
                3 | 4 => format!("{cell:>w$}"),
                _ => format!("{cell:<w$}"),
            })
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}
