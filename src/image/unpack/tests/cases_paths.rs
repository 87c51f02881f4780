//! Cases 1-11: entry names, the root, symlinked parents.

use std::os::unix::fs::MetadataExt;

use super::support::*;
use crate::image::unpack::Refusal;

#[test]
fn case_01_dotdot_escape_is_refused() {
    both(|jail| {
        let err = jail
            .apply(&Layer::new().file("ok", "x").file("../../evil", "evil"))
            .unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::EscapesRoot), "{err}");
        assert_eq!(jail.tree(), ["f ok"]);
        // A clamping unpacker would have written <root>/evil; an escaping one OUTER/j1/j2/evil.
        assert!(!jail.exists("evil"));
    });
}

#[test]
fn case_02_absolute_name_lands_in_root() {
    both(|jail| {
        jail.apply_ok(&[&Layer::new().file("/etc/x", "in root")]);
        assert_eq!(jail.tree(), ["d etc", "f etc/x"]);
        assert_eq!(jail.read("etc/x"), "in root");
        assert_eq!(jail.mode("etc"), 0o755, "a missing parent is created 0755");
    });
}

#[test]
fn case_03_pax_path_escape_is_refused() {
    both(|jail| {
        let entry = Entry::new(b'0', "benign")
            .data(b"evil")
            .pax("path", b"../../x");
        let err = jail.apply(&Layer::new().entry(entry)).unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::EscapesRoot), "{err}");
        assert!(jail.tree().is_empty(), "neither 'benign' nor 'x' created");
    });
}

#[test]
fn case_04_symlink_at_root_is_refused_and_root_stays_a_directory() {
    both(|jail| {
        let ino = jail.root.metadata().unwrap().ino();
        for (name, target) in [(".", "/"), ("./", "/tmp")] {
            let err = jail.apply(&Layer::new().symlink(name, target)).unwrap_err();
            assert_eq!(refusal(&err), Some(Refusal::NonDirectoryAtRoot), "{err}");
            let meta = std::fs::symlink_metadata(&jail.root).unwrap();
            assert!(meta.is_dir());
            assert_eq!(meta.ino(), ino);
        }
        // Files and hardlinks naming the root are refused the same way.
        let err = jail.apply(&Layer::new().file("/", "x")).unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::NonDirectoryAtRoot), "{err}");
        assert!(jail.tree().is_empty());
    });
}

#[test]
fn case_05_dot_directory_updates_root_metadata() {
    both(|jail| {
        let ino = jail.root.metadata().unwrap().ino();
        let dot = Entry::new(b'5', "./").mode(0o751).mtime(T + 5).owner(7, 8);
        jail.apply_ok(&[&Layer::new().entry(dot).file("a", "x")]);
        let meta = std::fs::symlink_metadata(&jail.root).unwrap();
        assert_eq!(meta.ino(), ino, "root replaced");
        assert_eq!(meta.mode() & 0o7777, 0o751);
        assert_eq!((meta.uid(), meta.gid()), (7, 8));
        assert_eq!(meta.mtime(), (T + 5) as i64, "mtime set after the children");
    });
}

#[test]
fn case_06_symlink_parent_resolves_in_root() {
    both(|jail| {
        let etc = jail.abs("/etc");
        let layer = Layer::new()
            .symlink("link", &etc)
            .file("link/passwd", "pwned?");
        jail.apply_ok(&[&layer]);
        // The dangling in-root target was created, like `mkdir -p` in a chroot.
        let inside = jail.abs_rel("/etc");
        let mut want = dirs(&inside);
        want.push(format!("f {inside}/passwd"));
        want.push(format!("l link -> {etc}"));
        want.sort();
        assert_eq!(jail.tree(), want);
        assert_eq!(jail.read(&format!("{inside}/passwd")), "pwned?");
        // The canary OUTER/etc/passwd is checked by `both`.
    });
}

#[test]
fn case_07_relative_symlink_dotdot_is_clamped_at_root() {
    both(|jail| {
        // From the root, ../../../.. is OUTER: a host-following unpacker writes OUTER/etc/x.
        let layer = Layer::new()
            .symlink("l", "../../../../etc")
            .file("l/x", "x");
        jail.apply_ok(&[&layer]);
        assert_eq!(jail.tree(), ["d etc", "f etc/x", "l l -> ../../../../etc"]);
        assert_eq!(jail.read("etc/x"), "x");
    });
}

#[test]
fn case_08_absolute_symlink_from_lower_layer_resolves_in_root() {
    both(|jail| {
        let run = jail.abs("/run");
        let l1 = Layer::new()
            .dir("var", 0o755)
            .dir(&jail.abs_rel("/run"), 0o755)
            .symlink("var/run", &run);
        let l2 = Layer::new().file("var/run/a", "a");
        jail.apply_ok(&[&l1, &l2]);
        assert_eq!(jail.read(&format!("{}/a", jail.abs_rel("/run"))), "a");
        assert_eq!(jail.link("var/run"), run);
    });
}

#[test]
fn case_09_symlink_loop_is_eloop() {
    both(|jail| {
        let layer = Layer::new()
            .symlink("a", "b")
            .symlink("b", "a")
            .file("a/x", "x");
        let err = jail.apply(&layer).unwrap_err();
        assert_eq!(errno(&err), Some(libc::ELOOP), "{err}");
        assert_eq!(jail.tree(), ["l a -> b", "l b -> a"]);
    });
}

#[test]
fn case_10_dangling_symlink_is_stored_verbatim() {
    both(|jail| {
        jail.apply_ok(&[&Layer::new().symlink("x", "/nonexistent")]);
        assert_eq!(jail.tree(), ["l x -> /nonexistent"]);
    });
}

#[test]
fn case_11_directory_replaced_by_symlink_to_root() {
    both(|jail| {
        let l1 = Layer::new().dir("foo", 0o755).file("foo/a", "a");
        // foo -> / is the root itself in-root; through it, a path named like OUTER/tmp.
        let tmp = jail.abs_rel("/tmp");
        let l2 = Layer::new()
            .symlink("foo", "/")
            .file(&format!("foo/{tmp}/e"), "e");
        jail.apply_ok(&[&l1, &l2]);
        let mut want = dirs(&tmp);
        want.push(format!("f {tmp}/e"));
        want.push("l foo -> /".to_string());
        want.sort();
        assert_eq!(
            jail.tree(),
            want,
            "foo/a removed with foo, e written in-root"
        );
    });
}
