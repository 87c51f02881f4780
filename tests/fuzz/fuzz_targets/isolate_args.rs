//! The isolate front end's argument parser (`judgebox isolate ...`): any argument vector
//! (the input split at NUL bytes) parses to options or a usage error, never a panic.
#![no_main]
use judgebox::isolate::options::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let args: Vec<String> = input
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let _ = parse(&args);
});
