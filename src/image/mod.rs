//! OCI images: pull from registries, import image layouts and `docker save` archives,
//! keep blobs in a content-addressed store and unpack each image once, safely, into a
//! flattened rootfs that `judgebox run --image` uses.
//!
//! `digest` and `spec` are the shared vocabulary (validated digests, descriptors,
//! manifests, configs, platforms); the other modules each do one step.

pub mod archive;
pub mod blobs;
pub mod digest;
pub mod import;
pub mod layout;
pub mod reference;
pub mod registry;
pub mod spec;
pub mod store;
pub mod unpack;
