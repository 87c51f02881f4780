//! Cases 12-19: entries over symlinks, hardlinks.

use std::os::unix::fs::MetadataExt;

use super::support::*;
use crate::image::unpack::Refusal;

#[test]
fn case_12_directory_over_symlink_replaces_the_link() {
    both(|jail| {
        let etc = jail.abs_rel("/etc");
        let l1 = Layer::new()
            .dir(&etc, 0o755)
            .symlink("le", &jail.abs("/etc"));
        let l2 = Layer::new().dir("le", 0o700);
        jail.apply_ok(&[&l1, &l2]);
        assert!(jail.meta("le").is_dir(), "le is a real directory");
        assert_eq!(jail.mode("le"), 0o700);
        assert_eq!(
            jail.mode(&etc),
            0o755,
            "the link's in-root target is unchanged"
        );
        // OUTER/etc (the host target) is checked by `both`.
    });
}

#[test]
fn case_13_directory_over_symlink_never_chmods_the_target() {
    both(|jail| {
        let l = Layer::new()
            .symlink("foo", &jail.abs("/outside"))
            .dir("foo", 0o777);
        jail.apply_ok(&[&l]);
        assert_eq!(jail.tree(), ["d foo"]);
        assert_eq!(jail.mode("foo"), 0o777);
        // OUTER/outside keeps 0755: checked by `both`.
    });
}

#[test]
fn case_14_hardlink_targets_resolve_in_root() {
    both(|jail| {
        let abs_etc = jail.abs_rel("/etc");
        let l = Layer::new()
            .dir("etc", 0o755)
            .file("etc/passwd", "root passwd")
            .dir(&abs_etc, 0o755)
            .file(&format!("{abs_etc}/passwd"), "abs passwd")
            .hardlink("lp", "../../../../etc/passwd")
            .hardlink("lp2", "/etc/passwd")
            .hardlink("lp3", &format!("{}/passwd", jail.abs("/etc")));
        jail.apply_ok(&[&l]);
        let ino = jail.meta("etc/passwd").ino();
        assert_eq!(jail.meta("lp").ino(), ino);
        assert_eq!(jail.meta("lp2").ino(), ino);
        assert_eq!(jail.meta("etc/passwd").nlink(), 3);
        assert_eq!(jail.read("lp"), "root passwd");
        let abs_ino = jail.meta(&format!("{abs_etc}/passwd")).ino();
        assert_eq!(jail.meta("lp3").ino(), abs_ino);
        assert_eq!(jail.read("lp3"), "abs passwd");
    });
}

#[test]
fn case_15_hardlink_through_symlinked_directory_stays_in_root() {
    both(|jail| {
        let l = Layer::new()
            .dir("etc", 0o755)
            .file("etc/passwd", "root passwd")
            .symlink("d1", "../../etc")
            .hardlink("my", "d1/passwd");
        jail.apply_ok(&[&l]);
        assert_eq!(jail.meta("my").ino(), jail.meta("etc/passwd").ino());
        assert_eq!(jail.read("my"), "root passwd");
    });
}

#[test]
fn case_16_hardlink_to_symlink_links_the_symlink_itself() {
    both(|jail| {
        let target = format!("{}/passwd", jail.abs("/etc"));
        let l = Layer::new().symlink("sl", &target).hardlink("dup", "sl");
        jail.apply_ok(&[&l]);
        let dup = jail.meta("dup");
        assert!(dup.file_type().is_symlink(), "dup is a symlink inode");
        assert_eq!(dup.ino(), jail.meta("sl").ino());
        assert_eq!(jail.link("dup"), target);
    });
}

#[test]
fn case_17_hardlink_to_symlink_with_mode_never_chmods_the_host() {
    both(|jail| {
        let l = Layer::new().symlink("sk", &jail.abs("/f")).entry(
            Entry::new(b'1', "l")
                .link("sk")
                .mode(0o777)
                .owner(1000, 1000),
        );
        jail.apply_ok(&[&l]);
        assert!(jail.meta("l").file_type().is_symlink());
        assert_eq!(jail.meta("l").ino(), jail.meta("sk").ino());
        // OUTER/f keeps mode 0644 and owner 0:0: checked by `both`.
    });
}

#[test]
fn case_18_hardlink_to_missing_or_directory_is_an_error() {
    both(|jail| {
        let err = jail
            .apply(&Layer::new().hardlink("x", "missing"))
            .unwrap_err();
        assert_eq!(errno(&err), Some(libc::ENOENT), "{err}");
        assert!(jail.tree().is_empty());
    });
    both(|jail| {
        let l = Layer::new().dir("somedir", 0o755).hardlink("y", "somedir");
        let err = jail.apply(&l).unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::HardlinkToDirectory), "{err}");
        assert_eq!(jail.tree(), ["d somedir"]);
        let err = jail.apply(&Layer::new().hardlink("z", "/")).unwrap_err();
        assert_eq!(refusal(&err), Some(Refusal::HardlinkToDirectory), "{err}");
    });
}

#[test]
fn case_19_replacing_a_hardlinked_file_unlinks_first() {
    both(|jail| {
        let l1 = Layer::new().file("a", "old").hardlink("b", "a");
        let l2 = Layer::new().file("a", "new");
        jail.apply_ok(&[&l1, &l2]);
        assert_eq!(jail.read("a"), "new");
        assert_eq!(jail.read("b"), "old");
        assert_ne!(jail.meta("a").ino(), jail.meta("b").ino());
        assert_eq!(jail.meta("b").nlink(), 1);
    });
}
