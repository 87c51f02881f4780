//! isolate's configuration file (`/usr/local/etc/isolate`, or `$ISOLATE_CONFIG_FILE`):
//! `key = value` lines. judgebox uses box_root, lock_root, first_uid, first_gid,
//! num_boxes and subid_user; cg_root, restricted_init and syscall_flags are accepted.

use std::path::{Path, PathBuf};

/// Where isolate looks for its configuration.
pub const DEFAULT_CONFIG: &str = "/usr/local/etc/isolate";
/// Environment variable naming another configuration file.
pub const CONFIG_ENV: &str = "ISOLATE_CONFIG_FILE";

/// The settings judgebox uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub box_root: PathBuf,
    pub lock_root: PathBuf,
    pub first_uid: u32,
    pub first_gid: u32,
    pub num_boxes: u32,
    /// The file the settings came from (None: built-in defaults, no file exists).
    pub source: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            box_root: "/var/local/lib/isolate".into(),
            lock_root: "/run/isolate/locks".into(),
            first_uid: 60000,
            first_gid: 60000,
            num_boxes: 1000,
            source: None,
        }
    }
}

/// A problem with the configuration; messages are isolate's wording.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Error in config file, line {line}: {what}")]
    Line { line: usize, what: String },
    #[error("{0}")]
    Ids(String),
}

fn line_err(line: usize, what: &str) -> ConfigError {
    ConfigError::Line {
        line,
        what: what.into(),
    }
}

fn int(line: usize, val: &str) -> Result<u32, ConfigError> {
    val.parse::<u32>()
        .ok()
        .filter(|&v| v <= i32::MAX as u32)
        .ok_or_else(|| line_err(line, "Invalid number"))
}

/// Reads the configuration: `$ISOLATE_CONFIG_FILE` if set (it must exist), else
/// /usr/local/etc/isolate if it exists, else isolate's defaults.
pub fn load() -> Result<Settings, ConfigError> {
    match std::env::var_os(CONFIG_ENV) {
        Some(p) => load_file(Path::new(&p)),
        None if Path::new(DEFAULT_CONFIG).exists() => load_file(Path::new(DEFAULT_CONFIG)),
        None => Ok(Settings::default()),
    }
}

pub fn load_file(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut s = parse(&text)?;
    s.source = Some(path.to_path_buf());
    Ok(s)
}

#[derive(Default)]
struct Raw {
    first_uid: Option<u32>,
    first_gid: Option<u32>,
    num_boxes: Option<u32>,
    subid_user: Option<String>,
}

/// Parses the file's text (isolate's syntax: `#` comments, `key = value`).
pub fn parse(text: &str) -> Result<Settings, ConfigError> {
    let mut s = Settings::default();
    let mut raw = Raw::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, val) = line
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| line_err(n, "Syntax error, expecting key=value"))?;
        if key.contains([' ', '\t']) {
            return Err(line_err(n, "Syntax error, expecting key=value"));
        }
        match key {
            "box_root" => s.box_root = val.into(),
            "lock_root" => s.lock_root = val.into(),
            "first_uid" => raw.first_uid = Some(int(n, val)?),
            "first_gid" => raw.first_gid = Some(int(n, val)?),
            "num_boxes" => raw.num_boxes = Some(int(n, val)?),
            "subid_user" => raw.subid_user = Some(val.to_string()),
            // judgebox finds its own cgroup parent; only root runs judgebox; judgebox's
            // seccomp allow-list replaces isolate's syscall flags.
            "cg_root" | "restricted_init" | "syscall_flags" => {}
            k if k.starts_with("box") && k.contains('.') => {
                return Err(line_err(
                    n,
                    "Per-box cpus/mems are not supported by judgebox",
                ))
            }
            _ => return Err(line_err(n, "Unknown configuration item")),
        }
    }
    if !s.box_root.is_absolute() || !s.lock_root.is_absolute() {
        return Err(ConfigError::Ids(
            "Configuration error: box_root and lock_root must be absolute paths".into(),
        ));
    }
    resolve_ids(&mut s, raw, Path::new("/etc"))?;
    Ok(s)
}

/// first_uid/first_gid/num_boxes, from the file or /etc/subuid and /etc/subgid.
fn resolve_ids(s: &mut Settings, raw: Raw, etc: &Path) -> Result<(), ConfigError> {
    if let Some(user) = raw.subid_user {
        if raw.first_uid.is_some() || raw.first_gid.is_some() {
            return Err(ConfigError::Ids(
                "Configuration must not specify both subid_user and first_uid/first_gid".into(),
            ));
        }
        let (uid, nu) = find_subid(&etc.join("subuid"), &user)?;
        let (gid, ng) = find_subid(&etc.join("subgid"), &user)?;
        s.first_uid = uid;
        s.first_gid = gid;
        s.num_boxes = raw.num_boxes.unwrap_or(nu.min(ng));
        if s.num_boxes > nu.min(ng) {
            return Err(ConfigError::Ids(format!(
                "Configured num_boxes={}, but only {} subuids are available",
                s.num_boxes,
                nu.min(ng)
            )));
        }
    } else {
        s.first_uid = raw.first_uid.unwrap_or(s.first_uid);
        s.first_gid = raw.first_gid.unwrap_or(s.first_gid);
        s.num_boxes = raw.num_boxes.unwrap_or(s.num_boxes);
    }
    if s.first_uid == 0 || s.first_gid == 0 || s.num_boxes == 0 {
        return Err(ConfigError::Ids(
            "Configuration error: first_uid, first_gid and num_boxes must be positive".into(),
        ));
    }
    if s.first_uid.checked_add(s.num_boxes).is_none()
        || s.first_gid.checked_add(s.num_boxes).is_none()
    {
        return Err(ConfigError::Ids(
            "Configuration error: uid/gid range overflows".into(),
        ));
    }
    Ok(())
}

fn find_subid(file: &Path, user: &str) -> Result<(u32, u32), ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Open {
        path: file.to_path_buf(),
        source,
    })?;
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 3 && f[0] == user {
            let start = f[1].trim().parse().ok();
            let count = f[2].trim().parse().ok();
            return match (start, count) {
                (Some(s), Some(c)) => Ok((s, c)),
                _ => Err(ConfigError::Ids(format!(
                    "Cannot parse line for user {user} in {}",
                    file.display()
                ))),
            };
        }
    }
    Err(ConfigError::Ids(format!(
        "User {user} not found in {}",
        file.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_defaults_and_errors() {
        let s = parse("# c\nbox_root = /x/boxes\ncg_root = auto:/run/isolate/cgroup\nfirst_uid=1000\nfirst_gid = 2000\nnum_boxes = 10\n").unwrap();
        assert_eq!(s.box_root, PathBuf::from("/x/boxes"));
        assert_eq!((s.first_uid, s.first_gid, s.num_boxes), (1000, 2000, 10));
        assert_eq!(s.lock_root, PathBuf::from("/run/isolate/locks"));
        let e = parse("\nbogus = 1\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "Error in config file, line 2: Unknown configuration item"
        );
        assert!(parse("first_uid = x\n")
            .unwrap_err()
            .to_string()
            .ends_with("Invalid number"));
        assert!(parse("box_root\n").is_err());
        assert!(parse("box_root = relative\n").is_err());
        assert!(parse("first_uid = 0\n").is_err());
        assert!(parse("box0.cpus = 1\n").is_err());
    }

    #[test]
    fn subid_user_reads_the_subid_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("subuid"),
            "other:1:2\nisolate:100000:65536\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("subgid"), "isolate:200000:500\n").unwrap();
        let mut s = Settings::default();
        let raw = Raw {
            subid_user: Some("isolate".into()),
            ..Raw::default()
        };
        resolve_ids(&mut s, raw, dir.path()).unwrap();
        assert_eq!(
            (s.first_uid, s.first_gid, s.num_boxes),
            (100000, 200000, 500)
        );
    }
}
