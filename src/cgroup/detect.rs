//! Host cgroup detection from the text of `/proc/self/mountinfo` and `/proc/self/cgroup`:
//! which hierarchies are mounted where, where this process sits in each, and whether the
//! host is unified (v2), hybrid, legacy (v1) or has nothing usable. Knows nothing of runs.

use std::path::{Path, PathBuf};

use super::{Mode, Problem};

/// Controllers judgebox limits or measures with.
pub const WANTED_V2: [&str; 3] = ["memory", "pids", "cpu"];
/// v1 hierarchies judgebox uses (cpuacct for time, freezer for kill).
pub const WANTED_V1: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "freezer"];

/// The v1 controller names the kernel knows (anything else in super options is an option).
const V1_CONTROLLERS: [&str; 14] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// One cgroup or cgroup2 line of mountinfo.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupMount {
    /// Where it is mounted (octal escapes decoded).
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy is the mount's root (field 4), e.g. "/" or "/docker/x".
    pub root: String,
    /// True for cgroup2.
    pub v2: bool,
    /// Per-mount "ro" flag (Docker Desktop / unprivileged containers).
    pub read_only: bool,
    /// v1 controllers named in the super options (e.g. ["cpu", "cpuacct"], ["name=systemd"]).
    pub controllers: Vec<String>,
}

/// One line of `/proc/self/cgroup`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcCgroup {
    pub hierarchy_id: u32,
    /// Empty for the v2 line ("0::/path").
    pub controllers: Vec<String>,
    pub path: String,
}

/// A v1 hierarchy and where this process sits in it.
#[derive(Debug, Clone, PartialEq)]
pub struct V1Hierarchy {
    pub mount: CgroupMount,
    /// mount point + own path relative to the mount root; `None` if not visible there.
    pub own_dir: Option<PathBuf>,
}

/// The cgroup2 mount and where this process sits in it.
#[derive(Debug, Clone, PartialEq)]
pub struct V2Mount {
    pub mount: CgroupMount,
    /// Own cgroup path as `/proc/self/cgroup` shows it.
    pub own_path: String,
    pub own_dir: Option<PathBuf>,
}

/// Everything mountinfo and /proc/self/cgroup say about cgroups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    pub v2: Option<V2Mount>,
    pub v1: Vec<V1Hierarchy>,
}

impl Layout {
    /// The v1 hierarchy carrying `controller`.
    pub fn v1_for(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1
            .iter()
            .find(|h| h.mount.controllers.iter().any(|c| c == controller))
    }
}

/// Result of classifying a layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub mode: Mode,
    /// Set when `mode` is `Mode::None`: why nothing is usable.
    pub reason: Option<String>,
    pub problem: Option<Problem>,
}

/// Decodes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` `\`).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) if bytes[i] == b'\\' => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, b| acc.wrapping_mul(8).wrapping_add(b - b'0')),
                );
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one mountinfo line; `None` unless it is a cgroup or cgroup2 mount.
fn parse_mount_line(line: &str) -> Option<CgroupMount> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let mut rest = right.split(' ');
    let fstype = rest.next()?;
    let _source = rest.next()?;
    let super_opts = rest.next().unwrap_or("");
    let v2 = match fstype {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return None,
    };
    let root = unescape(fields.get(3)?);
    let mount_point = PathBuf::from(unescape(fields.get(4)?));
    let read_only = fields.get(5)?.split(',').any(|o| o == "ro");
    let controllers = if v2 {
        Vec::new()
    } else {
        super_opts
            .split(',')
            .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
            .map(str::to_string)
            .collect()
    };
    Some(CgroupMount {
        mount_point,
        root,
        v2,
        read_only,
        controllers,
    })
}

/// All cgroup/cgroup2 mounts of a mountinfo text, in file order.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines().filter_map(parse_mount_line).collect()
}

/// Parses `/proc/self/cgroup` ("id:ctrl,ctrl:/path" per line).
pub fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy_id = parts.next()?.parse().ok()?;
            let ctrls = parts.next()?;
            let path = parts.next()?.to_string();
            let controllers = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some(ProcCgroup {
                hierarchy_id,
                controllers,
                path,
            })
        })
        .collect()
}

/// Joins a mount point with the process's cgroup path relative to the mount's root.
/// `None` when the process's cgroup lies outside what the mount shows.
pub fn own_dir(mount: &CgroupMount, own_path: &str) -> Option<PathBuf> {
    if !own_path.starts_with('/') {
        return None;
    }
    let root = mount.root.trim_end_matches('/');
    let rest = own_path.strip_prefix(root)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let rel = rest.trim_start_matches('/');
    if rel.split('/').any(|c| c == "..") {
        return None;
    }
    Some(if rel.is_empty() {
        mount.mount_point.clone()
    } else {
        mount.mount_point.join(rel)
    })
}

/// Combines the mounts with the process's own cgroup paths.
pub fn layout(mountinfo: &str, proc_cgroup: &str) -> Layout {
    let mounts = parse_mountinfo(mountinfo);
    let own = parse_proc_cgroup(proc_cgroup);
    let v2_path = own
        .iter()
        .find(|p| p.hierarchy_id == 0 && p.controllers.is_empty())
        .map(|p| p.path.clone());
    let v2 = v2_path.and_then(|own_path| pick_v2(&mounts, own_path));
    let mut v1: Vec<V1Hierarchy> = Vec::new();
    for mount in mounts.iter().filter(|m| !m.v2 && !m.controllers.is_empty()) {
        let line = own.iter().find(|p| {
            p.hierarchy_id != 0 && p.controllers.iter().any(|c| mount.controllers.contains(c))
        });
        let own_dir = line.and_then(|l| own_dir(mount, &l.path));
        let seen = v1
            .iter_mut()
            .find(|h| h.mount.controllers == mount.controllers);
        match seen {
            // Same hierarchy mounted twice: keep the first writable view of our cgroup.
            Some(h) if h.own_dir.is_none() || h.mount.read_only => {
                if own_dir.is_some() && !mount.read_only {
                    *h = V1Hierarchy {
                        mount: mount.clone(),
                        own_dir,
                    };
                }
            }
            Some(_) => {}
            None => v1.push(V1Hierarchy {
                mount: mount.clone(),
                own_dir,
            }),
        }
    }
    Layout { v2, v1 }
}

/// Chooses among cgroup2 mounts: writable ones showing our cgroup first.
fn pick_v2(mounts: &[CgroupMount], own_path: String) -> Option<V2Mount> {
    let candidates: Vec<V2Mount> = mounts
        .iter()
        .filter(|m| m.v2)
        .map(|m| V2Mount {
            own_dir: own_dir(m, &own_path),
            mount: m.clone(),
            own_path: own_path.clone(),
        })
        .collect();
    let score = |m: &V2Mount| (m.own_dir.is_some() as u8) * 2 + (!m.mount.read_only) as u8;
    let best = candidates.iter().map(score).max()?;
    candidates.into_iter().find(|m| score(m) == best)
}

/// Classifies a layout. `v2_controllers` is the content of `cgroup.controllers` at the
/// cgroup2 mount point (what the hierarchy offers), if there is a cgroup2 mount.
pub fn classify(layout: &Layout, v2_controllers: &str) -> Detection {
    let v2_offers = |c: &str| v2_controllers.split_whitespace().any(|x| x == c);
    let v1_memory = layout.v1_for("memory").is_some();
    let v1_any = WANTED_V1.iter().any(|c| layout.v1_for(c).is_some());
    if let Some(v2) = &layout.v2 {
        if !v1_memory && WANTED_V2.iter().any(|c| v2_offers(c)) {
            return check_v2_usable(v2);
        }
    }
    if v1_any {
        let mode = if layout.v2.is_some() {
            Mode::Hybrid
        } else {
            Mode::Legacy
        };
        return check_v1_usable(layout, mode);
    }
    match &layout.v2 {
        Some(v2) => none(Problem::NoControllers, format!(
            "cgroup2 at {} offers none of memory, pids, cpu (cgroup.controllers: {:?}) and no cgroup v1 hierarchy is mounted",
            v2.mount.mount_point.display(),
            v2_controllers.trim()
        )),
        None => none(Problem::NothingMounted, "no cgroup filesystem is mounted (nothing of type cgroup or cgroup2 in /proc/self/mountinfo)".to_string()),
    }
}

fn none(problem: Problem, reason: String) -> Detection {
    Detection {
        mode: Mode::None,
        reason: Some(reason),
        problem: Some(problem),
    }
}

fn usable(mode: Mode) -> Detection {
    Detection {
        mode,
        reason: None,
        problem: None,
    }
}

fn check_v2_usable(v2: &V2Mount) -> Detection {
    let at = v2.mount.mount_point.display();
    if v2.mount.read_only {
        return none(Problem::ReadOnly, format!(
            "cgroup2 at {at} is mounted read-only (typical of Docker Desktop, WSL2 and unprivileged containers)"
        ));
    }
    if v2.own_dir.is_none() {
        return none(
            Problem::NotVisible,
            format!(
                "own cgroup {} is not visible under the cgroup2 mount at {at} (mount root {})",
                v2.own_path, v2.mount.root
            ),
        );
    }
    usable(Mode::Unified)
}

fn check_v1_usable(layout: &Layout, mode: Mode) -> Detection {
    let used: Vec<&V1Hierarchy> = WANTED_V1.iter().filter_map(|c| layout.v1_for(c)).collect();
    if used
        .iter()
        .any(|h| !h.mount.read_only && h.own_dir.is_some())
    {
        return usable(mode);
    }
    let first = used[0];
    let at = first.mount.mount_point.display();
    if first.mount.read_only {
        none(Problem::ReadOnly, format!("cgroup v1 hierarchies (e.g. {at}) are mounted read-only (typical of Docker Desktop, WSL2 and unprivileged containers)"))
    } else {
        none(
            Problem::NotVisible,
            format!("own cgroup is not visible under the cgroup v1 mounts (e.g. {at})"),
        )
    }
}

/// True when `dir` is the real root of the cgroup2 hierarchy (not a namespace root): only
/// the real root lacks `cgroup.type`.
pub fn is_real_root(mount: &CgroupMount, dir: &Path) -> bool {
    mount.root == "/" && dir == mount.mount_point && !dir.join("cgroup.type").exists()
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! mountinfo / cgroup texts of real host kinds (trimmed to the relevant lines).

    pub const V2_SYSTEMD_MOUNTINFO: &str = "\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
25 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
35 25 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    pub const V2_SYSTEMD_CGROUP: &str = "0::/user.slice/user-1000.slice/session-2.scope\n";

    pub const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    pub const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/b9ddc34a49df673df6d6c3f2d4ad8474
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    pub const LEGACY_MOUNTINFO: &str = "\
25 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:24 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,blkio
30 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpuacct,cpu
31 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
32 25 0:27 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,freezer
33 25 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
";
    pub const LEGACY_CGROUP: &str = "\
11:pids:/system.slice/judge.service
10:freezer:/
6:memory:/system.slice/judge.service
4:cpu,cpuacct:/system.slice/judge.service
2:blkio:/system.slice/judge.service
1:name=systemd:/system.slice/judge.service
";

    /// Docker Desktop (macOS/Windows) container: private cgroupns, cgroupfs read-only.
    pub const DOCKER_DESKTOP_MOUNTINFO: &str = "\
473 387 0:143 / / rw,relatime master:181 - overlay overlay rw,lowerdir=/l
477 473 0:149 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
486 477 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw
";
    pub const DOCKER_DESKTOP_CGROUP: &str = "0::/\n";

    /// A container under WSL2's docker-desktop distro with the v1 layout, all read-only.
    pub const WSL2_DOCKER_V1_MOUNTINFO: &str = "\
800 790 0:70 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
801 800 0:31 /docker/5f2c /sys/fs/cgroup/cpuset ro,nosuid,nodev,noexec,relatime master:11 - cgroup cgroup rw,cpuset
802 800 0:32 /docker/5f2c /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime master:12 - cgroup cgroup rw,cpu
803 800 0:33 /docker/5f2c /sys/fs/cgroup/cpuacct ro,nosuid,nodev,noexec,relatime master:13 - cgroup cgroup rw,cpuacct
804 800 0:35 /docker/5f2c /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:15 - cgroup cgroup rw,memory
805 800 0:39 /docker/5f2c /sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime master:19 - cgroup cgroup rw,pids
806 800 0:40 /docker/5f2c /sys/fs/cgroup/freezer ro,nosuid,nodev,noexec,relatime master:20 - cgroup cgroup rw,freezer
807 800 0:42 / /sys/fs/cgroup/unified ro,nosuid,nodev,noexec,relatime master:22 - cgroup2 cgroup2 rw,nsdelegate
";
    pub const WSL2_DOCKER_V1_CGROUP: &str = "\
9:freezer:/docker/5f2c
8:pids:/docker/5f2c
6:memory:/docker/5f2c
3:cpuacct:/docker/5f2c
2:cpu:/docker/5f2c
1:cpuset:/docker/5f2c
0::/
";

    /// cgroup2 mounted somewhere unusual, with a space in the path.
    pub const V2_ODD_PATH_MOUNTINFO: &str = "\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
60 22 0:40 / /mnt/cg\\0402 rw,nosuid,nodev,noexec,relatime shared:30 - cgroup2 none rw
";
    pub const V2_ODD_PATH_CGROUP: &str = "0::/judge\n";

    /// A delegated subtree bind-mounted as the mount root (container with host cgroupns
    /// view of its own subtree), the process inside the supervisor leaf.
    pub const V2_DELEGATED_SUBTREE_MOUNTINFO: &str = "\
40 30 0:29 /system.slice/judgebox.service /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
";
    pub const V2_DELEGATED_SUBTREE_CGROUP: &str = "0::/system.slice/judgebox.service/supervisor\n";
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    const ALL_V2: &str = "cpuset cpu io memory hugetlb pids rdma misc\n";

    #[test]
    fn pure_v2_systemd_host() {
        let l = layout(V2_SYSTEMD_MOUNTINFO, V2_SYSTEMD_CGROUP);
        let v2 = l.v2.as_ref().unwrap();
        assert_eq!(
            v2.own_dir.as_deref(),
            Some(Path::new(
                "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope"
            ))
        );
        assert!(l.v1.is_empty());
        let d = classify(&l, ALL_V2);
        assert_eq!(d.mode, Mode::Unified);
        assert_eq!(d.reason, None);
    }

    #[test]
    fn this_hybrid_host() {
        let l = layout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        assert_eq!(
            l.v1_for("memory").unwrap().own_dir.as_deref(),
            Some(Path::new(
                "/sys/fs/cgroup/memory/process_api/b9ddc34a49df673df6d6c3f2d4ad8474"
            ))
        );
        assert_eq!(
            l.v1_for("cpu").unwrap().own_dir.as_deref(),
            Some(Path::new("/sys/fs/cgroup/cpu"))
        );
        assert_eq!(
            l.v1_for("cpuacct").unwrap().mount.mount_point,
            Path::new("/sys/fs/cgroup/cpuacct")
        );
        assert!(l.v1_for("name=systemd").is_some());
        assert_eq!(
            l.v2.as_ref().unwrap().own_dir.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        let d = classify(&l, "hugetlb\n");
        assert_eq!(d.mode, Mode::Hybrid);
    }

    #[test]
    fn legacy_v1_with_comounted_cpu_cpuacct() {
        let l = layout(LEGACY_MOUNTINFO, LEGACY_CGROUP);
        assert!(l.v2.is_none());
        let cpu = l.v1_for("cpu").unwrap();
        assert_eq!(cpu.mount.controllers, vec!["cpuacct", "cpu"]);
        assert!(std::ptr::eq(cpu, l.v1_for("cpuacct").unwrap()));
        assert_eq!(
            cpu.own_dir.as_deref(),
            Some(Path::new(
                "/sys/fs/cgroup/cpu,cpuacct/system.slice/judge.service"
            ))
        );
        assert_eq!(
            l.v1_for("freezer").unwrap().own_dir.as_deref(),
            Some(Path::new("/sys/fs/cgroup/freezer"))
        );
        assert_eq!(classify(&l, "").mode, Mode::Legacy);
    }

    #[test]
    fn docker_desktop_read_only_is_none_with_reason() {
        let l = layout(DOCKER_DESKTOP_MOUNTINFO, DOCKER_DESKTOP_CGROUP);
        let d = classify(&l, ALL_V2);
        assert_eq!(d.mode, Mode::None);
        assert_eq!(d.problem, Some(Problem::ReadOnly));
        let reason = d.reason.unwrap();
        assert!(reason.contains("read-only"), "{reason}");
        assert!(reason.contains("/sys/fs/cgroup"), "{reason}");
    }

    #[test]
    fn wsl2_docker_read_only_v1_is_none_with_reason() {
        let l = layout(WSL2_DOCKER_V1_MOUNTINFO, WSL2_DOCKER_V1_CGROUP);
        // Mount root /docker/5f2c and own path /docker/5f2c: own dir is the mount point.
        assert_eq!(
            l.v1_for("memory").unwrap().own_dir.as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        let d = classify(&l, "");
        assert_eq!(d.mode, Mode::None);
        assert!(d.reason.unwrap().contains("read-only"));
    }

    #[test]
    fn cgroup2_at_non_standard_path() {
        let l = layout(V2_ODD_PATH_MOUNTINFO, V2_ODD_PATH_CGROUP);
        let v2 = l.v2.as_ref().unwrap();
        assert_eq!(v2.mount.mount_point, Path::new("/mnt/cg 2"));
        assert_eq!(v2.own_dir.as_deref(), Some(Path::new("/mnt/cg 2/judge")));
        assert_eq!(classify(&l, "memory pids cpu").mode, Mode::Unified);
    }

    #[test]
    fn delegated_subtree_as_mount_root() {
        let l = layout(V2_DELEGATED_SUBTREE_MOUNTINFO, V2_DELEGATED_SUBTREE_CGROUP);
        let v2 = l.v2.as_ref().unwrap();
        assert_eq!(v2.mount.root, "/system.slice/judgebox.service");
        assert_eq!(
            v2.own_dir.as_deref(),
            Some(Path::new("/sys/fs/cgroup/supervisor"))
        );
        assert_eq!(classify(&l, "memory pids").mode, Mode::Unified);
    }

    #[test]
    fn own_cgroup_outside_mount_root() {
        let m = parse_mountinfo(V2_DELEGATED_SUBTREE_MOUNTINFO).remove(0);
        assert_eq!(own_dir(&m, "/system.slice/other.service"), None);
        assert_eq!(own_dir(&m, "/system.slice/judgebox.serviceX"), None);
        assert_eq!(
            own_dir(&m, "/system.slice/judgebox.service"),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let l = layout(V2_DELEGATED_SUBTREE_MOUNTINFO, "0::/elsewhere\n");
        let d = classify(&l, "memory");
        assert_eq!(d.mode, Mode::None);
        assert!(d.reason.unwrap().contains("not visible"));
    }

    #[test]
    fn nothing_mounted() {
        let d = classify(&layout("22 1 259:2 / / rw - ext4 /dev/sda1 rw\n", ""), "");
        assert_eq!(d.mode, Mode::None);
        assert!(d.reason.unwrap().contains("no cgroup filesystem"));
    }

    #[test]
    fn cgroup2_without_controllers_and_no_v1() {
        let l = layout(V2_SYSTEMD_MOUNTINFO, V2_SYSTEMD_CGROUP);
        let d = classify(&l, "hugetlb");
        assert_eq!(d.mode, Mode::None);
        assert!(d.reason.unwrap().contains("offers none"));
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("/a\\040b\\011c\\134d"), "/a b\tc\\d");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/trail\\04"), "/trail\\04");
    }
}
