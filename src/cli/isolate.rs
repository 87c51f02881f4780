//! `judgebox isolate …` and the binary invoked as `isolate`: hands isolate's command
//! line, unparsed, to the isolate-compatible front end (`judgebox::isolate`).

use std::ffi::OsString;
use std::path::Path;

/// Whether argv[0] names the binary `isolate` (a symlink or copy installed as isolate).
pub fn invoked_as_isolate(argv0: Option<&OsString>) -> bool {
    argv0
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|n| n == "isolate")
}

/// Runs isolate's command line (`args` without argv[0]); returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Option<Vec<String>> = args.into_iter().map(|a| a.into_string().ok()).collect();
    match args {
        Some(args) => judgebox::isolate::main(&args),
        None => {
            eprintln!("Arguments must be valid UTF-8");
            eprintln!("Try 'isolate --help' for more information.");
            2
        }
    }
}
