//! The bridge from a language to its image in the store: resolves the manifest's image
//! reference, or explains exactly how to get the image when it is missing.

use anyhow::Result;
use judgebox::image::store::{Resolved, Store, StoreError};
use judgebox::judge::Environment;
use judgebox::lang::Language;
use std::path::Path;

/// The command that puts a language's image in the store.
pub fn how_to_get(lang: &Language) -> String {
    match &lang.build {
        Some(_) => format!("judgebox lang build {}", lang.name),
        None => format!("judgebox image pull {}", lang.image),
    }
}

/// Whether the language's image is in the store at `root`.
pub fn present(store: &Store, lang: &Language) -> bool {
    store.find(&lang.image).is_ok()
}

/// The rootfs and environment of the language's image. The returned `Resolved` holds a
/// lease that keeps `image prune` from deleting the rootfs while it is in use.
pub fn environment(root: &Path, lang: &Language) -> Result<(Environment, Resolved)> {
    let store = Store::open(root)?;
    let resolved = match store.resolve(&lang.image) {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => anyhow::bail!(
            "language {}: image {} is not in the store {}; get it with: {}",
            lang.name,
            lang.image,
            root.display(),
            how_to_get(lang)
        ),
        Err(e) => return Err(e.into()),
    };
    let env = Environment {
        rootfs: resolved.rootfs.clone(),
        image_env: resolved.env(&[]),
    };
    Ok((env, resolved))
}
