//! A reused run's memory leaves: after a reset, each run's processes go into a fresh
//! child cgroup that limits and counts their memory (a reused memory cgroup keeps the
//! kernel's per-CPU charge stock, which would hide part of the next run's use). The next
//! leaf is made, and the last one removed, while a run is under way.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use super::{io_at, CgroupError, Op};

/// Leaf names are this prefix and a sequence number (`mem0`, `mem1`, ...).
pub(crate) const PREFIX: &str = "mem";

/// A leaf's directory (the backend's leaf type holds its open files besides).
pub(crate) trait Leaf {
    fn dir(&self) -> &Path;
}

/// The leaf in use, the one made ahead for the next run, and the used ones not yet
/// removed, below one run directory.
#[derive(Debug)]
pub(crate) struct Leaves<L> {
    current: Option<L>,
    spare: Mutex<Option<L>>,
    retired: Mutex<Vec<PathBuf>>,
    made: AtomicU32,
}

impl<L: Leaf> Leaves<L> {
    pub fn new() -> Leaves<L> {
        Leaves {
            current: None,
            spare: Mutex::new(None),
            retired: Mutex::new(Vec::new()),
            made: AtomicU32::new(0),
        }
    }

    /// The leaf the run's processes go into; `None` before the first reset (they go into
    /// the run directory itself).
    pub fn current(&self) -> Option<&L> {
        self.current.as_ref()
    }

    /// Removes the retired leaves and makes the next run's (only once a reset has made
    /// the first: before that the run directory may hold processes, and cgroup v2 then
    /// gives a child no controller). Called while a run is under way, so this work
    /// overlaps the program; a failure is left for `advance` to meet and report.
    pub fn prepare(
        &self,
        parent: &Path,
        make: impl FnOnce(PathBuf) -> Result<L, CgroupError>,
        remove: impl Fn(&Path) -> Result<(), CgroupError>,
    ) {
        if self.current.is_none() {
            return;
        }
        let retired = std::mem::take(&mut *lock(&self.retired));
        for dir in retired {
            if remove(&dir).is_err() {
                lock(&self.retired).push(dir);
            }
        }
        let mut spare = lock(&self.spare);
        if spare.is_none() {
            *spare = make(self.next_dir(parent)).ok();
        }
    }

    /// Puts the leaf made ahead (or one made now) in use; the one it replaces is retired.
    pub fn advance(
        &mut self,
        parent: &Path,
        make: impl FnOnce(PathBuf) -> Result<L, CgroupError>,
    ) -> Result<&L, CgroupError> {
        let next = match lock(&self.spare).take() {
            Some(leaf) => leaf,
            None => make(self.next_dir(parent))?,
        };
        if let Some(old) = self.current.replace(next) {
            lock(&self.retired).push(old.dir().to_path_buf());
        }
        Ok(self.current.as_ref().expect("just set"))
    }

    /// Removes every leaf (before the run directory itself can go).
    pub fn remove_all(
        &self,
        remove: impl Fn(&Path) -> Result<(), CgroupError>,
    ) -> Result<(), CgroupError> {
        let mut dirs = std::mem::take(&mut *lock(&self.retired));
        dirs.extend(lock(&self.spare).as_ref().map(|l| l.dir().to_path_buf()));
        dirs.extend(self.current.as_ref().map(|l| l.dir().to_path_buf()));
        let mut first_err = None;
        for dir in dirs {
            if let Err(e) = remove(&dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn next_dir(&self, parent: &Path) -> PathBuf {
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        parent.join(format!("{PREFIX}{n}"))
    }
}

/// mkdir `dir`, then `fill` it (limits, open files); the directory goes again if that
/// fails.
pub(crate) fn make<L>(
    dir: PathBuf,
    fill: impl FnOnce(&Path) -> Result<L, CgroupError>,
) -> Result<L, CgroupError> {
    std::fs::DirBuilder::new()
        .create(&dir)
        .map_err(io_at(Op::Create, &dir))?;
    fill(&dir).inspect_err(|_| {
        let _ = std::fs::remove_dir(&dir);
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Debug)]
    struct Dir(PathBuf);
    impl Leaf for Dir {
        fn dir(&self) -> &Path {
            &self.0
        }
    }

    #[test]
    fn a_leaf_is_made_ahead_only_after_the_first_and_used_ones_are_removed_later() {
        let parent = Path::new("/cg/run");
        let made = RefCell::new(Vec::new());
        let removed = RefCell::new(Vec::new());
        let make = |d: PathBuf| {
            made.borrow_mut().push(d.clone());
            Ok(Dir(d))
        };
        let remove = |d: &Path| {
            removed.borrow_mut().push(d.to_path_buf());
            Ok(())
        };
        let mut leaves = Leaves::<Dir>::new();
        leaves.prepare(parent, make, remove);
        assert!(made.borrow().is_empty(), "nothing ahead of the first reset");
        assert_eq!(leaves.advance(parent, make).unwrap().0, parent.join("mem0"));
        leaves.prepare(parent, make, remove);
        assert_eq!(leaves.advance(parent, make).unwrap().0, parent.join("mem1"));
        assert!(removed.borrow().is_empty(), "mem0 waits for the next run");
        leaves.prepare(parent, make, remove);
        assert_eq!(*removed.borrow(), [parent.join("mem0")]);
        assert_eq!(made.borrow().len(), 3, "mem2 made ahead");
        leaves.remove_all(remove).unwrap();
        assert_eq!(
            *removed.borrow(),
            [
                parent.join("mem0"),
                parent.join("mem2"),
                parent.join("mem1")
            ]
        );
    }

    #[test]
    fn a_failed_removal_is_tried_again_and_a_failed_make_is_met_by_advance() {
        let parent = Path::new("/cg/run");
        let fail = |d: PathBuf| -> Result<Dir, CgroupError> {
            Err(CgroupError::Unavailable(d.display().to_string()))
        };
        let ok = |d: PathBuf| Ok(Dir(d));
        let mut leaves = Leaves::<Dir>::new();
        leaves.advance(parent, ok).unwrap();
        leaves.advance(parent, ok).unwrap();
        leaves.prepare(parent, fail, |_| {
            Err(CgroupError::Unavailable("busy".into()))
        });
        assert!(
            leaves.advance(parent, fail).is_err(),
            "no spare, and none made"
        );
        let tried = RefCell::new(0);
        leaves.prepare(parent, ok, |_| {
            *tried.borrow_mut() += 1;
            Ok(())
        });
        assert_eq!(*tried.borrow(), 1, "mem0 removed on the second try");
    }
}
