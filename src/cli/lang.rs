//! `judgebox lang ls`: the languages judgebox knows, and whether each one's image is in
//! the store (with the command that gets it when not). `judgebox lang build LANG...`:
//! builds those languages' images from Debian packages with build-images.sh (shipped in
//! the .deb, or the source tree's scripts/) and imports them into the store.

use super::{images, judge::Languages};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use judgebox::display::escape_controls as esc;
use judgebox::image::store::Store;
use serde_json::json;
use std::path::{Path, PathBuf};

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
    /// Build languages' images from Debian packages and import them into the store
    /// (runs build-images.sh; needs debootstrap, umoci, jq; a few minutes the first time).
    Build(BuildArgs),
}

#[derive(Args)]
struct BuildArgs {
    /// Languages as `lang ls` prints them (e.g. cpp python3), or Judge0 ids.
    #[arg(required = true, value_name = "LANG")]
    langs: Vec<String>,
    /// Rebuild even when the cached image is up to date.
    #[arg(long)]
    force: bool,
    /// The build script (default: /usr/share/judgebox/build-images.sh, else the source
    /// tree's scripts/build-images.sh next to this binary).
    #[arg(long, value_name = "PATH", env = "JUDGEBOX_BUILD_IMAGES")]
    script: Option<PathBuf>,
    #[command(flatten)]
    languages: Languages,
}

/// Where the packaged build script lives.
const SHARED_SCRIPT: &str = "/usr/share/judgebox/build-images.sh";

/// The script: the packaged one, else `<repo>/scripts/` for a binary in
/// `<repo>/target/<triple>/release/`.
fn find_script(exe: &Path) -> Option<PathBuf> {
    let shared = PathBuf::from(SHARED_SCRIPT);
    if shared.is_file() {
        return Some(shared);
    }
    exe.ancestors()
        .map(|d| d.join("scripts/build-images.sh"))
        .find(|p| p.is_file())
}

fn build(a: BuildArgs) -> Result<i32> {
    let catalog = a.languages.catalog()?;
    let mut recipes: Vec<String> = Vec::new();
    for name in &a.langs {
        let lang = catalog.find(name)?;
        let Some(recipe) = &lang.build else {
            bail!(
                "{}: its image {} is not built from Debian packages: get it with `judgebox image pull {}`",
                lang.name,
                lang.image,
                lang.image
            );
        };
        if !recipes.contains(recipe) {
            recipes.push(recipe.clone());
        }
    }
    let exe = std::env::current_exe().context("cannot find own executable (/proc/self/exe)")?;
    let script = match a.script.or_else(|| find_script(&exe)) {
        Some(s) => s,
        None => bail!(
            "build-images.sh not found in {SHARED_SCRIPT} nor in a scripts/ directory above {}: pass --script",
            exe.display()
        ),
    };
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(&script);
    if a.force {
        cmd.arg("--force");
    }
    let status = cmd
        .args(&recipes)
        .env("JUDGEBOX", &exe)
        .env("JUDGEBOX_ROOT", &a.languages.root)
        .status()
        .with_context(|| format!("cannot run bash {}", script.display()))?;
    Ok(match status.code() {
        Some(0) => 0,
        Some(c) => {
            eprintln!("judgebox: {} exited with {c}", script.display());
            c
        }
        None => {
            eprintln!("judgebox: {} was killed by a signal", script.display());
            2
        }
    })
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
    let a = match a.command {
        LangCommand::Ls(a) => a,
        LangCommand::Build(b) => return build(b),
    };
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
