//! `additional_files`: a zip checked on the host (relative paths that stay in /box, only
//! regular files and directories, at most MAX_EXTRACT_SIZE KB and MAX_ENTRIES entries)
//! and repacked as a plain tar that the sandbox unpacks into /box.

use std::io::{Cursor, Read};

use thiserror::Error;

/// Most entries an archive may have.
pub const MAX_ENTRIES: usize = 1000;

#[derive(Debug, Error, PartialEq)]
pub enum FilesError {
    #[error("is not a valid zip archive")]
    NotZip,
    #[error("has more than {0} entries")]
    TooManyEntries(usize),
    #[error("entry '{0}' is not a relative path inside the working directory")]
    Escapes(String),
    #[error("entry '{0}' is not a regular file or directory")]
    NotRegular(String),
    #[error("extracts to more than {0} KB")]
    TooLarge(u64),
    #[error("entry '{0}': {1}")]
    Corrupt(String, String),
    #[error("entry '{0}' is reserved")]
    Reserved(String),
}

/// One checked entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub executable: bool,
}

/// Names judgebox itself uses in /box.
pub const TAR_NAME: &str = "judgebox-files.tar";
pub const BOX_TAR_NAME: &str = "judgebox-box.tar";

/// Reads and checks every entry of `zip`; `max_kb` caps the total extracted size.
pub fn read_zip(zip: &[u8], max_kb: u64) -> Result<Vec<Entry>, FilesError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|_| FilesError::NotZip)?;
    if archive.len() > MAX_ENTRIES {
        return Err(FilesError::TooManyEntries(MAX_ENTRIES));
    }
    let mut budget = max_kb.saturating_mul(1024);
    let mut entries = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut file = archive
            .by_index(i)
            .map_err(|e| FilesError::Corrupt(format!("#{i}"), e.to_string()))?;
        let name = file
            .name()
            .map_err(|e| FilesError::Corrupt(format!("#{i}"), e.to_string()))?
            .to_string();
        let path = check_path(&name)?;
        let mode = file.unix_mode().unwrap_or(0);
        let kind = mode & libc::S_IFMT;
        if file.is_symlink() || (kind != 0 && kind != libc::S_IFREG && kind != libc::S_IFDIR) {
            return Err(FilesError::NotRegular(name));
        }
        if file.is_dir() {
            entries.push(Entry {
                path,
                data: None,
                executable: false,
            });
            continue;
        }
        let mut data = Vec::new();
        (&mut file)
            .take(budget + 1)
            .read_to_end(&mut data)
            .map_err(|e| FilesError::Corrupt(name.clone(), e.to_string()))?;
        if data.len() as u64 > budget {
            return Err(FilesError::TooLarge(max_kb));
        }
        budget -= data.len() as u64;
        entries.push(Entry {
            path,
            data: Some(data),
            executable: mode & 0o111 != 0,
        });
    }
    Ok(entries)
}

/// A relative path of normal components (no `..`, no absolute, no NUL or backslash).
fn check_path(name: &str) -> Result<String, FilesError> {
    let trimmed = name.trim_end_matches('/');
    let escapes = || FilesError::Escapes(name.to_string());
    if trimmed.is_empty() || trimmed.starts_with('/') || name.contains(['\0', '\\']) {
        return Err(escapes());
    }
    for part in trimmed.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(escapes());
        }
    }
    if trimmed == TAR_NAME || trimmed == BOX_TAR_NAME {
        return Err(FilesError::Reserved(name.to_string()));
    }
    Ok(trimmed.to_string())
}

/// A tar of the entries plus the source file (written last, so it wins), for /box.
pub fn to_tar(entries: &[Entry], source: Option<(&str, &[u8], bool)>) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    let mut add = |path: &str, data: Option<&[u8]>, exec: bool| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        match data {
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty())
            }
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if exec { 0o755 } else { 0o644 });
                h.set_size(d.len() as u64);
                b.append_data(&mut h, path, d)
            }
        }
    };
    for e in entries {
        add(&e.path, e.data.as_deref(), e.executable)?;
    }
    if let Some((name, data, exec)) = source {
        add(name, Some(data), exec)?;
    }
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn escaping_names_are_refused() {
        for bad in ["../x", "/etc/passwd", "a/../../x", "a//b", "./", "a\\..\\b"] {
            let z = zip_of(&[(bad, b"x")]);
            assert!(
                matches!(read_zip(&z, 10), Err(FilesError::Escapes(_))),
                "{bad}"
            );
        }
        let ok = read_zip(&zip_of(&[("dir/a.txt", b"hi"), ("b", b"")]), 10).unwrap();
        assert_eq!(ok[0].path, "dir/a.txt");
        assert_eq!(read_zip(b"not a zip", 10), Err(FilesError::NotZip));
    }

    #[test]
    fn size_and_symlinks_are_capped() {
        let big = vec![0u8; 3000];
        let z = zip_of(&[("a", &big), ("b", &big)]);
        assert_eq!(read_zip(&z, 5), Err(FilesError::TooLarge(5)));
        assert!(read_zip(&z, 6).is_ok());
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_symlink(
            "link",
            "/etc/shadow",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        let z = w.finish().unwrap().into_inner();
        assert!(matches!(read_zip(&z, 10), Err(FilesError::NotRegular(_))));
    }

    #[test]
    fn the_tar_holds_entries_and_source() {
        let entries = read_zip(&zip_of(&[("d/x", b"1")]), 10).unwrap();
        let tar = to_tar(&entries, Some(("main.py", b"print(1)", false))).unwrap();
        let mut a = tar::Archive::new(Cursor::new(tar));
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["d/x", "main.py"]);
    }
}
