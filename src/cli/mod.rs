//! Command-line interface: one file per subcommand, each a thin layer that turns flags
//! into library calls and results into JSON or human output.

mod cleanup;
mod doctor;
mod image;
mod images;
mod isolate;
mod judge;
mod lang;
mod run;
mod serve;

use clap::{CommandFactory, Parser, Subcommand};

/// judgebox: run untrusted code in a sandbox, without a daemon.
///
/// Each run gets fresh mount, pid, ipc, uts, net and cgroup namespaces, a read-only
/// rootfs (pivot_root), an unprivileged uid with no capabilities, and exact results.
/// Must run as root.
///
/// `judgebox isolate [options] --init|--run -- CMD|--cleanup` (or the binary installed as
/// `isolate`) takes isolate's command line instead: see "Switching from isolate" in the
/// README.
#[derive(Parser)]
#[command(name = "judgebox", version, about, long_about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(run::RunArgs),
    Judge(judge::JudgeArgs),
    Image(image::ImageArgs),
    Lang(lang::LangArgs),
    Doctor(doctor::DoctorArgs),
    Cleanup(cleanup::CleanupArgs),
    Serve(serve::ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), as the Debian package installs it.
    #[command(hide = true)]
    Manpage,
}

/// Parses arguments and runs; returns the process exit code.
pub fn main() -> i32 {
    ensure_std_fds();
    let mut args = std::env::args_os();
    let argv0 = args.next();
    if isolate::invoked_as_isolate(argv0.as_ref()) {
        return isolate::main(args.collect());
    }
    let mut rest = args.peekable();
    if rest.peek().is_some_and(|a| a == "isolate") {
        return isolate::main(rest.skip(1).collect());
    }
    if let Some(args) = rest
        .peek()
        .is_some_and(|a| a == "run")
        .then(|| parse_run(rest.skip(1)))
        .flatten()
    {
        return finish(run::execute(args));
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::execute(args),
        Command::Judge(args) => judge::execute(args),
        Command::Image(args) => image::execute(args),
        Command::Lang(args) => lang::execute(args),
        Command::Doctor(args) => doctor::execute(args),
        Command::Cleanup(args) => cleanup::execute(args),
        Command::Serve(args) => serve::execute(args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "judgebox",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Manpage => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map(|()| 0)
            .map_err(anyhow::Error::from),
    };
    finish(result)
}

/// `judgebox run` is parsed alone first: building the whole command tree, every other
/// subcommand's flags included, costs ~0.3 ms of each one-shot run. Anything this parse
/// refuses (help, a bad flag) goes through the full parser, which says it exactly as
/// before.
fn parse_run(args: impl Iterator<Item = std::ffi::OsString>) -> Option<run::RunArgs> {
    use clap::{Args, FromArgMatches};
    let command = run::RunArgs::augment_args(clap::Command::new("run").no_binary_name(true));
    let matches = command.try_get_matches_from(args).ok()?;
    run::RunArgs::from_arg_matches(&matches).ok()
}

/// The process exit code for a subcommand's result; errors go to stderr, escaped.
fn finish(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            // Errors name paths, test names and image names: never raw to the terminal.
            eprintln!(
                "judgebox: error: {}",
                judgebox::display::escape_controls(&describe(&e))
            );
            2
        }
    }
}

/// The error and its causes, joined by ": "; a cause is left out when the text so far
/// already says it (thiserror messages often embed their source).
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

/// Makes sure fds 0-2 are open so no pipe or file we create lands on them.
fn ensure_std_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries; open returns a fresh fd or -1.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
}

/// Parsers shared by subcommands (clap value_parser functions).
pub mod parse {
    use judgebox::units;

    pub fn size(s: &str) -> Result<u64, String> {
        units::parse_size(s).map_err(|e| e.to_string())
    }

    pub fn seconds(s: &str) -> Result<f64, String> {
        units::parse_seconds(s).map_err(|e| e.to_string())
    }

    /// A size or `unlimited` (None).
    #[derive(Clone, Copy, Debug)]
    pub struct MaybeUnlimited(pub Option<u64>);

    pub fn size_or_unlimited(s: &str) -> Result<MaybeUnlimited, String> {
        if s.eq_ignore_ascii_case("unlimited") {
            Ok(MaybeUnlimited(None))
        } else {
            size(s).map(|v| MaybeUnlimited(Some(v)))
        }
    }

    /// A positive fraction such as 0.5 or 2.
    pub fn fraction(s: &str) -> Result<f64, String> {
        match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
            _ => Err(format!(
                "invalid fraction '{s}': expected a positive number of CPUs, e.g. 0.5"
            )),
        }
    }

    /// A size or `unlimited`, for --box-dir-size.
    pub fn box_dir_size(s: &str) -> Result<judgebox::boxdir::BoxDirSize, String> {
        use judgebox::boxdir::BoxDirSize;
        Ok(match size_or_unlimited(s)?.0 {
            Some(n) => BoxDirSize::AtMost(n),
            None => BoxDirSize::Unlimited,
        })
    }

    /// `FIRST-LAST`, checked against the host's accounts and subordinate id ranges.
    pub fn uid_range(s: &str) -> Result<judgebox::sandbox::uid::UidRange, String> {
        judgebox::sandbox::uid::UidRange::parse(s).map_err(|e| e.to_string())
    }

    /// Makes `range` (when given) the one every run of this process leases its uid from.
    pub fn use_uid_range(range: Option<judgebox::sandbox::uid::UidRange>) -> anyhow::Result<()> {
        if let Some(r) = range {
            judgebox::sandbox::uid::configure(r)?;
        }
        Ok(())
    }

    pub fn env_pair(s: &str) -> Result<String, String> {
        match s.split_once('=') {
            Some((k, _)) if !k.is_empty() && !k.contains('\0') => Ok(s.to_string()),
            _ => Err(format!("invalid --env '{s}': expected KEY=VALUE")),
        }
    }
}
