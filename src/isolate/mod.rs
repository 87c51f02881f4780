//! An isolate-compatible front end: isolate 2.x's command line, configuration file,
//! boxes, meta file, status line and exit codes, over judgebox's sandbox, so judges that
//! shell out to `isolate` (CMS, Judge0's worker, homebrew ones) run unchanged.

pub mod boxes;
pub mod caller;
pub mod config;
pub mod meta;
pub mod options;
pub mod quota;
pub mod rules;
pub mod run;
pub mod stdio;

use options::{Command, Options, UsageError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// The isolate version whose interface this front end follows.
pub const ISOLATE_VERSION: &str = "2.6";

/// A failure of the sandbox itself (isolate's `die`: exit 2, meta `status:XX`).
#[derive(Debug, thiserror::Error)]
pub enum IsolateError {
    #[error("Must be started as root")]
    NotRoot,
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Box(#[from] boxes::BoxError),
    #[error(transparent)]
    Caller(#[from] caller::CallerError),
    #[error(transparent)]
    Quota(#[from] quota::QuotaError),
    #[error("judgebox cannot honour {0}")]
    Unsupported(String),
    #[error("{0}")]
    Setup(String),
    #[error("judgebox uses no cgroup on this host: {0}")]
    NoCgroup(String),
}

/// Checks that only make sense once the whole command line is known (isolate's main).
fn check_usage(o: &Options) -> Result<Command, UsageError> {
    let cmd = o.command.clone().ok_or_else(|| {
        UsageError("Please specify an isolate command (e.g. --init, --run).".into())
    })?;
    if o.cg_mem.is_some() && !o.cg && !matches!(cmd, Command::Version | Command::CheckConfig) {
        return Err(UsageError(
            "Options related to control groups require --cg to be set.".into(),
        ));
    }
    match cmd {
        Command::Init if !o.operands.is_empty() => {
            Err(UsageError("--init mode takes no parameters".into()))
        }
        Command::Cleanup if !o.operands.is_empty() => {
            Err(UsageError("--cleanup mode takes no parameters".into()))
        }
        Command::Run if o.operands.is_empty() => {
            Err(UsageError("--run mode requires a command to run".into()))
        }
        c => Ok(c),
    }
}

fn ensure_root() -> Result<(), IsolateError> {
    crate::sandbox::ensure_root().map_err(|_| IsolateError::NotRoot)
}

fn version() -> i32 {
    println!("The process isolator {ISOLATE_VERSION}");
    println!(
        "(judgebox {} front end: isolate's interface over judgebox's sandbox)",
        env!("CARGO_PKG_VERSION")
    );
    0
}

/// `--check-config`: parses the configuration and says what judgebox will use.
fn check_config() -> Result<i32, IsolateError> {
    let s = config::load()?;
    let source = s
        .source
        .as_ref()
        .map_or("built-in defaults (no config file)".to_string(), |p| {
            p.display().to_string()
        });
    println!("config: {source}");
    println!("box_root: {}", s.box_root.display());
    println!("lock_root: {}", s.lock_root.display());
    println!(
        "first_uid: {}\nfirst_gid: {}\nnum_boxes: {}",
        s.first_uid, s.first_gid, s.num_boxes
    );
    let m = crate::cgroup::Manager::new(&Default::default());
    println!("cgroups (--cg): {}", m.mode());
    Ok(0)
}

/// `--print-cg-root`: the cgroup directories judgebox creates run cgroups in.
fn print_cg_root() -> Result<i32, IsolateError> {
    let m = crate::cgroup::Manager::new(&Default::default());
    let parents = m.parents();
    if parents.is_empty() {
        return Err(IsolateError::NoCgroup(
            m.none_reason().unwrap_or("unknown reason").to_string(),
        ));
    }
    for p in parents {
        println!("{}", p.display());
    }
    Ok(0)
}

fn execute(o: &Options, cmd: Command) -> Result<i32, IsolateError> {
    match cmd {
        Command::Version => return Ok(version()),
        Command::CheckConfig => return check_config(),
        _ => {}
    }
    ensure_root()?;
    if cmd == Command::PrintCgRoot {
        return print_cg_root();
    }
    let access = boxes::Access {
        wait: o.wait,
        cg: o.cg,
        caller: caller::Caller::of_process(o)?,
    };
    let settings = config::load()?;
    let b = boxes::BoxId::new(&settings, o.box_id)?;
    match cmd {
        Command::Init => {
            let owner = access.caller.restricted().unwrap_or((b.uid, b.gid));
            let quota = o
                .quota
                .map(|(blocks, inodes)| quota::Quota { blocks, inodes });
            let dir = boxes::init(&settings, &b, &access, owner, quota)?;
            println!("{}", dir.display());
            Ok(0)
        }
        Command::Cleanup => {
            if !boxes::cleanup(&settings, &b, &access)? && o.verbose > 0 {
                eprintln!("Nothing to do -- box did not exist");
            }
            Ok(0)
        }
        _ => run_and_report(o, &settings, &b, &access),
    }
}

/// Opens the meta file without following a symlink at its name and without blocking on
/// a FIFO there (callers have put it inside the box, where the program can plant either);
/// as the real user when that is not root (isolate opens it with the caller's fsuid).
fn open_meta(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
    };
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let file = if uid == 0 {
        open()
    } else {
        caller::with_identity((uid, gid), open)
    };
    file.map_err(std::io::Error::from_raw_os_error)
}

/// Writes the meta file (`-M -`: our stdout, as isolate).
fn write_meta(o: &Options, text: &str) {
    let Some(path) = &o.meta else {
        return;
    };
    if path.as_os_str() == "-" {
        print!("{text}");
        return;
    }
    let written = open_meta(path).and_then(|mut f| {
        if !f.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        f.set_len(0)?;
        f.write_all(text.as_bytes())
    });
    if let Err(e) = written {
        eprintln!(
            "Failed to write meta file {}: {e}",
            meta::escape(&path.display().to_string())
        );
    }
}

fn run_and_report(
    o: &Options,
    s: &config::Settings,
    b: &boxes::BoxId,
    a: &boxes::Access,
) -> Result<i32, IsolateError> {
    let out = run::run(o, s, b, a)?;
    write_meta(o, &meta::render(&out.result, &out.verdict, o.cg));
    if let Some(line) = meta::summary(&out.result, &out.verdict, o.silent) {
        eprintln!("{line}");
    }
    Ok(out.verdict.exit_code())
}

/// The whole isolate command line (`args` without argv[0]); returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let parsed = options::parse(args).and_then(|o| check_usage(&o).map(|c| (o, c)));
    let (o, cmd) = match parsed {
        Ok(v) => v,
        Err(e) if e.0.is_empty() => {
            print!("{}", options::USAGE);
            return 0;
        }
        Err(e) => {
            eprintln!("{}", meta::escape(&e.0));
            eprintln!("Try 'isolate --help' for more information.");
            return 2;
        }
    };
    match execute(&o, cmd) {
        Ok(code) => code,
        Err(e) => {
            let msg = meta::escape(&e.to_string());
            write_meta(&o, &meta::render_failure(&msg));
            eprintln!("{msg}");
            2
        }
    }
}
