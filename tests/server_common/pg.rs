//! A throwaway PostgreSQL server for the tests: Debian's binaries, initdb in a temporary
//! directory as `nobody`, trust authentication, stopped (`-m immediate`) and removed on drop.

use std::path::PathBuf;
use std::process::Command;

/// Debian's PostgreSQL binaries (`apt-get install postgresql`).
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

pub struct TempPostgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    /// Run pg_ctl in this network namespace (`ip netns exec`), if any.
    netns: Option<String>,
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TempPostgres {
    /// initdb and start, listening on `listen` (`listen_addresses`) and a unix socket in
    /// its directory; in `netns` when given.
    pub fn start(listen: &str, netns: Option<&str>) -> TempPostgres {
        let bin = bin_dir().expect("PostgreSQL binaries in /usr/lib/postgresql/*/bin");
        let dir = tempfile::Builder::new()
            .prefix("judgebox-pg.")
            .tempdir()
            .unwrap();
        let (uid, gid) = (65534, 65534);
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let pg = TempPostgres {
            port: super::free_port(),
            dir,
            bin,
            netns: netns.map(String::from),
        };
        run(
            pg.as_nobody("initdb").args([
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb",
        );
        let conf = format!(
            "listen_addresses = '{listen}'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 300\nfsync = on\nlog_min_messages = warning\n",
            pg.port,
            pg.dir.path().display()
        );
        std::fs::write(format!("{}/postgresql.auto.conf", pg.data()), conf).unwrap();
        let hba = "local all all trust\nhost all all 0.0.0.0/0 trust\n";
        std::fs::write(format!("{}/pg_hba.conf", pg.data()), hba).unwrap();
        pg.ctl(&["start", "-w", "-t", "60"]);
        pg
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.path().display())
    }

    fn as_nobody(&self, tool: &str) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "runuser", "-u", "nobody", "--"]);
                c
            }
            None => {
                let mut c = Command::new("runuser");
                c.args(["-u", "nobody", "--"]);
                c
            }
        };
        c.arg(self.bin.join(tool)).current_dir(self.dir.path());
        c
    }

    /// pg_ctl with `args` (start, stop, restart ...).
    pub fn ctl(&self, args: &[&str]) {
        let log = format!("{}/server.log", self.dir.path().display());
        run(
            self.as_nobody("pg_ctl")
                .args(["-D", &self.data(), "-l", &log])
                .args(args),
            &format!("pg_ctl {args:?}"),
        );
    }

    /// A libpq connection string for `db` at `host`.
    pub fn conninfo(&self, host: &str, db: &str) -> String {
        format!(
            "host={host} port={} user=postgres dbname={db} sslmode=disable",
            self.port
        )
    }

    /// A new empty database over the unix socket; returns its name.
    pub fn create_db(&self) -> String {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "jb_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let mut c = self.client("postgres");
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        name
    }

    /// A client over the unix socket (works whatever namespace the server is in).
    pub fn client(&self, db: &str) -> postgres::Client {
        let info = self.conninfo(&self.dir.path().display().to_string(), db);
        postgres::Client::connect(&info, postgres::NoTls).unwrap()
    }
}

impl TempPostgres {
    /// Stops the server at once and removes its directory (idempotent).
    pub fn stop_now(&self) {
        let log = format!("{}/server.log", self.dir.path().display());
        let _ = self
            .as_nobody("pg_ctl")
            .args(["-D", &self.data(), "-l", &log, "stop", "-m", "immediate"])
            .output();
        let _ = std::fs::remove_dir_all(self.dir.path());
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop_now();
    }
}
