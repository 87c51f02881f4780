//! Seccomp profiles (OCI/Docker JSON) given as `--seccomp PATH`: loading and compiling
//! any file never panics; it is a profile or an error naming the file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|json: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(json).expect("write profile");
    let path = file.path().to_str().expect("utf-8 temp path").to_string();
    let _ = judgebox::seccomp::Filter::load(&path);
});
