//! Compiled shipped profiles kept between processes. Each `judgebox run` is a fresh
//! process that would otherwise parse, resolve and compile its profile again (~0.3 ms, a
//! tenth of a `run /bin/true`). A program is kept in a root-only directory under /run
//! (gone at reboot), with the key it was compiled for; any doubt about a file means a
//! compile, never a failure.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::arch::Arch;
use super::resolve::Env;
use super::{check_execve, Compiled, SeccompError, MAX_INSNS};

/// Where the compiled shipped profiles are kept (one file per profile name).
pub(crate) const CACHE_DIR: &str = "/run/judgebox/seccomp";
/// Bump when the file's layout or its meaning changes.
const FORMAT: u32 = 1;
/// A cached program is at most 4096 instructions: its file is far below this.
const MAX_FILE: u64 = 1 << 20;

/// One cached compile: the key it was made for, and what `Compiled` holds.
#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    name: String,
    flags: u32,
    kills: bool,
    notes: Vec<String>,
    /// (code, jt, jf, k) per instruction.
    program: Vec<(u16, u8, u8, u32)>,
}

/// The compiled profile `name` (whose text is `text`) from `dir` when a file there was
/// made for exactly this binary, text, architecture and kernel; else `compile`s it and
/// keeps the result there for the next process.
pub(crate) fn load_or_compile(
    dir: &Path,
    name: &str,
    text: &str,
    env: &Env,
    compile: impl FnOnce() -> Result<Compiled, SeccompError>,
) -> Result<Compiled, SeccompError> {
    let Some(key) = key_for(text, env) else {
        return compile();
    };
    let usable = private_dir(dir);
    let path = dir.join(format!("{name}.json"));
    if let Some(hit) = usable.then(|| read(&path, name, &key, env.arch)).flatten() {
        return Ok(hit);
    }
    let compiled = compile()?;
    if usable {
        store(dir, &path, &key, &compiled);
    }
    Ok(compiled)
}

/// Everything a compile depends on: this executable (a rebuilt or upgraded judgebox is
/// another file), the profile's text, the architecture and the kernel (`minKernel`).
fn key_for(text: &str, env: &Env) -> Option<String> {
    let exe = fs::metadata("/proc/self/exe").ok()?;
    Some(format!(
        "format {FORMAT}; judgebox {} exe {}:{}:{}:{}.{}; text {}:{:016x}; arch {:?}; kernel {}.{}",
        env!("CARGO_PKG_VERSION"),
        exe.dev(),
        exe.ino(),
        exe.size(),
        exe.mtime(),
        exe.mtime_nsec(),
        text.len(),
        text_hash(text),
        env.arch,
        env.kernel.0,
        env.kernel.1,
    ))
}

/// The profile text's fingerprint within one executable. Shipped profiles are compiled
/// into the binary, whose identity the key already holds, and only root can write the
/// cache, so this needs no cryptographic hash: std's SipHash with its fixed keys is the
/// same in every process of one binary. (SHA-256 here cost each run a CPU-feature probe,
/// CPUID instructions that trap to the hypervisor on a VM.)
fn text_hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Creates `dir` (0700) when missing; usable only when it is a real directory of ours
/// that nobody else can write.
fn private_dir(dir: &Path) -> bool {
    use std::os::unix::fs::DirBuilderExt;
    let _ = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == euid() && m.mode() & 0o022 == 0)
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The cached program at `path`, when it is a regular file of ours that only we can
/// write, made for profile `name` and `key`, of a sane length, and lets execve through.
fn read(path: &Path, name: &str, key: &str, arch: Arch) -> Option<Compiled> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != euid() || meta.mode() & 0o022 != 0 {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE).read_to_end(&mut bytes).ok()?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    if entry.key != key
        || entry.name != name
        || entry.program.is_empty()
        || entry.program.len() > MAX_INSNS
    {
        return None;
    }
    let program: Vec<libc::sock_filter> = entry
        .program
        .iter()
        .map(|&(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k })
        .collect();
    check_execve(&program, &entry.name, arch).ok()?;
    Some(Compiled {
        name: entry.name,
        program,
        flags: entry.flags,
        kills: entry.kills,
        notes: entry.notes,
    })
}

/// Writes `compiled` for `key` to `path`, whole or not at all: a private temporary file
/// renamed over the old one. Failures only cost the next process a compile.
fn store(dir: &Path, path: &Path, key: &str, compiled: &Compiled) {
    let entry = Entry {
        key: key.to_string(),
        name: compiled.name.clone(),
        flags: compiled.flags,
        kills: compiled.kills,
        notes: compiled.notes.clone(),
        program: compiled
            .program
            .iter()
            .map(|f| (f.code, f.jt, f.jf, f.k))
            .collect(),
    };
    let Ok(bytes) = serde_json::to_vec(&entry) else {
        return;
    };
    let temp: PathBuf = dir.join(format!(".{}.{}.tmp", compiled.name, std::process::id()));
    // Left by a process killed mid-write that had this pid before.
    let _ = fs::remove_file(&temp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&temp)
        .and_then(|mut f: File| f.write_all(&bytes));
    if written.and_then(|()| fs::rename(&temp, path)).is_err() {
        let _ = fs::remove_file(&temp);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{compile_text, DEFAULT_JSON, STRICT_JSON};
    use super::*;
    use std::cell::Cell;
    use std::os::unix::fs::PermissionsExt;

    fn env() -> Env {
        Env::running().unwrap()
    }

    /// Loads `text` as "default" through the cache in `dir`; says whether it compiled.
    fn load(dir: &Path, text: &str) -> (Compiled, bool) {
        let compiled = Cell::new(false);
        let c = load_or_compile(dir, "default", text, &env(), || {
            compiled.set(true);
            compile_text(text, "test", "default", &env())
        })
        .unwrap();
        (c, compiled.get())
    }

    fn private() -> (tempfile::TempDir, PathBuf) {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("seccomp");
        (base, dir)
    }

    #[test]
    fn a_second_process_loads_what_the_first_compiled() {
        let (_base, dir) = private();
        let (first, compiled) = load(&dir, DEFAULT_JSON);
        assert!(compiled);
        let meta = fs::metadata(dir.join("default.json")).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let (second, compiled) = load(&dir, DEFAULT_JSON);
        assert!(!compiled, "the cached program was not used");
        let as_tuples = |c: &Compiled| -> Vec<(u16, u8, u8, u32)> {
            c.program
                .iter()
                .map(|f| (f.code, f.jt, f.jf, f.k))
                .collect()
        };
        assert_eq!(as_tuples(&first), as_tuples(&second));
        assert_eq!((first.flags, first.kills), (second.flags, second.kills));
        assert_eq!(first.notes, second.notes);
        // Nothing but the one file: no temporary left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn another_text_is_compiled_again() {
        let (_base, dir) = private();
        let (default, _) = load(&dir, DEFAULT_JSON);
        let (strict, compiled) = load(&dir, STRICT_JSON);
        assert!(compiled, "a program made for another text was used");
        assert!(strict.kills && !default.kills);
        assert!(!load(&dir, STRICT_JSON).1);
    }

    #[test]
    fn a_damaged_file_is_compiled_again_and_replaced() {
        let (_base, dir) = private();
        load(&dir, DEFAULT_JSON);
        let file = dir.join("default.json");
        let text = fs::read_to_string(&file).unwrap();
        for damaged in [
            text[..text.len() / 2].to_string(),
            "not json".to_string(),
            // A program that would block execve: refused even with the right key.
            text.replace("\"program\":[", "\"program\":[[6,0,0,0],"),
            // Another profile's name under this one's key.
            text.replace("\"name\":\"default\"", "\"name\":\"strict\""),
        ] {
            fs::write(&file, damaged).unwrap();
            assert!(load(&dir, DEFAULT_JSON).1, "a damaged file was used");
            assert!(!load(&dir, DEFAULT_JSON).1, "the file was not rewritten");
        }
    }

    #[test]
    fn files_others_could_write_or_symlinks_are_not_read() {
        let (base, dir) = private();
        load(&dir, DEFAULT_JSON);
        let file = dir.join("default.json");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(load(&dir, DEFAULT_JSON).1, "a world-writable file was used");
        // Rewritten privately; now a symlink to a good copy elsewhere.
        let elsewhere = base.path().join("copy.json");
        fs::copy(&file, &elsewhere).unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
        fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
        assert!(load(&dir, DEFAULT_JSON).1, "the symlink was followed");
        assert!(fs::symlink_metadata(&file).unwrap().is_file());
        // A file of another user.
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        assert!(load(&dir, DEFAULT_JSON).1, "another user's file was used");
    }

    #[test]
    fn a_directory_others_can_write_is_not_used() {
        let (_base, dir) = private();
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(load(&dir, DEFAULT_JSON).1);
        assert!(load(&dir, DEFAULT_JSON).1, "an open directory was used");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "it was written to");
    }
}
