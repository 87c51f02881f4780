//! Pulls from a real registry: Debian's `docker-registry` (distribution 2.8) started on
//! loopback by the test, images built here as OCI layouts (tar + gzip layers with a
//! tiny rootfs, a multi-platform index with amd64, arm64 and a BuildKit-style
//! attestation entry) and pushed with `skopeo copy --multi-arch all`.
//!
//! Needs `docker-registry` and `skopeo` (apt-get install -y docker-registry skopeo).

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use judgebox::image::blobs::BlobDir;
use judgebox::image::digest::Digest;
use judgebox::image::reference::Reference;
use judgebox::image::registry::{pull, PullOptions, Pulled};
use judgebox::image::spec::{Platform, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_judgebox");
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

fn require_tools() {
    for (tool, package) in [
        (REGISTRY_BIN, "docker-registry"),
        ("/usr/bin/skopeo", "skopeo"),
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install it with `apt-get install -y {package}`"
        );
    }
}

/// A `docker-registry` on 127.0.0.1:<free port>, storing in a temp dir; killed on drop.
struct LocalRegistry {
    child: Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    fn start() -> LocalRegistry {
        require_tools();
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {host}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let registry = LocalRegistry {
            child,
            host,
            _dir: dir,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("http://{}/v2/", self.host);
        while Instant::now() < deadline {
            if ureq::get(&url).call().is_ok_and(|r| r.status() == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not come up on {}", self.host);
    }

    /// `skopeo copy` from an OCI layout into this registry.
    fn push(&self, layout: &Path, tag: &str, repo_tag: &str, all: bool) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--dest-tls-verify=false"]);
        if all {
            cmd.args(["--multi-arch", "all"]);
        }
        let out = cmd
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn reference(&self, rest: &str) -> Reference {
        Reference::parse(&format!("{}/{rest}", self.host)).unwrap()
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OCI image layout being written.
struct Layout {
    dir: PathBuf,
    refs: Vec<serde_json::Value>,
}

impl Layout {
    fn new(dir: &Path) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
            refs: Vec::new(),
        }
    }

    fn blob(&self, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        fs::write(self.dir.join("blobs").join(d.blob_path()), bytes).unwrap();
        d
    }

    fn tag(&mut self, name: &str, media_type: &str, doc: &[u8]) {
        self.refs.push(json!({
            "mediaType": media_type, "digest": self.blob(doc).to_string(), "size": doc.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
        let index = json!({"schemaVersion": 2, "manifests": self.refs});
        fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }
}

/// A tar.gz layer holding `files`; returns (compressed, diff_id).
fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        tar.append_data(&mut header, path, *data).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), Digest::of(&tar))
}

struct Built {
    manifest: Vec<u8>,
    config: Digest,
    layers: Vec<Digest>,
}

/// A two-layer image for `arch` whose /etc/arch says which one it is.
fn build_image(layout: &Layout, arch: &str) -> Built {
    let (base, base_id) = layer(&[("etc/os-release", b"ID=judgebox-test\n")]);
    let (top, top_id) = layer(&[("etc/arch", arch.as_bytes()), ("hello.txt", b"hello\n")]);
    let config = json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [base_id.to_string(), top_id.to_string()]},
    })
    .to_string();
    let config_digest = layout.blob(config.as_bytes());
    let layers: Vec<(Digest, usize)> = [&base, &top]
        .iter()
        .map(|l| (layout.blob(l), l.len()))
        .collect();
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
        "layers": layers.iter().map(|(d, n)| json!({
            "mediaType": OCI_LAYER_GZIP, "digest": d.to_string(), "size": n
        })).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes();
    layout.blob(&manifest);
    Built {
        manifest,
        config: config_digest,
        layers: layers.into_iter().map(|(d, _)| d).collect(),
    }
}

struct Fixture {
    registry: LocalRegistry,
    amd64: Built,
    arm64: Built,
    index_digest: Digest,
    _tmp: tempfile::TempDir,
}

/// A registry with `judge/multi:v1` (index) and `judge/single:v1` (amd64 only). One per
/// test, so that the registry process is killed when the test ends.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(&tmp.path().join("layout"));
    let amd64 = build_image(&layout, "amd64");
    let arm64 = build_image(&layout, "arm64");
    // A BuildKit-style attestation: an unknown/unknown entry pointing at a manifest
    // whose layer is an in-toto statement.
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#;
    let att_config =
        br#"{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let att_manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": layout.blob(att_config).to_string(), "size": att_config.len()},
        "layers": [{"mediaType": "application/vnd.in-toto+json",
                    "digest": layout.blob(statement).to_string(), "size": statement.len()}],
    })
    .to_string()
    .into_bytes();
    let entry = |doc: &[u8], os: &str, arch: &str| {
        json!({"mediaType": OCI_MANIFEST, "digest": Digest::of(doc).to_string(),
               "size": doc.len(), "platform": {"os": os, "architecture": arch}})
    };
    let mut att_entry = entry(&att_manifest, "unknown", "unknown");
    att_entry["annotations"] = json!({
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": Digest::of(&amd64.manifest).to_string(),
    });
    layout.blob(&att_manifest);
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [att_entry, entry(&amd64.manifest, "linux", "amd64"), entry(&arm64.manifest, "linux", "arm64")],
    })
    .to_string()
    .into_bytes();
    layout.tag("multi", OCI_INDEX, &index);
    layout.tag("single", OCI_MANIFEST, &amd64.manifest);

    let registry = LocalRegistry::start();
    registry.push(&layout.dir, "multi", "judge/multi:v1", true);
    registry.push(&layout.dir, "single", "judge/single:v1", false);
    Fixture {
        registry,
        amd64,
        arm64,
        index_digest: Digest::of(&index),
        _tmp: tmp,
    }
}

fn blob_dir() -> (tempfile::TempDir, BlobDir) {
    let tmp = tempfile::tempdir().unwrap();
    let blobs = BlobDir::open(&tmp.path().join("blobs")).unwrap();
    (tmp, blobs)
}

/// The content of `path` in a stored tar.gz layer.
fn file_in_layer(blobs: &BlobDir, layer: &Digest, path: &str) -> Option<Vec<u8>> {
    let gz = fs::File::open(blobs.path(layer)).unwrap();
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(gz));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(path) {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            return Some(data);
        }
    }
    None
}

/// Every blob the pull names is stored and verifies; returns /etc/arch from the image.
fn check_pulled(pulled: &Pulled, blobs: &BlobDir) -> String {
    for layer in &pulled.layers {
        blobs.read_verified(&layer.digest, 1 << 30).unwrap();
    }
    blobs.read_verified(&pulled.config_digest, 1 << 20).unwrap();
    blobs
        .read_verified(&pulled.manifest_digest, 1 << 20)
        .unwrap();
    if let Some(index) = &pulled.index_digest {
        blobs.read_verified(index, 1 << 20).unwrap();
    }
    let top = &pulled.layers[1].digest;
    String::from_utf8(file_in_layer(blobs, top, "etc/arch").expect("etc/arch in the top layer"))
        .unwrap()
}

#[test]
fn pull_by_tag_takes_the_host_platform_from_the_index() {
    let f = &fixture();
    let (_tmp, blobs) = blob_dir();
    let r = f.registry.reference("judge/multi:v1");
    let pulled = pull(&r, &blobs, &PullOptions::default()).unwrap();
    let host = Platform::host().architecture;
    let want = if host == "arm64" { &f.arm64 } else { &f.amd64 };
    assert_eq!(pulled.manifest_digest, Digest::of(&want.manifest));
    assert_eq!(
        pulled.index_digest,
        Some(f.index_digest.clone()),
        "skopeo kept the index as built"
    );
    assert_eq!(pulled.config_digest, want.config);
    let layers: Vec<Digest> = pulled.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(layers, want.layers);
    assert_eq!(check_pulled(&pulled, &blobs), host);

    let again = pull(&r, &blobs, &PullOptions::default()).unwrap();
    assert_eq!((again.bytes_downloaded, again.reused), (0, 3));
}

#[test]
fn a_pull_without_room_in_the_store_downloads_nothing() {
    let f = &fixture();
    let (_tmp, blobs) = blob_dir();
    let r = f.registry.reference("judge/multi:v1");
    let opts = PullOptions {
        // The image needs ~530 bytes of config and layers.
        max_download: Some((100, "the store may take 100 B".into())),
        ..PullOptions::default()
    };
    let err = pull(&r, &blobs, &opts).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("more than the store has room for")
            && text.contains("nothing was downloaded"),
        "{text}"
    );
    assert_eq!(blobs.list().unwrap(), Vec::new(), "blobs were downloaded");
}

#[test]
fn pull_by_digest_and_platform_arm64() {
    let f = &fixture();
    let (_tmp, blobs) = blob_dir();
    let r = f
        .registry
        .reference(&format!("judge/multi@{}", f.index_digest));
    let opts = PullOptions {
        platform: Some(Platform::parse("linux/arm64").unwrap()),
        ..PullOptions::default()
    };
    let pulled = pull(&r, &blobs, &opts).unwrap();
    assert_eq!(pulled.manifest_digest, Digest::of(&f.arm64.manifest));
    assert_eq!(pulled.platform.to_string(), "linux/arm64");
    assert_eq!(check_pulled(&pulled, &blobs), "arm64");

    // The child manifest by its own digest is a single-platform pull.
    let r = f
        .registry
        .reference(&format!("judge/multi@{}", Digest::of(&f.amd64.manifest)));
    let pulled = pull(&r, &blobs, &PullOptions::default()).unwrap();
    assert_eq!(pulled.index_digest, None);
    assert_eq!(check_pulled(&pulled, &blobs), "amd64");
}

#[test]
fn unknown_platforms_list_what_the_index_has() {
    let f = &fixture();
    let (_tmp, blobs) = blob_dir();
    let opts = PullOptions {
        platform: Some(Platform::parse("linux/riscv64").unwrap()),
        ..PullOptions::default()
    };
    let err = pull(&f.registry.reference("judge/multi:v1"), &blobs, &opts).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("available: linux/amd64, linux/arm64)"),
        "{text}"
    );
}

#[test]
fn the_cli_pulls_and_prints_the_manifest_digest() {
    let f = &fixture();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["image", "pull", "--root"])
            .arg(&root)
            .args(args)
            .env_remove("REGISTRY_AUTH_FILE")
            .env("HOME", tmp.path())
            .output()
            .unwrap()
    };
    let image = format!("{}/judge/multi:v1", f.registry.host);
    let out = run(&["--platform", "linux/arm64", &image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        Digest::of(&f.arm64.manifest).to_string()
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("pulled ") && summary.contains("(linux/arm64)"),
        "{summary}"
    );
    assert!(root
        .join("blobs/sha256")
        .join(f.arm64.config.encoded())
        .is_file());

    let single = format!("{}/judge/single:v1", f.registry.host);
    let out = run(&["-q", &single]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&[&format!("{}/judge/multi:nope", f.registry.host)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MANIFEST_UNKNOWN"), "{err}");
}

/// The big image another part of the build makes (~100 MB of gzip layers), pushed to a
/// local registry and pulled; checks every blob against the layout's. Slow in debug
/// builds (sha256 unoptimised): run with
/// `cargo test --release --test registry -- --ignored big_image`.
#[test]
#[ignore]
fn big_image_pulls_byte_identical() {
    let layout = Path::new("/var/cache/judgebox/oci");
    let tag = "judgebox/python3:bookworm";
    let index = fs::read_to_string(layout.join("index.json"))
        .expect("build /var/cache/judgebox/oci first (the image recipes)");
    assert!(index.contains(tag), "{tag} not in the layout");
    let registry = LocalRegistry::start();
    registry.push(layout, tag, "judgebox/python3:bookworm", false);
    let (_tmp, blobs) = blob_dir();
    let start = Instant::now();
    let pulled = pull(
        &registry.reference("judgebox/python3:bookworm"),
        &blobs,
        &PullOptions::default(),
    )
    .unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "pulled {} MB in {secs:.2} s ({:.0} MB/s)",
        pulled.bytes_downloaded / 1_000_000,
        pulled.bytes_downloaded as f64 / 1e6 / secs
    );
    for layer in &pulled.layers {
        let ours = fs::read(blobs.path(&layer.digest)).unwrap();
        let theirs = fs::read(layout.join("blobs").join(layer.digest.blob_path())).unwrap();
        assert!(ours == theirs, "layer {} differs", layer.digest);
    }
}

/// The real Debian+python3 image (built by scripts/build-images.sh), pushed with skopeo,
/// pulled through the CLI by tag and by digest into a fresh store, then run with --image.
#[test]
fn the_real_python_image_pulls_by_tag_and_digest_and_runs() {
    let layout = Path::new("/var/cache/judgebox/oci");
    let tag = "judgebox/python3:bookworm";
    let present = fs::read_to_string(layout.join("index.json")).is_ok_and(|i| i.contains(tag));
    if !present {
        let required = std::env::var("JUDGEBOX_REQUIRE_IMAGES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{tag} is not in {}: run scripts/build-images.sh",
            layout.display()
        );
        eprintln!(
            "skipping: {tag} is not in {} (run scripts/build-images.sh)",
            layout.display()
        );
        return;
    }
    let registry = LocalRegistry::start();
    registry.push(layout, tag, tag, false);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let judgebox = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .env("JUDGEBOX_ROOT", &root)
            .env_remove("REGISTRY_AUTH_FILE")
            .env("HOME", tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let by_tag = format!("{}/{tag}", registry.host);
    let digest = judgebox(&["image", "pull", "-q", &by_tag]);
    assert!(digest.starts_with("sha256:"), "{digest}");
    let by_digest = format!("{}/judgebox/python3@{digest}", registry.host);
    assert_eq!(judgebox(&["image", "pull", "-q", &by_digest]), digest);
    for image in [&by_tag, &by_digest] {
        let out = judgebox(&[
            "run",
            "--image",
            image,
            "--json",
            "--",
            "python3",
            "-c",
            "print(6*7)",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (v["status"].as_str(), v["stdout"].as_str()),
            (Some("ok"), Some("42\n")),
            "{v}"
        );
    }
}

/// A front for the registry that wants `Authorization: Basic <expected>` on every request
/// (401 with a Basic challenge otherwise) and forwards the rest, one request per
/// connection.
struct BasicAuthFront {
    host: String,
}

impl BasicAuthFront {
    fn start(upstream: &str, expected: &'static str) -> BasicAuthFront {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let upstream = upstream.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                std::thread::spawn(move || forward(client, &upstream, expected));
            }
        });
        BasicAuthFront { host }
    }
}

fn forward(mut client: std::net::TcpStream, upstream: &str, expected: &str) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let authorized = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("authorization") && v.trim() == format!("Basic {expected}")
        })
    });
    if !authorized {
        let _ = client.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\n\
              Content-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let request: String = head
        .lines()
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect::<String>()
        + "Connection: close\r\n\r\n";
    let Ok(mut server) = std::net::TcpStream::connect(upstream) else {
        return;
    };
    if server.write_all(request.as_bytes()).is_ok() {
        let _ = std::io::copy(&mut server, &mut client);
    }
}

#[test]
fn the_cli_sends_credentials_from_stdin_or_an_auth_file() {
    let f = &fixture();
    // "judge:pa55" in base64.
    let front = BasicAuthFront::start(&f.registry.host, "anVkZ2U6cGE1NQ==");
    let image = format!("{}/judge/single:v1", front.host);
    let tmp = tempfile::tempdir().unwrap();
    let pull_cli = |args: &[&str], stdin: &str, env: &[(&str, &Path)]| {
        let root = tempfile::tempdir_in(tmp.path()).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["image", "pull", "-q", "--root"])
            .arg(root.path())
            .args(args)
            .arg(&image)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .env("HOME", tmp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();

    let out = pull_cli(&[], "", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("authentication required"),
        "{}",
        stderr(&out)
    );

    let out = pull_cli(&["--username", "judge", "--password-stdin"], "pa55\n", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        Digest::of(&f.amd64.manifest).to_string()
    );

    let out = pull_cli(&["--username", "judge", "--password-stdin"], "wrong\n", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("refused the user name and password"),
        "{}",
        stderr(&out)
    );

    let out = pull_cli(&["--username", "judge"], "", &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--username needs --password-stdin"
    );

    // Docker's config.json, by --authfile, REGISTRY_AUTH_FILE and ~/.docker.
    let auth = json!({"auths": {format!("http://{}", front.host): {"auth": "anVkZ2U6cGE1NQ=="}}});
    let file = tmp.path().join("auth.json");
    fs::write(&file, auth.to_string()).unwrap();
    let out = pull_cli(&["--authfile", file.to_str().unwrap()], "", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = pull_cli(&[], "", &[("REGISTRY_AUTH_FILE", &file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    fs::create_dir_all(tmp.path().join(".docker")).unwrap();
    fs::copy(&file, tmp.path().join(".docker/config.json")).unwrap();
    let out = pull_cli(&[], "", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}
