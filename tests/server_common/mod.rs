//! Helpers for the `judgebox serve` tests: start the server binary on a free loopback
//! port with a temporary database (SQLite, or a new PostgreSQL database when
//! JUDGEBOX_TEST_BACKEND=postgres), with the busybox test rootfs and `sh` test languages,
//! talk HTTP to it, and kill it at the end.
#![allow(dead_code)]

pub mod pg;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Interpreted: `/bin/sh main.sh`.
pub const SH: &str = r#"
name = "sh"
display = "Shell (busybox)"
judge0_ids = [9001]
image = "judgebox-test/none:1"
source_file = "main.sh"
[run]
command = ["/bin/sh", "main.sh", "{args}"]
time = 2.0
wall_time = 5.0
memory = "64M"
pids = 16
output = "1M"
"#;

/// "Compiled": a syntax check that copies the script to an artifact.
pub const SHC: &str = r#"
name = "shc"
display = "Shell (busybox, checked)"
judge0_ids = [9002]
image = "judgebox-test/none:1"
source_file = "main.sh"
artifacts = ["prog"]
[compile]
command = ["/bin/sh", "-c", "sh -n main.sh && cp main.sh prog && chmod 755 prog && echo compiled \"$@\"", "cc", "{compiler_options}"]
time = 2.0
wall_time = 5.0
memory = "64M"
pids = 8
output = "64K"
[run]
command = ["/bin/sh", "prog", "{args}"]
time = 2.0
wall_time = 5.0
memory = "64M"
pids = 16
output = "1M"
"#;

/// A language whose seccomp profile does not exist: every run is an internal error.
pub const BROKEN: &str = r#"
name = "broken"
display = "Broken (no seccomp profile)"
judge0_ids = [9003]
image = "judgebox-test/none:1"
source_file = "main.sh"
seccomp = "/nonexistent/judgebox-test-profile.json"
[run]
command = ["/bin/sh", "main.sh"]
time = 2.0
wall_time = 5.0
memory = "64M"
pids = 16
output = "1M"
"#;

pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    runs: u32,
    env: Vec<(String, String)>,
    args: Vec<String>,
    /// `--db PATH` or `--database URL --lease 2`.
    backend: Vec<String>,
    /// Whether it answers HTTP (a `--role worker` process does not).
    http: bool,
}

/// The PostgreSQL server every test of this process shares (JUDGEBOX_TEST_BACKEND=postgres).
static SHARED_PG: std::sync::OnceLock<pg::TempPostgres> = std::sync::OnceLock::new();

extern "C" fn stop_shared_pg() {
    if let Some(pg) = SHARED_PG.get() {
        pg.stop_now();
    }
}

/// Whether the tests run against PostgreSQL (JUDGEBOX_TEST_BACKEND=postgres).
pub fn postgres_backend() -> bool {
    std::env::var("JUDGEBOX_TEST_BACKEND").as_deref() == Ok("postgres")
}

fn shared_pg() -> &'static pg::TempPostgres {
    SHARED_PG.get_or_init(|| {
        let pg = pg::TempPostgres::start("127.0.0.1", None);
        // SAFETY: registers a plain function, run once at process exit (after the tests).
        unsafe { libc::atexit(stop_shared_pg) };
        pg
    })
}

/// Runs `judgebox serve --database URL --migrate` and checks it succeeded.
pub fn migrate(url: &str) -> String {
    let out = Command::new(crate::common::BIN)
        .args(["serve", "--database", url, "--migrate"])
        .output()
        .expect("run judgebox serve --migrate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "--migrate: {text}");
    text
}

/// The store arguments of a new server: a fresh PostgreSQL database (migrated) or `db`.
fn backend(db: &Path) -> Vec<String> {
    if !postgres_backend() {
        return vec!["--db".into(), db.display().to_string()];
    }
    let pg = shared_pg();
    let url = pg.conninfo("127.0.0.1", &pg.create_db());
    migrate(&url);
    vec!["--database".into(), url, "--lease".into(), "2".into()]
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// A server on the test rootfs with the test languages.
    pub fn start(env: &[(&str, &str)], workers: usize) -> Server {
        Server::start_node(env, workers, None, &[])
    }

    /// As `start`, with these store arguments (default: as `start` chooses) and more
    /// arguments (`--role worker`: ready when it logs `working`, not over HTTP).
    pub fn start_node(
        env: &[(&str, &str)],
        workers: usize,
        backend: Option<Vec<String>>,
        more: &[&str],
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests");
        std::fs::create_dir(&manifests).unwrap();
        for (name, text) in [("sh.toml", SH), ("shc.toml", SHC), ("broken.toml", BROKEN)] {
            std::fs::write(manifests.join(name), text).unwrap();
        }
        let rootfs = crate::common::rootfs().display().to_string();
        let args = vec![
            "--manifests".to_string(),
            manifests.display().to_string(),
            "--rootfs".into(),
            rootfs,
            "--workers".into(),
            workers.to_string(),
        ];
        let args = args.into_iter().chain(more.iter().map(|a| a.to_string()));
        Server::launch(dir, args.collect(), env, backend)
    }

    /// A server on the real images (the shipped manifests, the default store).
    pub fn start_images(env: &[(&str, &str)], workers: usize) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let args = vec!["--workers".to_string(), workers.to_string()];
        Server::launch(dir, args, env, None)
    }

    fn launch(
        dir: tempfile::TempDir,
        args: Vec<String>,
        env: &[(&str, &str)],
        backend_args: Option<Vec<String>>,
    ) -> Server {
        let db = dir.path().join("db/judgebox.db");
        let mut s = Server {
            http: !args
                .windows(2)
                .any(|w| w[0] == "--role" && w[1] == "worker"),
            backend: backend_args.unwrap_or_else(|| backend(&db)),
            child: None,
            port: free_port(),
            db,
            dir,
            runs: 0,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            args,
        };
        s.spawn();
        s
    }

    /// (Re)starts the process on the same port and database; its stderr goes to
    /// `log-N.txt`.
    pub fn spawn(&mut self) {
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs)).unwrap();
        let child = Command::new(crate::common::BIN)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.backend)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start judgebox serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let ready = if self.http {
                self.try_get("/version").is_some()
            } else {
                self.log(self.runs).contains("\"event\":\"working\"")
            };
            if ready {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "judgebox serve exited with {status}: {}",
                    self.log(self.runs)
                );
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!("judgebox serve did not answer: {}", self.log(self.runs));
    }

    pub fn log_path(&self, run: u32) -> PathBuf {
        self.dir.path().join(format!("log-{run}.txt"))
    }

    pub fn log(&self, run: u32) -> String {
        std::fs::read_to_string(self.log_path(run)).unwrap_or_default()
    }

    pub fn runs(&self) -> u32 {
        self.runs
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// kill -9 and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn try_get(&self, path: &str) -> Option<(u16, String)> {
        let r = request(self.port, "GET", path, &[], None);
        r.ok()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let text = body.map(|b| b.to_string());
        let (code, out) = request(
            self.port,
            method,
            path,
            headers,
            text.as_deref().map(str::as_bytes),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let v = serde_json::from_str(&out).unwrap_or(Value::String(out));
        (code, v)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, &[], Some(body))
    }

    /// Creates a submission and returns its token.
    pub fn submit(&self, body: &Value) -> String {
        let (code, v) = self.post("/submissions", body);
        assert_eq!(code, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// Creates `bodies` through `/submissions/batch`, 20 a request; returns the tokens in order.
    pub fn submit_batches(&self, bodies: &[Value]) -> Vec<String> {
        let mut tokens = Vec::new();
        for chunk in bodies.chunks(20) {
            let (code, v) = self.post("/submissions/batch", &json!({ "submissions": chunk }));
            assert_eq!(code, 201, "{v}");
            tokens.extend(
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["token"].as_str().unwrap().to_string()),
            );
        }
        tokens
    }

    /// Every `finished` event of every run of this process: (token, stored).
    pub fn finished_events(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for run in 1..=self.runs {
            for line in self.log(run).lines() {
                let Ok(v) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                if v["event"] == "finished" {
                    let token = v["token"].as_str().unwrap_or_default().to_string();
                    out.push((token, v["stored"] == true));
                }
            }
        }
        out
    }

    /// Polls until the submission is finished (status > 2); returns it with `fields`.
    pub fn wait(&self, token: &str, fields: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, v) = self.get(&format!("/submissions/{token}?fields={fields},status"));
            assert_eq!(code, 200, "{v}");
            if v["status"]["id"].as_u64().unwrap_or(0) > 2 {
                return v;
            }
            assert!(Instant::now() < deadline, "{token} did not finish: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal HTTP/1.1 client: one request per connection, returns (status, body).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    // A server that refuses a body early may reset the connection after its answer.
    if let Err(e) = s.read_to_end(&mut raw) {
        if raw.is_empty() {
            return Err(e);
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no response head: {text:?}")))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A submission body for the `sh` test language.
pub fn sh(source: &str) -> Value {
    json!({"source_code": source, "language_id": 9001})
}

/// A zip of (name, content) files.
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(v: &Value) -> Vec<u8> {
    use base64::Engine;
    let s: String = v.as_str().unwrap_or("").split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Whether the test rootfs path exists (built by tests/common).
pub fn exists(p: &Path) -> bool {
    p.exists()
}
