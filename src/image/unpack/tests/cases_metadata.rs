//! Cases 29-35: replacing across types, modes, xattrs, devices, ownership.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::support::*;
use crate::image::unpack::Refusal;

#[test]
fn case_29_file_over_directory_replaces_the_tree() {
    both(|jail| {
        let l1 = Layer::new().dir("x", 0o755).file("x/y", "y");
        let l2 = Layer::new().file("x", "file now");
        jail.apply_ok(&[&l1, &l2]);
        assert_eq!(jail.tree(), ["f x"]);
        assert_eq!(jail.read("x"), "file now");
    });
}

/// Policy: a file below a non-directory is an error (ENOTDIR), as in containerd; the layer
/// would have to list `d a` to replace the file.
#[test]
fn case_30_file_under_a_file_is_enotdir() {
    both(|jail| {
        jail.apply_ok(&[&Layer::new().file("a", "a")]);
        let err = jail.apply(&Layer::new().file("a/b", "b")).unwrap_err();
        assert_eq!(errno(&err), Some(libc::ENOTDIR), "{err}");
        assert_eq!(jail.tree(), ["f a"]);
        assert_eq!(jail.read("a"), "a");
    });
}

/// Clears CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this thread's effective set for
/// the guard's lifetime (capabilities are per thread), so root meets permission bits.
struct NoDacOverride {
    saved: [CapData; 2],
}

/// `struct __user_cap_header_struct` and `__user_cap_data_struct` (linux/capability.h).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;

impl NoDacOverride {
    fn new() -> NoDacOverride {
        let mut header = CapHeader {
            version: CAP_V3,
            pid: 0,
        };
        let empty = CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        };
        let mut data = [empty, empty];
        // SAFETY: header and a two-element data array, as capget v3 expects.
        let r = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
        assert_eq!(r, 0, "capget");
        let saved = data;
        let dac = (1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH);
        data[0].effective &= !dac;
        // SAFETY: as above; lowering the effective set of this thread only.
        let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
        assert_eq!(r, 0, "capset");
        NoDacOverride { saved }
    }
}

impl Drop for NoDacOverride {
    fn drop(&mut self) {
        let mut header = CapHeader {
            version: CAP_V3,
            pid: 0,
        };
        // SAFETY: restores the saved sets (a subset of the permitted set).
        let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, self.saved.as_ptr()) };
        assert_eq!(r, 0, "capset restore");
    }
}

#[test]
fn case_31_readonly_directories_receive_children_and_keep_mode_and_mtime() {
    both(|jail| {
        let l = Layer::new()
            .entry(Entry::new(b'5', "ro").mode(0o555).mtime(T + 31))
            .file("ro/f", "f")
            .entry(Entry::new(b'5', "zero").mode(0o000).mtime(T + 32))
            .entry(Entry::new(b'5', "zero/sub").mode(0o000).mtime(T + 33))
            .file("zero/sub/f", "f")
            .file("zero/g", "g");
        {
            // Without DAC override, as an unprivileged unpacker would be: only the deferred
            // modes make this work.
            let _guard = NoDacOverride::new();
            jail.apply(&l).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(
            jail.tree(),
            [
                "d ro",
                "d zero",
                "d zero/sub",
                "f ro/f",
                "f zero/g",
                "f zero/sub/f"
            ]
        );
        assert_eq!(
            (jail.mode("ro"), jail.meta("ro").mtime()),
            (0o555, (T + 31) as i64)
        );
        assert_eq!(
            (jail.mode("zero"), jail.meta("zero").mtime()),
            (0, (T + 32) as i64)
        );
        assert_eq!(
            (jail.mode("zero/sub"), jail.meta("zero/sub").mtime()),
            (0, (T + 33) as i64)
        );
    });
}

#[test]
fn case_32_setuid_and_setgid_bits_survive_chown() {
    both(|jail| {
        let l = Layer::new()
            .entry(Entry::new(b'0', "s").mode(0o4755).owner(0, 0).data(b"#!"))
            .entry(
                Entry::new(b'0', "s2")
                    .mode(0o6755)
                    .owner(1000, 1000)
                    .data(b"#!"),
            )
            .entry(Entry::new(b'5', "sticky").mode(0o1777));
        jail.apply_ok(&[&l]);
        assert_eq!(jail.mode("s"), 0o4755);
        assert_eq!(jail.mode("s2"), 0o6755);
        assert_eq!((jail.meta("s2").uid(), jail.meta("s2").gid()), (1000, 1000));
        assert_eq!(jail.mode("sticky"), 0o1777);
    });
}

/// A version-2 file capability: cap_net_bind_service (bit 10) permitted and effective.
fn capability_v2() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(0x0200_0000u32 | 1).to_le_bytes()); // VFS_CAP_REVISION_2 | EFFECTIVE
    v.extend_from_slice(&(1u32 << 10).to_le_bytes()); // permitted, low word
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable, low word
    v.extend_from_slice(&0u32.to_le_bytes()); // permitted, high word
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable, high word
    v
}

fn xattr_layer() -> Layer {
    let e = Entry::new(b'0', "bin")
        .mode(0o755)
        .data(b"\x7fELF")
        .pax("SCHILY.xattr.security.capability", &capability_v2())
        .pax("SCHILY.xattr.user.a", b"b")
        .pax("SCHILY.xattr.trusted.overlay.opaque", b"y")
        .pax(
            "SCHILY.xattr.security.selinux",
            b"system_u:object_r:bin_t:s0",
        );
    let d = Entry::new(b'5', "dir").pax("SCHILY.xattr.user.d", b"dv");
    Layer::new().entry(e).entry(d)
}

#[test]
fn case_33_xattrs_kept_and_dropped() {
    both(|jail| {
        let stats = jail.apply_ok(&[&xattr_layer()]).remove(0);
        let bin = jail.path("bin");
        assert_eq!(xattr(&bin, "security.capability"), Some(capability_v2()));
        assert_eq!(xattr(&bin, "user.a"), Some(b"b".to_vec()));
        assert_eq!(xattr(&bin, "trusted.overlay.opaque"), None);
        assert_eq!(xattr(&bin, "security.selinux"), None);
        assert_eq!(xattr(&jail.path("dir"), "user.d"), Some(b"dv".to_vec()));
        assert_eq!(
            stats.skipped,
            [
                "bin: dropped xattr trusted.overlay.opaque",
                "bin: dropped xattr security.selinux"
            ]
        );
    });
}

/// ENOTSUP is tolerated: the same layer onto ramfs (no xattr support) succeeds with notes.
/// The ramfs is mounted in a private mount namespace of this test's thread only.
#[test]
fn case_33b_xattrs_on_a_filesystem_without_them_are_noted() {
    let jail = Jail::new(crate::image::unpack::resolve::Resolver::Openat2);
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: plain syscalls; the new mount namespace is this thread's alone.
            unsafe {
                assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare");
                let flags = libc::MS_REC | libc::MS_PRIVATE;
                assert_eq!(
                    libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        flags,
                        std::ptr::null()
                    ),
                    0
                );
                let target =
                    std::ffi::CString::new(jail.root.as_os_str().to_str().unwrap()).unwrap();
                assert_eq!(
                    libc::mount(
                        c"none".as_ptr(),
                        target.as_ptr(),
                        c"ramfs".as_ptr(),
                        0,
                        std::ptr::null()
                    ),
                    0,
                    "mount ramfs"
                );
            }
            let result = jail.apply(&xattr_layer());
            let found = xattr(&jail.path("bin"), "user.a");
            // SAFETY: unmounting what this thread mounted.
            unsafe {
                let target =
                    std::ffi::CString::new(jail.root.as_os_str().to_str().unwrap()).unwrap();
                libc::umount2(target.as_ptr(), libc::MNT_DETACH);
            }
            (result, found)
        })
        .join()
        .unwrap()
    });
    let (stats, found) = result;
    let stats = stats.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found, None);
    let notes = stats.skipped.join("\n");
    assert!(
        notes.contains("bin: xattr security.capability not set"),
        "{notes}"
    );
    assert!(notes.contains("bin: xattr user.a not set"), "{notes}");
    assert!(notes.contains("dir: xattr user.d not set"), "{notes}");
    jail.assert_host_untouched();
}

#[test]
fn case_34_devices_refused_fifos_made_big_numbers_an_error() {
    both(|jail| {
        let l = Layer::new()
            .entry(Entry::new(b'3', "mem").dev(1, 1).mode(0o666))
            .entry(Entry::new(b'4', "sda").dev(8, 0).mode(0o660))
            .entry(Entry::new(b'6', "fifo").mode(0o640).owner(5, 6));
        let stats = jail.apply_ok(&[&l]).remove(0);
        assert_eq!(jail.tree(), ["? fifo"]);
        let fifo = jail.meta("fifo");
        assert!(fifo.file_type().is_fifo());
        assert_eq!(
            (fifo.mode() & 0o7777, fifo.uid(), fifo.gid()),
            (0o640, 5, 6)
        );
        assert_eq!(
            stats.skipped,
            [
                "mem: refused character device 1:1",
                "sda: refused block device 8:0"
            ]
        );
        let big = Layer::new().entry(Entry::new(b'3', "z").dev(1 << 33, 0));
        let err = jail.apply(&big).unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::DeviceNumber), "{err}");
    });
}

#[test]
fn case_35_ownership_is_numeric_only() {
    both(|jail| {
        let l = Layer::new()
            .entry(
                Entry::new(b'0', "u")
                    .owner(4_294_967_294, 4_294_967_294)
                    .uname("root"),
            )
            .entry(
                Entry::new(b'0', "p")
                    .uname("root")
                    .pax("uid", b"4294967293")
                    .pax("gid", b"70000"),
            );
        jail.apply_ok(&[&l]);
        assert_eq!(
            (jail.meta("u").uid(), jail.meta("u").gid()),
            (4_294_967_294, 4_294_967_294)
        );
        assert_eq!(
            (jail.meta("p").uid(), jail.meta("p").gid()),
            (4_294_967_293, 70_000)
        );
        // u32::MAX means "unchanged" to chown: refused.
        let bad = Layer::new().entry(Entry::new(b'0', "x").owner(u32::MAX as u64, 0));
        let err = jail.apply(&bad).unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::IdOutOfRange), "{err}");
    });
}
