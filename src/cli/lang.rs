//! `judgebox lang ls`: the languages judgebox knows, and whether each one's image is in
//! the store (with the command that gets it when not).

use super::{images, judge::Languages};
use anyhow::Result;
use clap::{Args, Subcommand};
use judgebox::display::escape_controls as esc;
use judgebox::image::store::Store;
use serde_json::json;

/// Language manifests: list them with their images.
#[derive(Args)]
pub struct LangArgs {
    #[command(subcommand)]
    command: LangCommand,
}

#[derive(Subcommand)]
enum LangCommand {
    /// List languages: name, Judge0 ids, image, and whether the image is present.
    Ls(LsArgs),
}

#[derive(Args)]
struct LsArgs {
    /// Print one JSON array instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    languages: Languages,
}

pub fn execute(a: LangArgs) -> Result<i32> {
    let LangCommand::Ls(a) = a.command;
    let catalog = a.languages.catalog()?;
    // A missing store just means no image is present yet.
    let root = &a.languages.root;
    let store = root.exists().then(|| Store::open(root).ok()).flatten();
    let rows: Vec<_> = catalog
        .all()
        .map(|l| {
            let present = store.as_ref().is_some_and(|s| images::present(s, l));
            (l, present)
        })
        .collect();
    if a.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(l, present)| {
                json!({
                    "name": l.name, "display": l.display, "judge0_ids": l.judge0_ids,
                    "image": l.image, "present": present, "source_file": l.source_file,
                    "compiled": l.compile.is_some(), "seccomp": l.seccomp,
                    "get": (!present).then(|| images::how_to_get(l)),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(0);
    }
    println!(
        "{:<11} {:<30} {:<13} {:<27} image",
        "name", "display", "judge0 ids", "image ref"
    );
    for (l, present) in rows {
        let ids: Vec<String> = l.judge0_ids.iter().map(u32::to_string).collect();
        let state = if present {
            "present".to_string()
        } else {
            format!("missing: {}", images::how_to_get(l))
        };
        println!(
            "{:<11} {:<30} {:<13} {:<27} {state}",
            esc(&l.name),
            esc(&l.display),
            ids.join(","),
            esc(&l.image)
        );
    }
    Ok(0)
}
