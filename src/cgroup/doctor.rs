//! Data for `judgebox doctor`: where each controller lives and whether runs get it,
//! whether judgebox can create a run cgroup (tried for real), and human fix texts for
//! the problems found (delegation, read-only container cgroupfs, WSL2, hybrid hosts).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::v2::ParentSource;
use super::{fs, Backend, Limits, Manager, Mode, Problem};

/// Controllers (and v1 helpers) doctor reports on.
const REPORTED: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "freezer"];

/// Everything `judgebox doctor` prints about cgroups.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DoctorReport {
    /// Effective mode ("unified"/"hybrid"/"legacy"/"none").
    pub mode: Mode,
    pub none_reason: Option<String>,
    pub problem: Option<Problem>,
    pub cgroup2_mount: Option<PathBuf>,
    /// `cgroup.controllers` at the cgroup2 mount point.
    pub cgroup2_controllers: Vec<String>,
    /// Own cgroup paths as /proc/self/cgroup shows them ("memory: /a/b", "0: /x").
    pub own_cgroups: Vec<String>,
    /// Where run cgroups are created.
    pub parents: Vec<PathBuf>,
    /// v2 only: why that parent ("explicit", "delegated", "root-child").
    pub parent_source: Option<ParentSource>,
    pub controllers: Vec<ControllerStatus>,
    /// A run cgroup was created and removed just now.
    pub can_create: bool,
    pub create_error: Option<String>,
    /// Time of that create + remove, in microseconds.
    pub create_remove_us: Option<u64>,
    /// Crashed runs' cgroups reaped at startup.
    pub reaped: usize,
    pub environment: Environment,
    /// Non-fatal problems met while preparing.
    pub notes: Vec<String>,
    /// What to do, in words a user can follow.
    pub fixes: Vec<String>,
}

/// One controller: where it is mounted and whether runs get it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ControllerStatus {
    pub name: String,
    /// "cgroup2", "cgroup1" or "missing".
    pub hierarchy: String,
    pub mount: Option<PathBuf>,
    /// Run cgroups get this controller.
    pub usable: bool,
    pub note: Option<String>,
}

/// Facts about where judgebox runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Environment {
    pub euid: u32,
    /// systemd is the init system.
    pub systemd: bool,
    /// Running under WSL2 (kernel release names Microsoft/WSL).
    pub wsl: bool,
    /// "docker", "podman" or the `container=` value of pid 1, if in a container.
    pub container: Option<String>,
    pub kernel: String,
}

impl Environment {
    fn detect(euid: u32, systemd: bool) -> Environment {
        let kernel = fs::read_file(Path::new("/proc/sys/kernel/osrelease"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let lower = kernel.to_ascii_lowercase();
        Environment {
            euid,
            systemd,
            wsl: lower.contains("microsoft") || lower.contains("wsl"),
            container: detect_container(),
            kernel,
        }
    }
}

fn detect_container() -> Option<String> {
    if Path::new("/.dockerenv").exists() {
        return Some("docker".into());
    }
    if Path::new("/run/.containerenv").exists() {
        return Some("podman".into());
    }
    let environ = std::fs::read("/proc/1/environ").ok()?;
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"container="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

pub(super) fn report(m: &Manager) -> DoctorReport {
    let environment = Environment::detect(m.facts.euid, m.facts.systemd_booted);
    let (can_create, create_error, create_remove_us) = try_create(m);
    let cgroup2_controllers: Vec<String> = m
        .v2_controllers
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let controllers = controller_statuses(m);
    let parent_source = match &m.backend {
        Backend::V2(p) => Some(p.source),
        _ => None,
    };
    let input = FixInput {
        mode: m.mode,
        problem: m.problem,
        env: &environment,
        cgroup2_mount: m.layout.v2.as_ref().map(|v| v.mount.mount_point.clone()),
        cgroup2_controllers: &cgroup2_controllers,
        controllers: &controllers,
        parents: m.parents(),
    };
    DoctorReport {
        mode: m.mode,
        none_reason: m.none_reason.clone(),
        problem: m.problem,
        cgroup2_mount: input.cgroup2_mount.clone(),
        cgroup2_controllers: cgroup2_controllers.clone(),
        own_cgroups: own_cgroups(),
        parents: m.parents(),
        parent_source,
        fixes: fixes(&input),
        controllers,
        can_create,
        create_error,
        create_remove_us,
        reaped: m.reaped,
        environment,
        notes: m.notes.clone(),
    }
}

fn own_cgroups() -> Vec<String> {
    fs::read_file(Path::new("/proc/self/cgroup"))
        .map(|t| {
            super::detect::parse_proc_cgroup(&t)
                .into_iter()
                .map(|p| {
                    let key = if p.controllers.is_empty() {
                        p.hierarchy_id.to_string()
                    } else {
                        p.controllers.join(",")
                    };
                    format!("{key}: {}", p.path)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Creates and removes one unlimited run cgroup; returns (ok, error, microseconds).
fn try_create(m: &Manager) -> (bool, Option<String>, Option<u64>) {
    if matches!(m.backend, Backend::None) {
        return (false, m.none_reason.clone(), None);
    }
    let start = Instant::now();
    let result = m
        .create_run(&Limits::default())
        .and_then(|run| run.remove());
    let us = start.elapsed().as_micros() as u64;
    match result {
        Ok(()) => (true, None, Some(us)),
        Err(e) => (false, Some(e.to_string()), None),
    }
}

fn controller_statuses(m: &Manager) -> Vec<ControllerStatus> {
    REPORTED.iter().map(|name| status(m, name)).collect()
}

fn status(m: &Manager, name: &str) -> ControllerStatus {
    let v1 = m.layout.v1_for(name);
    let on_v2 = m.v2_controllers.split_whitespace().any(|c| c == name);
    let (hierarchy, mount) = match (v1, &m.layout.v2) {
        (Some(h), _) => ("cgroup1", Some(h.mount.mount_point.clone())),
        (None, Some(v2)) if on_v2 || is_v2_core(name) => {
            ("cgroup2", Some(v2.mount.mount_point.clone()))
        }
        _ => ("missing", None),
    };
    let (usable, note) = usability(m, name, hierarchy);
    ControllerStatus {
        name: name.to_string(),
        hierarchy: hierarchy.to_string(),
        mount,
        usable,
        note,
    }
}

/// cgroup2 has CPU accounting (`cpu.stat`) and kill/freeze built in.
fn is_v2_core(name: &str) -> bool {
    matches!(name, "cpuacct" | "freezer")
}

fn usability(m: &Manager, name: &str, hierarchy: &str) -> (bool, Option<String>) {
    match &m.backend {
        Backend::V2(p) => {
            let usable = match name {
                "memory" => p.enabled.memory,
                "pids" => p.enabled.pids,
                "cpu" => p.enabled.cpu,
                _ => true,
            };
            let note = if is_v2_core(name) {
                Some("built into cgroup2 (cpu.stat, cgroup.kill)".to_string())
            } else if !usable {
                Some(format!(
                    "not enabled in {} (not offered by its cgroup.controllers)",
                    p.dir.join("cgroup.subtree_control").display()
                ))
            } else {
                None
            };
            (usable, note)
        }
        Backend::V1(p) => {
            let r = p.roles();
            let usable = match name {
                "memory" => r.memory,
                "pids" => r.pids,
                "cpu" => r.cpu,
                "cpuacct" => r.cpuacct,
                _ => r.freezer,
            };
            let note = (!usable).then(|| match hierarchy {
                "missing" => format!("no cgroup v1 hierarchy with {name} is mounted"),
                _ => format!("the {name} hierarchy is read-only or does not show own cgroup"),
            });
            (usable, note)
        }
        Backend::None => (false, m.none_reason.clone()),
    }
}

/// Inputs of the fix texts (a pure function, tested with fixtures).
pub(super) struct FixInput<'a> {
    pub mode: Mode,
    pub problem: Option<Problem>,
    pub env: &'a Environment,
    pub cgroup2_mount: Option<PathBuf>,
    pub cgroup2_controllers: &'a [String],
    pub controllers: &'a [ControllerStatus],
    pub parents: Vec<PathBuf>,
}

const UNIT_FIX: &str = "or run judgebox under a systemd unit with Delegate=yes, like the shipped judgebox.service (/lib/systemd/system/ from the .deb, scripts/judgebox.service in the source tree)";
const SCOPE_FIX: &str = "or wrap each call in a delegated transient scope: `systemd-run --scope -p Delegate=yes judgebox ...`";
const RLIMIT_NOTE: &str = "until then memory, pids and cpu time are limited per process with rlimits (RLIMIT_AS, RLIMIT_NPROC, RLIMIT_CPU) and cpus is not enforced";

pub(super) fn fixes(i: &FixInput) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(problem) = i.problem {
        problem_fixes(i, problem, &mut out);
        if problem != Problem::Disabled {
            out.push(RLIMIT_NOTE.to_string());
        }
        return out;
    }
    if i.mode == Mode::Hybrid {
        out.push(hybrid_note(i));
    }
    for c in i.controllers.iter().filter(|c| !c.usable) {
        out.push(controller_fix(i, c));
    }
    out
}

fn problem_fixes(i: &FixInput, problem: Problem, out: &mut Vec<String>) {
    let mount = i
        .cgroup2_mount
        .clone()
        .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
    match problem {
        Problem::Disabled => out.push("remove --no-cgroup to use cgroups".into()),
        Problem::NotDelegated => {
            // Never suggest --cgroup-root with the own cgroup: systemd manages it and would
            // kill the whole unit at the first OOM below it (issue 16).
            if std::env::var(super::SCOPE_ENV).is_ok_and(|v| v == "off") {
                out.push(format!(
                    "{}=off stops judgebox from obtaining a delegated transient scope by itself: unset it",
                    super::SCOPE_ENV
                ));
            } else {
                out.push("judgebox obtains a delegated transient scope by itself through `systemd-run --scope -p Delegate=yes` (as root, with systemd-run and /run/systemd/private present); here it could not: see none_reason".into());
            }
            out.push(UNIT_FIX.into());
            out.push(SCOPE_FIX.into());
        }
        Problem::NotRoot => {
            out.push("run judgebox as root (creating cgroups and namespaces needs it)".into());
            if i.env.systemd {
                out.push(UNIT_FIX.into());
            }
        }
        Problem::ReadOnly => read_only_fixes(i, out),
        Problem::NothingMounted => out.push(format!(
            "mount cgroup2: `mount -t cgroup2 none {}` (systemd-based systems mount it at boot)",
            mount.display()
        )),
        Problem::NoControllers => out.push(format!(
            "the cgroup2 mount at {} offers no memory, pids or cpu controller and no cgroup v1 hierarchy has them: boot with `cgroup_no_v1=all` or `systemd.unified_cgroup_hierarchy=1`",
            mount.display()
        )),
        Problem::NotVisible => out.push(
            "judgebox's own cgroup is not visible under the cgroup mount (another cgroup namespace): run it in the host's cgroup namespace, or pass --cgroup-root with a directory it may write".into(),
        ),
        Problem::BadRoot => out.push(
            "--cgroup-root must be an absolute directory below a cgroup mount point that judgebox may write, e.g. /sys/fs/cgroup/judgebox or a cgroup delegated to it (Delegate=yes); see none_reason".into(),
        ),
        Problem::CannotPrepare => {
            out.push("see none_reason; judgebox may write a cgroup delegated to it:".into());
            out.push(UNIT_FIX.into());
            out.push(SCOPE_FIX.into());
        }
    }
    if i.env.wsl && problem != Problem::Disabled {
        out.push(WSL_FIX.into());
    }
}

const WSL_FIX: &str = "WSL2: switch to a writable cgroup v2 tree: put `kernelCommandLine = cgroup_no_v1=all` under `[wsl2]` in %UserProfile%\\.wslconfig, enable systemd with `systemd=true` under `[boot]` in /etc/wsl.conf, run `wsl --shutdown` from Windows, then start judgebox through scripts/judgebox.service";

fn read_only_fixes(i: &FixInput, out: &mut Vec<String>) {
    match i.env.container.as_deref() {
        Some(engine) => out.push(format!(
            "the {engine} container's cgroup filesystem is read-only: start the container with `--privileged` (keep the default private cgroup namespace, `--cgroupns=private`) so /sys/fs/cgroup is writable; on Docker Desktop (macOS/Windows) this is the only way, or run judgebox outside the container"
        )),
        None => out.push(
            "the cgroup filesystem is mounted read-only: remount it read-write (`mount -o remount,rw /sys/fs/cgroup`) or, inside a container, start it with `--privileged`".into(),
        ),
    }
}

fn hybrid_note(i: &FixInput) -> String {
    let at = i
        .cgroup2_mount
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let offers = if i.cgroup2_controllers.is_empty() {
        "nothing".to_string()
    } else {
        i.cgroup2_controllers.join(" ")
    };
    format!(
        "hybrid host: cgroup v1 is used for memory, pids and cpu (the cgroup2 mount at {at} offers only: {offers}); no action needed. To use cgroup v2 instead, boot with `systemd.unified_cgroup_hierarchy=1` (or `cgroup_no_v1=all`)"
    )
}

fn controller_fix(i: &FixInput, c: &ControllerStatus) -> String {
    let name = &c.name;
    if c.hierarchy == "cgroup1" || i.mode == Mode::Hybrid || i.mode == Mode::Legacy {
        return format!(
            "{name}: mount it as a cgroup v1 hierarchy (`mkdir -p /sys/fs/cgroup/{name} && mount -t cgroup -o {name} none /sys/fs/cgroup/{name}`)"
        );
    }
    let parent = i
        .parents
        .first()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf);
    match parent {
        Some(up) => format!(
            "{name}: enable it for judgebox's cgroups with `echo +{name} > {}` (a unit with Delegate=yes gets all controllers)",
            up.join("cgroup.subtree_control").display()
        ),
        None => format!("{name}: not available on this host"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, hierarchy: &str, usable: bool) -> ControllerStatus {
        ControllerStatus {
            name: name.into(),
            hierarchy: hierarchy.into(),
            mount: None,
            usable,
            note: None,
        }
    }

    fn input<'a>(
        mode: Mode,
        problem: Option<Problem>,
        env: &'a Environment,
        controllers: &'a [ControllerStatus],
    ) -> FixInput<'a> {
        FixInput {
            mode,
            problem,
            env,
            cgroup2_mount: Some(PathBuf::from("/sys/fs/cgroup")),
            cgroup2_controllers: &[],
            controllers,
            parents: vec![PathBuf::from("/sys/fs/cgroup/judgebox")],
        }
    }

    #[test]
    fn not_delegated_on_systemd_names_unit_and_scope() {
        let env = Environment {
            systemd: true,
            ..Default::default()
        };
        let f = fixes(&input(Mode::None, Some(Problem::NotDelegated), &env, &[]));
        assert!(f[0].contains("by itself"));
        assert!(f[1].contains("judgebox.service") && f[1].contains("Delegate=yes"));
        assert!(f[2].contains("systemd-run --scope -p Delegate=yes judgebox"));
        assert!(f.iter().all(|s| !s.contains("--cgroup-root")));
        assert!(f.last().unwrap().contains("rlimits"));
    }

    #[test]
    fn read_only_in_docker_and_wsl() {
        let env = Environment {
            container: Some("docker".into()),
            wsl: true,
            ..Default::default()
        };
        let f = fixes(&input(Mode::None, Some(Problem::ReadOnly), &env, &[]));
        assert!(f[0].contains("docker container") && f[0].contains("--privileged"));
        assert!(f
            .iter()
            .any(|s| s.contains(".wslconfig") && s.contains("cgroup_no_v1=all")));
    }

    #[test]
    fn hybrid_notes_v1_is_used() {
        let env = Environment::default();
        let all = [status("memory", "cgroup1", true)];
        let mut i = input(Mode::Hybrid, None, &env, &all);
        let hugetlb = ["hugetlb".to_string()];
        i.cgroup2_controllers = &hugetlb;
        let f = fixes(&i);
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("hybrid host: cgroup v1 is used"));
        assert!(f[0].contains("offers only: hugetlb"));
    }

    #[test]
    fn missing_v2_controller_names_subtree_control() {
        let env = Environment::default();
        let cs = [status("pids", "cgroup2", false)];
        let f = fixes(&input(Mode::Unified, None, &env, &cs));
        assert_eq!(
            f,
            vec!["pids: enable it for judgebox's cgroups with `echo +pids > /sys/fs/cgroup/cgroup.subtree_control` (a unit with Delegate=yes gets all controllers)"]
        );
    }

    #[test]
    fn disabled_has_no_rlimit_note() {
        let env = Environment::default();
        let f = fixes(&input(Mode::None, Some(Problem::Disabled), &env, &[]));
        assert_eq!(f, vec!["remove --no-cgroup to use cgroups"]);
    }
}
