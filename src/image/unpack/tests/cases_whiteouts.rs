//! Cases 20-28: whiteouts and opaque directories.

use super::support::*;
use crate::image::unpack::Refusal;

#[test]
fn case_20_whiteouts_remove_lower_files_and_trees() {
    both(|jail| {
        let l1 = Layer::new()
            .file("file1", "1")
            .dir("a", 0o755)
            .file("a/file2", "2")
            .file("a/keep", "k")
            .dir("b", 0o755)
            .dir("b/sub", 0o755)
            .file("b/sub/x", "x");
        let l2 = Layer::new()
            .file(".wh.file1", "")
            .file("a/.wh.file2", "")
            .file(".wh.b", "");
        jail.apply_ok(&[&l1, &l2]);
        assert_eq!(jail.tree(), ["d a", "f a/keep"], "no .wh.* entry created");
    });
}

#[test]
fn case_21_whiteouts_spare_entries_of_their_own_layer() {
    both(|jail| {
        let l1 = Layer::new().file("A", "old").file("B", "old");
        let l2 = Layer::new()
            .file("A", "new")
            .file(".wh.A", "")
            .file(".wh.B", "")
            .file("B", "new");
        jail.apply_ok(&[&l1, &l2]);
        assert_eq!(jail.tree(), ["f A", "f B"]);
        assert_eq!(jail.read("A"), "new");
        assert_eq!(jail.read("B"), "new");
    });
}

#[test]
fn case_22_opaque_marker_applies_first_whatever_its_position() {
    both(|jail| {
        let l1 = Layer::new()
            .dir("a", 0o755)
            .file("a/top", "lower")
            .dir("a/b", 0o755)
            .dir("a/b/c", 0o755)
            .file("a/b/c/bar", "lower")
            .dir("a/lowerdir", 0o755)
            .file("a/lowerdir/x", "lower");
        let l2 = Layer::new()
            .dir("a", 0o755)
            .dir("a/b", 0o755)
            .dir("a/b/c", 0o755)
            .file("a/b/c/foo", "upper")
            .file("a/.wh..wh..opq", "");
        jail.apply_ok(&[&l1, &l2]);
        assert_eq!(jail.tree(), ["d a", "d a/b", "d a/b/c", "f a/b/c/foo"]);
    });
}

#[test]
fn case_22b_opaque_marker_first_spares_later_entries() {
    both(|jail| {
        let l1 = Layer::new().dir("a", 0o755).file("a/bar", "lower");
        let l2 = Layer::new()
            .dir("a", 0o755)
            .file("a/.wh..wh..opq", "")
            .file("a/foo", "upper");
        jail.apply_ok(&[&l1, &l2]);
        assert_eq!(jail.tree(), ["d a", "f a/foo"]);
    });
}

#[test]
fn case_23_opaque_marker_without_lower_directory_makes_it() {
    both(|jail| {
        jail.apply_ok(&[&Layer::new().file("new/.wh..wh..opq", "")]);
        assert_eq!(jail.tree(), ["d new"]);
    });
}

#[test]
fn case_24_invalid_whiteout_names_are_refused_before_removing_anything() {
    for bad in [".wh.", ".wh..", ".wh...", "etc/.wh.."] {
        both(|jail| {
            let l1 = Layer::new()
                .file("keep", "k")
                .dir("etc", 0o755)
                .file("etc/keep", "k");
            jail.apply_ok(&[&l1]);
            let err = jail.apply(&Layer::new().file(bad, "")).unwrap_err();
            assert_eq!(
                refusal(&err),
                Some(Refusal::InvalidWhiteout),
                "{bad}: {err}"
            );
            assert_eq!(jail.tree(), ["d etc", "f etc/keep", "f keep"], "{bad}");
        });
    }
}

#[test]
fn case_25_whiteout_of_nothing_is_a_no_op() {
    both(|jail| {
        let l = Layer::new()
            .file(".wh.nonexistent", "")
            .file("missing/dir/.wh.x", "");
        jail.apply_ok(&[&l]);
        assert!(jail.tree().is_empty(), "nothing created: {:?}", jail.tree());
    });
}

#[test]
fn case_26_whiteouts_through_and_of_a_symlink_stay_in_root() {
    both(|jail| {
        let etc = jail.abs_rel("/etc");
        let l1 = Layer::new()
            .dir(&etc, 0o755)
            .file(&format!("{etc}/w"), "in root")
            .file(&format!("{etc}/other"), "in root")
            .symlink("le", &jail.abs("/etc"));
        let l2 = Layer::new().file("le/.wh.w", "").file(".wh.le", "");
        jail.apply_ok(&[&l1, &l2]);
        let mut want = dirs(&etc);
        want.push(format!("f {etc}/other"));
        want.sort();
        assert_eq!(
            jail.tree(),
            want,
            "<root>/etc/w and le gone, <root>/etc kept"
        );
        // OUTER/etc/w (the host file of the same name) is checked by `both`.
    });
}

#[test]
fn case_27_whiteout_entries_are_never_created_whatever_their_type() {
    both(|jail| {
        let l1 = Layer::new().file("x", "1").file("y", "1").file("z", "1");
        let l2 = Layer::new()
            .entry(Entry::new(b'5', ".wh.x").data(&[7u8; 700]))
            .entry(Entry::new(b'2', ".wh.y").link("t").data(b"payload"))
            .entry(Entry::new(b'1', ".wh.z").link("x"))
            .file("after", "in sync");
        jail.apply_ok(&[&l1, &l2]);
        assert_eq!(jail.tree(), ["f after"]);
        assert_eq!(jail.read("after"), "in sync");
    });
}

#[test]
fn case_28_whiteout_then_recreate_in_a_later_layer() {
    both(|jail| {
        let l1 = Layer::new().dir("a", 0o755).file("a/foo", "foo");
        let l2 = Layer::new().file(".wh.a", "");
        let l3 = Layer::new().dir("a", 0o755).file("a/baz", "baz");
        jail.apply_ok(&[&l1, &l2, &l3]);
        assert_eq!(jail.tree(), ["d a", "f a/baz"]);
    });
}

#[test]
fn whiteout_of_a_directory_recreated_in_the_same_layer_removes_only_lower_children() {
    both(|jail| {
        let l1 = Layer::new().dir("d", 0o755).file("d/old", "lower");
        let l2 = Layer::new()
            .dir("d", 0o755)
            .file("d/new", "upper")
            .file(".wh.d", "");
        jail.apply_ok(&[&l1, &l2]);
        assert_eq!(jail.tree(), ["d d", "f d/new"]);
    });
}
