//! CPU time of a whole process tree without a cgroup: read through the sandbox's own
//! /proc, which the host reaches as /proc/<init>/root/proc. Also how many CPUs the
//! supervisor may expect the tree to burn in parallel.

/// CPUs this process may run on (cheap: one syscall, unlike std's cgroup-aware probe).
pub fn online_cpus() -> u64 {
    // SAFETY: set is a valid out-buffer for sched_getaffinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            libc::CPU_COUNT(&set).max(1) as u64
        } else {
            1
        }
    }
}

/// CPU ticks used so far by every process in the sandbox, read through the sandbox's own
/// /proc (reachable from the host as /proc/<init>/root/proc): live processes' own time plus
/// the time of the children they reaped. Init's own setup time is not counted.
pub fn tree_cpu_ticks(init: i32) -> u64 {
    let dir = format!("/proc/{init}/root/proc");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("{dir}/{pid}/stat")) else {
            continue;
        };
        if let Some((own, reaped)) = parse_stat_times(&stat) {
            total += reaped + if pid == 1 { 0 } else { own };
        }
    }
    total
}

/// The most CPU ticks any one live process in the sandbox has used on its own (init
/// excluded): what a per-process CPU limit is checked against.
pub fn max_process_cpu_ticks(init: i32) -> u64 {
    let dir = format!("/proc/{init}/root/proc");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| *pid != 1)
        .filter_map(|pid| std::fs::read_to_string(format!("{dir}/{pid}/stat")).ok())
        .filter_map(|stat| parse_stat_times(&stat).map(|(own, _)| own))
        .max()
        .unwrap_or(0)
}

/// (utime+stime, cutime+cstime) from a /proc/PID/stat line.
fn parse_stat_times(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ", field 3 (state) is index 0; utime is field 14 -> index 11.
    let num = |i: usize| {
        f.get(i)
            .and_then(|s| s.parse::<i64>().ok())
            .map(|v| v.max(0) as u64)
    };
    Some((num(11)? + num(12)?, num(13)? + num(14)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_parse_with_odd_comm() {
        let line = "42 (a) b (c)) R 1 42 42 0 -1 4194560 100 0 0 0 150 25 7 3 20 0 1 0 1 1 1";
        assert_eq!(parse_stat_times(line), Some((175, 10)));
    }
}
