//! isolate's command line, parsed as its getopt_long table does: short options with
//! clustering and attached values, long options with `=` or a separate value and unique
//! prefixes, `-p`'s optional value, and the end of options at `--` or the first operand.

use super::rules::DirRules;
use std::path::PathBuf;

/// The one command an invocation performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Init,
    Run,
    Cleanup,
    Version,
    CheckConfig,
    PrintCgRoot,
}

/// Everything the command line says.
#[derive(Debug, Clone)]
pub struct Options {
    pub command: Option<Command>,
    /// Operands after the options (the program and its arguments for --run).
    pub operands: Vec<String>,
    pub box_id: u32,
    pub chdir: Option<String>,
    pub cg: bool,
    /// KB.
    pub cg_mem: Option<u64>,
    pub dirs: DirRules,
    pub full_env: bool,
    /// `-E` rules in order: `VAR` (inherit) or `VAR=value` (empty value: unset).
    pub env: Vec<String>,
    /// KB.
    pub fsize: Option<u64>,
    /// KB; None: unlimited.
    pub stack: Option<u64>,
    /// 0: unlimited.
    pub open_files: u64,
    pub stdin: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub stderr_to_stdout: bool,
    /// Address space, KB.
    pub mem: Option<u64>,
    pub meta: Option<PathBuf>,
    /// None: unlimited (`-p` without a value).
    pub processes: Option<u64>,
    pub quota: Option<(u64, u64)>,
    pub silent: bool,
    pub verbose: u32,
    /// Seconds.
    pub time: Option<f64>,
    pub wall_time: Option<f64>,
    pub extra_time: f64,
    /// KB.
    pub core: u64,
    pub share_net: bool,
    pub inherit_fds: bool,
    pub tty_hack: bool,
    pub special_files: bool,
    pub wait: bool,
    pub as_uid: Option<u32>,
    pub as_gid: Option<u32>,
    pub syscalls: Option<u32>,
    /// `--cg-timing` / `--no-cg-timing` were given (accepted; judgebox always times the
    /// whole process tree).
    pub cg_timing_seen: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            command: None,
            operands: Vec::new(),
            box_id: 0,
            chdir: None,
            cg: false,
            cg_mem: None,
            dirs: DirRules::with_defaults(),
            full_env: false,
            env: Vec::new(),
            fsize: None,
            stack: None,
            open_files: 1024,
            stdin: None,
            stdout: None,
            stderr: None,
            stderr_to_stdout: false,
            mem: None,
            meta: None,
            processes: Some(1),
            quota: None,
            silent: false,
            verbose: 0,
            time: None,
            wall_time: None,
            extra_time: 0.0,
            core: 0,
            share_net: false,
            inherit_fds: false,
            tty_hack: false,
            special_files: false,
            wait: false,
            as_uid: None,
            as_gid: None,
            syscalls: None,
            cg_timing_seen: false,
        }
    }
}

/// A bad command line; the message is isolate's wording where isolate has one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    Optional,
}

/// Long name, argument, and the short letter (or long name) it is handled as.
const LONG: &[(&str, Arg, &str)] = &[
    ("as-uid", Arg::Required, "as-uid"),
    ("as-gid", Arg::Required, "as-gid"),
    ("box-id", Arg::Required, "b"),
    ("chdir", Arg::Required, "c"),
    ("cg", Arg::None, "cg"),
    ("cg-mem", Arg::Required, "cg-mem"),
    ("cg-timing", Arg::None, "cg-timing"),
    ("check-config", Arg::None, "check-config"),
    ("cleanup", Arg::None, "cleanup"),
    ("core", Arg::Required, "core"),
    ("dir", Arg::Required, "d"),
    ("no-cg-timing", Arg::None, "cg-timing"),
    ("no-default-dirs", Arg::None, "D"),
    ("fsize", Arg::Required, "f"),
    ("env", Arg::Required, "E"),
    ("extra-time", Arg::Required, "x"),
    ("full-env", Arg::None, "e"),
    ("help", Arg::None, "help"),
    ("inherit-fds", Arg::None, "inherit-fds"),
    ("init", Arg::None, "init"),
    ("mem", Arg::Required, "m"),
    ("meta", Arg::Required, "M"),
    ("processes", Arg::Optional, "p"),
    ("quota", Arg::Required, "q"),
    ("run", Arg::None, "run"),
    ("share-net", Arg::None, "share-net"),
    ("silent", Arg::None, "s"),
    ("stack", Arg::Required, "k"),
    ("open-files", Arg::Required, "n"),
    ("print-cg-root", Arg::None, "print-cg-root"),
    ("special-files", Arg::None, "special-files"),
    ("stderr", Arg::Required, "r"),
    ("stderr-to-stdout", Arg::None, "stderr-to-stdout"),
    ("stdin", Arg::Required, "i"),
    ("stdout", Arg::Required, "o"),
    ("syscalls", Arg::Required, "syscalls"),
    ("time", Arg::Required, "t"),
    ("tty-hack", Arg::None, "tty-hack"),
    ("verbose", Arg::None, "v"),
    ("version", Arg::None, "version"),
    ("wait", Arg::None, "wait"),
    ("wall-time", Arg::Required, "w"),
];

/// isolate's short options ("b:c:d:DeE:f:i:k:m:M:n:o:p::q:r:st:vw:x:").
fn short_arg(c: char) -> Option<Arg> {
    match c {
        'b' | 'c' | 'd' | 'E' | 'f' | 'i' | 'k' | 'm' | 'M' | 'n' | 'o' | 'q' | 'r' | 't' | 'w'
        | 'x' => Some(Arg::Required),
        'p' => Some(Arg::Optional),
        'D' | 'e' | 's' | 'v' => Some(Arg::None),
        _ => None,
    }
}

/// The long option `name` names: exact, else a unique prefix (as getopt_long).
fn find_long(name: &str) -> Result<(Arg, &'static str), UsageError> {
    if let Some(&(_, arg, key)) = LONG.iter().find(|(n, _, _)| *n == name) {
        return Ok((arg, key));
    }
    let matches: Vec<_> = LONG
        .iter()
        .filter(|(n, _, _)| n.starts_with(name))
        .collect();
    match matches.as_slice() {
        [(_, arg, key)] => Ok((*arg, key)),
        [] => Err(usage(format!("unrecognized option '--{name}'"))),
        _ if matches.iter().all(|m| m.2 == matches[0].2) => Ok((matches[0].1, matches[0].2)),
        _ => Err(usage(format!("option '--{name}' is ambiguous"))),
    }
}

/// isolate's opt_uint: decimal, no junk, at most INT_MAX.
pub fn parse_uint(val: &str) -> Result<u64, UsageError> {
    let ok = !val.is_empty() && val.bytes().all(|b| b.is_ascii_digit());
    let n: u64 = if ok {
        val.parse().unwrap_or(u64::MAX)
    } else {
        u64::MAX
    };
    if !ok {
        return Err(usage(format!("Invalid numeric parameter: {val}")));
    }
    if n > i32::MAX as u64 {
        return Err(usage(format!("Numeric parameter out of range: {val}")));
    }
    Ok(n)
}

/// A time in seconds (fractions allowed); stricter than isolate's atof.
fn parse_time(val: &str) -> Result<f64, UsageError> {
    match val.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1e6).contains(&v) => Ok(v),
        _ => Err(usage(format!("Invalid time: {val}"))),
    }
}

fn set_command(o: &mut Options, c: Command) -> Result<(), UsageError> {
    match &o.command {
        Some(existing) if *existing != c => Err(usage("Only one command is allowed.")),
        _ => {
            o.command = Some(c);
            Ok(())
        }
    }
}

/// Applies one option (`key` as in LONG's third column) with its value.
fn apply(o: &mut Options, key: &str, val: Option<String>) -> Result<(), UsageError> {
    let v = || val.clone().unwrap_or_default();
    match key {
        "b" => o.box_id = parse_uint(&v())? as u32,
        "c" => o.chdir = Some(v()),
        "d" => o
            .dirs
            .set(&v())
            .map_err(|e| usage(format!("Invalid directory rule '{}': {e}", v())))?,
        "D" => o.dirs.no_defaults = true,
        "e" => o.full_env = true,
        "E" => {
            if v().starts_with('=') || v().is_empty() {
                return Err(usage(format!("Invalid environment specified: {}", v())));
            }
            o.env.push(v());
        }
        "f" => o.fsize = Some(parse_uint(&v())?),
        "k" => o.stack = Some(parse_uint(&v())?).filter(|&k| k > 0),
        "n" => o.open_files = parse_uint(&v())?,
        "i" => o.stdin = Some(v()),
        "m" => o.mem = Some(parse_uint(&v())?),
        "M" => o.meta = Some(PathBuf::from(v())),
        "o" => o.stdout = Some(v()),
        "p" => {
            o.processes = match &val {
                Some(n) => Some(parse_uint(n)?).filter(|&n| n > 0),
                None => None,
            }
        }
        "q" => {
            let (b, i) = v()
                .split_once(',')
                .map(|(b, i)| (b.to_string(), i.to_string()))
                .ok_or_else(|| usage(format!("Invalid quota specified: {}", v())))?;
            o.quota = Some((parse_uint(&b)?, parse_uint(&i)?));
        }
        "r" => {
            o.stderr = Some(v());
            o.stderr_to_stdout = false;
        }
        "s" => o.silent = true,
        "t" => o.time = Some(parse_time(&v())?).filter(|&t| t > 0.0),
        "v" => o.verbose += 1,
        "w" => o.wall_time = Some(parse_time(&v())?).filter(|&t| t > 0.0),
        "x" => o.extra_time = parse_time(&v())?,
        "init" => set_command(o, Command::Init)?,
        "run" => set_command(o, Command::Run)?,
        "cleanup" => set_command(o, Command::Cleanup)?,
        "version" => set_command(o, Command::Version)?,
        "print-cg-root" => set_command(o, Command::PrintCgRoot)?,
        "check-config" => set_command(o, Command::CheckConfig)?,
        "cg" => o.cg = true,
        "cg-mem" => o.cg_mem = Some(parse_uint(&v())?),
        "cg-timing" => o.cg_timing_seen = true,
        "share-net" => o.share_net = true,
        "inherit-fds" => o.inherit_fds = true,
        "stderr-to-stdout" => {
            o.stderr = None;
            o.stderr_to_stdout = true;
        }
        "tty-hack" => o.tty_hack = true,
        "core" => o.core = parse_uint(&v())?,
        "special-files" => o.special_files = true,
        "wait" => o.wait = true,
        "as-uid" => o.as_uid = Some(parse_uint(&v())? as u32),
        "as-gid" => o.as_gid = Some(parse_uint(&v())? as u32),
        "syscalls" => o.syscalls = Some(parse_uint(&v())? as u32),
        "help" => return Err(usage("")),
        _ => return Err(usage(format!("internal error: unhandled option {key}"))),
    }
    Ok(())
}

/// A long option at `args[*i]` (without its leading "--").
fn long_option(
    o: &mut Options,
    body: &str,
    args: &[String],
    i: &mut usize,
) -> Result<(), UsageError> {
    let (name, inline) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (body, None),
    };
    let (arg, key) = find_long(name)?;
    let val = match (arg, inline) {
        (Arg::None, Some(_)) => {
            return Err(usage(format!(
                "option '--{name}' doesn't allow an argument"
            )))
        }
        (Arg::None, None) => None,
        (_, Some(v)) => Some(v),
        (Arg::Required, None) => {
            *i += 1;
            Some(
                args.get(*i)
                    .cloned()
                    .ok_or_else(|| usage(format!("option '--{name}' requires an argument")))?,
            )
        }
        (Arg::Optional, None) => optional_number(args, i),
    };
    apply(o, key, val)
}

/// `-p N` / `--processes N`: a separate all-digits word is taken as the optional value
/// (isolate itself takes it only attached; judges write both).
fn optional_number(args: &[String], i: &mut usize) -> Option<String> {
    let next = args.get(*i + 1)?;
    if !next.is_empty() && next.bytes().all(|b| b.is_ascii_digit()) {
        *i += 1;
        Some(next.clone())
    } else {
        None
    }
}

/// A cluster of short options at `args[*i]` (without its leading "-").
fn short_options(
    o: &mut Options,
    body: &str,
    args: &[String],
    i: &mut usize,
) -> Result<(), UsageError> {
    for (pos, c) in body.char_indices() {
        let rest = &body[pos + c.len_utf8()..];
        let arg = short_arg(c).ok_or_else(|| usage(format!("invalid option -- '{c}'")))?;
        let key = c.to_string();
        match arg {
            Arg::None => apply(o, &key, None)?,
            Arg::Required if !rest.is_empty() => return apply(o, &key, Some(rest.to_string())),
            Arg::Required => {
                *i += 1;
                let val = args
                    .get(*i)
                    .cloned()
                    .ok_or_else(|| usage(format!("option requires an argument -- '{c}'")))?;
                return apply(o, &key, Some(val));
            }
            Arg::Optional if !rest.is_empty() => return apply(o, &key, Some(rest.to_string())),
            Arg::Optional => return apply(o, &key, optional_number(args, i)),
        }
    }
    Ok(())
}

/// Parses the arguments after argv[0].
pub fn parse(args: &[String]) -> Result<Options, UsageError> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            o.operands = args[i + 1..].to_vec();
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            long_option(&mut o, body, args, &mut i)?;
        } else if a.len() > 1 && a.starts_with('-') {
            short_options(&mut o, &a[1..], args, &mut i)?;
        } else {
            o.operands = args[i..].to_vec();
            break;
        }
        i += 1;
    }
    Ok(o)
}

/// isolate's usage text (printed for --help and after usage errors' "Try ..." line).
pub const USAGE: &str = "\
Usage: isolate [<options>] <command>

Options:
    --as-uid=<uid>\tPerform action on behalf of a given user (requires root)
    --as-gid=<gid>\tPerform action on behalf of a given group (requires root)
-b, --box-id=<id>\tWhen multiple sandboxes are used in parallel, each must get a unique ID
    --cg\t\tEnable use of control groups
    --cg-mem=<size>\tLimit memory usage of the control group to <size> KB
    --cg-timing\t\tAccepted and ignored (judgebox always times the whole process tree)
-c, --chdir=<dir>\tChange directory to <dir> before executing the program
    --core=<size>\tLimit core files to <size> KB (default: 0)
-d, --dir=<dir>\t\tMake a directory <dir> visible inside the sandbox
    --dir=<in>=<out>\tMake a directory <out> outside visible as <in> inside
    --dir=<in>=\t\tDelete a previously defined directory rule (even a default one)
    --dir=...:<opt>\tSpecify options for a rule: dev, fs, maybe, noexec, norec, rw, tmp
-D, --no-default-dirs\tDo not add default directory rules
-f, --fsize=<size>\tMax size (in KB) of files that can be created
-E, --env=<var>\t\tInherit the environment variable <var> from the parent process
-E, --env=<var>=<val>\tSet the environment variable <var> to <val>; unset it if <var> is empty
-x, --extra-time=<time>\tSet extra timeout, before which a timing-out program is not yet killed
-e, --full-env\t\tInherit full environment of the parent process
    --inherit-fds\tInherit all file descriptors of the parent process
-m, --mem=<size>\tLimit address space to <size> KB
-M, --meta=<file>\tOutput process information to <file> (name:value)
-n, --open-files=<max>\tLimit number of open files to <max> (default: 1024, 0=unlimited)
-q, --quota=<blk>,<ino>\tLimit the box to <blk> KB and <ino> inodes (at --init; a tmpfs box)
    --share-net\t\tShare network namespace with the parent process
-s, --silent\t\tDo not print status messages except for fatal errors
    --special-files\tKeep non-regular files (symlinks etc.) produced inside sandbox
-k, --stack=<size>\tLimit stack size to <size> KB (default: 0=unlimited)
-r, --stderr=<file>\tRedirect stderr to <file>
    --stderr-to-stdout\tRedirect stderr to stdout
-i, --stdin=<file>\tRedirect stdin from <file>
-o, --stdout=<file>\tRedirect stdout to <file>
-p, --processes[=<max>]\tEnable multiple processes (at most <max> of them)
-t, --time=<time>\tSet run time limit (seconds, fractions allowed)
    --tty-hack\t\tLet the program write to the caller's terminal directly
-v, --verbose\t\tBe verbose
    --wait\t\tIf the sandbox is currently busy, wait instead of refusing to run
-w, --wall-time=<time>\tSet wall clock time limit (seconds, fractions allowed)

Commands:
    --init\t\tInitialize sandbox
    --run -- <cmd> ...\tRun given command within sandbox
    --cleanup\t\tClean up sandbox
    --check-config\tCheck configuration file and exit
    --print-cg-root\tPrint the cgroup judgebox will use
    --version\t\tDisplay program version and configuration
";

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, UsageError> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn judge0_compile_line_parses() {
        let o = p(&[
            "--cg",
            "-s",
            "-b",
            "7",
            "-M",
            "/tmp/m",
            "--stderr-to-stdout",
            "-i",
            "/dev/null",
            "-t",
            "5",
            "-x",
            "0",
            "-w",
            "10",
            "-k",
            "128000",
            "-p120",
            "--cg-mem=512000",
            "-f",
            "4096",
            "-E",
            "HOME=/tmp",
            "-E",
            "PATH=/usr/bin:/bin",
            "-d",
            "/etc:noexec",
            "--cg-timing",
            "--run",
            "--",
            "/bin/bash",
            "compile.sh",
        ])
        .unwrap();
        assert_eq!(o.command, Some(Command::Run));
        assert_eq!(o.box_id, 7);
        assert_eq!(o.processes, Some(120));
        assert_eq!(o.cg_mem, Some(512000));
        assert_eq!(o.stack, Some(128000));
        assert_eq!(o.time, Some(5.0));
        assert!(o.cg && o.silent && o.stderr_to_stdout && o.cg_timing_seen);
        assert_eq!(o.operands, ["/bin/bash", "compile.sh"]);
        assert_eq!(o.env, ["HOME=/tmp", "PATH=/usr/bin:/bin"]);
    }

    #[test]
    fn long_forms_prefixes_and_optional_values() {
        let o = p(&[
            "--box-id",
            "3",
            "--processes=64",
            "--wall=3",
            "--time",
            "1",
            "--run",
            "./a.out",
        ])
        .unwrap();
        assert_eq!(
            (o.box_id, o.processes, o.wall_time),
            (3, Some(64), Some(3.0))
        );
        assert_eq!(o.operands, ["./a.out"]);
        assert_eq!(p(&["-p", "--run"]).unwrap().processes, None);
        assert_eq!(p(&["-p", "5", "--init"]).unwrap().processes, Some(5));
        assert_eq!(p(&["--processes", "--init"]).unwrap().processes, None);
        assert_eq!(p(&["-sb2", "--init"]).unwrap().box_id, 2);
        assert_eq!(
            p(&["--no-cg-timing", "--init"]).unwrap().command,
            Some(Command::Init)
        );
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        assert_eq!(
            p(&["-b", "x"]).unwrap_err().0,
            "Invalid numeric parameter: x"
        );
        assert_eq!(
            p(&["-b", "99999999999"]).unwrap_err().0,
            "Numeric parameter out of range: 99999999999"
        );
        assert_eq!(
            p(&["--init", "--run"]).unwrap_err().0,
            "Only one command is allowed."
        );
        assert!(p(&["--bogus"])
            .unwrap_err()
            .0
            .contains("unrecognized option"));
        assert!(p(&["--s"]).unwrap_err().0.contains("ambiguous"));
        assert!(p(&["-Z"]).is_err());
        assert!(p(&["-b"]).is_err());
        assert!(p(&["-q", "10"]).unwrap_err().0.starts_with("Invalid quota"));
        assert!(p(&["-E", "=x"]).is_err());
        assert!(p(&["-t", "abc"]).is_err());
        assert!(p(&["--init=1"]).is_err());
    }
}
