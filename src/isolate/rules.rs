//! isolate's directory rules (`-d in[=out][:opts]`, the default set, `-D`), and their
//! translation into the sandbox's mount plan. A rule for an existing `in` replaces it in
//! place; `in=` disables it; `./out` is relative to the box directory.

use crate::sandbox::{FsKind, MountPlan, MountRule, MountSource};
use std::path::Path;

/// One rule as isolate keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRule {
    /// Relative, without `..`.
    pub inside: String,
    /// None: the rule is disabled (`in=`).
    pub outside: Option<String>,
    pub flags: Flags,
    pub default: bool,
}

/// A rule's options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub rw: bool,
    pub noexec: bool,
    pub fs: bool,
    pub maybe: bool,
    pub dev: bool,
    pub tmp: bool,
    pub norec: bool,
}

/// The ordered rule list.
#[derive(Debug, Clone)]
pub struct DirRules {
    pub rules: Vec<DirRule>,
    /// `-D`: the default rules are left out.
    pub no_defaults: bool,
}

const DEFAULTS: &[&str] = &[
    "box=./box:rw",
    "bin",
    "dev:dev:norec",
    "dev/shm=tmpfs:fs:rw",
    "lib",
    "lib64:maybe",
    "proc=proc:fs",
    "tmp:tmp",
    "usr",
];

/// isolate's sanitize_dir_path: leading slashes stripped; empty or `..` refused.
fn sanitize(path: &str) -> Option<String> {
    let p = path.trim_start_matches('/');
    if p.is_empty() || p.split('/').any(|c| c == "..") {
        return None;
    }
    Some(p.to_string())
}

fn parse_flag(opt: &str, f: &mut Flags) -> Result<(), String> {
    match opt {
        "rw" => f.rw = true,
        "noexec" => f.noexec = true,
        "fs" => f.fs = true,
        "maybe" => f.maybe = true,
        "dev" => f.dev = true,
        "tmp" => f.tmp = true,
        "norec" => f.norec = true,
        _ => return Err(format!("Unknown option '{opt}'")),
    }
    Ok(())
}

impl DirRules {
    pub fn with_defaults() -> DirRules {
        let mut r = DirRules {
            rules: Vec::new(),
            no_defaults: false,
        };
        for d in DEFAULTS {
            r.add(d, true).expect("built-in directory rule");
        }
        r
    }

    /// A `-d` argument; the error is isolate's wording.
    pub fn set(&mut self, arg: &str) -> Result<(), String> {
        self.add(arg, false)
    }

    fn add(&mut self, arg: &str, default: bool) -> Result<(), String> {
        let mut parts = arg.split(':');
        let spec = parts.next().unwrap_or_default();
        let mut flags = Flags::default();
        for opt in parts {
            parse_flag(opt, &mut flags)?;
        }
        let (inside, eq) = match spec.split_once('=') {
            Some((i, o)) => (i, Some(o)),
            None => (spec, None),
        };
        if flags.fs && flags.tmp {
            return Err("Flags 'fs' and 'tmp' are mutually exclusive".into());
        }
        let outside = if flags.fs {
            let fs = eq.ok_or("Missing filesystem name")?;
            if !matches!(fs, "proc" | "sysfs" | "tmpfs" | "devpts") {
                return Err("This filesystem is not supported".into());
            }
            Some(fs.to_string())
        } else if flags.tmp {
            if eq.is_some() {
                return Err("Temporary directory mounts do not have a right-hand side".into());
            }
            flags.rw = true;
            None
        } else {
            match eq {
                Some("") => None,
                Some(o) if !o.starts_with('/') && !o.starts_with("./") => {
                    return Err("Right-hand side must start with '/' or './'".into())
                }
                Some(o) => Some(o.to_string()),
                None => Some(format!("/{}", inside.trim_start_matches('/'))),
            }
        };
        let inside = sanitize(inside).ok_or("Invalid path")?;
        let disabled = !flags.fs && !flags.tmp && outside.is_none();
        let rule = DirRule {
            inside,
            outside: if disabled {
                None
            } else {
                outside.or(Some(String::new()))
            },
            flags,
            default,
        };
        match self.rules.iter_mut().find(|r| r.inside == rule.inside) {
            Some(existing) => *existing = rule,
            None => self.rules.push(rule),
        }
        Ok(())
    }

    /// The rules in effect (defaults unless `-D`), enabled ones only.
    pub fn active(&self) -> impl Iterator<Item = &DirRule> {
        self.rules
            .iter()
            .filter(move |r| !(self.no_defaults && r.default) && r.outside.is_some())
    }

    /// The mount plan for a box whose directory (holding `box/`) is `box_dir`. `maybe`
    /// rules whose host directory is missing (or, with a `caller` identity, out of the
    /// caller's reach) are left out, and init opens the sources as `caller`.
    pub fn to_plan(&self, box_dir: &Path, caller: Option<(u32, u32)>) -> MountPlan {
        let mut rules = Vec::new();
        let default_dev = self.active().any(|r| r.default && r.inside == "dev");
        for r in self.active() {
            if default_dev && r.default && r.inside == "dev/shm" {
                continue; // judgebox's /dev has its own /dev/shm tmpfs
            }
            let Some(source) = source_of(r, box_dir, caller) else {
                continue;
            };
            rules.push(MountRule {
                inside: r.inside.clone(),
                source,
                rw: r.flags.rw,
                dev: r.flags.dev,
                noexec: r.flags.noexec,
                recursive: !r.flags.norec,
            });
        }
        MountPlan { rules, caller }
    }
}

/// What a rule mounts; None for a `maybe` rule whose directory does not exist.
fn source_of(r: &DirRule, box_dir: &Path, caller: Option<(u32, u32)>) -> Option<MountSource> {
    let out = r.outside.as_deref().unwrap_or_default();
    if r.flags.tmp {
        return Some(MountSource::Tmp);
    }
    if r.flags.fs {
        return Some(match out {
            "proc" => MountSource::Proc,
            "sysfs" => MountSource::Fs(FsKind::Sysfs),
            "devpts" => MountSource::Fs(FsKind::Devpts),
            _ => MountSource::Fs(FsKind::Tmpfs),
        });
    }
    if r.default && r.inside == "dev" {
        return Some(MountSource::Dev);
    }
    let source = match out.strip_prefix("./") {
        Some(rel) => MountSource::Beneath {
            base: box_dir.to_path_buf(),
            rel: rel.trim_end_matches('/').to_string(),
        },
        None => MountSource::Host(out.into()),
    };
    if r.flags.maybe && reachable(&source, caller).is_err() {
        return None;
    }
    Some(source)
}

/// Whether a bind source is a directory the caller (root when None) can reach: the
/// check isolate makes with the caller's identity before a bind. Err is the errno.
pub fn reachable(s: &MountSource, caller: Option<(u32, u32)>) -> Result<(), i32> {
    let check = || {
        match s {
            MountSource::Host(p) => std::fs::metadata(p).map(|m| m.is_dir()),
            MountSource::Beneath { base, rel } => {
                std::fs::symlink_metadata(base.join(rel)).map(|m| m.is_dir())
            }
            _ => Ok(true),
        }
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
        .and_then(|dir| if dir { Ok(()) } else { Err(libc::ENOTDIR) })
    };
    match caller {
        Some(ids) => super::caller::with_identity(ids, check),
        None => check(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_translate_to_judgebox_mounts() {
        let plan = DirRules::with_defaults().to_plan(Path::new("/b/1"), None);
        let inside: Vec<_> = plan.rules.iter().map(|r| r.inside.as_str()).collect();
        let mut want = vec!["box", "bin", "dev", "lib"];
        if Path::new("/lib64").is_dir() {
            want.push("lib64");
        }
        want.extend(["proc", "tmp", "usr"]);
        assert_eq!(inside, want);
        let b = &plan.rules[0];
        assert!(b.rw);
        assert_eq!(
            b.source,
            MountSource::Beneath {
                base: "/b/1".into(),
                rel: "box".into()
            }
        );
        assert_eq!(plan.rules[2].source, MountSource::Dev);
        assert!(plan
            .rules
            .iter()
            .all(|r| r.inside == "box" || r.inside == "tmp" || !r.rw));
    }

    #[test]
    fn user_rules_replace_in_place_and_disable() {
        let mut r = DirRules::with_defaults();
        r.set("/etc:noexec").unwrap();
        r.set("bin=").unwrap();
        r.set("/usr=/opt/x:rw").unwrap();
        r.set("/data=/nonexistent-judgebox:maybe").unwrap();
        let plan = r.to_plan(Path::new("/b/1"), None);
        assert!(!plan
            .rules
            .iter()
            .any(|r| r.inside == "bin" || r.inside == "data"));
        let usr = plan.rules.iter().position(|r| r.inside == "usr").unwrap();
        let etc = plan.rules.iter().position(|r| r.inside == "etc").unwrap();
        assert!(usr < etc, "a replaced rule keeps its place");
        assert_eq!(plan.rules[usr].source, MountSource::Host("/opt/x".into()));
        assert!(plan.rules[etc].noexec && !plan.rules[etc].rw);
        r.no_defaults = true;
        let only: Vec<_> = r
            .to_plan(Path::new("/b"), None)
            .rules
            .into_iter()
            .map(|r| r.inside)
            .collect();
        // A user rule that replaced a default one is a user rule: -D keeps it (as isolate).
        assert_eq!(only, ["usr", "etc"]);
    }

    #[test]
    fn isolate_error_wording() {
        let mut r = DirRules::with_defaults();
        assert_eq!(r.set("a:bogus").unwrap_err(), "Unknown option 'bogus'");
        assert_eq!(
            r.set("a=x").unwrap_err(),
            "Right-hand side must start with '/' or './'"
        );
        assert_eq!(r.set("../x").unwrap_err(), "Invalid path");
        assert_eq!(r.set("a:fs").unwrap_err(), "Missing filesystem name");
        assert_eq!(
            r.set("a=ext4:fs").unwrap_err(),
            "This filesystem is not supported"
        );
        assert_eq!(
            r.set("a:fs:tmp").unwrap_err(),
            "Flags 'fs' and 'tmp' are mutually exclusive"
        );
        assert_eq!(
            r.set("a=/x:tmp").unwrap_err(),
            "Temporary directory mounts do not have a right-hand side"
        );
    }
}
