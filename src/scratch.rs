//! Where judgebox keeps its short-lived host files (a submission's inputs, a judge's
//! artifacts and captured output): a roomy memory filesystem when the host has one, since
//! files made and deleted there cost no journal, discard or inode-table search on a disk.
//! Directories left by killed processes are found by the pid in their name.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Set to a directory to put scratch files there (over TMPDIR and /dev/shm).
pub const ENV: &str = "JUDGEBOX_SCRATCH";

/// A memory filesystem smaller than this (Docker's 64 MiB /dev/shm) is not used: a judge's
/// artifacts and outputs may take several of the 64 MiB a box holds by default.
const MIN_SHM_BYTES: u64 = 1 << 30;

/// The scratch base, chosen once per process: `$JUDGEBOX_SCRATCH`; else `$TMPDIR` when the
/// operator set it; else /dev/shm when it is a tmpfs with at least 1 GiB free; else /tmp.
pub fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        choose(
            std::env::var_os(ENV).map(PathBuf::from),
            std::env::var_os("TMPDIR").map(PathBuf::from),
            Path::new("/dev/shm"),
        )
    })
}

fn choose(explicit: Option<PathBuf>, tmpdir: Option<PathBuf>, shm: &Path) -> PathBuf {
    let set = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
    set(explicit)
        .or_else(|| set(tmpdir))
        .or_else(|| roomy_tmpfs(shm).then(|| shm.to_path_buf()))
        .unwrap_or_else(std::env::temp_dir)
}

/// A sticky, world-writable tmpfs directory (what /dev/shm is everywhere) with room.
fn roomy_tmpfs(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let sticky_dir = std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == 0 && m.mode() & 0o1777 == 0o1777);
    sticky_dir
        && crate::fsinfo::is_tmpfs(dir).unwrap_or(false)
        && crate::fsinfo::available(dir).is_ok_and(|free| free >= MIN_SHM_BYTES)
}

/// Makes `path` a new 0700 directory of this user's. A real directory of ours already
/// there (a process before us had this pid) is emptied first; anything else there (a
/// symlink, another user's directory, a file) is refused, never followed: the scratch base
/// may be a world-writable directory where names can be planted.
pub fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let mkdir = || std::fs::DirBuilder::new().mode(0o700).create(path);
    match mkdir() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if !own_dir(path) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not a directory of ours (left as it is)",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_dir_all(path)?;
            mkdir()
        }
        r => r,
    }
}

/// Removes `<base>/<prefix><pid>[-…]` directories whose process is gone (SIGKILL skips every
/// `Drop`): only real directories owned by this user, never a symlink or another's.
pub fn remove_stale(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(base()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let stale = pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists());
        if stale && own_dir(&entry.path()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A real directory (not a symlink to one) owned by this process's user.
fn own_dir(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| {
        // SAFETY: geteuid has no preconditions.
        m.is_dir() && m.uid() == unsafe { libc::geteuid() }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_choice_wins_then_tmpdir() {
        let shm = Path::new("/dev/shm");
        let x = Some(PathBuf::from("/x"));
        let t = Some(PathBuf::from("/t"));
        assert_eq!(choose(x.clone(), t.clone(), shm), Path::new("/x"));
        assert_eq!(choose(None, t.clone(), shm), Path::new("/t"));
        assert_eq!(choose(Some(PathBuf::new()), t, shm), Path::new("/t"));
    }

    #[test]
    fn a_disk_directory_is_not_taken_for_memory() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert!(!roomy_tmpfs(dir.path()));
        assert_eq!(choose(None, None, dir.path()), std::env::temp_dir());
    }

    #[test]
    fn a_private_tmpfs_directory_is_not_taken() {
        // A tmpfs directory that is not sticky and world-writable (one made for someone)
        // is not everyone's scratch space, however roomy.
        let private =
            Path::new("/dev/shm").join(format!("judgebox-scratch-test-{}", std::process::id()));
        if std::fs::create_dir(&private).is_err() {
            return; // no /dev/shm on this host
        }
        let taken = roomy_tmpfs(&private);
        std::fs::remove_dir(&private).unwrap();
        assert!(!taken);
        // /dev/shm itself is taken whenever it is the roomy tmpfs it usually is.
        let shm = Path::new("/dev/shm");
        let roomy = crate::fsinfo::is_tmpfs(shm).unwrap_or(false)
            && crate::fsinfo::available(shm).is_ok_and(|f| f >= MIN_SHM_BYTES);
        assert_eq!(roomy_tmpfs(shm), roomy);
    }

    #[test]
    fn a_private_dir_replaces_our_leftover_and_refuses_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours");
        std::fs::create_dir_all(ours.join("old")).unwrap();
        private_dir(&ours).unwrap();
        assert_eq!(std::fs::read_dir(&ours).unwrap().count(), 0);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ours).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o700);

        let target = dir.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), b"x").unwrap();
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(&target, &planted).unwrap();
        let err = private_dir(&planted).unwrap_err();
        assert!(err.to_string().contains("not a directory of ours"), "{err}");
        assert!(target.join("keep").exists());
        assert!(planted.symlink_metadata().unwrap().file_type().is_symlink());
    }

    #[test]
    fn stale_directories_go_live_ones_and_symlinks_stay() {
        let base = base();
        let dead = base.join(format!("judgebox-scratchtest-{}-0", u32::MAX - 1));
        let live = base.join(format!("judgebox-scratchtest-{}-0", std::process::id()));
        let link = base.join(format!("judgebox-scratchtest-{}-1", u32::MAX - 1));
        std::fs::create_dir_all(dead.join("inner")).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&live, &link).unwrap();
        remove_stale("judgebox-scratchtest-");
        let (dead_gone, live_kept, link_kept) = (
            !dead.exists(),
            live.exists(),
            link.symlink_metadata().is_ok(),
        );
        let _ = std::fs::remove_dir_all(&live);
        let _ = std::fs::remove_file(&link);
        assert!(dead_gone && live_kept && link_kept);
    }
}
