//! Tests of the pieces: resolver parity, removal, header caps, long names, mtimes of
//! directories a layer changes without listing, zstd and progress.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use super::support::*;
use crate::image::spec::LayerCompression;
use crate::image::unpack::resolve::{Resolver, Root};
use crate::image::unpack::{remove_tree, sys, Limits, Refusal, UnpackError};

#[test]
fn openat2_is_used_on_this_kernel() {
    let jail = Jail::new(Resolver::Openat2);
    fs::create_dir(jail.path("d")).unwrap();
    let root = Root::open(&jail.root, Resolver::Openat2).unwrap();
    root.open_dir(b"d").unwrap();
    assert!(
        root.uses_openat2(),
        "openat2 fell back to the walk (ENOSYS)"
    );
}

/// Both resolvers open the same directory (or fail with the same errno) for every path.
#[test]
fn resolvers_agree() {
    let jail = Jail::new(Resolver::Openat2);
    let r = &jail.root;
    fs::create_dir_all(r.join("a/b/c")).unwrap();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(r.join("file"), "").unwrap();
    symlink("/etc", r.join("abs")).unwrap();
    symlink("../../../../../etc", r.join("a/up")).unwrap();
    symlink("b/c", r.join("a/rel")).unwrap();
    symlink("loop2", r.join("loop1")).unwrap();
    symlink("loop1", r.join("loop2")).unwrap();
    symlink("/file", r.join("tofile")).unwrap();
    symlink("/nowhere", r.join("dangling")).unwrap();
    symlink("../..", r.join("a/b/c/upup")).unwrap();
    let paths: &[&str] = &[
        "",
        "a",
        "a/b/c",
        "abs",
        "a/up",
        "a/rel",
        "a/rel/..",
        "a/rel/../..",
        "..",
        "../../..",
        "a/../../etc",
        "loop1",
        "tofile",
        "file",
        "dangling",
        "a/b/c/upup",
        "a/b/c/upup/b",
        "abs/../a/rel",
        "missing",
        "a/missing/x",
    ];
    let fast = Root::open(r, Resolver::Openat2).unwrap();
    let walk = Root::open(r, Resolver::Walk).unwrap();
    let id = |res: std::io::Result<std::os::fd::OwnedFd>| {
        res.map(|fd| {
            let st = sys::fstat(fd.as_fd()).unwrap();
            (st.st_dev, st.st_ino)
        })
        .map_err(|e| e.raw_os_error())
    };
    for path in paths {
        let a = id(fast.open_dir(path.as_bytes()));
        let b = id(walk.open_dir(path.as_bytes()));
        assert_eq!(a, b, "{path}");
    }
    let etc = fs::metadata(r.join("etc")).unwrap();
    assert_eq!(id(walk.open_dir(b"a/up")), Ok((etc.dev(), etc.ino())));
    assert_eq!(id(walk.open_dir(b"loop1")), Err(Some(libc::ELOOP)));
    assert_eq!(id(walk.open_dir(b"tofile")), Err(Some(libc::ENOTDIR)));
    jail.assert_host_untouched();
}

#[test]
fn create_through_a_dangling_symlink_stays_in_root() {
    both(|jail| {
        let root = Root::open(&jail.root, jail.resolver).unwrap();
        symlink("/x/../../y", jail.path("d")).unwrap();
        root.open_dir_create(b"d/z").unwrap();
        // Missing components are made as `mkdir -p` in a chroot would, `x` included.
        assert_eq!(jail.tree(), ["d x", "d y", "d y/z", "l d -> /x/../../y"]);
        assert_eq!(jail.mode("y"), 0o755);
    });
}

#[test]
fn remove_tree_never_follows_symlinks_and_handles_depth() {
    let jail = Jail::new(Resolver::Openat2);
    let top = jail.path("top");
    let mut deep = top.clone();
    for i in 0..150 {
        deep.push(format!("d{i}"));
    }
    fs::create_dir_all(&deep).unwrap();
    symlink(&jail.outer, deep.join("to-outer")).unwrap();
    symlink(jail.outer.join("etc"), top.join("to-etc")).unwrap();
    fs::write(deep.join("file"), "x").unwrap();
    fs::create_dir(top.join("locked")).unwrap();
    fs::write(top.join("locked/f"), "x").unwrap();
    fs::set_permissions(top.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    remove_tree(&top).unwrap();
    assert!(!top.exists());
    // A symlink given as the path is removed, not followed.
    symlink(jail.outer.join("etc"), jail.path("link")).unwrap();
    remove_tree(&jail.path("link")).unwrap();
    assert!(!jail.exists("link"));
    remove_tree(&jail.path("missing")).unwrap();
    jail.assert_host_untouched();
}

#[test]
fn oversized_pax_header_is_refused_without_buffering_it() {
    both(|jail| {
        let huge = pax_record("comment", &vec![b'c'; 2 << 20]);
        let l = Layer::new()
            .special(b'x', b"PaxHeaders/x", &huge)
            .file("a", "a");
        let err = jail.apply(&l).unwrap_err();
        assert!(matches!(err, UnpackError::HeadersTooBig { .. }), "{err}");
    });
}

#[test]
fn gnu_long_names_and_long_link_targets() {
    both(|jail| {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
        let mut name = long.clone().into_bytes();
        name.push(0);
        let target = format!("/{}", "t".repeat(200));
        let l = Layer::new()
            .dir(&"d".repeat(120), 0o755)
            .special(b'L', b"././@LongLink", &name)
            .file("short", "long named")
            .special(b'K', b"././@LongLink", target.as_bytes())
            .entry(Entry::new(b'2', "sym").link("short-target"))
            .entry(Entry::new(b'1', "hard").link(&long));
        jail.apply_ok(&[&l]);
        assert_eq!(jail.read(&long), "long named");
        assert_eq!(jail.link("sym"), target);
        assert_eq!(jail.meta("hard").ino(), jail.meta(&long).ino());
    });
}

#[test]
fn directories_a_layer_does_not_list_keep_their_mtime() {
    both(|jail| {
        let l1 = Layer::new()
            .entry(Entry::new(b'5', "d").mtime(T + 1))
            .file("d/a", "old")
            .file("d/gone", "x");
        let l2 = Layer::new()
            .file("d/a", "new")
            .file("d/.wh.gone", "")
            .file("d/b", "b");
        jail.apply_ok(&[&l1, &l2]);
        assert_eq!(jail.tree(), ["d d", "f d/a", "f d/b"]);
        assert_eq!(jail.meta("d").mtime(), (T + 1) as i64);
    });
}

#[test]
fn directory_over_directory_keeps_children_and_takes_new_attributes() {
    both(|jail| {
        let l1 = Layer::new()
            .entry(
                Entry::new(b'5', "a")
                    .mode(0o755)
                    .pax("SCHILY.xattr.user.old", b"1"),
            )
            .file("a/x", "x");
        let l2 = Layer::new().entry(
            Entry::new(b'5', "a")
                .mode(0o700)
                .owner(5, 6)
                .mtime(T + 9)
                .pax("SCHILY.xattr.user.new", b"2"),
        );
        jail.apply_ok(&[&l1, &l2]);
        assert_eq!(jail.tree(), ["d a", "f a/x"]);
        let meta = jail.meta("a");
        assert_eq!(
            (meta.mode() & 0o7777, meta.uid(), meta.gid()),
            (0o700, 5, 6)
        );
        assert_eq!(meta.mtime(), (T + 9) as i64);
        assert_eq!(xattr(&jail.path("a"), "user.old"), None);
        assert_eq!(xattr(&jail.path("a"), "user.new"), Some(b"2".to_vec()));
    });
}

#[test]
fn files_get_exact_mode_owner_and_time_whatever_the_umask() {
    both(|jail| {
        let l = Layer::new()
            .entry(
                Entry::new(b'0', "f")
                    .mode(0o640)
                    .owner(1, 2)
                    .mtime(T + 3)
                    .data(b"x"),
            )
            .entry(Entry::new(b'2', "s").link("f").owner(3, 4).mtime(T + 5))
            .file("auto/parent/f", "x");
        jail.apply_ok(&[&l]);
        let f = jail.meta("f");
        assert_eq!(
            (f.mode() & 0o7777, f.uid(), f.gid(), f.mtime()),
            (0o640, 1, 2, (T + 3) as i64)
        );
        let s = jail.meta("s");
        assert_eq!((s.uid(), s.gid(), s.mtime()), (3, 4, (T + 5) as i64));
        assert_eq!(
            (jail.mode("auto"), jail.mode("auto/parent")),
            (0o755, 0o755)
        );
    });
}

#[cfg(feature = "zstd")]
#[test]
fn zstd_layers_unpack_with_progress() {
    both(|jail| {
        let tar = Layer::new().file("z", &"z".repeat(3 << 20)).tar();
        let blob = zstd::encode_all(&tar[..], 3).unwrap();
        let mut reports = Vec::new();
        let stats = jail
            .unpack(
                &[(blob.clone(), LayerCompression::Zstd, sha(&tar))],
                &Limits::default(),
                &mut |p| reports.push(p),
            )
            .unwrap();
        assert_eq!(stats.bytes, tar.len() as u64);
        assert_eq!(jail.read("z").len(), 3 << 20);
        let last = reports.last().expect("progress reported");
        assert_eq!((last.layer, last.bytes_in), (0, blob.len() as u64));
    });
}

#[test]
fn corrupt_gzip_is_a_decompression_error() {
    both(|jail| {
        let tar = Layer::new().file("a", &"a".repeat(100_000)).tar();
        let mut blob = gzip(&tar);
        let mid = blob.len() / 2;
        blob[mid] ^= 0xff;
        blob[mid + 1] ^= 0xff;
        let err = jail
            .unpack(
                &[(blob, LayerCompression::Gzip, sha(&tar))],
                &Limits::default(),
                &mut |_| {},
            )
            .unwrap_err();
        assert!(
            matches!(err.innermost(), UnpackError::Decompress(_)),
            "{err}"
        );
    });
}

#[test]
fn sparse_entries_are_refused() {
    both(|jail| {
        // An old GNU sparse file: one 512-byte data block at offset 0 of a 4096-byte file.
        let mut h = tar::Header::new_gnu();
        h.set_path("holes").unwrap();
        h.set_mode(0o644);
        h.set_size(512);
        h.set_entry_type(tar::EntryType::GNUSparse);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.sparse[0].set_offset(0);
        gnu.sparse[0].set_length(512);
        gnu.sparse[1].set_offset(4096); // the trailing hole
        gnu.sparse[1].set_length(0);
        gnu.set_real_size(4096);
        h.set_cksum();
        let gnu = Layer::new().raw(h.as_bytes()).raw(&[1; 512]);
        let err = jail.apply(&gnu).unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::Sparse), "{err}");
        let pax = Layer::new().entry(
            Entry::new(b'0', "GNUSparseFile.0/holes")
                .data(b"1\n0\n3\nabc")
                .pax("GNU.sparse.major", b"1")
                .pax("GNU.sparse.minor", b"0")
                .pax("GNU.sparse.name", b"holes")
                .pax("GNU.sparse.realsize", b"1000000000"),
        );
        let err = jail.apply(&pax).unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::Sparse), "{err}");
        assert!(jail.tree().is_empty());
    });
}

#[test]
fn unknown_entry_types_are_refused() {
    both(|jail| {
        let err = jail
            .apply(&Layer::new().entry(Entry::new(b'V', "volume")))
            .unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::UnsupportedType(b'V')), "{err}");
    });
}
