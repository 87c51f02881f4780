//! Real clients against `judgebox serve`: the official Judge0 Python SDK (`judge0` from
//! PyPI) on the real Python, C++ and Java images, and schemathesis fuzzing the API from
//! `/openapi.json` (at least 1,000 requests, no 5xx, still answering afterwards). Both run
//! in a Python venv the test makes once (under the target directory). Without the images
//! or the venv (no PyPI) they say so and pass, unless JUDGEBOX_REQUIRE_IMAGES=1.

mod common;
mod server_common;

use server_common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const PACKAGES: &[&str] = &["judge0==0.0.8", "schemathesis==4.32.5"];

fn required() -> bool {
    std::env::var("JUDGEBOX_REQUIRE_IMAGES").is_ok_and(|v| v == "1")
}

fn skip(why: &str) {
    assert!(!required(), "{why}");
    eprintln!("skipping: {why}");
}

/// The venv with the SDK and schemathesis, made once per target directory.
fn venv() -> Option<&'static Path> {
    static VENV: OnceLock<Option<PathBuf>> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("server-clients-venv");
        let marker = dir.join(format!("installed-{}", PACKAGES.join("-")));
        if marker.exists() {
            return Some(dir);
        }
        let _ = std::fs::remove_dir_all(&dir);
        let made = Command::new("/usr/bin/python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            return None;
        }
        let pip = Command::new(dir.join("bin/pip"))
            .args(["install", "-q"])
            .args(PACKAGES)
            .status();
        if !pip.is_ok_and(|s| s.success()) {
            return None;
        }
        std::fs::write(&marker, "").ok()?;
        Some(dir)
    })
    .as_deref()
}

fn images_present(names: &[&str]) -> bool {
    let out = Command::new(common::BIN)
        .args(["lang", "ls", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    names.iter().all(|n| {
        v.as_array()
            .unwrap()
            .iter()
            .any(|l| l["name"] == *n && l["present"] == true)
    })
}

#[test]
fn the_official_judge0_python_sdk_runs_against_serve() {
    if !images_present(&["python3", "cpp", "java"]) {
        return skip("the python3, cpp and java images are missing (scripts/build-images.sh)");
    }
    let Some(venv) = venv() else {
        return skip("cannot make a venv with the judge0 SDK (python3-venv, PyPI)");
    };
    let s = Server::start_images(&[], 2);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/server_sdk/judge0_sdk.py");
    let out = Command::new(venv.join("bin/python"))
        .arg(&script)
        .arg(s.url(""))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "SDK run failed: {stdout}\n{}\nserver: {}",
        String::from_utf8_lossy(&out.stderr),
        s.log(1)
    );
}

#[test]
fn schemathesis_finds_no_server_error_in_1000_requests() {
    let Some(venv) = venv() else {
        return skip("cannot make a venv with schemathesis (python3-venv, PyPI)");
    };
    // Limits small enough that fuzzed programs end fast; the sh test language runs them.
    let env = [
        ("CPU_TIME_LIMIT", "0.5"),
        ("MAX_CPU_TIME_LIMIT", "1"),
        ("WALL_TIME_LIMIT", "1"),
        ("MAX_WALL_TIME_LIMIT", "2"),
        ("MAX_QUEUE_SIZE", "100000"),
        ("ENABLE_SUBMISSION_DELETE", "true"),
        ("AUTHZ_TOKEN", "fuzz"),
    ];
    let s = Server::start(&env, 2);
    let report = s.dir.path().join("schemathesis");
    let out = Command::new(venv.join("bin/schemathesis"))
        .current_dir(s.dir.path())
        .args([
            "--no-color",
            "run",
            &s.url("/openapi.json"),
            "--checks",
            "not_a_server_error",
        ])
        .args(["-n", "40", "--request-timeout", "60"])
        .arg("--report-dir")
        .arg(&report)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = s.log(1).matches("\"event\":\"request\"").count();
    assert!(requests >= 1000, "only {requests} requests:\n{text}");
    let errors: Vec<String> = s
        .log(1)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "request" && v["status"].as_u64().unwrap_or(0) >= 500)
        .map(|v| v.to_string())
        .collect();
    assert!(errors.is_empty(), "5xx answers: {errors:?}");
    assert_eq!(s.get("/version").0, 200, "still answering");
}
