//! Seccomp profiles in the OCI runtime-spec / Docker JSON format, compiled once per
//! process into one BPF program and installed as the very last step before execve.
//!
//! - `Filter::load("default" | "strict" | "none" | PATH)`: the shipped profiles are
//!   embedded (`seccomp/default.json`, `seccomp/strict.json`), so the binary is
//!   self-contained; compiled programs are cached, so later loads are free (in the
//!   process; the shipped ones also across processes, under /run/judgebox/seccomp).
//! - `Filter::install()` is async-signal-safe: one seccomp(2) call, no allocation.
//! - `violation::KmsgWatch` names the syscall that got a program killed, from the
//!   kernel's audit records (see `violation` and `README.md` in this directory).
//!
//! Pipeline: `profile` (serde structs, unknown fields rejected) -> `resolve`
//! (includes/excludes, names -> numbers, 32-bit arguments) -> `codegen` (one program:
//! arch check, binary search on the number, argument blocks) -> `sim` (a BPF interpreter
//! used to refuse profiles that would block execve).

mod action;
mod arch;
pub(crate) use arch::kernel_version;
mod argwidth;
mod asm;
mod cache;
mod codegen;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod profile;
mod resolve;
mod sim;
pub mod violation;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::SystemTime;

pub use error::SeccompError;

use arch::Arch;
use resolve::Env;

/// The judge default: an allow-list, everything else fails with EPERM.
const DEFAULT_JSON: &str = include_str!("../../seccomp/default.json");
/// The same allow-list, everything else kills the process.
const STRICT_JSON: &str = include_str!("../../seccomp/strict.json");
/// The kernel's limit on the length of one filter (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;
/// `SECCOMP_SET_MODE_FILTER` for seccomp(2).
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;

/// A compiled profile, ready to install. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Filter {
    inner: Arc<Compiled>,
}

/// What `load` builds once per profile and process.
struct Compiled {
    name: String,
    program: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` from the profile's `flags`.
    flags: libc::c_uint,
    kills: bool,
    notes: Vec<String>,
}

impl Filter {
    /// "default" | "strict" -> the embedded profiles; "none" -> `Ok(None)` (and a warning
    /// on stderr, once per process); anything else -> the path of a JSON profile.
    /// Compiles for the running architecture; results are cached per process (files are
    /// recompiled when their size, mtime or inode change).
    pub fn load(spec: &str) -> Result<Option<Filter>, SeccompError> {
        let inner = match spec {
            "none" => {
                warn_disabled();
                return Ok(None);
            }
            "default" => cached(Key::Embedded("default"), || {
                embedded("default", DEFAULT_JSON)
            })?,
            "strict" => cached(Key::Embedded("strict"), || embedded("strict", STRICT_JSON))?,
            path => load_file(Path::new(path), spec)?,
        };
        Ok(Some(Filter { inner }))
    }

    /// Installs the filter in the calling (single-threaded, freshly forked) process.
    /// Async-signal-safe: builds a `sock_fprog` on the stack and makes one seccomp(2)
    /// call; no allocation, no locks. The caller must have set `PR_SET_NO_NEW_PRIVS`
    /// (or hold CAP_SYS_ADMIN). Returns the errno on failure.
    pub fn install(&self) -> Result<(), i32> {
        let program = &self.inner.program;
        let prog = libc::sock_fprog {
            len: program.len() as libc::c_ushort, // <= MAX_INSNS, checked at load
            filter: program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies
        // the instructions and never writes through the pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                self.inner.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(nix::errno::Errno::last_raw())
        }
    }

    /// True when some rule (or the default, or the legacy-ABI guard) kills the process.
    pub fn kills(&self) -> bool {
        self.inner.kills
    }

    /// "default", "strict", or the path the profile was loaded from.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Debug-level remarks from compilation: syscall names this architecture lacks,
    /// rules whose includes/excludes do not apply here, ignored flags.
    pub fn notes(&self) -> &[String] {
        &self.inner.notes
    }

    /// Length of the BPF program, in instructions.
    pub fn instructions(&self) -> usize {
        self.inner.program.len()
    }

    /// The compiled program (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn program(&self) -> &[libc::sock_filter] {
        &self.inner.program
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("name", &self.inner.name)
            .field("instructions", &self.inner.program.len())
            .field("kills", &self.inner.kills)
            .finish()
    }
}

/// The name of syscall `nr` on the running architecture.
pub fn syscall_name(nr: i64) -> Option<&'static str> {
    Arch::native().ok()?.syscall_name(u32::try_from(nr).ok()?)
}

fn warn_disabled() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        eprintln!("judgebox: warning: --seccomp none: no syscall filter; the program may use every system call (for debugging only)");
    });
}

/// Cache key: an embedded profile, or a file in a given state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Embedded(&'static str),
    File {
        path: PathBuf,
        dev: u64,
        ino: u64,
        len: u64,
        mtime: Option<SystemTime>,
    },
}

fn cached(
    key: Key,
    build: impl FnOnce() -> Result<Compiled, SeccompError>,
) -> Result<Arc<Compiled>, SeccompError> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<Compiled>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(hit) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(Arc::clone(hit));
    }
    let compiled = Arc::new(build()?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, Arc::clone(&compiled));
    Ok(compiled)
}

/// A shipped profile: compiled once per boot, binary and kernel (`cache`), then read.
fn embedded(name: &str, text: &str) -> Result<Compiled, SeccompError> {
    let file = format!("seccomp/{name}.json (embedded)");
    let env = Env::running()?;
    cache::load_or_compile(Path::new(cache::CACHE_DIR), name, text, &env, || {
        compile_text(text, &file, name, &env)
    })
}

fn load_file(path: &Path, spec: &str) -> Result<Arc<Compiled>, SeccompError> {
    use std::os::unix::fs::MetadataExt;
    let read_err = |source| SeccompError::Read {
        path: spec.to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    let key = Key::File {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime: meta.modified().ok(),
    };
    cached(key, || {
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        compile_text(&text, spec, spec, &Env::running()?)
    })
}

/// Parses, resolves, compiles and checks one profile. `file` names it in errors.
fn compile_text(text: &str, file: &str, name: &str, env: &Env) -> Result<Compiled, SeccompError> {
    let raw = profile::parse(text, file)?;
    let profile = resolve::resolve(&raw, file, env)?;
    let program = codegen::compile(&profile, env.arch);
    if program.len() > MAX_INSNS {
        return Err(SeccompError::TooLarge {
            file: file.to_string(),
            len: program.len(),
            max: MAX_INSNS,
        });
    }
    check_execve(&program, file, env.arch)?;
    Ok(Compiled {
        name: name.to_string(),
        flags: profile.flags,
        kills: codegen::kills(&profile),
        notes: profile.notes,
        program,
    })
}

/// Refuses a filter under which execve itself fails: the sandbox installs the filter
/// right before execve, so nothing could ever run.
fn check_execve(program: &[libc::sock_filter], file: &str, arch: Arch) -> Result<(), SeccompError> {
    let nr = arch.syscall_nr("execve").unwrap_or(u32::MAX);
    let answer = match sim::run(program, &sim::SeccompData::call(arch.audit(), nr, &[])) {
        Ok(ret)
            if matches!(
                ret & action::RET_ACTION_FULL,
                action::RET_ALLOW | action::RET_LOG
            ) =>
        {
            return Ok(())
        }
        Ok(ret) => action::describe_ret(ret),
        Err(why) => format!("an invalid program: {why}"),
    };
    Err(SeccompError::BlocksExecve {
        file: file.to_string(),
        answer,
    })
}
