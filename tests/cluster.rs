//! `judgebox serve` on PostgreSQL as separate machines run it: the database, one API
//! process and two worker processes, each in a network namespace of its own with a veth
//! to the database's. 500 submissions of mixed verdicts finish exactly once with the same
//! results as the SQLite backend while a worker is killed with -9, a worker's link is cut
//! for longer than the lease, and PostgreSQL restarts. Also: schema versions are checked.

mod common;
mod server_common;

use serde_json::{json, Value};
use server_common::pg::{bin_dir, TempPostgres};
use server_common::*;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

const LEASE: &str = "2";
const N: usize = 500;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Network namespaces this test made (deleted on drop, with their veths).
struct Nets {
    names: Vec<String>,
}

impl Nets {
    fn add(&mut self, name: &str) {
        self.names.push(name.to_string());
        ip(&["netns", "add", name]);
        ip(&["-n", name, "link", "set", "lo", "up"]);
    }

    /// A veth from the database's namespace `db` to `node`'s: 10.231.K.1 and .2.
    fn link(&self, db: &str, node: &str, k: usize, dev: &str) {
        let (a, b) = (format!("{dev}a"), format!("{dev}b"));
        ip(&[
            "-n", db, "link", "add", &a, "type", "veth", "peer", "name", &b, "netns", node,
        ]);
        ip(&[
            "-n",
            db,
            "addr",
            "add",
            &format!("10.231.{k}.1/24"),
            "dev",
            &a,
        ]);
        ip(&[
            "-n",
            node,
            "addr",
            "add",
            &format!("10.231.{k}.2/24"),
            "dev",
            &b,
        ]);
        ip(&["-n", db, "link", "set", &a, "up"]);
        ip(&["-n", node, "link", "set", &b, "up"]);
    }
}

impl Drop for Nets {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// Runs `f` on this thread inside network namespace `name` (processes it starts stay there).
fn in_netns<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let home = File::open("/proc/thread-self/ns/net").unwrap();
    let target = File::open(format!("/run/netns/{name}")).unwrap();
    // SAFETY: setns(2) on a descriptor we own; it changes only this thread's namespace.
    let entered = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(entered, 0, "enter {name}");
    let out = f();
    // SAFETY: as above, back to the namespace this thread started in.
    let back = unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(back, 0, "leave {name}");
    out
}

/// Whether the i-th submission takes 3 s (long enough to be caught running).
fn slow(i: usize) -> bool {
    i % 50 == 25
}

/// The i-th submission: accepted, wrong answer, runtime error, compilation error, signal,
/// and now and then a time limit or a slow one.
fn body(i: usize) -> Value {
    if slow(i) {
        return json!({"source_code": format!("sleep 3; echo {i}"), "language_id": 9001});
    }
    if i % 50 == 49 {
        return json!({"source_code": "while :; do :; done", "language_id": 9001, "cpu_time_limit": 0.2});
    }
    match i % 5 {
        0 => {
            json!({"source_code": format!("echo {i}"), "language_id": 9001, "expected_output": i.to_string()})
        }
        1 => {
            json!({"source_code": format!("echo {i}"), "language_id": 9001, "expected_output": "no"})
        }
        2 => json!({"source_code": format!("echo {i}; exit 3"), "language_id": 9001}),
        3 => json!({"source_code": "if then fi (", "language_id": 9002}),
        _ => json!({"source_code": "kill -SEGV $$", "language_id": 9001}),
    }
}

/// Creates the N submissions in batches of 20; returns their tokens in order.
fn submit_all(s: &Server) -> Vec<String> {
    let bodies: Vec<Value> = (0..N).map(body).collect();
    s.submit_batches(&bodies)
}

/// (status id, stdout) of each token once all are finished (a failed poll, as while the
/// database restarts, is polled again).
fn results(s: &Server, tokens: &[String]) -> Vec<(u64, String)> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut out = Vec::new();
    for chunk in tokens.chunks(20) {
        let path = format!(
            "/submissions/batch?fields=status,stdout&tokens={}",
            chunk.join(",")
        );
        loop {
            let (code, v) = s.get(&path);
            let subs = v["submissions"].as_array().cloned().unwrap_or_default();
            if code == 200 && subs.iter().all(|x| x["status"]["id"].as_u64() > Some(2)) {
                out.extend(subs.iter().map(|x| {
                    let stdout = x["stdout"].as_str().unwrap_or_default().to_string();
                    (x["status"]["id"].as_u64().unwrap(), stdout)
                }));
                break;
            }
            assert!(Instant::now() < deadline, "not finished: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    out
}

fn finished_count(s: &Server, tokens: &[String]) -> usize {
    let mut done = 0;
    for chunk in tokens.chunks(20) {
        let path = format!(
            "/submissions/batch?fields=status&tokens={}",
            chunk.join(",")
        );
        let (_, v) = s.get(&path);
        done += v["submissions"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|x| x["status"]["id"].as_u64() > Some(2))
                .count()
        });
    }
    done
}

/// Waits until at least `n` of `tokens` finished.
fn until_finished(s: &Server, tokens: &[String], n: usize) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while finished_count(s, tokens) < n {
        assert!(Instant::now() < deadline, "fewer than {n} finished");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The submission worker process `pid` judges now, per /workers.
fn busy_with(s: &Server, pid: i32) -> Option<String> {
    let (_, v) = s.get("/workers");
    v[0]["workers"]
        .as_array()?
        .iter()
        .find(|w| w["pid"] == pid && w["state"] == "busy")
        .and_then(|w| w["token"].as_str().map(String::from))
}

/// Waits until worker `pid` judges one of the slow submissions; returns it.
fn wait_busy(s: &Server, pid: i32, tokens: &[String]) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let found = busy_with(s, pid);
        if let Some(t) = found.filter(|t| tokens.iter().position(|x| x == t).is_some_and(slow)) {
            return t;
        }
        assert!(Instant::now() < deadline, "worker {pid} never busy");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lease owner id of worker process `pid`, per /workers.
fn node_of(s: &Server, pid: i32) -> String {
    let (_, v) = s.get("/workers");
    let w = v[0]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["pid"] == pid)
        .unwrap_or_else(|| panic!("no worker {pid}: {v}"))
        .clone();
    w["id"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// The submission the process `node` holds the lease of, by the database.
fn held_by(c: &Cluster, node: &str) -> Option<String> {
    c.pg.client(&c.db)
        .query_opt(
            "SELECT token FROM submissions WHERE status_id = 2 AND lease_owner = $1",
            &[&node],
        )
        .unwrap()
        .map(|r| r.get(0))
}

struct Cluster {
    api: Server,
    workers: Vec<Server>,
    db: String,
    pg: TempPostgres,
    nets: Nets,
}

fn start_cluster() -> Cluster {
    let tag = std::process::id() % 100_000;
    let mut nets = Nets { names: Vec::new() };
    let [db, api, w1, w2] = ["db", "api", "w1", "w2"].map(|n| format!("jbc{tag}{n}"));
    for n in [&db, &api, &w1, &w2] {
        nets.add(n);
    }
    for (k, node) in [&api, &w1, &w2].into_iter().enumerate() {
        nets.link(&db, node, k + 1, &format!("jb{tag}{k}"));
    }
    let pg = TempPostgres::start("*", Some(&db));
    let name = pg.create_db();
    // Migrated over the unix socket, from this (the host's) namespace.
    migrate(&pg.conninfo(&pg.dir.path().display().to_string(), &name));
    let backend = |k: usize| {
        Some(vec![
            "--database".to_string(),
            pg.conninfo(&format!("10.231.{k}.1"), &name),
            "--lease".into(),
            LEASE.into(),
        ])
    };
    let env = [("MAX_QUEUE_SIZE", "1000")];
    let api_server = in_netns(&api, || {
        Server::start_node(&env, 1, backend(1), &["--role", "api"])
    });
    let workers = [&w1, &w2]
        .iter()
        .enumerate()
        .map(|(k, ns)| {
            in_netns(ns, || {
                Server::start_node(&env, 1, backend(k + 2), &["--role", "worker"])
            })
        })
        .collect();
    Cluster {
        api: api_server,
        workers,
        db: name,
        pg,
        nets,
    }
}

#[test]
fn two_workers_one_api_on_postgres_finish_each_once_through_kill_cut_and_restart() {
    if bin_dir().is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL is not installed (scripts/install-deps.sh)"
        );
        eprintln!("skipped: PostgreSQL is not installed");
        return;
    }
    // The reference: the same submissions on the embedded backend.
    let expected = {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("reference.db").display().to_string();
        let s = Server::start_node(
            &[("MAX_QUEUE_SIZE", "1000")],
            2,
            Some(vec!["--db".into(), db]),
            &[],
        );
        let tokens = submit_all(&s);
        results(&s, &tokens)
    };
    let mut c = start_cluster();
    let api_ns = c.nets.names[1].clone();
    let w2 = c.workers[1].pid();
    let http = |f: &dyn Fn(&Server) -> Value| in_netns(&api_ns, || f(&c.api));
    let _ = http(&|s| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, v) = s.get("/workers");
            if v[0]["available"] == 2 {
                return v;
            }
            assert!(Instant::now() < deadline, "two workers on two hosts: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // wait=true on the API node returns when a worker on another host finishes.
    let _ = http(&|s| {
        let (code, v) = s.post(
            "/submissions?wait=true",
            &json!({"source_code": "echo hi", "language_id": 9001}),
        );
        assert_eq!((code, v["stdout"].as_str()), (201, Some("hi\n")), "{v}");
        json!(null)
    });
    let tokens: Vec<String> = in_netns(&api_ns, || submit_all(&c.api));
    // kill -9 worker 1 while it judges; its submission finishes on worker 2, once.
    let w1_ns = c.nets.names[2].clone();
    let killed = loop {
        let pid = c.workers[0].pid();
        let node = in_netns(&api_ns, || {
            until_finished(&c.api, &tokens, 60);
            wait_busy(&c.api, pid, &tokens);
            node_of(&c.api, pid)
        });
        c.workers[0].kill9();
        if let Some(t) = held_by(&c, &node) {
            break t;
        }
        // It was between two submissions after all: again.
        in_netns(&w1_ns, || c.workers[0].spawn());
    };
    // Worker 1 comes back (a new process) only once its submission finished elsewhere.
    in_netns(&api_ns, || {
        results(&c.api, std::slice::from_ref(&killed));
        until_finished(&c.api, &tokens, 120);
    });
    in_netns(&w1_ns, || c.workers[0].spawn());
    // Cut worker 2's link for three leases while it judges: same.
    let cut_dev = format!("jb{}2a", std::process::id() % 100_000);
    let db_ns = c.nets.names[0].clone();
    let cut = loop {
        let node = in_netns(&api_ns, || {
            wait_busy(&c.api, w2, &tokens);
            node_of(&c.api, w2)
        });
        ip(&["-n", &db_ns, "link", "set", &cut_dev, "down"]);
        let held = held_by(&c, &node);
        if held.is_some() {
            std::thread::sleep(Duration::from_secs(6));
        }
        ip(&["-n", &db_ns, "link", "set", &cut_dev, "up"]);
        if let Some(t) = held {
            break t;
        }
    };
    // Restart PostgreSQL under load.
    in_netns(&api_ns, || until_finished(&c.api, &tokens, 300));
    c.pg.ctl(&["restart", "-m", "fast", "-w", "-t", "60"]);
    let got = in_netns(&api_ns, || results(&c.api, &tokens));
    assert_eq!(got, expected, "the same results as the SQLite backend");
    let mut stored: HashMap<String, Vec<usize>> = HashMap::new();
    for (k, w) in c.workers.iter().enumerate() {
        for (token, ok) in w.finished_events() {
            if ok {
                stored.entry(token).or_default().push(k);
            }
        }
    }
    for t in &tokens {
        assert_eq!(
            stored.get(t).map(Vec::len),
            Some(1),
            "{t}: {:?}",
            stored.get(t)
        );
    }
    let story = |t: &str| -> String {
        let servers = [&c.api, &c.workers[0], &c.workers[1]];
        let mut lines = Vec::new();
        for (k, s) in servers.iter().enumerate() {
            for run in 1..=s.runs() {
                let log = s.log(run);
                lines.extend(
                    log.lines()
                        .filter(|l| {
                            l.contains(t)
                                || l.contains("lease")
                                || l.contains("store_error")
                                || l.contains("requeued")
                        })
                        .map(|l| format!("{k}/{run}: {l}")),
                );
            }
        }
        lines.join("\n")
    };
    assert_eq!(
        stored[&killed],
        [1],
        "the killed worker's submission, on worker 2:\n{}",
        story(&killed)
    );
    assert_eq!(
        stored[&cut],
        [0],
        "the cut worker's submission, on worker 1:\n{}",
        story(&cut)
    );
    let claims: i32 =
        c.pg.client(&c.db)
            .query_one("SELECT max(claims) FROM submissions", &[])
            .unwrap()
            .get(0);
    assert!(claims >= 2, "requeued submissions were claimed again");
}

#[test]
fn schema_versions_are_checked() {
    if bin_dir().is_none() {
        return;
    }
    let pg = TempPostgres::start("127.0.0.1", None);
    let name = pg.create_db();
    let url = pg.conninfo("127.0.0.1", &name);
    let serve = |extra: &[&str]| {
        let out = Command::new(common::BIN)
            .args(["serve", "--listen", "127.0.0.1:1", "--database", &url])
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        (out.status.success(), text)
    };
    let (ok, text) = serve(&["--rootfs", "/nonexistent"]);
    assert!(!ok && text.contains("--migrate"), "not migrated: {text}");
    assert!(migrate(&url).contains("from version 0 to 2"));
    assert!(migrate(&url).contains("up to date (version 2)"));
    let mut c = pg.client(&name);
    c.batch_execute("INSERT INTO judgebox_schema (version) VALUES (99)")
        .unwrap();
    let (ok, text) = serve(&["--migrate"]);
    assert!(!ok && text.contains("version 99, newer than"), "{text}");
    let (ok, text) = serve(&["--rootfs", "/nonexistent"]);
    assert!(!ok && text.contains("upgrade judgebox"), "{text}");
}

/// A worker whose COMMIT of a result went through but whose connection was lost before the
/// answer (PostgreSQL restarting, a cut link) retries with the same stamp: the retry must
/// recognise its own result as stored, and nothing else may pass for it.
#[test]
fn a_finish_retried_after_its_commit_landed_unseen_counts_as_stored() {
    use judgebox::server::postgres::{migrate, Postgres};
    use judgebox::server::store::{Lease, Outcome, Request, Store, Submission, IN_QUEUE};
    if bin_dir().is_none() {
        return;
    }
    let pg = TempPostgres::start("127.0.0.1", None);
    let name = pg.create_db();
    let url = pg.conninfo("127.0.0.1", &name);
    migrate(&url).unwrap();
    let store = Postgres::open(&url, 2).unwrap();
    let submission = |token: &str| Submission {
        token: token.into(),
        request: Request {
            language_id: 71,
            ..Request::default()
        },
        status_id: IN_QUEUE,
        created_at: 1,
        started_at: None,
        finished_at: None,
        outcome: None,
    };
    store.create(&[submission("landed")]).unwrap();
    let lease = Lease {
        owner: "worker-a".into(),
        ms: 60_000,
    };
    let claimed = store.claim_next(&lease, 2).unwrap().expect("claimed");
    assert_eq!(claimed.token, "landed");
    let outcome = Outcome {
        status_id: 3,
        stdout: Some(b"4\n".to_vec()),
        time: Some(0.01),
        ..Outcome::default()
    };
    assert!(store.finish("landed", "worker-a", &outcome, 1000).unwrap());
    // The retry of that very write: stored.
    assert!(store.finish("landed", "worker-a", &outcome, 1000).unwrap());
    // Anything else is not: another stamp, another result, another worker.
    assert!(!store.finish("landed", "worker-a", &outcome, 1001).unwrap());
    let other = Outcome {
        stdout: Some(b"5\n".to_vec()),
        ..outcome.clone()
    };
    assert!(!store.finish("landed", "worker-a", &other, 1000).unwrap());
    assert!(!store.finish("landed", "worker-b", &other, 1002).unwrap());
    let stored = store.fetch("landed").unwrap().expect("stored");
    assert_eq!((stored.status_id, stored.finished_at), (3, Some(1000)));
    assert_eq!(stored.outcome, Some(outcome));
}
