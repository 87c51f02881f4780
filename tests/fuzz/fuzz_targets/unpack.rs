//! Layer unpacking: arbitrary tar streams, plain or wrapped in gzip or zstd, applied by the
//! real unpack code (both resolvers: openat2 and the own walk) into a root next to an
//! "outside" directory at a fixed path (so inputs can name it, relatively or absolutely).
//! After each input nothing outside the root may have changed: no new entry, no changed
//! mode, owner, size or time. Never a panic; memory is bounded by the caps given here and
//! libFuzzer's -rss_limit_mb. The root is then removed with the real `remove_tree`.
#![no_main]
use judgebox::image::digest::Digest;
use judgebox::image::spec::LayerCompression;
use judgebox::image::unpack::{
    remove_tree, unpack_layers, unpack_layers_walking, LayerSource, Limits,
};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One fuzzing process at a time (scripts/fuzz.sh runs targets one after another).
const WORK: &str = "/tmp/judgebox-fuzz-unpack";

/// What an entry outside the root looks like: type and mode, owner, size, mtime, target.
type Snapshot = BTreeMap<PathBuf, (u32, u32, u32, u64, i64, Option<PathBuf>)>;

fn snapshot(dir: &Path, skip: &Path, out: &mut Snapshot) {
    let meta = std::fs::symlink_metadata(dir).expect("stat outside entry");
    out.insert(dir.to_path_buf(), describe(dir, &meta));
    if !meta.is_dir() || dir == skip {
        return;
    }
    for e in std::fs::read_dir(dir).expect("list outside dir") {
        let path = e.expect("dir entry").path();
        if path == skip {
            if let Ok(root) = std::fs::symlink_metadata(&path) {
                assert!(root.is_dir(), "the root itself was replaced: {root:?}");
            }
            continue;
        }
        snapshot(&path, skip, out);
    }
}

fn describe(path: &Path, m: &std::fs::Metadata) -> (u32, u32, u32, u64, i64, Option<PathBuf>) {
    let size = if m.is_dir() { 0 } else { m.size() };
    let target = std::fs::read_link(path).ok();
    (m.mode(), m.uid(), m.gid(), size, m.mtime(), target)
}

struct Work {
    root: PathBuf,
    blob: PathBuf,
}

/// Everything under WORK but the root's insides and the blob (rewritten for each input).
fn outside_state(w: &Work) -> Snapshot {
    let mut s = Snapshot::new();
    snapshot(Path::new(WORK), &w.root, &mut s);
    s.remove(&w.blob);
    s
}

fn setup() -> Work {
    let work = Path::new(WORK);
    let _ = remove_tree(work);
    let _ = std::fs::remove_dir_all(work);
    let outside = work.join("outside");
    std::fs::create_dir_all(outside.join("dir")).expect("create outside");
    std::fs::write(outside.join("canary"), "canary").expect("write canary");
    std::os::unix::fs::symlink("canary", outside.join("link")).expect("symlink");
    let root = work.join("root");
    std::fs::create_dir(&root).expect("create root");
    let blob = work.join("blob");
    std::fs::write(&blob, b"").expect("create blob");
    Work { root, blob }
}

fuzz_target!(|input: &[u8]| {
    static WORK_ONCE: std::sync::OnceLock<Work> = std::sync::OnceLock::new();
    let w = WORK_ONCE.get_or_init(setup);
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    let compression = match mode % 3 {
        0 => LayerCompression::None,
        1 => LayerCompression::Gzip,
        _ => LayerCompression::Zstd,
    };
    std::fs::write(&w.blob, data).expect("write blob");
    let before = outside_state(w);
    let layer = LayerSource {
        path: w.blob.clone(),
        compression,
        // Never matches: the check comes after every entry was applied.
        diff_id: Digest::of(b"not the stream"),
    };
    let limits = Limits {
        max_layer_bytes: 16 << 20,
        max_image_bytes: 16 << 20,
        max_entries: 4096,
    };
    let layers = [layer.clone(), layer];
    let n = 1 + usize::from(mode / 3 % 2);
    let _ = if mode / 6 % 2 == 0 {
        unpack_layers(&w.root, &layers[..n], &limits, &mut |_| {})
    } else {
        unpack_layers_walking(&w.root, &layers[..n], &limits)
    };
    assert_eq!(outside_state(w), before, "something outside the root changed");
    remove_tree(&w.root).expect("remove the root");
    let mut after = outside_state(w);
    std::fs::create_dir(&w.root).expect("recreate root");
    // Removing the root changes WORK's own times; nothing else may change.
    let mut before = before;
    before.remove(Path::new(WORK));
    after.remove(Path::new(WORK));
    assert_eq!(after, before, "remove_tree changed something outside the root");
});
