//! The set of paths one layer created, which its whiteouts must spare (image-spec: a
//! whiteout applies to lower layers only). Paths are stored as 128-bit keyed hashes
//! (~20 bytes per path), so a layer of a million entries costs ~25 MiB, not its names.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// What a layer did at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// An entry of this layer is at this path.
    Created,
    /// Only something below it is from this layer (the directory stays, its lower
    /// children may go).
    Ancestor,
}

/// Paths (cleaned, relative, `/`-separated) touched by the current layer.
pub(crate) struct CreatedSet {
    keys: (RandomState, RandomState),
    marks: HashMap<u128, Mark, BuildHasherDefault<PreHashed>>,
}

impl CreatedSet {
    pub(crate) fn new() -> CreatedSet {
        CreatedSet {
            keys: (RandomState::new(), RandomState::new()),
            marks: HashMap::default(),
        }
    }

    /// Two independent SipHash-1-3 runs with random keys: no collision in practice, and
    /// none an archive author can aim for.
    fn key(&self, path: &[u8]) -> u128 {
        let hi = self.keys.0.hash_one(path) as u128;
        let lo = self.keys.1.hash_one(path) as u128;
        hi << 64 | lo
    }

    pub(crate) fn get(&self, path: &[u8]) -> Option<Mark> {
        self.marks.get(&self.key(path)).copied()
    }

    /// Records an entry of this layer at `path`, and its ancestors.
    pub(crate) fn created(&mut self, path: &[u8]) {
        let key = self.key(path);
        self.marks.insert(key, Mark::Created);
        self.ancestors(path);
    }

    /// Records that `path` is a directory of this layer whose lower content may go
    /// (an opaque directory), and its ancestors.
    pub(crate) fn kept(&mut self, path: &[u8]) {
        if !path.is_empty() {
            let key = self.key(path);
            self.marks.entry(key).or_insert(Mark::Ancestor);
        }
        self.ancestors(path);
    }

    fn ancestors(&mut self, path: &[u8]) {
        let mut rest = path;
        while let Some(slash) = rest.iter().rposition(|b| *b == b'/') {
            rest = &rest[..slash];
            let key = self.key(rest);
            if self.marks.contains_key(&key) {
                break; // its own ancestors were recorded with it
            }
            self.marks.insert(key, Mark::Ancestor);
        }
    }
}

/// The keys are already uniform random hashes: use their low bits as the table hash.
#[derive(Default)]
pub(crate) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_paths_and_their_ancestors_are_marked() {
        let mut set = CreatedSet::new();
        set.created(b"a/b/c");
        assert_eq!(set.get(b"a/b/c"), Some(Mark::Created));
        assert_eq!(set.get(b"a/b"), Some(Mark::Ancestor));
        assert_eq!(set.get(b"a"), Some(Mark::Ancestor));
        assert_eq!(set.get(b"a/b/d"), None);
        set.created(b"a");
        assert_eq!(set.get(b"a"), Some(Mark::Created));
        set.kept(b"a");
        assert_eq!(
            set.get(b"a"),
            Some(Mark::Created),
            "kept does not downgrade"
        );
        set.kept(b"x/y");
        assert_eq!(set.get(b"x/y"), Some(Mark::Ancestor));
        assert_eq!(set.get(b"x"), Some(Mark::Ancestor));
    }
}
