//! `judgebox serve` over HTTP: every endpoint and option, every reachable Judge0 status id
//! with a real program, auth, queue limits, maintenance, judge0.conf, additional files,
//! callbacks, kill -9 with a full queue, SIGTERM drain, hostile clients. Most tests use
//! the busybox test rootfs with `sh` languages (no images needed); the last ones use the
//! real Python and C++ images (skipped when missing unless JUDGEBOX_REQUIRE_IMAGES=1).

mod common;
mod server_common;

use serde_json::{json, Value};
use server_common::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const AUTHZ: (&str, &str) = ("X-Auth-User", "admin-secret");

/// One real program per Judge0 status id, all submitted as batches and polled.
#[test]
fn every_reachable_status_id_from_a_real_program() {
    let s = Server::start(&[("AUTHZ_TOKEN", "admin-secret")], 2);
    let cases: Vec<(u64, Value)> = vec![
        (
            3,
            json!({"source_code": "echo hello", "language_id": 9001, "expected_output": "hello  \n\n"}),
        ),
        (
            4,
            json!({"source_code": "echo hello", "language_id": 9001, "expected_output": "bye"}),
        ),
        (
            5,
            json!({"source_code": "while :; do :; done", "language_id": 9001, "cpu_time_limit": 0.3}),
        ),
        (
            6,
            json!({"source_code": "if then fi (", "language_id": 9002}),
        ),
        (
            7,
            json!({"source_code": "kill -SEGV $$", "language_id": 9001}),
        ),
        (
            8,
            json!({"source_code": "kill -XFSZ $$", "language_id": 9001}),
        ),
        (
            9,
            json!({"source_code": "kill -FPE $$", "language_id": 9001}),
        ),
        (
            10,
            json!({"source_code": "kill -ABRT $$", "language_id": 9001}),
        ),
        (
            11,
            json!({"source_code": "echo out; echo err >&2; exit 3", "language_id": 9001}),
        ),
        (
            12,
            json!({"source_code": "kill -USR1 $$", "language_id": 9001}),
        ),
        (
            13,
            json!({"source_code": "echo never", "language_id": 9003}),
        ),
        (
            14,
            json!({"source_code": "this is not an executable", "language_id": 44}),
        ),
        (
            12,
            json!({"source_code": "exec /probes/alloc 200", "language_id": 9001, "memory_limit": 32000}),
        ),
        (
            8,
            json!({"source_code": "yes judgebox", "language_id": 9001, "max_file_size": 16}),
        ),
    ];
    let bodies: Vec<Value> = cases.iter().map(|(_, b)| b.clone()).collect();
    let tokens = s.submit_batches(&bodies);
    let results: Vec<Value> = tokens.iter().map(|t| s.wait(t, "*")).collect();
    for ((want, body), got) in cases.iter().zip(&results) {
        assert_eq!(got["status"]["id"], *want, "{body} -> {got}");
    }
    let nzec = &results[8];
    assert_eq!(nzec["stdout"], "out\n");
    assert_eq!(nzec["stderr"], "err\n");
    assert_eq!(nzec["exit_code"], 3);
    assert_eq!(nzec["message"], "Exited with error status 3");
    assert_eq!(results[4]["exit_signal"], 11);
    assert_eq!(results[3]["status"]["description"], "Compilation Error");
    assert!(
        results[3]["compile_output"]
            .as_str()
            .unwrap()
            .contains("syntax error"),
        "{}",
        results[3]
    );
    assert_eq!(results[2]["message"], "Time limit exceeded");
    assert!(
        results[10]["message"].as_str().unwrap().contains("seccomp"),
        "{}",
        results[10]
    );
    // Memory: Judge0's status for the same program (runtime error), judgebox's verdict extra.
    let (_, mle) = s.get(&format!("/submissions/{}", tokens[12]));
    assert_eq!(mle["message"], "Memory limit exceeded", "{mle}");
    assert_eq!(mle["judgebox_verdict"], "memory_limit");
    assert!(mle["judgebox_enforcement"]["memory"].is_string(), "{mle}");
    // time and wall_time are Rails decimals (strings), memory KB.
    let ok = &results[0];
    assert!(ok["time"].as_str().unwrap().parse::<f64>().is_ok(), "{ok}");
    assert!(ok["wall_time"].as_str().unwrap().parse::<f64>().is_ok());
    assert!(ok["memory"].as_u64().is_some());
    assert!(ok["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        ok.get("judgebox_verdict").is_none(),
        "fields=* is Judge0's set only"
    );
    assert_eq!(
        ok["language"],
        json!({"id": 9001, "name": "Shell (busybox)"})
    );
    // /statistics counts them; /metrics has them by status.
    let (_, stats) = s.get("/statistics");
    assert_eq!(stats["submissions"]["total"], cases.len());
    let (code, metrics) = s.get("/metrics");
    assert_eq!(code, 200);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("judgebox_submissions_finished_total{status=\"14\"} 1"),
        "{text}"
    );
    assert!(text.contains("judgebox_run_seconds_bucket"));
    let overhead_count = text
        .lines()
        .find_map(|l| l.strip_prefix("judgebox_sandbox_overhead_seconds_count "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    // Every submission but the internal error (its seccomp profile is missing, so it
    // never reached a sandbox) has its sandbox overhead observed.
    assert_eq!(overhead_count, Some(cases.len() as u64 - 1), "{text}");
}

#[test]
fn info_endpoints_have_judge0_shapes() {
    let s = Server::start(&[], 1);
    let (code, about) = s.get("/about");
    assert_eq!((code, about["version"].as_str()), (200, Some("1.13.1")));
    assert_eq!(s.get("/version"), (200, Value::String("1.13.1".into())));
    let (code, iso) = s.get("/isolate");
    assert_eq!(code, 200);
    assert!(iso.as_str().unwrap().contains("judgebox"));
    assert_eq!(s.get("/license").0, 200);
    assert!(s.get("/system_info").1["CPU(s)"].is_string());
    let (_, cfg) = s.get("/config_info");
    for (k, v) in [
        ("cpu_time_limit", json!(5.0)),
        ("max_queue_size", json!(100)),
        ("callbacks_max_tries", json!(3)),
        ("enable_wait_result", json!(true)),
        ("allowed_languages_for_compile_options", json!([])),
        ("submission_cache_duration", json!(0.0)),
    ] {
        assert_eq!(cfg[k], v, "{k}: {cfg}");
    }
    let (_, statuses) = s.get("/statuses");
    assert_eq!(statuses.as_array().unwrap().len(), 14);
    assert_eq!(
        statuses[12],
        json!({"id": 13, "description": "Internal Error"})
    );
    let (_, langs) = s.get("/languages");
    let ids: Vec<u64> = langs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_u64().unwrap())
        .collect();
    for id in [9001, 9002, 43, 44, 89] {
        assert!(ids.contains(&id), "{langs}");
    }
    assert_eq!(langs[0].as_object().unwrap().len(), 2, "id and name only");
    let (_, one) = s.get("/languages/43");
    assert_eq!(one["name"], "Plain Text");
    assert_eq!(one["run_cmd"], "/bin/cat text.txt");
    let (_, shc) = s.get("/languages/9002");
    assert!(shc["compile_cmd"].as_str().unwrap().contains("%s"), "{shc}");
    assert_eq!(s.get("/languages/4242").0, 404);
    assert_eq!(
        s.get("/languages/all").1.as_array().unwrap().len(),
        langs.as_array().unwrap().len()
    );
    let (_, workers) = s.get("/workers");
    assert_eq!(workers[0]["available"], 1);
    assert_eq!(s.call("POST", "/authenticate", &[], None).0, 200);
    assert_eq!(
        s.call("POST", "/authorize", &[], None).0,
        403,
        "no AUTHZ_TOKEN: always 403"
    );
    let (_, doc) = s.get("/openapi.json");
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["paths"]["/submissions/{token}"]["delete"].is_object());
    assert_eq!(s.get("/no/such/route").0, 404);
    // Plain Text and Executable run as Judge0's do.
    let (code, v) = s.post(
        "/submissions?wait=true",
        &json!({"source_code": "just text\n", "language_id": 43}),
    );
    assert_eq!(
        (code, v["stdout"].as_str()),
        (201, Some("just text\n")),
        "{v}"
    );
}

#[test]
fn submissions_options_fields_base64_wait_and_validation() {
    let s = Server::start(
        &[
            ("AUTHZ_TOKEN", "admin-secret"),
            ("ENABLE_SUBMISSION_DELETE", "true"),
        ],
        2,
    );
    // wait=true answers the finished submission (default fields, judgebox extras).
    let (code, v) = s.post(
        "/submissions?wait=true",
        &json!({"source_code": "read a b; echo $((a+b)); echo \"$1|$2\"", "language_id": 9001,
                "stdin": "2 3\n", "command_line_arguments": "x  y;rm", "expected_output": "5\nx|yrm"}),
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["status"]["id"], 3, "{v}");
    assert_eq!(v["judgebox_verdict"], "accepted");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "token",
            "time",
            "memory",
            "stdout",
            "stderr",
            "compile_output",
            "message",
            "status",
            "judgebox_verdict",
            "judgebox_enforcement"
        ]
    );
    // Polling: the answer is only the token, then In Queue/Processing, then final.
    let (code, created) = s.post("/submissions", &json!({"source_code": "sleep 0.3; echo hi >&2", "language_id": 9001, "redirect_stderr_to_stdout": true}));
    assert_eq!(code, 201);
    assert_eq!(created.as_object().unwrap().len(), 1, "{created}");
    let token = created["token"].as_str().unwrap();
    let (_, early) = s.get(&format!("/submissions/{token}?fields=status"));
    assert!(
        matches!(early["status"]["id"].as_u64(), Some(1 | 2)),
        "{early}"
    );
    let done = s.wait(token, "stdout,stderr");
    assert_eq!(
        (done["stdout"].as_str(), &done["stderr"]),
        (Some("hi\n"), &Value::Null),
        "{done}"
    );
    // fields: a list, *, and an invalid one.
    let (_, f) = s.get(&format!("/submissions/{token}?fields=stdout,language_id"));
    assert_eq!(f, json!({"stdout": "hi\n", "language_id": 9001}));
    let (code, bad) = s.get(&format!("/submissions/{token}?fields=stdout,nope"));
    assert_eq!(
        (code, bad["error"].as_str()),
        (400, Some("invalid fields: [nope]"))
    );
    // base64 in and out; output that is not UTF-8 needs base64.
    let src = "printf '\\377\\376'; cat";
    let (code, v) = s.post(
        "/submissions?wait=true&base64_encoded=true&fields=stdout,status",
        &json!({"source_code": b64(src.as_bytes()), "stdin": b64(b"\x00abc"), "language_id": 9001}),
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(unb64(&v["stdout"]), b"\xff\xfe\x00abc");
    let (code, v) = s.post(
        "/submissions?wait=true",
        &json!({"source_code": src, "language_id": 9001}),
    );
    assert_eq!(code, 201);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("use base64_encoded=true"),
        "{v}"
    );
    let bin_token = v["token"].as_str().unwrap().to_string();
    let (code, v) = s.get(&format!("/submissions/{bin_token}"));
    assert_eq!(code, 400);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("cannot be converted to UTF-8"));
    // number_of_runs and compiler options reach the compiler.
    let (_, v) = s.post(
        "/submissions?wait=true&fields=status,compile_output,stdout",
        &json!({"source_code": "echo run", "language_id": 9002, "compiler_options": "-O2 -Wall", "number_of_runs": 3}),
    );
    assert_eq!(v["status"]["id"], 3, "{v}");
    assert_eq!(v["compile_output"], "compiled -O2 -Wall\n");
    // Validation: Judge0's messages, 422.
    for (body, field, message) in [
        (
            json!({"language_id": 9001}),
            "source_code",
            "can't be blank",
        ),
        (json!({"source_code": "x"}), "language_id", "can't be blank"),
        (
            json!({"source_code": "x", "language_id": 4242}),
            "language_id",
            "language with id 4242 doesn't exist",
        ),
        (
            json!({"source_code": "x", "language_id": 9001, "cpu_time_limit": 99}),
            "cpu_time_limit",
            "must be less than or equal to 15",
        ),
        (
            json!({"source_code": "x", "language_id": 9001, "memory_limit": "lots"}),
            "memory_limit",
            "is not a number",
        ),
        (
            json!({"source_code": "x", "language_id": 9001, "wall_time_limit": 0.5}),
            "wall_time_limit",
            "must be greater than or equal to 1",
        ),
        (
            json!({"source_code": "x", "language_id": 9001, "number_of_runs": 0}),
            "number_of_runs",
            "must be greater than 0",
        ),
        (
            json!({"source_code": "x", "language_id": 9001, "compiler_options": "-O2"}),
            "compiler_options",
            "setting compiler options is only allowed for compiled languages",
        ),
        (
            json!({"source_code": "x", "language_id": 9001, "compiler_options": "x".repeat(513)}),
            "compiler_options",
            "is too long (maximum is 512 characters)",
        ),
        (
            json!({"source_code": "x", "language_id": 9001, "callback_url": "file:///etc/passwd"}),
            "callback_url",
            "is not a valid http or https URL",
        ),
        (
            json!({"source_code": "x", "language_id": 89, "additional_files": b64(&zip_of(&[("run", b"echo")]))}),
            "source_code",
            "must be blank",
        ),
    ] {
        let (code, v) = s.post("/submissions", &body);
        assert_eq!(code, 422, "{body} -> {v}");
        assert_eq!(v[field][0], message, "{body} -> {v}");
    }
    // Listing needs AUTHZ; pagination as will_paginate.
    assert_eq!(s.get("/submissions").0, 403);
    let (code, page) = s.call(
        "GET",
        "/submissions?per_page=2&page=2&fields=token",
        &[AUTHZ],
        None,
    );
    assert_eq!(code, 200, "{page}");
    assert_eq!(page["submissions"].as_array().unwrap().len(), 2);
    let total = page["meta"]["total_count"].as_u64().unwrap();
    assert_eq!(
        page["meta"]["total_pages"].as_u64().unwrap(),
        total.div_ceil(2)
    );
    assert_eq!(
        (
            page["meta"]["current_page"].as_u64(),
            page["meta"]["prev_page"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let (code, v) = s.call("GET", "/submissions?page=0", &[AUTHZ], None);
    assert_eq!((code, v["error"].as_str()), (400, Some("invalid page: 0")));
    // Batch GET: tokens in order, null for unknown ones.
    let (_, b) = s.get(&format!(
        "/submissions/batch?tokens={token},nope&fields=stdout"
    ));
    assert_eq!(b, json!({"submissions": [{"stdout": "hi\n"}, null]}));
    // DELETE needs AUTHZ, answers the deleted submission in base64, then 404.
    assert_eq!(
        s.call("DELETE", &format!("/submissions/{token}"), &[], None)
            .0,
        403
    );
    let (code, v) = s.call(
        "DELETE",
        &format!("/submissions/{token}?fields=stdout"),
        &[AUTHZ],
        None,
    );
    assert_eq!((code, unb64(&v["stdout"])), (200, b"hi\n".to_vec()));
    assert_eq!(s.get(&format!("/submissions/{token}")).0, 404);
}

#[test]
fn auth_maintenance_full_queue_and_batch_limits() {
    let env = [
        ("AUTHN_HEADER", "X-Judge0-Token"),
        ("AUTHN_TOKEN", "t1 t2"),
        ("AUTHZ_TOKEN", "admin-secret"),
        ("MAX_QUEUE_SIZE", "3"),
        ("MAX_SUBMISSION_BATCH_SIZE", "2"),
    ];
    let s = Server::start(&env, 1);
    assert_eq!(s.get("/languages").0, 401);
    assert_eq!(
        s.call("GET", "/about", &[("X-Judge0-Token", "wrong")], None)
            .0,
        401
    );
    let auth = ("X-Judge0-Token", "t2");
    assert_eq!(s.call("GET", "/about", &[auth], None).0, 200);
    assert_eq!(
        s.get("/about?X-Judge0-Token=t1").0,
        200,
        "the token as a query parameter"
    );
    assert_eq!(s.call("POST", "/authenticate", &[auth], None).0, 200);
    assert_eq!(s.call("POST", "/authorize", &[auth], None).0, 403);
    assert_eq!(s.call("POST", "/authorize", &[auth, AUTHZ], None).0, 200);
    assert_eq!(
        s.call("GET", "/submissions", &[AUTHZ], None).0,
        401,
        "AUTHN first"
    );
    // Batches are capped; the queue holds MAX_QUEUE_SIZE, then 503.
    let slow = json!({"source_code": "sleep 1", "language_id": 9001});
    let (code, v) = s.call(
        "POST",
        "/submissions/batch",
        &[auth],
        Some(&json!({"submissions": [slow, slow, slow]})),
    );
    assert_eq!(code, 400);
    assert_eq!(
        v["error"],
        "number of submissions in a batch should be less than or equal to 2"
    );
    let (code, v) = s.call(
        "POST",
        "/submissions/batch",
        &[auth],
        Some(&json!({"submissions": []})),
    );
    assert_eq!(
        (code, v["error"].as_str()),
        (
            400,
            Some("there should be at least one submission in a batch")
        )
    );
    let mut full = None;
    for _ in 0..8 {
        let (code, v) = s.call("POST", "/submissions", &[auth], Some(&slow));
        if code == 503 {
            full = Some(v);
            break;
        }
        assert_eq!(code, 201, "{v}");
    }
    assert_eq!(full.expect("the queue fills up")["error"], "queue is full");
    drop(s);
    let m = Server::start(
        &[
            ("MAINTENANCE_MODE", "true"),
            ("MAINTENANCE_MESSAGE", "back soon"),
        ],
        1,
    );
    let (code, v) = m.post("/submissions", &sh("echo"));
    assert_eq!((code, v["error"].as_str()), (503, Some("back soon")));
    assert_eq!(m.get("/config_info").1["maintenance_mode"], true);
    assert_eq!(m.get("/languages").0, 200, "reads still work");
}

#[test]
fn judge0_conf_loads_and_bad_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("judge0.conf");
    std::fs::write(
        &conf,
        "# an operator's judge0.conf\nREDIS_PASSWORD=secret\nPOSTGRES_PASSWORD=x\nRAILS_ENV=production\n\
         CPU_TIME_LIMIT=3\nMAX_QUEUE_SIZE=7\nENABLE_SUBMISSION_DELETE=true\nMEMORY_LIMIT=\n",
    )
    .unwrap();
    let conf_s = conf.display().to_string();
    let out = std::process::Command::new(common::BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:1",
            "--config",
            &conf_s,
            "--db",
        ])
        .arg(dir.path().join("x.db"))
        .env("MAX_QUEUE_SIZE", "oops")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MAX_QUEUE_SIZE") && err.contains("oops"),
        "{err}"
    );
    // Loaded for real: values, defaults for empty ones, one notice per ignored key.
    let port = free_port();
    let mut child = std::process::Command::new(common::BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
            &conf_s,
            "--db",
        ])
        .arg(dir.path().join("y.db"))
        .arg("--rootfs")
        .arg(common::rootfs())
        .env("CPU_TIME_LIMIT", "4")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let cfg = loop {
        if let Ok((200, body)) = request(port, "GET", "/config_info", &[], None) {
            break serde_json::from_str::<Value>(&body).unwrap();
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(30));
    };
    let _ = child.kill();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let _ = child.wait();
    assert_eq!(
        cfg["cpu_time_limit"], 4.0,
        "the environment overrides the file"
    );
    assert_eq!(cfg["max_queue_size"], 7);
    assert_eq!(cfg["enable_submission_delete"], true);
    assert_eq!(cfg["memory_limit"], 128000);
    for key in ["REDIS_PASSWORD", "POSTGRES_PASSWORD", "RAILS_ENV"] {
        assert_eq!(
            log.matches(&format!("\"ignored\":\"{key}\"")).count(),
            1,
            "{log}"
        );
    }
    assert!(
        !log.contains("secret"),
        "values of ignored keys are not logged"
    );
}

#[test]
fn additional_files_stay_in_box_and_multi_file_programs_run() {
    let s = Server::start(&[], 2);
    // A data file next to the program, for an interpreted and a compiled language.
    let zip = b64(&zip_of(&[("data/in.txt", b"from the zip\n")]));
    for lang in [9001, 9002] {
        let (code, v) = s.post(
            "/submissions?wait=true&fields=status,stdout",
            &json!({"source_code": "cat data/in.txt; ls", "language_id": lang, "additional_files": zip}),
        );
        assert_eq!(code, 201);
        assert_eq!(v["status"]["id"], 3, "{v}");
        assert!(
            v["stdout"].as_str().unwrap().starts_with("from the zip\n"),
            "{v}"
        );
    }
    // Language 89: the zip's compile and run scripts.
    let project = zip_of(&[
        ("compile", b"echo building; cp lib.txt out.txt"),
        ("run", b"cat out.txt; echo \"args: $*\""),
        ("lib.txt", b"library\n"),
    ]);
    let (code, v) = s.post(
        "/submissions?wait=true&fields=status,stdout,compile_output",
        &json!({"language_id": 89, "additional_files": b64(&project), "command_line_arguments": "a b"}),
    );
    assert_eq!(code, 201);
    assert_eq!(v["status"]["id"], 3, "{v}");
    assert_eq!(v["stdout"], "library\nargs: a b\n");
    assert_eq!(v["compile_output"], "building\n");
    // Escapes, symlinks, bombs and garbage are refused before anything runs.
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.add_symlink(
        "link",
        "/etc/shadow",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    let symlink = w.finish().unwrap().into_inner();
    let big = vec![b'x'; 11 << 20];
    for (zip, needle) in [
        (
            zip_of(&[("../../etc/cron.d/x", b"pwn")]),
            "not a relative path",
        ),
        (zip_of(&[("/etc/passwd", b"pwn")]), "not a relative path"),
        (zip_of(&[("a/../../x", b"pwn")]), "not a relative path"),
        (symlink, "not a regular file"),
        (zip_of(&[("big", &big)]), "extracts to more than 10240 KB"),
        (b"not a zip".to_vec(), "not a valid zip"),
    ] {
        let (code, v) = s.post(
            "/submissions",
            &json!({"source_code": "ls", "language_id": 9001, "additional_files": b64(&zip)}),
        );
        assert_eq!(code, 422, "{v}");
        assert!(
            v["additional_files"][0].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
    }
}

/// A loopback receiver: the first callback attempt gets no answer (the server's timeout),
/// the second gets 200.
#[test]
fn callbacks_are_retried_after_a_timeout() {
    let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let got = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        let (first, _) = receiver.accept().unwrap();
        let started = Instant::now();
        let mut second = receiver.accept().unwrap().0;
        let waited = started.elapsed();
        drop(first);
        second
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = second.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    bodies.push((head.to_string(), body.to_string()));
                    break;
                }
            }
        }
        second
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        (bodies, waited)
    });
    let s = Server::start(
        &[
            ("CALLBACKS_TIMEOUT", "1"),
            ("CALLBACKS_MAX_TRIES", "3"),
            ("CALLBACKS_ALLOWED_HOSTS", "127.0.0.0/8"),
        ],
        1,
    );
    let (code, v) = s.post(
        "/submissions",
        &json!({"source_code": "echo called", "language_id": 9001, "callback_url": "http://10.9.9.9/hook"}),
    );
    assert_eq!(code, 422, "outside the allow-list: {v}");
    let token = s.submit(&json!({"source_code": "echo called", "language_id": 9001,
                                 "callback_url": format!("http://127.0.0.1:{port}/hook")}));
    let (bodies, waited) = got.join().unwrap();
    assert!(
        waited >= Duration::from_millis(900),
        "the first try timed out after ~1 s: {waited:?}"
    );
    let (head, body) = &bodies[0];
    assert!(head.starts_with("PUT /hook HTTP/1.1"), "{head}");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["token"], token.as_str());
    assert_eq!(v["status"]["id"], 3);
    assert_eq!(
        unb64(&v["stdout"]),
        b"called\n",
        "base64 as Judge0 sends it"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.log(1).contains("\"delivered\":true") {
        assert!(Instant::now() < deadline, "{}", s.log(1));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.log(1).contains("\"attempts\":2"), "{}", s.log(1));
}

/// kill -9 with 50 submissions queued or running, restart: each finishes exactly once.
#[test]
fn kill_9_with_50_queued_then_restart_finishes_each_once() {
    let mut s = Server::start(&[("MAX_SUBMISSION_BATCH_SIZE", "25")], 1);
    let body = json!({"source_code": "sleep 0.05; echo done", "language_id": 9001, "expected_output": "done"});
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let batch: Vec<Value> = (0..25).map(|_| body.clone()).collect();
        let (code, v) = s.post("/submissions/batch", &json!({"submissions": batch}));
        assert_eq!(code, 201, "{v}");
        tokens.extend(
            v.as_array()
                .unwrap()
                .iter()
                .map(|t| t["token"].as_str().unwrap().to_string()),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.log(1).contains("\"event\":\"finished\"") {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    s.kill9();
    s.spawn();
    assert!(s.log(2).contains("\"requeued\":"), "{}", s.log(2));
    for t in &tokens {
        assert_eq!(s.wait(t, "stdout")["status"]["id"], 3, "{t}");
    }
    let mut finished: HashMap<String, usize> = HashMap::new();
    for run in 1..=s.runs() {
        for line in s.log(run).lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["event"] == "finished" {
                assert_eq!(v["stored"], true, "{line}");
                *finished
                    .entry(v["token"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    let before = s.log(1).matches("\"event\":\"finished\"").count();
    assert!(before < 50, "the kill came before the queue was empty");
    for t in &tokens {
        assert_eq!(
            finished.get(t),
            Some(&1),
            "{t} finished {:?} times",
            finished.get(t)
        );
    }
}

/// SIGTERM: no new connections, the running submission finishes, exit 0.
#[test]
fn sigterm_finishes_running_work_and_exits_0() {
    let mut s = Server::start(&[], 1);
    let running = s.submit(&json!({"source_code": "sleep 1; echo finished", "language_id": 9001}));
    let queued = s.submit(&json!({"source_code": "echo later", "language_id": 9001}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.get(&format!("/submissions/{running}?fields=status")).1["status"]["id"] != 2 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(s.pid(), libc::SIGTERM) }, 0);
    let started = Instant::now();
    let mut child = s.child.take().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", s.log(1));
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        TcpStream::connect(("127.0.0.1", s.port)).is_err(),
        "no longer listening"
    );
    s.spawn();
    let (_, v) = s.get(&format!("/submissions/{running}?fields=status,stdout"));
    assert_eq!(
        (v["status"]["id"].as_u64(), v["stdout"].as_str()),
        (Some(3), Some("finished\n")),
        "{v}"
    );
    assert_eq!(
        s.wait(&queued, "stdout")["stdout"],
        "later\n",
        "the queued one runs after the restart"
    );
}

#[test]
fn hostile_clients_get_clear_errors() {
    let s = Server::start(
        &[
            ("MAX_REQUEST_SIZE", "65536"),
            ("ALLOW_ENABLE_NETWORK", "false"),
        ],
        1,
    );
    for body in [&b"{not json"[..], b"\xff\xfe", b"[1,2", b"{\"a\":"] {
        let (code, out) = request(s.port, "POST", "/submissions", &[], Some(body)).unwrap();
        assert_eq!(code, 400, "{out}");
        assert!(out.contains("malformed JSON"), "{out}");
    }
    for body in ["[]", "42", "\"x\"", "null"] {
        let (code, _) =
            request(s.port, "POST", "/submissions", &[], Some(body.as_bytes())).unwrap();
        assert_eq!(code, 422, "{body}");
    }
    let (code, v) = s.post(
        "/submissions",
        &json!({"source_code": "x", "language_id": 9001, "enable_network": true}),
    );
    assert_eq!(
        (code, v["enable_network"][0].as_str()),
        (422, Some("enabling network is not allowed"))
    );
    let weird = json!({"source_code": ["x"], "language_id": {"a": 1}, "stdin": 5, "cpu_time_limit": [], "number_of_runs": true});
    assert_eq!(s.post("/submissions", &weird).0, 422);
    let big = json!({"source_code": "x".repeat(70_000), "language_id": 9001});
    let (code, v) = s.post("/submissions", &big);
    assert_eq!(code, 413, "{v}");
    // Tokens are only looked up: nothing on the host is reachable through them.
    for path in [
        "/submissions/..%2F..%2Fetc%2Fpasswd",
        "/submissions/%00",
        "/submissions/batch?tokens=../../x,/etc",
    ] {
        let (code, _) = s.get(path);
        assert!(code == 404 || code == 200, "{path}: {code}");
    }
    // A client that never finishes its headers is cut off.
    let mut slow = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    slow.write_all(b"GET /about HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "closed after the header timeout"
    );
    assert_eq!(s.get("/version").0, 200, "still answering");
}

/// Submits every body as one batch and waits for each; returns them with `fields`.
fn judge_all(s: &Server, bodies: &[Value], fields: &str) -> Vec<Value> {
    let (code, v) = s.post("/submissions/batch", &json!({ "submissions": bodies }));
    assert_eq!(code, 201, "{v}");
    let tokens: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap().to_string())
        .collect();
    tokens.iter().map(|t| s.wait(t, fields)).collect()
}

/// Judge0's isolate options are applied: `-k` stack_limit (RLIMIT_STACK), `-x`
/// cpu_extra_time, the memory limit as `-m` (each process's RLIMIT_AS) with
/// enable_per_process_and_thread_memory_limit else as `--cg-mem` (the whole tree), and the
/// CPU limit per process with enable_per_process_and_thread_time_limit else on the tree.
#[test]
fn stack_extra_time_and_per_process_limits_are_applied() {
    let s = Server::start(&[], 2);
    let sh = |src: &str, extra: Value| {
        let mut body = json!({"source_code": src, "language_id": 9001});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let per_mem =
        json!({"memory_limit": 64000, "enable_per_process_and_thread_memory_limit": true});
    let tree_mem = json!({"memory_limit": 64000});
    let two_holds = "/probes/hold 40 500 & /probes/hold 40 500; r=$?; wait $! && exit $r";
    let per_cpu = json!({"cpu_time_limit": 1, "cpu_extra_time": 0,
        "enable_per_process_and_thread_time_limit": true});
    let tree_cpu = json!({"cpu_time_limit": 1, "cpu_extra_time": 0});
    let address_space = "grep 'Max address space' /proc/self/limits";
    let bodies = vec![
        sh("ulimit -s", json!({"stack_limit": 12345})),
        sh("ulimit -s", json!({"stack_limit": 0})),
        sh(address_space, per_mem.clone()),
        sh(address_space, tree_mem.clone()),
        sh("exec /probes/hold 100 0", per_mem.clone()),
        sh(two_holds, per_mem),
        sh(two_holds, tree_mem),
        sh("exec /probes/burn 0.6 2", per_cpu.clone()),
        sh("exec /probes/burn 0.6 2", tree_cpu),
        sh(
            "exec /probes/burn 5",
            json!({"cpu_time_limit": 0.5, "cpu_extra_time": 0,
                "enable_per_process_and_thread_time_limit": true}),
        ),
        sh(
            "exec /probes/burn 0.8",
            json!({"cpu_time_limit": 0.5, "cpu_extra_time": 1.5}),
        ),
        sh(
            "exec /probes/burn 0.8",
            json!({"cpu_time_limit": 0.5, "cpu_extra_time": 0}),
        ),
    ];
    let r = judge_all(
        &s,
        &bodies,
        "stdout,stderr,message,time,judgebox_verdict,judgebox_enforcement",
    );
    let out = |i: usize| r[i]["stdout"].as_str().unwrap_or("").to_string();
    let status = |i: usize| r[i]["status"]["id"].as_u64().unwrap();
    assert_eq!((status(0), out(0).as_str()), (3, "12345\n"), "{}", r[0]);
    assert_eq!((status(1), out(1).as_str()), (3, "unlimited\n"), "{}", r[1]);
    let limit_line: Vec<String> = out(2).split_whitespace().map(String::from).collect();
    assert_eq!(
        limit_line[3..6],
        ["65536000", "65536000", "bytes"],
        "{}",
        r[2]
    );
    assert_eq!(r[2]["judgebox_enforcement"]["memory"], "rlimit", "{}", r[2]);
    assert!(out(3).contains("unlimited"), "{}", r[3]);
    // Over the per-process limit the allocation fails: a runtime error, as under isolate -m.
    assert_eq!(status(4), 11, "{}", r[4]);
    assert!(
        r[4]["stderr"].as_str().unwrap().contains("malloc"),
        "{}",
        r[4]
    );
    // 2 x 40 MiB at once: each process is under 64000 KB, the tree is not.
    assert_eq!((status(5), out(5).as_str()), (3, "ok\nok\n"), "{}", r[5]);
    assert_eq!(status(6), 12, "{}", r[6]);
    assert_eq!(r[6]["message"], "Memory limit exceeded", "{}", r[6]);
    // 2 x 0.6 s of CPU: each process is under 1 s, the tree is not.
    assert_eq!((status(7), out(7).as_str()), (3, "done\n"), "{}", r[7]);
    assert_eq!(status(8), 5, "{}", r[8]);
    assert_eq!(status(9), 5, "{}", r[9]);
    assert_eq!(r[9]["message"], "Time limit exceeded", "{}", r[9]);
    // The extra time lets the program finish, past its limit: still a time limit.
    assert_eq!((status(10), out(10).as_str()), (5, "done\n"), "{}", r[10]);
    assert_eq!((status(11), out(11).as_str()), (5, ""), "{}", r[11]);
}

/// enable_network means loopback only, in the run's own network namespace; without it no
/// interface is up, also after a run with the network on the same worker (pooled
/// namespaces never see `lo` up).
#[test]
fn enable_network_is_loopback_only_and_never_leaks() {
    let s = Server::start(&[], 1);
    let net = |on: bool| json!({"source_code": "exec /probes/net", "language_id": 9001, "enable_network": on});
    let bodies = vec![
        net(false),
        net(true),
        net(false),
        json!({"source_code": "exec /probes/net", "language_id": 9001, "enable_network": true,
            "number_of_runs": 2}),
        net(false),
    ];
    let r = judge_all(&s, &bodies, "stdout,enable_network");
    for i in [0, 2, 4] {
        let out = r[i]["stdout"].as_str().unwrap();
        assert_eq!(r[i]["status"]["id"], 11, "{}", r[i]);
        assert!(out.starts_with("up:\n"), "no interface is up: {}", r[i]);
        assert!(out.contains("errno="), "{}", r[i]);
    }
    for i in [1, 3] {
        assert_eq!(r[i]["status"]["id"], 3, "{}", r[i]);
        assert_eq!(r[i]["stdout"], "up: lo\nloopback ok\n", "{}", r[i]);
    }
    let s = Server::start(&[("ALLOW_ENABLE_NETWORK", "false")], 1);
    let (code, v) = s.post("/submissions", &net(true));
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["enable_network"][0], "enabling network is not allowed");
}

fn images_present(names: &[&str]) -> bool {
    let out = std::process::Command::new(common::BIN)
        .args(["lang", "ls", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let present = names.iter().all(|n| {
        v.as_array()
            .unwrap()
            .iter()
            .any(|l| l["name"] == *n && l["present"] == true)
    });
    if !present {
        let required = std::env::var("JUDGEBOX_REQUIRE_IMAGES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "images for {names:?} are missing: run scripts/build-images.sh"
        );
        eprintln!("skipping: images for {names:?} are missing (run scripts/build-images.sh)");
    }
    present
}

/// Python and C++ in their real images, through the API.
#[test]
fn python_and_cpp_in_their_images() {
    if !images_present(&["python3", "cpp"]) {
        return;
    }
    let s = Server::start_images(&[], 2);
    let py = "a, b = map(int, input().split())\nprint(a + b)\n";
    let cpp = "#include <iostream>\nint main(int c, char** v){long a,b;std::cin>>a>>b;std::cout<<a+b<<' '<<c<<std::endl;}\n";
    let cases = [
        (
            json!({"source_code": py, "language_id": 71, "stdin": "1 2", "expected_output": "3"}),
            3,
        ),
        (
            json!({"source_code": py, "language_id": 71, "stdin": "1 2", "expected_output": "4"}),
            4,
        ),
        (json!({"source_code": "print(1/0)", "language_id": 71}), 11),
        (
            json!({"source_code": cpp, "language_id": 54, "stdin": "20 22", "expected_output": "42 3",
                "compiler_options": "-O1", "command_line_arguments": "x y"}),
            3,
        ),
        (
            json!({"source_code": "int main() { return }", "language_id": 54}),
            6,
        ),
        (
            json!({"source_code": "int main(){int*p=0;return *p;}", "language_id": 50}),
            7,
        ),
    ];
    for (body, want) in cases {
        let (code, v) = s.post("/submissions?wait=true&fields=*", &body);
        assert_eq!(code, 201, "{v}");
        assert_eq!(v["status"]["id"], want, "{body} -> {v}");
    }
    let (_, langs) = s.get("/languages");
    let names: Vec<&str> = langs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Python (3.11.2)") && names.contains(&"Multi-file program"),
        "{names:?}"
    );
}

fn hs256(secret: &[u8], claims: &Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let h = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let p = b64.encode(claims.to_string());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let sig = ring::hmac::sign(&key, format!("{h}.{p}").as_bytes());
    format!("{h}.{p}.{}", b64.encode(sig.as_ref()))
}

/// Short-lived bearer JWTs stand in for the static AUTHN token: signature, expiry,
/// audience and the revocation list are checked.
#[test]
fn bearer_jwts_for_browsers() {
    let dir = tempfile::tempdir().unwrap();
    let revoked = dir.path().join("revoked.txt");
    std::fs::write(&revoked, "revoked-1\n").unwrap();
    let revoked_s = revoked.display().to_string();
    let s = Server::start(
        &[
            ("AUTHN_TOKEN", "static"),
            ("JWT_HS256_SECRET", "backend-secret"),
            ("JWT_AUDIENCE", "judgebox"),
            ("JWT_REVOKED_FILE", &revoked_s),
        ],
        1,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let bearer = |claims: Value, secret: &[u8]| format!("Bearer {}", hs256(secret, &claims));
    let good = bearer(
        json!({"exp": now + 60, "aud": "judgebox", "jti": "ok-1"}),
        b"backend-secret",
    );
    assert_eq!(
        s.call("GET", "/languages", &[("Authorization", &good)], None)
            .0,
        200
    );
    assert_eq!(
        s.call("GET", "/languages", &[("X-Auth-Token", "static")], None)
            .0,
        200
    );
    for (why, token) in [
        (
            "expired",
            bearer(
                json!({"exp": now - 1, "aud": "judgebox"}),
                b"backend-secret",
            ),
        ),
        (
            "audience",
            bearer(json!({"exp": now + 60, "aud": "other"}), b"backend-secret"),
        ),
        (
            "revoked",
            bearer(
                json!({"exp": now + 60, "aud": "judgebox", "jti": "revoked-1"}),
                b"backend-secret",
            ),
        ),
        (
            "signature",
            bearer(json!({"exp": now + 60, "aud": "judgebox"}), b"guess"),
        ),
        ("garbage", "Bearer x.y.z".to_string()),
    ] {
        assert_eq!(
            s.call("GET", "/languages", &[("Authorization", &token)], None)
                .0,
            401,
            "{why}"
        );
    }
    assert_eq!(
        s.call("POST", "/authorize", &[("Authorization", &good)], None)
            .0,
        403,
        "a JWT does not grant AUTHZ"
    );
}
