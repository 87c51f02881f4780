//! The image store end to end, through the `judgebox` binary: OCI layouts (directory and
//! tar) and both `docker save` forms built here with the tar crate, imported, listed,
//! inspected and run; bad input refused with nothing written; disk full, kill -9 and
//! concurrent imports; rm + prune; and the real Debian python3 image when it was built.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::BIN;
use judgebox::image::digest::Digest;
use serde_json::{json, Value};

/// Test-side builders of layers, images, layouts and archives.
mod oci {
    use super::*;
    use judgebox::image::spec::{self, Platform};
    use std::io::Write;

    pub enum E<'a> {
        Dir(&'a str),
        File(&'a str, Vec<u8>, u32),
        Symlink(&'a str, &'a str),
        Hardlink(&'a str, &'a str),
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    }

    pub fn tar(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            match e {
                E::Dir(p) => {
                    let mut h = header(tar::EntryType::Directory, 0o755, 0);
                    b.append_data(&mut h, p, &[][..]).unwrap();
                }
                E::File(p, data, mode) => {
                    let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64);
                    b.append_data(&mut h, p, &data[..]).unwrap();
                }
                E::Symlink(p, target) => {
                    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                    b.append_link(&mut h, p, target).unwrap();
                }
                E::Hardlink(p, target) => {
                    let mut h = header(tar::EntryType::Link, 0o644, 0);
                    b.append_link(&mut h, p, target).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    /// A tar entry whose name is written byte for byte (the tar crate refuses `..`).
    pub fn raw_entry(b: &mut tar::Builder<Vec<u8>>, name: &[u8], data: &[u8]) {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        h.as_old_mut().name = [0; 100];
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    pub fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[derive(Clone)]
    pub struct Layer {
        pub blob: Vec<u8>,
        pub diff_id: Digest,
        pub media_type: &'static str,
    }

    impl Layer {
        pub fn gz(tar: Vec<u8>) -> Layer {
            Layer {
                blob: gzip(&tar),
                diff_id: Digest::of(&tar),
                media_type: spec::OCI_LAYER_GZIP,
            }
        }
        pub fn plain(tar: Vec<u8>) -> Layer {
            Layer {
                diff_id: Digest::of(&tar),
                blob: tar,
                media_type: spec::OCI_LAYER_TAR,
            }
        }
        pub fn digest(&self) -> Digest {
            Digest::of(&self.blob)
        }
    }

    #[derive(Clone)]
    pub struct Image {
        pub manifest: Vec<u8>,
        pub config: Vec<u8>,
        pub layers: Vec<Layer>,
    }

    pub fn host_arch() -> String {
        Platform::host().architecture
    }

    pub fn config_json(layers: &[Layer], exec: Value) -> Value {
        json!({
            "architecture": host_arch(),
            "os": "linux",
            "config": exec,
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
            "history": [],
        })
    }

    impl Image {
        pub fn new(layers: Vec<Layer>, exec: Value) -> Image {
            let config = config_json(&layers, exec);
            Image::with_config(layers, &config)
        }

        pub fn with_config(layers: Vec<Layer>, config: &Value) -> Image {
            let config = serde_json::to_vec(config).unwrap();
            let manifest = manifest_json(&config, &layers);
            Image {
                manifest: serde_json::to_vec(&manifest).unwrap(),
                config,
                layers,
            }
        }

        pub fn digest(&self) -> Digest {
            Digest::of(&self.manifest)
        }

        pub fn blobs(&self) -> Vec<(Digest, &[u8])> {
            let mut v = vec![
                (Digest::of(&self.manifest), &self.manifest[..]),
                (Digest::of(&self.config), &self.config[..]),
            ];
            v.extend(self.layers.iter().map(|l| (l.digest(), &l.blob[..])));
            v
        }

        pub fn descriptor(&self, ref_name: Option<&str>) -> Value {
            let mut d = json!({
                "mediaType": spec::OCI_MANIFEST,
                "digest": self.digest().to_string(),
                "size": self.manifest.len(),
            });
            if let Some(name) = ref_name {
                d["annotations"] = json!({"org.opencontainers.image.ref.name": name});
            }
            d
        }
    }

    pub fn manifest_json(config: &[u8], layers: &[Layer]) -> Value {
        json!({
            "schemaVersion": 2,
            "mediaType": spec::OCI_MANIFEST,
            "config": {"mediaType": spec::OCI_CONFIG, "digest": Digest::of(config).to_string(), "size": config.len()},
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type, "digest": l.digest().to_string(), "size": l.blob.len()
            })).collect::<Vec<_>>(),
        })
    }

    /// An OCI layout directory holding `images` (with their ref.names) in index.json.
    pub fn write_layout(dir: &Path, images: &[(&Image, Option<&str>)]) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let mut manifests = Vec::new();
        for (image, name) in images {
            for (d, bytes) in image.blobs() {
                std::fs::write(blobs.join(d.encoded()), bytes).unwrap();
            }
            manifests.push(image.descriptor(*name));
        }
        let index =
            json!({"schemaVersion": 2, "mediaType": spec::OCI_INDEX, "manifests": manifests});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }

    /// A tar of a directory's contents (relative names, as `tar -C dir -cf - .`).
    pub fn tar_dir(dir: &Path, extra: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        b.append_dir_all(".", dir).unwrap();
        for (name, data) in extra {
            let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn hex_of(seed: &str) -> String {
        Digest::of(seed.as_bytes()).encoded().to_string()
    }

    /// Legacy `docker save`: `<id>/layer.tar`, `<config hex>.json`, manifest.json LAST.
    /// The last layer's `layer.tar` is a symlink to a copy under another id, as docker
    /// writes for layers it already saved.
    pub fn docker_save_legacy(
        layers: &[Vec<u8>],
        exec: Value,
        tags: &[&str],
        diff_ids: Option<Vec<Digest>>,
    ) -> Vec<u8> {
        let plain: Vec<Layer> = layers.iter().cloned().map(Layer::plain).collect();
        let mut config = config_json(&plain, exec);
        if let Some(ids) = diff_ids {
            config["rootfs"]["diff_ids"] =
                json!(ids.iter().map(|d| d.to_string()).collect::<Vec<_>>());
        }
        let config = serde_json::to_vec(&config).unwrap();
        let config_name = format!("{}.json", Digest::of(&config).encoded());
        let mut b = tar::Builder::new(Vec::new());
        let mut paths = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            let id = hex_of(&format!("layer{i}"));
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            b.append_data(&mut h, format!("{id}/"), &[][..]).unwrap();
            let mut h = header(tar::EntryType::Regular, 0o644, 3);
            b.append_data(&mut h, format!("{id}/VERSION"), &b"1.0"[..])
                .unwrap();
            if i + 1 == layers.len() {
                let other = hex_of("elsewhere");
                let mut h = header(tar::EntryType::Regular, 0o644, layer.len() as u64);
                b.append_data(&mut h, format!("{other}/layer.tar"), &layer[..])
                    .unwrap();
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(
                    &mut h,
                    format!("{id}/layer.tar"),
                    format!("../{other}/layer.tar"),
                )
                .unwrap();
            } else {
                let mut h = header(tar::EntryType::Regular, 0o644, layer.len() as u64);
                b.append_data(&mut h, format!("{id}/layer.tar"), &layer[..])
                    .unwrap();
            }
            paths.push(format!("{id}/layer.tar"));
        }
        let mut h = header(tar::EntryType::Regular, 0o644, config.len() as u64);
        b.append_data(&mut h, &config_name, &config[..]).unwrap();
        let manifest = json!([{"Config": config_name, "RepoTags": tags, "Layers": paths}]);
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let mut h = header(tar::EntryType::Regular, 0o644, manifest.len() as u64);
        b.append_data(&mut h, "manifest.json", &manifest[..])
            .unwrap();
        b.into_inner().unwrap()
    }

    /// Docker 25+ `docker save`: an OCI layout (uncompressed layers) plus manifest.json.
    pub fn docker_save_25(
        layers: &[Vec<u8>],
        exec: Value,
        tag: &str,
        containerd_name: bool,
    ) -> Vec<u8> {
        let image = Image::new(layers.iter().cloned().map(Layer::plain).collect(), exec);
        let mut b = tar::Builder::new(Vec::new());
        let add = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
            let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
            b.append_data(&mut h, name, data).unwrap();
        };
        for (d, bytes) in image.blobs() {
            add(&mut b, &format!("blobs/sha256/{}", d.encoded()), bytes);
        }
        let full = judgebox::image::reference::Reference::parse(tag)
            .unwrap()
            .canonical();
        let short_tag = tag.rsplit(':').next().unwrap();
        let mut desc = image.descriptor(None);
        desc["annotations"] = if containerd_name {
            json!({"io.containerd.image.name": full, "org.opencontainers.image.ref.name": short_tag})
        } else {
            json!({"org.opencontainers.image.ref.name": short_tag})
        };
        let index = json!({"schemaVersion": 2, "mediaType": spec::OCI_INDEX, "manifests": [desc]});
        add(&mut b, "index.json", &serde_json::to_vec(&index).unwrap());
        add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        let manifest = json!([{
            "Config": format!("blobs/sha256/{}", Digest::of(&image.config).encoded()),
            "RepoTags": [tag],
            "Layers": image.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest().encoded())).collect::<Vec<_>>(),
        }]);
        add(
            &mut b,
            "manifest.json",
            &serde_json::to_vec(&manifest).unwrap(),
        );
        add(&mut b, "repositories", b"{}");
        b.into_inner().unwrap()
    }
}

use oci::{Image, Layer, E};

// ---------------------------------------------------------------------------------------
// Fixtures

fn busybox() -> Vec<u8> {
    std::fs::read(common::find_busybox()).unwrap()
}

const APPLETS: [&str; 12] = [
    "sh", "cat", "ls", "readlink", "env", "stat", "echo", "pwd", "test", "sleep", "id", "true",
];

/// busybox, its applets, /etc/passwd, a file that L2 whites out, /data/a.
fn base_tar() -> Vec<u8> {
    let links: Vec<(String, &str)> = APPLETS
        .iter()
        .map(|a| (format!("bin/{a}"), "busybox"))
        .collect();
    let mut entries = vec![
        E::Dir("bin"),
        E::Dir("etc"),
        E::Dir("data"),
        E::File("bin/busybox", busybox(), 0o755),
        E::File(
            "etc/passwd",
            b"root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n".to_vec(),
            0o644,
        ),
        E::File("etc/gone", b"bye\n".to_vec(), 0o644),
        E::File("data/a", b"A\n".to_vec(), 0o644),
    ];
    entries.extend(links.iter().map(|(p, t)| E::Symlink(p, t)));
    oci::tar(&entries)
}

/// A whiteout, a hardlink, a symlink.
fn second_tar() -> Vec<u8> {
    oci::tar(&[
        E::Dir("etc"),
        E::Dir("data"),
        E::File("etc/.wh.gone", Vec::new(), 0o644),
        E::File("data/c", b"C\n".to_vec(), 0o644),
        E::Hardlink("data/d", "data/c"),
        E::Symlink("data/link", "c"),
    ])
}

fn app_tar() -> Vec<u8> {
    oci::tar(&[E::Dir("app"), E::File("app/hello", b"hi\n".to_vec(), 0o644)])
}

const SCRIPT: &str =
    "echo \"$GREETING\"; pwd; cat /data/d; readlink /data/link; ls /etc; echo KEEP=$KEEP";

fn app_exec() -> Value {
    json!({
        "Env": ["PATH=/bin", "GREETING=hello from image", "KEEP=1"],
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": [SCRIPT],
        "WorkingDir": "/app",
    })
}

/// Three layers: gzip, gzip (whiteout, hardlink, symlink), plain tar.
fn app_image() -> Image {
    Image::new(
        vec![
            Layer::gz(base_tar()),
            Layer::gz(second_tar()),
            Layer::plain(app_tar()),
        ],
        app_exec(),
    )
}

/// Shares the base layer with `app_image`.
fn other_image() -> Image {
    let tar = oci::tar(&[E::Dir("other"), E::File("other/x", b"x\n".to_vec(), 0o644)]);
    Image::new(
        vec![Layer::gz(base_tar()), Layer::gz(tar)],
        json!({"Env": ["PATH=/bin"], "Cmd": ["/bin/sh", "-c", "echo other"]}),
    )
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// A scratch dir with a store root and room for inputs.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        assert!(common::is_root(), "the image tests must run as root");
        Env { dir: tempdir() }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn layout(&self, name: &str, images: &[(&Image, Option<&str>)]) -> PathBuf {
        let dir = self.path(name);
        oci::write_layout(&dir, images);
        dir
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// `judgebox image --root <root> <args>`.
    fn image(&self, args: &[&str]) -> Output {
        image_at(&self.root(), args)
    }

    fn import(&self, path: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["import", path.to_str().unwrap()];
        args.extend(extra);
        self.image(&args)
    }

    fn ls(&self) -> Value {
        json_of(&ok(self.image(&["ls", "--json"])))
    }

    fn inspect(&self, name: &str) -> Value {
        json_of(&ok(self.image(&["inspect", name, "--json"])))
    }

    /// `judgebox run --root <root> --image <name> --json <args> [-- cmd]`.
    fn run(&self, name: &str, args: &[&str], cmd: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        c.arg("run")
            .arg("--root")
            .arg(self.root())
            .args(["--image", name, "--json"])
            .args(args);
        if !cmd.is_empty() {
            c.arg("--").args(cmd);
        }
        c.stdin(Stdio::null()).output().unwrap()
    }

    fn run_stdout(&self, name: &str, args: &[&str], cmd: &[&str]) -> String {
        let out = self.run(name, args, cmd);
        let v = json_of(&out);
        assert_eq!(
            v["status"],
            "ok",
            "{v}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        v["stdout"].as_str().unwrap().to_string()
    }

    /// Names in a store subdirectory (`blobs/sha256`, `rootfs`, `staging`).
    fn entries(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root().join(sub))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The store is as empty as a fresh one: no names, blobs, rootfs or staging left.
    fn assert_empty(&self, context: &str) {
        for sub in ["blobs/sha256", "rootfs", "staging", "blobs/.incoming"] {
            assert_eq!(
                self.entries(sub),
                Vec::<String>::new(),
                "{context}: {sub} not empty"
            );
        }
        assert_eq!(self.ls(), json!([]), "{context}: names left");
    }
}

fn image_at(root: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("image")
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "judgebox failed ({:?}): stdout={} stderr={}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "not one JSON value ({e}): {text:?} stderr={:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Exit 2 with `needle` in stderr.
fn refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("refused as expected: {}", stderr.trim());
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2, stderr={stderr}"
    );
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
}

/// What the app image prints when run with no command.
fn assert_app_output(stdout: &str, greeting: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], greeting, "{stdout}");
    assert_eq!(lines[1], "/app", "WorkingDir: {stdout}");
    assert_eq!(lines[2], "C", "hardlink content: {stdout}");
    assert_eq!(lines[3], "c", "symlink target: {stdout}");
    assert!(stdout.contains("passwd"), "{stdout}");
    assert!(!stdout.contains("gone"), "whiteout not applied: {stdout}");
    assert!(!stdout.contains(".wh."), "whiteout file left: {stdout}");
    assert_eq!(lines.last(), Some(&"KEEP=1"), "{stdout}");
}

// ---------------------------------------------------------------------------------------
// Imports that work

#[test]
fn layout_dir_import_ls_inspect_and_run() {
    let env = Env::new();
    let app = app_image();
    let layout = env.layout(
        "layout",
        &[
            (&other_image(), Some("test/other:1")),
            (&app, Some("test/app:1")),
        ],
    );
    let out = json_of(&ok(env.import(&layout, &["--tag", "test/app:1", "--json"])));
    assert_eq!(out["images"][0]["name"], "docker.io/test/app:1");
    assert_eq!(out["images"][0]["unpacked"], true);

    let ls = env.ls();
    assert_eq!(
        ls.as_array().unwrap().len(),
        1,
        "only the tagged image: {ls}"
    );
    let rec = &ls[0];
    assert_eq!(rec["name"], "docker.io/test/app:1");
    assert_eq!(rec["manifest"], app.digest().to_string());
    assert_eq!(rec["platform"], format!("linux/{}", oci::host_arch()));
    assert_eq!(rec["layers"].as_array().unwrap().len(), 3);
    for (l, want) in rec["layers"].as_array().unwrap().iter().zip(&app.layers) {
        assert_eq!(l["digest"], want.digest().to_string());
        assert_eq!(l["size"], want.blob.len());
        assert_eq!(l["diff_id"], want.diff_id.to_string());
        assert_eq!(l["media_type"], want.media_type);
    }
    assert!(rec["rootfs_bytes"].as_u64().unwrap() > 1 << 20);

    // Short names resolve with Docker's defaults; so does the manifest digest prefix.
    let info = env.inspect("test/app:1");
    assert_eq!(
        env.inspect(&app.digest().encoded()[..12])["name"],
        "docker.io/test/app:1"
    );
    assert_eq!(info["config"]["config"]["WorkingDir"], "/app");
    assert_eq!(
        info["config"]["config"]["Env"][1],
        "GREETING=hello from image"
    );
    assert_eq!(info["diff_ids"].as_array().unwrap().len(), 3);
    let rootfs = PathBuf::from(info["rootfs"].as_str().unwrap());
    assert_eq!(
        rootfs,
        env.root().join("rootfs").join(app.digest().encoded())
    );
    use std::os::unix::fs::MetadataExt;
    let c = std::fs::metadata(rootfs.join("data/c")).unwrap();
    let d = std::fs::metadata(rootfs.join("data/d")).unwrap();
    assert_eq!(
        (c.ino(), c.nlink()),
        (d.ino(), 2),
        "data/d is a hardlink of data/c"
    );
    for m in ["box", "proc", "dev", "tmp"] {
        assert!(
            std::fs::symlink_metadata(rootfs.join(m)).unwrap().is_dir(),
            "mount point {m}"
        );
    }
    assert!(!rootfs.join("etc/gone").exists() && !rootfs.join("etc/.wh.gone").exists());

    // Entrypoint + Cmd, Env and WorkingDir, seen from inside.
    assert_app_output(&env.run_stdout("test/app:1", &[], &[]), "hello from image");
    assert_app_output(
        &env.run_stdout("docker.io/test/app:1", &["--env", "GREETING=override"], &[]),
        "override",
    );
    // A command replaces Entrypoint and Cmd; cwd and Env stay the image's.
    let out = env.run_stdout(
        "test/app:1",
        &[],
        &["/bin/sh", "-c", "pwd; cat hello; echo $KEEP; id -u"],
    );
    let (head, uid) = out.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(head, "/app\nhi\n1");
    // The sandbox still forces its uid: a per-run one, whatever the image says.
    assert!(uid.parse::<u32>().unwrap() >= 2_000_000_000, "{out}");
    // The human table.
    let table = String::from_utf8_lossy(&ok(env.image(&["ls"])).stdout).into_owned();
    assert!(
        table.starts_with("NAME")
            && table.contains("docker.io/test/app:1")
            && table.contains("MiB"),
        "{table}"
    );
    let human =
        String::from_utf8_lossy(&ok(env.image(&["inspect", "test/app:1"])).stdout).into_owned();
    assert!(
        human.contains("WorkingDir:  /app") && human.contains("diff_id"),
        "{human}"
    );
}

#[test]
fn layout_tar_import_with_extra_files() {
    let env = Env::new();
    let app = app_image();
    let layout = env.layout("layout", &[(&app, Some("test/app:1"))]);
    let tar = oci::tar_dir(&layout, &[("README.md", b"extra files are ignored")]);
    let file = env.file("layout.tar", &tar);
    let out = json_of(&ok(env.import(&file, &["--json"])));
    assert_eq!(out["images"][0]["name"], "docker.io/test/app:1");
    assert_eq!(out["ignored"], json!(["README.md"]));
    assert_app_output(&env.run_stdout("test/app:1", &[], &[]), "hello from image");
    // gzip-compressed archives work too, and a re-import does not unpack again.
    let gz = env.file("layout.tar.gz", &oci::gzip(&tar));
    let again = json_of(&ok(env.import(&gz, &["--json", "--tag", "test/app:2"])));
    assert_eq!(again["images"][0]["unpacked"], false);
    assert_eq!(env.entries("rootfs").len(), 1);
    assert_eq!(env.ls().as_array().unwrap().len(), 2);
}

#[test]
fn docker_save_legacy_archive() {
    let env = Env::new();
    let tar = oci::docker_save_legacy(
        &[base_tar(), second_tar(), app_tar()],
        app_exec(),
        &["test/legacy:1", "test/legacy:latest"],
        None,
    );
    let file = env.file("legacy.tar", &tar);
    let out = json_of(&ok(env.import(&file, &["--json"])));
    let names: Vec<&str> = out["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["docker.io/test/legacy:1", "docker.io/test/legacy:latest"]
    );
    let rec = env.inspect("test/legacy:1");
    assert_eq!(rec["media_type"], judgebox::image::spec::DOCKER_MANIFEST);
    for l in rec["layers"].as_array().unwrap() {
        assert_eq!(l["media_type"], judgebox::image::spec::DOCKER_LAYER_TAR);
        assert_eq!(
            l["digest"], l["diff_id"],
            "a docker save layer's digest is its DiffID"
        );
    }
    assert_eq!(env.entries("rootfs").len(), 1, "two names, one rootfs");
    assert_app_output(&env.run_stdout("test/legacy", &[], &[]), "hello from image");
}

#[test]
fn docker_save_25_archive() {
    let env = Env::new();
    let tar = oci::docker_save_25(
        &[base_tar(), second_tar(), app_tar()],
        app_exec(),
        "test/modern:2",
        true,
    );
    let file = env.file("modern.tar", &tar);
    let out = json_of(&ok(env.import(&file, &["--json"])));
    assert_eq!(out["images"][0]["name"], "docker.io/test/modern:2");
    assert_eq!(out["images"].as_array().unwrap().len(), 1);
    assert_app_output(
        &env.run_stdout("test/modern:2", &[], &[]),
        "hello from image",
    );
    // Selecting by the tag-only ref.name docker writes works as well.
    let env2 = Env::new();
    let out = json_of(&ok(env2.import(&file, &["--json", "--tag", "2"])));
    assert_eq!(out["images"][0]["name"], "docker.io/library/2:latest");
    // Without containerd's full name, manifest.json's RepoTags name the image; and the
    // archive can come on stdin.
    let env3 = Env::new();
    let bare = oci::docker_save_25(&[base_tar(), app_tar()], app_exec(), "test/modern:3", false);
    let mut child = Command::new(BIN)
        .arg("image")
        .arg("--root")
        .arg(env3.root())
        .args(["import", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&bare).unwrap();
    let out = json_of(&ok(child.wait_with_output().unwrap()));
    assert_eq!(out["images"][0]["name"], "docker.io/test/modern:3");
}

/// A layout whose one named entry is an index of two platforms' manifests (and an
/// attestation), as multi-platform images are published.
#[test]
fn nested_index_picks_the_host_platform_or_the_asked_one() {
    use judgebox::image::spec::{OCI_INDEX, OCI_MANIFEST};
    let host = oci::host_arch();
    let foreign = if host == "arm64" { "amd64" } else { "arm64" };
    let native = app_image();
    let mut config = oci::config_json(&native.layers, app_exec());
    config["architecture"] = json!(foreign);
    let alien = Image::with_config(native.layers.clone(), &config);
    let entry = |image: &Image, arch: &str| {
        json!({"mediaType": OCI_MANIFEST, "digest": image.digest().to_string(),
               "size": image.manifest.len(), "platform": {"os": "linux", "architecture": arch}})
    };
    let nested = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": alien.digest().to_string(), "size": alien.manifest.len(),
         "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        entry(&alien, foreign),
        entry(&native, host.as_str()),
    ]});
    let nested = serde_json::to_vec(&nested).unwrap();
    let env = Env::new();
    let layout = env.layout("multi", &[(&native, None), (&alien, None)]);
    std::fs::write(
        layout
            .join("blobs/sha256")
            .join(Digest::of(&nested).encoded()),
        &nested,
    )
    .unwrap();
    let top = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_INDEX, "digest": Digest::of(&nested).to_string(), "size": nested.len(),
        "annotations": {"org.opencontainers.image.ref.name": "test/multi:1"}}]});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();

    ok(env.import(&layout, &[]));
    let rec = env.inspect("test/multi:1");
    assert_eq!(rec["manifest"], native.digest().to_string());
    assert_eq!(rec["platform"], format!("linux/{host}"));
    assert_app_output(
        &env.run_stdout("test/multi:1", &[], &[]),
        "hello from image",
    );

    let other = Env::new();
    let platform = format!("linux/{foreign}");
    ok(other.import(&layout, &["--platform", &platform]));
    let rec = other.inspect("test/multi:1");
    assert_eq!(rec["manifest"], alien.digest().to_string());
    assert_eq!(rec["platform"], platform);
    refused(
        &other.import(&layout, &["--platform", "linux/s390x"]),
        "no image for platform linux/s390x",
    );
}

#[test]
fn layout_without_tag_imports_every_named_image() {
    let env = Env::new();
    let app = app_image();
    let other = other_image();
    let unnamed = Image::new(vec![Layer::gz(app_tar())], json!({}));
    let layout = env.layout(
        "layout",
        &[
            (&app, Some("test/app:1")),
            (&unnamed, None),
            (&other, Some("test/other:1")),
        ],
    );
    ok(env.import(&layout, &[]));
    let names: Vec<String> = env
        .ls()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["docker.io/test/app:1", "docker.io/test/other:1"]);
    assert_eq!(env.entries("rootfs").len(), 2);
    // Blobs: 2 manifests, 2 configs, shared base, app's 2 others, other's 1 other.
    assert_eq!(env.entries("blobs/sha256").len(), 8);
    assert_eq!(env.run_stdout("test/other:1", &[], &[]), "other\n");
}

// ---------------------------------------------------------------------------------------
// Bad input: exit 2, a clear message, nothing written

fn replace_blob(layout: &Path, digest: &Digest, bytes: &[u8]) {
    std::fs::write(layout.join("blobs/sha256").join(digest.encoded()), bytes).unwrap();
}

#[test]
fn bad_layouts_are_refused_and_leave_nothing() {
    let env = Env::new();
    let app = app_image();
    let layer0 = app.layers[0].digest();
    let case = |name: &str, edit: &dyn Fn(&Path), needle: &str| {
        let layout = env.layout(name, &[(&app, Some("test/app:1"))]);
        edit(&layout);
        refused(&env.import(&layout, &[]), needle);
        env.assert_empty(name);
    };
    case(
        "corrupt",
        &|l| {
            let mut blob = app.layers[0].blob.clone();
            let mid = blob.len() / 2;
            blob[mid] ^= 0xff;
            replace_blob(l, &layer0, &blob);
        },
        "digest mismatch",
    );
    case(
        "truncated-file",
        &|l| replace_blob(l, &layer0, &app.layers[0].blob[..1000]),
        "size mismatch",
    );
    case(
        "missing",
        &|l| std::fs::remove_file(l.join("blobs/sha256").join(layer0.encoded())).unwrap(),
        "is missing",
    );
    case(
        "no-index",
        &|l| std::fs::remove_file(l.join("index.json")).unwrap(),
        "neither an OCI image layout",
    );
    case(
        "symlinked-blob",
        &|l| {
            let p = l.join("blobs/sha256").join(layer0.encoded());
            std::fs::remove_file(&p).unwrap();
            std::os::unix::fs::symlink("/etc/passwd", &p).unwrap();
        },
        "symlink",
    );
    refused(
        &env.import(&env.path("does-not-exist"), &[]),
        "cannot read it",
    );
    refused(
        &env.import(
            &env.file("random.bin", b"not a tar at all, not at all"),
            &[],
        ),
        "",
    );
    env.assert_empty("random file");

    // Images whose documents are wrong.
    let docs = |name: &str, image: &Image, needle: &str| {
        let layout = env.layout(name, &[(image, Some("test/bad:1"))]);
        refused(&env.import(&layout, &[]), needle);
        env.assert_empty(name);
    };
    let mut wrong_diff = app.clone();
    wrong_diff.layers[1].diff_id = Digest::of(b"not the layer");
    let wrong_diff = Image::new(wrong_diff.layers, app_exec());
    docs("diffid", &wrong_diff, "diff_id mismatch");

    let mut truncated = app.layers.clone();
    let gz = &truncated[0].blob;
    truncated[0].blob = gz[..gz.len() * 2 / 3].to_vec();
    docs(
        "truncated-layer",
        &Image::new(truncated, app_exec()),
        "layer 0",
    );

    let mut weird = app.layers.clone();
    weird[2].media_type = "application/x-weird";
    docs(
        "media-type",
        &Image::new(weird, app_exec()),
        "unsupported media type 'application/x-weird'",
    );

    let mut both = app.clone();
    let mut m: Value = serde_json::from_slice(&both.manifest).unwrap();
    m["manifests"] = json!([]);
    both.manifest = serde_json::to_vec(&m).unwrap();
    docs("ambiguous", &both, "both 'manifests' and 'layers'");

    let mut count = oci::config_json(&app.layers, app_exec());
    count["rootfs"]["diff_ids"].as_array_mut().unwrap().pop();
    docs(
        "count",
        &Image::with_config(app.layers.clone(), &count),
        "3 layers but 2 diff_ids",
    );

    let mut arm = oci::config_json(&app.layers, app_exec());
    arm["architecture"] = json!(if oci::host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    });
    let arm = Image::with_config(app.layers.clone(), &arm);
    docs("platform", &arm, "pass --platform linux/");

    // Several images and a --tag that names none of them.
    let layout = env.layout(
        "two",
        &[
            (&app, Some("test/app:1")),
            (&other_image(), Some("test/other:1")),
        ],
    );
    refused(
        &env.import(&layout, &["--tag", "test/nope:1"]),
        "no image by that name",
    );
    refused(
        &env.import(&layout, &["--tag", "Bad Name"]),
        "invalid --tag",
    );
    refused(
        &env.import(&layout, &["--platform", "linux"]),
        "invalid platform",
    );
    env.assert_empty("tags");
}

#[test]
fn hostile_archive_names_are_refused_before_any_write() {
    let env = Env::new();
    let app = app_image();
    let layout = env.layout("layout", &[(&app, Some("test/app:1"))]);
    let good = oci::tar_dir(&layout, &[]);
    let marker = format!("judgebox-evil-{}", std::process::id());
    for (name, needle) in [
        (
            format!("../../../../../../tmp/{marker}"),
            "'..' in the path",
        ),
        (format!("/tmp/{marker}"), "absolute path"),
        ("blobs/sha256/../../../x".to_string(), "'..' in the path"),
        (
            "blobs/sha256/NOTHEX".to_string(),
            "not a valid sha256 digest",
        ),
        ("blobs/sha512/abcd".to_string(), "only sha256"),
    ] {
        // The hostile entry comes first, then a complete, valid layout.
        let mut b = tar::Builder::new(Vec::new());
        oci::raw_entry(&mut b, name.as_bytes(), b"evil");
        let mut tar = b.into_inner().unwrap();
        tar.truncate(tar.len() - 1024);
        tar.extend_from_slice(&good);
        let file = env.file("hostile.tar", &tar);
        refused(&env.import(&file, &[]), needle);
        env.assert_empty(&name);
        assert!(!Path::new("/tmp").join(&marker).exists());
    }

    // docker save with a layer path that climbs out (case #40), manifest.json first.
    let legacy = oci::docker_save_legacy(&[base_tar()], json!({}), &["test/x:1"], None);
    for bad in ["../../etc/shadow", "/etc/shadow", "x/../../layer.tar"] {
        let manifest = json!([{"Config": "c.json", "RepoTags": ["test/x:1"], "Layers": [bad]}]);
        let cfg_hex = Digest::of(b"x").encoded().to_string();
        let manifest = serde_json::to_string(&manifest)
            .unwrap()
            .replace("c.json", &format!("{cfg_hex}.json"));
        let mut b = tar::Builder::new(Vec::new());
        oci::raw_entry(&mut b, b"manifest.json", manifest.as_bytes());
        let mut tar = b.into_inner().unwrap();
        tar.truncate(tar.len() - 1024);
        tar.extend_from_slice(&legacy);
        let file = env.file("legacy-hostile.tar", &tar);
        refused(&env.import(&file, &[]), "refused");
        env.assert_empty(bad);
    }

    // A legacy archive whose (uncompressed) layer is not the config's DiffID.
    let wrong = oci::docker_save_legacy(
        &[base_tar(), app_tar()],
        json!({}),
        &["test/x:1"],
        Some(vec![Digest::of(&base_tar()), Digest::of(b"nope")]),
    );
    refused(
        &env.import(&env.file("wrong.tar", &wrong), &[]),
        "but the config's diff_id is",
    );
    env.assert_empty("legacy diff_id");
    let short = oci::docker_save_legacy(
        &[base_tar(), app_tar()],
        json!({}),
        &["test/x:1"],
        Some(vec![Digest::of(&base_tar())]),
    );
    refused(
        &env.import(&env.file("short.tar", &short), &[]),
        "2 layers but 1 diff_ids",
    );
    env.assert_empty("legacy count");
}

// ---------------------------------------------------------------------------------------
// Failures half-way: disk full, kill -9, concurrency

/// A tmpfs mounted for the test, lazily unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Deterministic incompressible bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn disk_full_is_a_clear_error_and_the_store_stays_usable() {
    let env = Env::new();
    let _fs = Tmpfs::mount(env.root(), "8m");
    let small = Image::new(
        vec![Layer::gz(base_tar())],
        json!({"Env": ["PATH=/bin"], "Cmd": ["/bin/sh", "-c", "echo small"]}),
    );
    let small_layout = env.layout("small", &[(&small, Some("test/small:1"))]);
    // The default 1 GiB reserve refuses any import on an 8 MiB filesystem, cleanly.
    refused(&env.import(&small_layout, &[]), "must stay free");
    env.assert_empty("refused by the reserve");
    // Without a reserve, what happens when the disk really fills.
    let no_reserve: &[&str] = &["--min-free", "0"];
    ok(env.import(&small_layout, no_reserve));
    assert_eq!(env.run_stdout("test/small:1", &[], &[]), "small\n");

    // Compresses to almost nothing, unpacks to 20 MiB: the unpack is capped at the free
    // space (even with no reserve), so it stops there instead of at ENOSPC.
    let zeros = oci::tar(&[E::File("big", vec![0u8; 20 << 20], 0o644)]);
    let bomb = Image::new(
        vec![Layer::gz(base_tar()), Layer::gz(zeros)],
        json!({"Cmd": ["/bin/sh"]}),
    );
    let bomb_layout = env.layout("bomb", &[(&bomb, Some("test/big:1"))]);
    refused(
        &env.import(&bomb_layout, no_reserve),
        "free and 0 B must stay free",
    );
    // With a store cap below it, the same bomb stops at the cap instead of the disk.
    let capped: &[&str] = &["--min-free", "0", "--max-store", "4M"];
    refused(
        &env.import(&bomb_layout, capped),
        "the store may take 4.0 MiB",
    );
    // Incompressible: the disk fills while staging blobs.
    let noisy = oci::tar(&[E::File("noise", noise(10 << 20), 0o644)]);
    let big = Image::new(vec![Layer::plain(noisy)], json!({"Cmd": ["/bin/sh"]}));
    refused(
        &env.import(
            &env.layout("noise", &[(&big, Some("test/big:2"))]),
            no_reserve,
        ),
        "disk full under",
    );

    assert_eq!(env.entries("staging"), Vec::<String>::new(), "staging left");
    assert_eq!(env.entries("blobs/.incoming"), Vec::<String>::new());
    assert_eq!(
        env.entries("rootfs"),
        vec![small.digest().encoded().to_string()]
    );
    let ls = env.ls();
    assert_eq!(ls.as_array().unwrap().len(), 1, "{ls}");
    assert_eq!(env.run_stdout("test/small:1", &[], &[]), "small\n");
}

/// An image whose one layer holds many small files: slow enough to kill mid-unpack.
fn many_files_image(files: usize) -> Image {
    let names: Vec<String> = (0..files)
        .map(|i| format!("many/{:03}/f{i}", i % 200))
        .collect();
    let mut entries = vec![E::Dir("many")];
    let dirs: Vec<String> = (0..200.min(files))
        .map(|d| format!("many/{d:03}"))
        .collect();
    entries.extend(dirs.iter().map(|d| E::Dir(d)));
    entries.extend(names.iter().map(|n| E::File(n, vec![b'x'; 700], 0o644)));
    Image::new(
        vec![Layer::gz(oci::tar(&entries))],
        json!({"Cmd": ["/bin/true"]}),
    )
}

#[test]
fn kill_9_mid_unpack_leaves_nothing_half_visible() {
    let env = Env::new();
    let image = many_files_image(40_000);
    let layout = env.layout("many", &[(&image, Some("test/many:1"))]);
    let hex = image.digest().encoded().to_string();
    let staging = env.root().join("staging");
    let mut child = Command::new(BIN)
        .arg("image")
        .arg("--root")
        .arg(env.root())
        .arg("import")
        .arg(&layout)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let unpacking = std::fs::read_dir(&staging)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(&hex))
            })
            .unwrap_or(false);
        if unpacking {
            break true;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    assert!(seen, "never saw the unpack's staging dir");
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: kill on the pid of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "the import finished before the kill"
    );

    // Nothing half-visible: no rootfs, no name; the staging dir is left for the next command.
    assert_eq!(env.entries("rootfs"), Vec::<String>::new());
    let index = std::fs::read_to_string(env.root().join("images.json")).unwrap_or_default();
    assert!(!index.contains(&hex), "{index}");
    assert!(
        !env.entries("staging").is_empty(),
        "staging was already gone"
    );
    // The next command (any) cleans up.
    assert_eq!(env.ls(), json!([]));
    assert_eq!(
        env.entries("staging"),
        Vec::<String>::new(),
        "stale staging not cleaned"
    );
    assert_eq!(env.entries("blobs/.incoming"), Vec::<String>::new());
    // And the import works afterwards.
    ok(env.import(&layout, &[]));
    assert_eq!(env.entries("rootfs"), vec![hex]);
    let rootfs = env.root().join("rootfs").join(image.digest().encoded());
    assert!(rootfs.join("many/199/f39999").is_file());
}

#[test]
fn concurrent_imports_of_one_image_unpack_once() {
    let env = Env::new();
    let image = many_files_image(5_000);
    let layout = env.layout("many", &[(&image, Some("test/many:1"))]);
    let spawn = || {
        Command::new(BIN)
            .arg("image")
            .arg("--root")
            .arg(env.root())
            .args(["import", "--json"])
            .arg(&layout)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let unpacked: Vec<bool> = outs
        .iter()
        .map(|o| {
            json_of(&ok(o.clone()))["images"][0]["unpacked"]
                .as_bool()
                .unwrap()
        })
        .collect();
    assert_eq!(
        unpacked.iter().filter(|u| **u).count(),
        1,
        "exactly one unpack: {unpacked:?}"
    );
    assert_eq!(
        env.entries("rootfs"),
        vec![image.digest().encoded().to_string()]
    );
    assert_eq!(env.entries("staging"), Vec::<String>::new());
    assert_eq!(env.ls().as_array().unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------
// rm, prune, run errors

#[test]
fn rm_and_prune_free_rootfs_and_blobs() {
    let env = Env::new();
    let app = app_image();
    let other = other_image();
    ok(env.import(
        &env.layout(
            "l",
            &[(&app, Some("test/app:1")), (&other, Some("test/other:1"))],
        ),
        &[],
    ));
    assert_eq!(env.entries("rootfs").len(), 2);
    // Removing a missing name (even with a valid one) removes nothing.
    refused(
        &env.image(&["rm", "test/app:1", "test/nope:1"]),
        "no image 'test/nope:1'",
    );
    assert_eq!(env.ls().as_array().unwrap().len(), 2);

    ok(env.image(&["rm", "test/app:1"]));
    assert_eq!(
        env.entries("rootfs").len(),
        2,
        "rm keeps the rootfs until prune"
    );
    refused(&env.run("test/app:1", &[], &[]), "not in the store");
    let report = json_of(&ok(env.image(&["prune", "--json"])));
    assert_eq!(report["rootfs"][0]["digest"], app.digest().to_string());
    let freed: Vec<&str> = report["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap())
        .collect();
    let shared = app.layers[0].digest().to_string();
    assert!(
        !freed.contains(&shared.as_str()),
        "the shared base layer was freed"
    );
    assert_eq!(
        freed.len(),
        4,
        "app's manifest, config and two own layers: {freed:?}"
    );
    assert!(report["bytes"].as_u64().unwrap() > 1 << 20);
    assert_eq!(
        env.entries("rootfs"),
        vec![other.digest().encoded().to_string()]
    );
    assert_eq!(env.run_stdout("test/other:1", &[], &[]), "other\n");

    ok(env.image(&["rm", &other.digest().to_string()]));
    let human = String::from_utf8_lossy(&ok(env.image(&["prune"])).stdout).into_owned();
    assert!(human.contains("removed 1 rootfs and 4 blobs"), "{human}");
    env.assert_empty("after prune");
}

#[test]
fn run_image_errors_are_bad_input() {
    let env = Env::new();
    let out = env.run("judge/missing:7", &[], &["/bin/true"]);
    let root = env.root();
    let root = root.display();
    refused(&out, "judgebox image pull judge/missing:7");
    refused(
        &out,
        &format!("judgebox image import PATH --tag judge/missing:7 --root {root}"),
    );

    let conflict = Command::new(BIN)
        .args(["run", "--image", "x", "--rootfs", "/", "--", "/bin/true"])
        .output()
        .unwrap();
    refused(&conflict, "cannot be used with");

    let bare = Image::new(vec![Layer::gz(base_tar())], json!({"Env": ["PATH=/bin"]}));
    let mut escape_cfg = oci::config_json(
        &bare.layers,
        json!({"Cmd": ["/bin/pwd"], "WorkingDir": "/../../etc"}),
    );
    escape_cfg["os"] = json!("linux");
    let escape = Image::with_config(bare.layers.clone(), &escape_cfg);
    let symlinked_tmp = Image::new(
        vec![
            Layer::gz(base_tar()),
            Layer::gz(oci::tar(&[E::Symlink("tmp", "/etc")])),
        ],
        json!({"Cmd": ["/bin/true"]}),
    );
    ok(env.import(
        &env.layout(
            "l",
            &[
                (&bare, Some("test/bare:1")),
                (&escape, Some("test/escape:1")),
                (&symlinked_tmp, Some("test/tmplink:1")),
            ],
        ),
        &[],
    ));
    refused(
        &env.run("test/bare:1", &[], &[]),
        "has neither Entrypoint nor Cmd",
    );
    assert_eq!(
        env.run_stdout("test/bare:1", &[], &["/bin/echo", "ok"]),
        "ok\n"
    );
    refused(
        &env.run("test/escape:1", &[], &[]),
        "invalid working directory '/../../etc'",
    );
    refused(
        &env.run("test/tmplink:1", &[], &[]),
        "tmp is a symlink or not a directory",
    );
}

// ---------------------------------------------------------------------------------------
// The real Debian image, when the layout was built (CI builds it before the tests)

const REAL_LAYOUT: &str = "/var/cache/judgebox/oci";

#[test]
fn real_python3_image_runs() {
    let index = Path::new(REAL_LAYOUT).join("index.json");
    let has_python =
        std::fs::read_to_string(&index).is_ok_and(|s| s.contains("judgebox/python3:bookworm"));
    if !has_python {
        eprintln!("SKIPPED real_python3_image_runs: no judgebox/python3:bookworm in {REAL_LAYOUT} (build the language images first)");
        return;
    }
    let env = Env::new();
    let started = Instant::now();
    ok(env.import(
        Path::new(REAL_LAYOUT),
        &["--tag", "judgebox/python3:bookworm"],
    ));
    let took = started.elapsed();
    let rec = env.inspect("judgebox/python3:bookworm");
    eprintln!(
        "real python3 image: import {:.1} s, rootfs {} MiB, layers {} bytes",
        took.as_secs_f64(),
        rec["rootfs_bytes"].as_u64().unwrap_or(0) >> 20,
        rec["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["size"].as_u64().unwrap())
            .sum::<u64>()
    );
    let out = env.run_stdout(
        "judgebox/python3:bookworm",
        &[],
        &["python3", "-c", "print(6*7)"],
    );
    assert_eq!(out, "42\n");
}
