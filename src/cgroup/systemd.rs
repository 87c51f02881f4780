//! Zero setup under systemd: when judgebox runs as root in a cgroup systemd manages and has
//! not delegated (a login session's `session-N.scope`, a service without `Delegate=`), it
//! must not create cgroups there (systemd owns that subtree and may kill or move whatever
//! it finds; see issue 16: an undelegated scope was OOM-killed whole). Instead it re-executes
//! itself under `systemd-run --scope -p Delegate=yes`, which moves this very process into a
//! fresh transient scope `judgebox-<pid>.scope` that systemd hands over (the same delegated
//! scope go-judge obtains by calling `StartTransientUnit` over D-Bus, without linking a
//! D-Bus client). The pid, stdio, environment and exit status stay the same; the scope
//! disappears with the process.
//!
//! The re-executed process finds `JUDGEBOX_SCOPE=<unit>` in its environment: that stops a
//! second re-exec, and marks the unit's cgroup as delegated even on systemd < 251 (which
//! sets no `trusted.delegate` xattr). `JUDGEBOX_SCOPE=off` disables the re-exec.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use super::{detect, v2, HostView, Manager, ManagerOptions, Mode, Problem};

/// Environment variable carrying the transient scope's unit name (or `off`).
pub const SCOPE_ENV: &str = "JUDGEBOX_SCOPE";
/// The socket `systemd-run` uses as root to reach the system manager without D-Bus.
const PRIVATE_BUS: &str = "/run/systemd/private";
/// Where `systemd-run` is looked up (PATH may be minimal under a service).
const SYSTEMD_RUN: [&str; 3] = [
    "/usr/bin/systemd-run",
    "/bin/systemd-run",
    "/usr/local/bin/systemd-run",
];

/// Errors of this module; messages name the step.
#[derive(thiserror::Error, Debug)]
pub enum ScopeError {
    #[error("cannot find own executable (/proc/self/exe) to re-execute in a delegated scope: {0}")]
    OwnExe(std::io::Error),
    #[error("cannot execute {path} to obtain a delegated systemd scope: {source}")]
    Exec {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What [`delegated_scope_needed`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do: cgroups are usable as they are, or judgebox cannot help it.
    Stay,
    /// Own cgroup is managed by systemd without delegation: re-execute in a scope.
    /// Carries own cgroup path as /proc/self/cgroup shows it.
    Scope(String),
    /// A scope is needed but cannot be had (the reason, for a note).
    Impossible(String),
}

/// The unit name `JUDGEBOX_SCOPE` names, unless absent, empty or `off`.
pub fn scope_from_env() -> Option<String> {
    std::env::var(SCOPE_ENV)
        .ok()
        .filter(|v| !v.is_empty() && v != "off")
}

/// True when the unit's cgroup is the one judgebox asked systemd to delegate: the
/// directory is named `unit` (the transient scope this process was re-executed into).
pub fn is_own_scope(dir: &Path, unit: Option<&str>) -> bool {
    unit.is_some_and(|u| dir.file_name().is_some_and(|n| n == u))
}

/// Decides from what /proc says whether to re-execute. Pure (tested with fixtures):
/// `env` is `JUDGEBOX_SCOPE`'s value, `systemd_run` whether the tool and the manager's
/// private socket exist.
pub(crate) fn decide(
    view: &HostView,
    opts: &ManagerOptions,
    env: Option<&str>,
    systemd_run: bool,
    marked: &dyn Fn(&Path) -> bool,
) -> Decision {
    if opts.disabled || opts.root.is_some() || env.is_some() {
        return Decision::Stay;
    }
    if view.facts.euid != 0 || !view.facts.systemd_booted {
        return Decision::Stay;
    }
    if detect::classify(&view.layout, &view.v2_controllers).mode != Mode::Unified {
        return Decision::Stay;
    }
    let Some(v2) = view.layout.v2.as_ref() else {
        return Decision::Stay;
    };
    let planned = v2::plan_parent(v2, None, view.facts, marked, &|dir| {
        detect::is_real_root(&v2.mount, dir)
    });
    match planned {
        Err((Problem::NotDelegated, _)) if systemd_run => Decision::Scope(v2.own_path.clone()),
        Err((Problem::NotDelegated, _)) => Decision::Impossible(format!(
            "own cgroup {} is not delegated and systemd-run or {PRIVATE_BUS} is missing, so judgebox cannot obtain a delegated scope",
            v2.own_path
        )),
        _ => Decision::Stay,
    }
}

fn find_systemd_run() -> Option<&'static str> {
    if !Path::new(PRIVATE_BUS).exists() {
        return None;
    }
    SYSTEMD_RUN.into_iter().find(|p| Path::new(p).is_file())
}

/// Call first thing in a subcommand that creates run cgroups (as root, before reading
/// stdin or taking locks). When judgebox sits in a cgroup systemd manages without
/// delegation, prints one line to stderr saying so and re-executes the same command line
/// in a transient `judgebox-<pid>.scope` with `Delegate=yes`; otherwise returns.
/// `Scoped::note`: a scope was needed but cannot be had (the runs use what is left).
pub fn enter_delegated_scope(opts: &ManagerOptions) -> Result<Scoped, ScopeError> {
    let stay = |note, view| Ok(Scoped { note, view });
    let env = std::env::var(SCOPE_ENV).ok();
    if env.is_some() {
        return stay(None, None);
    }
    let Ok(view) = HostView::read() else {
        return stay(None, None);
    };
    let tool = find_systemd_run();
    let own = match decide(&view, opts, None, tool.is_some(), &v2::xattr_delegated) {
        Decision::Stay => return stay(None, Some(view)),
        Decision::Impossible(why) => return stay(Some(why), Some(view)),
        Decision::Scope(own) => own,
    };
    let Some(tool) = tool else {
        return stay(None, Some(view));
    };
    let exe = std::env::current_exe().map_err(ScopeError::OwnExe)?;
    let unit = format!("judgebox-{}.scope", std::process::id());
    eprintln!(
        "judgebox: own cgroup {own} is managed by systemd and not delegated: continuing in a transient scope {unit} with Delegate=yes (systemd-run --scope)"
    );
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let err = std::process::Command::new(tool)
        .args(scope_args(&unit))
        .arg(&exe)
        .args(&args)
        .env(SCOPE_ENV, &unit)
        .exec();
    Err(ScopeError::Exec {
        path: PathBuf::from(tool),
        source: err,
    })
}

/// Where `enter_delegated_scope` left this process: in its cgroup (no re-exec was needed
/// or possible), with what it read of the host.
pub struct Scoped {
    /// A scope was needed but cannot be had: why (the runs use what is left).
    pub note: Option<String>,
    view: Option<HostView>,
}

impl Scoped {
    /// The cgroup manager, built from the host view read on entry: one read of
    /// /proc/self/mountinfo and /proc/self/cgroup per command instead of two (~0.2 ms of
    /// every `judgebox run`). Nothing moved this process in between.
    pub fn manager(self, opts: &ManagerOptions) -> Manager {
        match self.view {
            Some(view) => Manager::from_view(view, opts),
            None => Manager::new(opts),
        }
    }
}

/// `systemd-run` arguments before the command: a named, quiet, self-collecting scope that
/// systemd delegates. systemd-run moves itself into the scope and then execs the command.
fn scope_args(unit: &str) -> Vec<String> {
    vec![
        "--scope".into(),
        "--quiet".into(),
        "--collect".into(),
        format!("--unit={unit}"),
        "--description=judgebox sandbox runs (delegated cgroup)".into(),
        "--property=Delegate=yes".into(),
        "--".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::detect::fixtures::*;
    use super::*;

    const ALL_V2: &str = "cpuset cpu io memory hugetlb pids rdma misc\n";

    fn view(mountinfo: &str, cgroup: &str, euid: u32, systemd: bool) -> HostView {
        HostView {
            layout: detect::layout(mountinfo, cgroup),
            v2_controllers: ALL_V2.to_string(),
            facts: v2::HostFacts {
                euid,
                systemd_booted: systemd,
            },
        }
    }

    fn none(_: &Path) -> bool {
        false
    }

    #[test]
    fn session_scope_as_root_under_systemd_wants_a_scope() {
        let v = view(V2_SYSTEMD_MOUNTINFO, V2_SYSTEMD_CGROUP, 0, true);
        let d = decide(&v, &ManagerOptions::default(), None, true, &none);
        assert_eq!(
            d,
            Decision::Scope("/user.slice/user-1000.slice/session-2.scope".into())
        );
        let d = decide(&v, &ManagerOptions::default(), None, false, &none);
        assert!(matches!(d, Decision::Impossible(ref w) if w.contains("systemd-run")));
    }

    #[test]
    fn no_scope_when_delegated_explicit_disabled_or_already_in_one() {
        let v = view(V2_SYSTEMD_MOUNTINFO, V2_SYSTEMD_CGROUP, 0, true);
        let delegated = |p: &Path| p.ends_with("session-2.scope");
        let opts = ManagerOptions::default();
        assert_eq!(decide(&v, &opts, None, true, &delegated), Decision::Stay);
        assert_eq!(
            decide(&v, &opts, Some("judgebox-1.scope"), true, &none),
            Decision::Stay
        );
        let explicit = ManagerOptions {
            root: Some(PathBuf::from("/sys/fs/cgroup/x")),
            disabled: false,
        };
        assert_eq!(decide(&v, &explicit, None, true, &none), Decision::Stay);
        let off = ManagerOptions {
            root: None,
            disabled: true,
        };
        assert_eq!(decide(&v, &off, None, true, &none), Decision::Stay);
    }

    #[test]
    fn no_scope_without_systemd_root_or_v2() {
        let opts = ManagerOptions::default();
        let not_root = view(V2_SYSTEMD_MOUNTINFO, V2_SYSTEMD_CGROUP, 1000, true);
        assert_eq!(decide(&not_root, &opts, None, true, &none), Decision::Stay);
        let no_systemd = view(V2_SYSTEMD_MOUNTINFO, V2_SYSTEMD_CGROUP, 0, false);
        assert_eq!(
            decide(&no_systemd, &opts, None, true, &none),
            Decision::Stay
        );
        let hybrid = view(HYBRID_MOUNTINFO, HYBRID_CGROUP, 0, true);
        assert_eq!(decide(&hybrid, &opts, None, true, &none), Decision::Stay);
    }

    #[test]
    fn own_scope_by_name() {
        let dir = Path::new("/sys/fs/cgroup/system.slice/judgebox-42.scope");
        assert!(is_own_scope(dir, Some("judgebox-42.scope")));
        assert!(!is_own_scope(dir, Some("judgebox-43.scope")));
        assert!(!is_own_scope(dir, None));
    }

    #[test]
    fn scope_is_delegated_and_collected() {
        let a = scope_args("judgebox-7.scope");
        assert!(a.contains(&"--property=Delegate=yes".to_string()));
        assert!(a.contains(&"--unit=judgebox-7.scope".to_string()));
        assert_eq!(a.last().map(String::as_str), Some("--"));
    }
}
