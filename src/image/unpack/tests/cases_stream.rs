//! Cases 36-40: the tar stream itself, compression, DiffIDs and caps.

use std::io::Write;

use super::support::*;
use crate::image::digest::Digest;
use crate::image::spec::LayerCompression;
use crate::image::unpack::{Limits, UnpackError};

/// A header whose ustar size field says one thing, preceded by a PAX `size` saying another.
/// PAX wins (as in Go's archive/tar), so the next header is found where PAX says.
#[test]
fn case_36_pax_size_overrides_the_header_size_both_ways() {
    both(|jail| {
        // PAX smaller: the header claims 10 bytes, PAX 5; data is 5 bytes + padding.
        let small = Entry::new(b'0', "a")
            .data(b"hello")
            .header_size(10)
            .pax("size", b"5");
        // PAX larger: the header claims 5 bytes, PAX 600; data is 600 bytes.
        let large = Entry::new(b'0', "b")
            .data(&[b'z'; 600])
            .header_size(5)
            .pax("size", b"600");
        let l = Layer::new().entry(small).entry(large).file("c", "next");
        jail.apply_ok(&[&l]);
        assert_eq!(jail.tree(), ["f a", "f b", "f c"]);
        assert_eq!(jail.read("a"), "hello");
        assert_eq!(jail.read("b"), "z".repeat(600));
        assert_eq!(jail.read("c"), "next");
    });
}

/// PAX `x` then GNU `L` before one entry: both apply, the GNU long name wins over PAX
/// `path` (Go: `hdr.Name = gnuLongName` after merging PAX), PAX `mtime` still applies.
#[test]
fn case_36b_pax_before_gnu_long_name() {
    both(|jail| {
        let long = format!("dir/{}", "n".repeat(150));
        let pax = [
            pax_record("path", b"pax-name"),
            pax_record("mtime", b"1234.5"),
        ]
        .concat();
        let mut name = long.clone().into_bytes();
        name.push(0);
        let l = Layer::new()
            .dir("dir", 0o755)
            .special(b'x', b"PaxHeaders/x", &pax)
            .special(b'L', b"././@LongLink", &name)
            .file("header-name", "content")
            .file("after", "in sync");
        jail.apply_ok(&[&l]);
        assert_eq!(jail.tree(), ["d dir", "f after", &format!("f {long}")]);
        assert_eq!(jail.read(&long), "content");
        use std::os::unix::fs::MetadataExt;
        let meta = jail.meta(&long);
        assert_eq!((meta.mtime(), meta.mtime_nsec()), (1234, 500_000_000));
    });
}

#[test]
fn case_37_global_header_ignored_trailing_garbage_hashed_truncation_an_error() {
    both(|jail| {
        // A `g` header is neither created nor applied to the next entry.
        let g = pax_record("uid", b"99");
        let l = Layer::new()
            .special(b'g', b"pax_global_header", &g)
            .file("a", "a");
        jail.apply_ok(&[&l]);
        assert_eq!(jail.tree(), ["f a"]);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(jail.meta("a").uid(), 0);

        // Trailing garbage after the end marker is part of the DiffID.
        let with_garbage = Layer::new()
            .file("b", "b")
            .raw(&[0u8; 1024])
            .raw(&[b'G'; 3000])
            .body();
        let stats = jail.apply_with(&with_garbage, &Limits::default()).unwrap();
        assert_eq!(stats.diff_id, sha(&with_garbage));
        assert_eq!(stats.bytes, with_garbage.len() as u64);
        let good = (
            with_garbage.clone(),
            LayerCompression::None,
            sha(&with_garbage),
        );
        jail.unpack(&[good], &Limits::default(), &mut |_| {})
            .unwrap();
        let clean = Layer::new().file("b", "b").tar();
        let bad = (with_garbage, LayerCompression::None, sha(&clean));
        let err = jail
            .unpack(&[bad], &Limits::default(), &mut |_| {})
            .unwrap_err();
        assert!(
            matches!(err.innermost(), UnpackError::DiffId { .. }),
            "{err}"
        );
    });
    both(|jail| {
        // A stream that stops at an entry boundary without the end marker is read as Go
        // reads it (the DiffID, which covers exactly these bytes, is what catches a cut).
        let unterminated = Layer::new().file("a", "a").body();
        let stats = jail.apply_with(&unterminated, &Limits::default()).unwrap();
        assert_eq!(stats.diff_id, sha(&unterminated));
        assert_eq!(jail.tree(), ["f a"]);
    });
    both(|jail| {
        // A stream cut inside an entry's data, or inside a header, is an error.
        let full = Layer::new()
            .file("big", &"x".repeat(10_000))
            .file("next", "n")
            .tar();
        let err = jail
            .apply_with(&full[..512 + 600], &Limits::default())
            .unwrap_err();
        assert!(
            errno(&err).is_none() && err.to_string().contains("bytes before the end"),
            "{err}"
        );
        let err = jail
            .apply_with(&full[..512 + 10_240 + 100], &Limits::default())
            .unwrap_err();
        assert!(matches!(err, UnpackError::Tar(_)), "{err}");
    });
}

#[test]
fn case_38_multi_member_gzip_and_gzip_bomb() {
    both(|jail| {
        let tar = Layer::new()
            .file("one", &"1".repeat(5000))
            .file("two", "2")
            .tar();
        let (head, tail) = tar.split_at(777);
        let blob = [gzip(head), gzip(tail)].concat();
        let stats = jail
            .unpack(
                &[(blob, LayerCompression::Gzip, sha(&tar))],
                &Limits::default(),
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(
            (stats.layers, stats.entries, stats.bytes),
            (1, 2, tar.len() as u64)
        );
        assert_eq!(jail.read("one"), "1".repeat(5000));
        assert_eq!(jail.read("two"), "2");
    });
    both(|jail| {
        // 256 MiB of zeros in one file, ~256 KiB compressed; the cap is 4 MiB.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let mut h = tar::Header::new_gnu();
        h.set_path("zeros").unwrap();
        h.set_size(256 << 20);
        h.set_mode(0o644);
        h.set_cksum();
        enc.write_all(h.as_bytes()).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            enc.write_all(&zeros).unwrap();
        }
        enc.write_all(&[0u8; 1024]).unwrap();
        let blob = enc.finish().unwrap();
        let blob_len = blob.len() as u64;
        let limits = Limits {
            max_layer_bytes: 4 << 20,
            ..Limits::default()
        };
        let mut max_in = 0;
        let err = jail
            .unpack(
                &[(blob, LayerCompression::Gzip, Digest::of(b"unknown"))],
                &limits,
                &mut |p| max_in = max_in.max(p.bytes_in),
            )
            .unwrap_err();
        assert!(
            matches!(err.innermost(), UnpackError::LayerTooBig { limit } if *limit == 4 << 20),
            "{err}"
        );
        assert!(
            max_in < blob_len / 4,
            "read {max_in} of {blob_len} compressed bytes"
        );
        // The caller discards the staging directory.
        jail.discard_root();
    });
}

#[test]
fn case_38b_image_and_entry_caps() {
    both(|jail| {
        let l1 = Layer::new().file("a", &"a".repeat(3000)).tar();
        let l2 = Layer::new().file("b", &"b".repeat(3000)).tar();
        let limits = Limits {
            max_layer_bytes: 100_000,
            max_image_bytes: 6000,
            max_entries: 100,
        };
        let layers = [
            (l1.clone(), LayerCompression::None, sha(&l1)),
            (l2.clone(), LayerCompression::None, sha(&l2)),
        ];
        let err = jail.unpack(&layers, &limits, &mut |_| {}).unwrap_err();
        assert!(
            matches!(err, UnpackError::Layer { layer: 1, .. })
                && matches!(err.innermost(), UnpackError::ImageTooBig { limit: 6000 }),
            "{err}"
        );
        let many = Layer::new().file("1", "").file("2", "").file("3", "").tar();
        let limits = Limits {
            max_entries: 2,
            ..Limits::default()
        };
        let err = jail.apply_with(&many, &limits).unwrap_err();
        assert!(
            matches!(err, UnpackError::TooManyEntries { limit: 2 }),
            "{err}"
        );
    });
}

/// Wrong DiffID: an error after the layer streamed; the caller discards the staging dir.
/// `len(diff_ids) != len(layers)` and `rootfs.type != layers` are the config's checks
/// (`ImageConfig::parse`, tested in spec.rs); unpack_layers takes one DiffID per layer.
#[test]
fn case_39_wrong_diff_id_is_an_error() {
    both(|jail| {
        let tar = Layer::new().file("a", "a").tar();
        let blob = gzip(&tar);
        let wrong = Digest::of(b"something else");
        let err = jail
            .unpack(
                &[(blob, LayerCompression::Gzip, wrong.clone())],
                &Limits::default(),
                &mut |_| {},
            )
            .unwrap_err();
        match err.innermost() {
            UnpackError::DiffId { expected, actual } => {
                assert_eq!(expected, &wrong);
                assert_eq!(actual, &sha(&tar));
            }
            other => panic!("{other}"),
        }
        jail.discard_root();
    });
}

/// Hostile digests cannot even become a `LayerSource` (its `diff_id` is a validated
/// `Digest`); docker-archive layer paths and ambiguous manifests are the importer's and
/// spec.rs's checks. What unpack itself does before any I/O into the root: a missing blob
/// fails before the root is touched.
#[test]
fn case_40_hostile_references_rejected_before_io() {
    for bad in [
        "sha256:../../x",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    ] {
        assert!(bad.parse::<Digest>().is_err(), "{bad}");
    }
    both(|jail| {
        let layer = crate::image::unpack::LayerSource {
            path: jail.blobs.join("missing"),
            compression: LayerCompression::Gzip,
            diff_id: Digest::of(b""),
        };
        let err = crate::image::unpack::unpack_layers(
            &jail.root,
            &[layer],
            &Limits::default(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(err.innermost(), UnpackError::OpenBlob { .. }),
            "{err}"
        );
        assert!(jail.tree().is_empty());
    });
}
