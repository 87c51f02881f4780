//! Turns one tar entry into an [`Item`]: the cleaned in-root path, what to create and its
//! metadata. Hostile names, numbers and types are refused here, before any filesystem call.

use std::ffi::CString;
use std::io::Read;

use super::{Notes, Refusal, UnpackError};

/// Longest entry path accepted (PATH_MAX - 1), so every path stays addressable.
pub(crate) const MAX_PATH: usize = 4095;

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
/// AUFS bookkeeping names (`.wh..wh.plnk`, `.wh..wh.aufs`), skipped as Docker does.
const AUFS_META: &[u8] = b".wh..wh.";

/// One entry, ready to apply.
pub(crate) struct Item {
    /// Cleaned and relative (`/`-separated, no `.`, `..` or empty components); empty is
    /// the root itself.
    pub path: Vec<u8>,
    pub kind: Kind,
    pub meta: Meta,
    /// Bytes of data the entry carries (tar's size, after PAX `size`).
    pub size: u64,
}

pub(crate) enum Kind {
    File,
    Dir,
    Symlink(CString),
    /// The target, cleaned in-root (`..` stops at the root).
    Hardlink(Vec<u8>),
    Fifo,
    /// Refused with a note: devices in a host-visible tree are an exposure.
    Device {
        block: bool,
        major: u64,
        minor: u64,
    },
    /// `.wh.NAME`: `path` is the parent directory, this is NAME.
    Whiteout(Vec<u8>),
    /// `.wh..wh..opq`: `path` is the opaque directory.
    Opaque,
    /// Nothing to do (global PAX header, AUFS metadata); the reason.
    Skip(&'static str),
}

#[derive(Clone)]
pub(crate) struct Meta {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits with setuid, setgid and sticky (`& 0o7777`).
    pub mode: u32,
    pub mtime: libc::timespec,
    /// Extended attributes to set (already filtered to the kept namespaces).
    pub xattrs: Vec<(CString, Vec<u8>)>,
}

/// Reads the header (and PAX records) of `entry`. Does not read its data.
pub(crate) fn parse<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    notes: &mut Notes,
) -> Result<Item, UnpackError> {
    let raw = entry.path_bytes().into_owned();
    let shown = String::from_utf8_lossy(&raw).into_owned();
    let refuse = |why| UnpackError::Refused {
        path: shown.clone(),
        why,
    };
    let flag = entry.header().entry_type().as_byte();
    if flag == b'g' {
        return Ok(skip(raw, "global PAX header"));
    }
    let pax = Pax::read(entry).map_err(UnpackError::Tar)?;
    if flag == b'S' || pax.sparse {
        return Err(refuse(Refusal::Sparse));
    }
    if raw.contains(&0) {
        return Err(refuse(Refusal::NulInName));
    }
    let path = clean(&raw).ok_or_else(|| refuse(Refusal::EscapesRoot))?;
    if path.len() > MAX_PATH {
        return Err(refuse(Refusal::NameTooLong));
    }
    let (dir, last) = split_last(&path);
    if super::resolve::components(dir).any(|c| c.starts_with(WHITEOUT)) {
        return Err(refuse(Refusal::WhiteoutInDirectoryName));
    }
    if last.starts_with(WHITEOUT) {
        return whiteout(dir, last).ok_or_else(|| refuse(Refusal::InvalidWhiteout));
    }
    let header = entry.header();
    let kind = match flag {
        b'0' | b'7' => Kind::File,
        b'\0' if raw.ends_with(b"/") => Kind::Dir, // pre-POSIX directory, as Go reads it
        b'\0' => Kind::File,
        b'5' => Kind::Dir,
        b'2' => {
            let target = entry.link_name_bytes().unwrap_or_default();
            Kind::Symlink(
                CString::new(target.into_owned()).map_err(|_| refuse(Refusal::NulInName))?,
            )
        }
        b'1' => {
            let target = entry.link_name_bytes().unwrap_or_default();
            if target.contains(&0) {
                return Err(refuse(Refusal::NulInName));
            }
            Kind::Hardlink(clean_clamped(&target))
        }
        b'6' => Kind::Fifo,
        b'3' | b'4' => {
            let (major, minor) =
                device_numbers(header).map_err(|()| refuse(Refusal::DeviceNumber))?;
            Kind::Device {
                block: flag == b'4',
                major,
                minor,
            }
        }
        other => return Err(refuse(Refusal::UnsupportedType(other))),
    };
    let meta = meta(header, &pax, &shown, notes).map_err(refuse)?;
    Ok(Item {
        path,
        kind,
        meta,
        size: entry.size(),
    })
}

fn skip(path: Vec<u8>, why: &'static str) -> Item {
    Item {
        path,
        kind: Kind::Skip(why),
        meta: Meta::none(),
        size: 0,
    }
}

impl Meta {
    fn none() -> Meta {
        Meta {
            uid: 0,
            gid: 0,
            mode: 0,
            mtime: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        }
    }
}

/// `.wh.NAME` and `.wh..wh..opq` in directory `dir`; `None` for an invalid NAME.
fn whiteout(dir: &[u8], last: &[u8]) -> Option<Item> {
    let item = |kind| Item {
        path: dir.to_vec(),
        kind,
        meta: Meta::none(),
        size: 0,
    };
    if last == OPAQUE {
        return Some(item(Kind::Opaque));
    }
    if last.starts_with(AUFS_META) {
        return Some(item(Kind::Skip("AUFS metadata entry")));
    }
    let name = &last[WHITEOUT.len()..];
    if name.is_empty() || name == b"." || name == b".." {
        return None;
    }
    Some(item(Kind::Whiteout(name.to_vec())))
}

fn meta(header: &tar::Header, pax: &Pax, shown: &str, notes: &mut Notes) -> Result<Meta, Refusal> {
    // Raw fields, read as Go does (an all-NUL field is 0); tar has already put PAX uid and
    // gid into them. u32::MAX is chown's "leave unchanged": the highest id is one less.
    let old = header.as_old();
    let id = |field: &[u8]| match numeric_field(field) {
        Ok(v) if v < u64::from(u32::MAX) => Ok(v as u32),
        _ => Err(Refusal::IdOutOfRange),
    };
    let uid = id(&old.uid)?;
    let gid = id(&old.gid)?;
    let mode = numeric_field(&old.mode).map_err(|()| Refusal::BadNumber("mode"))? as u32 & 0o7777;
    let mtime = match pax.mtime {
        Some(t) => t,
        None => libc::timespec {
            tv_sec: numeric_field(&old.mtime)
                .ok()
                .and_then(|t| i64::try_from(t).ok())
                .ok_or(Refusal::BadNumber("mtime"))?,
            tv_nsec: 0,
        },
    };
    let mut xattrs = Vec::new();
    for (name, value) in &pax.xattrs {
        if keep_xattr(name) {
            match CString::new(name.as_bytes()) {
                Ok(c) => xattrs.push((c, value.clone())),
                Err(_) => notes.push(format!("{shown}: dropped xattr with a NUL in its name")),
            }
        } else {
            notes.push(format!("{shown}: dropped xattr {name}"));
        }
    }
    Ok(Meta {
        uid,
        gid,
        mode,
        mtime,
        xattrs,
    })
}

/// File capabilities and user attributes are part of an image; `trusted.*` (overlayfs
/// internals), `security.selinux` (host policy) and the rest are the host's business.
pub(crate) fn keep_xattr(name: &str) -> bool {
    name == "security.capability" || (name.starts_with("user.") && name.len() > 5)
}

/// What the PAX records of an entry say beyond what tar applies itself (path, linkpath,
/// size, uid, gid).
#[derive(Default)]
struct Pax {
    xattrs: Vec<(String, Vec<u8>)>,
    mtime: Option<libc::timespec>,
    sparse: bool,
}

impl Pax {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> std::io::Result<Pax> {
        let mut pax = Pax::default();
        let Some(records) = entry.pax_extensions()? else {
            return Ok(pax);
        };
        for record in records {
            let record = record?;
            let key = record.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                let name = String::from_utf8_lossy(name).into_owned();
                pax.xattrs.push((name, record.value_bytes().to_vec()));
            } else if key.starts_with(b"LIBARCHIVE.xattr.") {
                let name = String::from_utf8_lossy(key).into_owned();
                pax.xattrs.push((name, Vec::new())); // base64-encoded names: noted, dropped
            } else if key == b"mtime" {
                pax.mtime = parse_pax_time(record.value_bytes());
            } else if key.starts_with(b"GNU.sparse.") {
                pax.sparse = true;
            }
        }
        Ok(pax)
    }
}

/// A PAX time, `[-]seconds[.fraction]`; `None` if malformed (the header's time is used).
pub(crate) fn parse_pax_time(value: &[u8]) -> Option<libc::timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, digit) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(digit - b'0') * 10i64.pow(8 - i as u32);
    }
    Some(match (negative, nanos) {
        (false, _) => libc::timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        },
        (true, 0) => libc::timespec {
            tv_sec: -secs,
            tv_nsec: 0,
        },
        (true, _) => libc::timespec {
            tv_sec: -secs - 1,
            tv_nsec: 1_000_000_000 - nanos,
        },
    })
}

/// Device numbers from the raw header fields, octal or GNU base-256 (which tar's own
/// accessors reject or truncate); `Err` when one does not fit in 32 bits.
fn device_numbers(header: &tar::Header) -> Result<(u64, u64), ()> {
    let (major, minor) = if let Some(h) = header.as_ustar() {
        (&h.dev_major, &h.dev_minor)
    } else if let Some(h) = header.as_gnu() {
        (&h.dev_major, &h.dev_minor)
    } else {
        return Ok((0, 0));
    };
    let fits = |n: u64| if n <= u32::MAX as u64 { Ok(n) } else { Err(()) };
    Ok((fits(numeric_field(major)?)?, fits(numeric_field(minor)?)?))
}

/// A tar numeric field: NUL/space-padded octal, or base-256 when the high bit is set
/// (negative base-256 values are refused).
pub(crate) fn numeric_field(field: &[u8]) -> Result<u64, ()> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return Err(()); // negative
        }
        let mut value: u64 = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            value = value.checked_mul(256).ok_or(())? | u64::from(b);
        }
        return Ok(value);
    }
    let text = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| *b != 0 && *b != b' ')
        .collect::<Vec<u8>>();
    if text.is_empty() {
        return Ok(0);
    }
    let text = std::str::from_utf8(&text).map_err(|_| ())?;
    u64::from_str_radix(text, 8).map_err(|_| ())
}

/// Cleans an entry name: leading `/` and `.`/empty components dropped, `a/..` folded.
/// `None` if `..` would climb above the root (the entry is refused, as moby and crane do).
pub(crate) fn clean(path: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join(&b'/'))
}

/// Cleans a hardlink target in-root: as [`clean`], but `..` at the root stays at the root,
/// as the kernel resolves `..` in a chroot (containerd, umoci).
pub(crate) fn clean_clamped(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join(&b'/')
}

/// `a/b/c` -> (`a/b`, `c`); `c` -> (``, `c`).
pub(crate) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_escapes_refused() {
        assert_eq!(clean(b"/etc//x/./y/").unwrap(), b"etc/x/y");
        assert_eq!(clean(b"a/../b").unwrap(), b"b");
        assert_eq!(clean(b"./").unwrap(), b"");
        assert_eq!(clean(b"../../evil"), None);
        assert_eq!(clean(b"a/../../evil"), None);
        assert_eq!(clean_clamped(b"../../../../etc/passwd"), b"etc/passwd");
        assert_eq!(clean_clamped(b"/a/../../b"), b"b");
    }

    #[test]
    fn pax_times_parse_with_fractions_and_signs() {
        let t = parse_pax_time(b"1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        let t = parse_pax_time(b"-1.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 750_000_000));
        let t = parse_pax_time(b"12.1234567891").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 123_456_789));
        assert!(parse_pax_time(b"x").is_none());
        assert!(parse_pax_time(b"1.2.3").is_none());
    }

    #[test]
    fn numeric_fields_read_octal_and_base256() {
        assert_eq!(numeric_field(b"0000010\0"), Ok(8));
        assert_eq!(numeric_field(b"\0\0\0\0\0\0\0\0"), Ok(0));
        assert_eq!(numeric_field(b"      7 "), Ok(7));
        let mut big = [0u8; 8];
        big[0] = 0x80;
        big[3] = 0x02; // 2^33
        assert_eq!(numeric_field(&big), Ok(1 << 33));
        assert_eq!(numeric_field(&[0xff; 8]), Err(()));
        assert_eq!(numeric_field(b"9\0\0\0\0\0\0\0"), Err(()));
    }
}
