//! Naming the syscall that got a program killed by a filter.
//!
//! When a filter returns `SECCOMP_RET_KILL_PROCESS` the kernel writes an audit record
//! (type 1326, `AUDIT_SECCOMP`) as long as `kernel.seccomp.actions_logged` lists
//! `kill_process` (the default):
//!
//! ```text
//! audit: type=1326 audit(..): auid=.. uid=0 gid=0 ses=.. pid=6050 comm="kill" exe="/tmp/kill"
//!        sig=31 arch=c000003e syscall=110 compat=0 ip=0x7f10.. code=0x80000000
//! ```
//!
//! `pid` is the thread group id in the initial pid namespace: the host pid. The record
//! reaches two places, and [`KmsgWatch`] reads both:
//!
//! 1. the audit netlink multicast group (`AUDIT_NLGRP_READLOG`): every record, with or
//!    without auditd, never rate-limited; needs CAP_AUDIT_READ in the initial user and
//!    network namespaces (a root supervisor on the host has both);
//! 2. `/dev/kmsg`, only when no auditd is running, and through `printk_ratelimit()`:
//!    by default at most 10 audit lines per 5 seconds reach the log, the rest are
//!    dropped ("kauditd_printk_skb: N callbacks suppressed"). Measured on the 6.18 test
//!    VM: 20 kills in a row gave 10 kmsg lines and 20 netlink records.
//!
//! Both sources are opened before the run, so only records written after that are read.
//! When neither names the pid within ~50 ms (audit disabled with `audit=0`,
//! `actions_logged` without `kill_process`, a supervisor inside a container without
//! CAP_AUDIT_READ or /dev/kmsg, or a record lost to the rate limit), `find` returns
//! `None` and the run is reported as a violation of an unknown syscall.
//!
//! Alternatives considered: `SECCOMP_RET_TRAP` reports `si_syscall` through SIGSYS, but
//! the program can catch SIGSYS and carry on, so it cannot enforce a kill;
//! `SECCOMP_FILTER_FLAG_LOG` only adds logging for non-kill actions; a
//! `SECCOMP_RET_USER_NOTIF` listener would name the call reliably but needs the
//! listener fd passed to the supervisor and makes the supervisor do the killing.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use super::action::{RET_ACTION_FULL, RET_KILL_PROCESS, RET_KILL_THREAD};
use super::arch::{Arch, AUDIT_ARCH_ARM, AUDIT_ARCH_I386};

/// How long `find` waits for the record of a death it was told about.
const WAIT: Duration = Duration::from_millis(50);
/// `AUDIT_SECCOMP` record type.
const AUDIT_SECCOMP: u16 = 1326;
/// Multicast group of read-only audit log listeners (`AUDIT_NLGRP_READLOG`).
const AUDIT_NLGRP_READLOG: u32 = 1;
/// Receive buffer asked for the netlink socket, so a busy host does not overrun it
/// while a run lasts.
const AUDIT_RCVBUF: usize = 4 << 20;
/// At most this many messages are read per source and scan, so a flood of unrelated
/// audit traffic cannot keep `find` from returning.
const MAX_READS: usize = 4096;
/// Size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;
const SIGSYS: i32 = 31;

/// Watches the kernel's seccomp audit records. Open it (on the host, as root) before
/// starting a run with a killing profile; after the program died of SIGSYS, `find`
/// names the syscall.
#[derive(Debug)]
pub struct KmsgWatch {
    audit: Option<OwnedFd>,
    kmsg: Option<File>,
}

/// What one audit record says about a kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    pid: i32,
    arch: u32,
    syscall: i64,
}

impl KmsgWatch {
    /// Subscribes to the audit log and opens /dev/kmsg at its end. `None` when neither
    /// is available or the kernel is configured not to log seccomp kills.
    pub fn open() -> Option<KmsgWatch> {
        if !kills_are_logged() {
            return None;
        }
        let watch = KmsgWatch {
            audit: open_audit(),
            kmsg: open_kmsg(),
        };
        (watch.audit.is_some() || watch.kmsg.is_some()).then_some(watch)
    }

    /// The syscall the kernel reported killing host pid `host_pid` for, waiting at most
    /// ~50 ms for the record. Examples: `ptrace`, `x32 syscall 39 (x32 ABI)`,
    /// `i386 syscall 20 (32-bit ABI)`.
    pub fn find(&mut self, host_pid: i32) -> Option<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(r) = self.scan(host_pid) {
                return Some(describe(&r));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.wait(left);
        }
    }

    /// Which sources are open, for diagnostics: "audit netlink", "/dev/kmsg" or both.
    pub fn sources(&self) -> String {
        let names: Vec<&str> = [
            self.audit.as_ref().map(|_| "audit netlink"),
            self.kmsg.as_ref().map(|_| "/dev/kmsg"),
        ]
        .into_iter()
        .flatten()
        .collect();
        names.join(" + ")
    }

    /// Reads everything queued so far; the first kill record for `pid`, if any.
    fn scan(&mut self, pid: i32) -> Option<Record> {
        let from_audit = self.audit.as_ref().and_then(|fd| scan_audit(fd, pid));
        from_audit.or_else(|| self.kmsg.as_mut().and_then(|f| scan_kmsg(f, pid)))
    }

    /// Sleeps until a source has data or `left` passes.
    fn wait(&self, left: Duration) {
        let mut fds: Vec<PollFd> = Vec::with_capacity(2);
        if let Some(fd) = &self.audit {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        if let Some(f) = &self.kmsg {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(ms));
    }
}

/// False only when `kernel.seccomp.actions_logged` is readable and lists no kill action.
fn kills_are_logged() -> bool {
    match std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_logged") {
        Ok(s) => s
            .split_whitespace()
            .any(|a| a == "kill_process" || a == "kill_thread"),
        Err(_) => true,
    }
}

fn open_audit() -> Option<OwnedFd> {
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd = socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        flags,
        SockProtocol::NetlinkAudit,
    )
    .ok()?;
    let group = NetlinkAddr::new(0, 1 << (AUDIT_NLGRP_READLOG - 1));
    socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &group).ok()?;
    let _ = socket::setsockopt(&fd, socket::sockopt::RcvBufForce, &AUDIT_RCVBUF);
    Some(fd)
}

fn open_kmsg() -> Option<File> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/kmsg")
        .ok()?;
    f.seek(SeekFrom::End(0)).ok()?;
    Some(f)
}

/// Drains the netlink socket; the first kill record for `pid`.
fn scan_audit(fd: &OwnedFd, pid: i32) -> Option<Record> {
    let mut buf = vec![0u8; 16 << 10];
    let raw = std::os::fd::AsRawFd::as_raw_fd(fd);
    for _ in 0..MAX_READS {
        match socket::recv(raw, &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => {
                if let Some(r) = netlink_records(&buf[..n]).find(|r| r.pid == pid) {
                    return Some(r);
                }
            }
            // ENOBUFS: records were dropped while we were not reading; keep going.
            Err(nix::errno::Errno::ENOBUFS | nix::errno::Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
    None
}

/// The seccomp kill records in one netlink datagram.
fn netlink_records(mut buf: &[u8]) -> impl Iterator<Item = Record> + '_ {
    std::iter::from_fn(move || loop {
        if buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(buf[0..4].try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(buf[4..6].try_into().ok()?);
        if len < NLMSG_HDRLEN || len > buf.len() {
            return None;
        }
        let payload = &buf[NLMSG_HDRLEN..len];
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        if kind == AUDIT_SECCOMP {
            if let Some(r) = parse_record(&String::from_utf8_lossy(payload)) {
                return Some(r);
            }
        }
        if buf.is_empty() {
            return None;
        }
    })
}

/// Drains /dev/kmsg (one record per read); the first kill record for `pid`.
fn scan_kmsg(f: &mut File, pid: i32) -> Option<Record> {
    let mut buf = vec![0u8; 8 << 10];
    for _ in 0..MAX_READS {
        match f.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => {
                let line = String::from_utf8_lossy(&buf[..n]);
                let text = line.split_once(';').map_or(&*line, |(_, t)| t);
                let is_seccomp = text.split_ascii_whitespace().any(|t| t == "type=1326");
                if let Some(r) = is_seccomp.then(|| parse_record(text)).flatten() {
                    if r.pid == pid {
                        return Some(r);
                    }
                }
            }
            // EPIPE: older records were overwritten before we read them.
            Err(e)
                if e.raw_os_error() == Some(libc::EPIPE) || e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    None
}

/// Parses the key=value fields of a seccomp audit record; `None` unless it reports a
/// kill. Untrusted strings (comm, exe) are quoted or hex-encoded by the kernel and
/// never contain spaces, so splitting on whitespace cannot be fooled by a process name;
/// `pid` is taken from its first occurrence, which the kernel writes before them.
fn parse_record(text: &str) -> Option<Record> {
    let (mut pid, mut arch, mut syscall, mut sig, mut code) = (None, None, None, None, None);
    for (key, value) in text
        .split_ascii_whitespace()
        .filter_map(|t| t.split_once('='))
    {
        match key {
            "pid" if pid.is_none() => pid = value.parse::<i32>().ok(),
            "arch" if arch.is_none() => arch = u32::from_str_radix(value, 16).ok(),
            "syscall" if syscall.is_none() => syscall = value.parse::<i64>().ok(),
            "sig" if sig.is_none() => sig = value.parse::<i32>().ok(),
            "code" if code.is_none() => {
                code = u32::from_str_radix(value.trim_start_matches("0x"), 16).ok()
            }
            _ => {}
        }
    }
    let killed = match code {
        Some(c) => matches!(c & RET_ACTION_FULL, RET_KILL_PROCESS | RET_KILL_THREAD),
        None => sig == Some(SIGSYS),
    };
    killed.then_some(Record {
        pid: pid?,
        arch: arch?,
        syscall: syscall?,
    })
}

/// The syscall of a record in words, e.g. `ptrace`.
fn describe(r: &Record) -> String {
    match Arch::native() {
        Ok(native) if r.arch == native.audit() => describe_native(native, r.syscall),
        _ if r.arch == AUDIT_ARCH_I386 => format!("i386 syscall {} (32-bit ABI)", r.syscall),
        _ if r.arch == AUDIT_ARCH_ARM => format!("arm syscall {} (32-bit ABI)", r.syscall),
        _ => format!("syscall {} of audit arch {:#x}", r.syscall, r.arch),
    }
}

fn describe_native(arch: Arch, nr: i64) -> String {
    let Ok(nr) = u32::try_from(nr) else {
        return format!("syscall {nr}");
    };
    if let Some(floor) = arch.legacy_abi_floor().filter(|&f| nr >= f) {
        return format!("x32 syscall {} (x32 ABI)", nr - floor);
    }
    arch.syscall_name(nr)
        .map_or_else(|| format!("syscall {nr}"), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "audit(1795380225.916:2): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=6050 comm=\"kill\" exe=\"/tmp/sc/kill\" sig=31 arch=c000003e syscall=110 compat=0 ip=0x7f107787c4f7 code=0x80000000";

    #[test]
    fn parses_a_kill_record() {
        let r = parse_record(LINE).unwrap();
        assert_eq!(
            r,
            Record {
                pid: 6050,
                arch: 0xc000_003e,
                syscall: 110
            }
        );
    }

    #[test]
    fn ignores_records_that_are_not_kills() {
        let errno = LINE.replace("code=0x80000000", "code=0x50001");
        assert_eq!(parse_record(&errno), None);
        let log = LINE.replace("code=0x80000000", "code=0x7ffc0000");
        assert_eq!(parse_record(&log), None);
        let thread = LINE.replace("code=0x80000000", "code=0x0");
        assert!(parse_record(&thread).is_some());
    }

    #[test]
    fn a_process_name_cannot_forge_the_pid() {
        // The kernel quotes comm; a crafted name stays one token with key "comm".
        let forged = LINE.replace("pid=6050 comm=\"kill\"", "pid=6050 comm=\"pid=1\"");
        assert_eq!(parse_record(&forged).unwrap().pid, 6050);
    }

    #[test]
    fn parses_netlink_datagrams() {
        let mut dg = Vec::new();
        for (kind, text) in [
            (1300u16, "audit(1:1): arch=c000003e syscall=1 pid=9"),
            (AUDIT_SECCOMP, LINE),
        ] {
            let len = NLMSG_HDRLEN + text.len();
            dg.extend_from_slice(&(len as u32).to_ne_bytes());
            dg.extend_from_slice(&kind.to_ne_bytes());
            dg.extend_from_slice(&[0u8; 10]);
            dg.extend_from_slice(text.as_bytes());
            dg.resize((dg.len() + 3) & !3, 0);
        }
        // The kernel does not pad the last message of a datagram.
        dg.truncate(dg.len() - (4 - LINE.len() % 4) % 4);
        let found: Vec<Record> = netlink_records(&dg).collect();
        assert_eq!(
            found,
            vec![Record {
                pid: 6050,
                arch: 0xc000_003e,
                syscall: 110
            }]
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn describes_native_and_legacy_calls() {
        let r = |arch, syscall| {
            describe(&Record {
                pid: 1,
                arch,
                syscall,
            })
        };
        assert_eq!(r(0xc000_003e, 101), "ptrace");
        assert_eq!(r(0xc000_003e, 0x4000_0027), "x32 syscall 39 (x32 ABI)");
        assert_eq!(r(AUDIT_ARCH_I386, 20), "i386 syscall 20 (32-bit ABI)");
        assert_eq!(r(0xc000_003e, 9999), "syscall 9999");
    }
}
