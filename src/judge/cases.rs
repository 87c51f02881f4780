//! Test cases: one `--stdin`/`--expected` pair, or a directory of `NAME.in`/`NAME.out`
//! pairs in natural order (`2` before `10`). Problems are found before anything runs.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::safe_open;

#[derive(Debug, Error)]
pub enum CaseError {
    #[error("tests directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error("tests directory {0}: no NAME.in files")]
    Empty(PathBuf),
    #[error("test {name}: {path}: {source}")]
    Unreadable {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("tests directory {dir}: {name}.out has no {name}.in")]
    Orphan { dir: PathBuf, name: String },
}

/// One test: the program's stdin and, when known, the expected output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    pub name: String,
    pub input: Option<PathBuf>,
    pub expected: Option<PathBuf>,
}

impl TestCase {
    /// A single test from `--stdin` / `--expected` (both optional).
    pub fn single(input: Option<&Path>, expected: Option<&Path>) -> Result<TestCase, CaseError> {
        let case = TestCase {
            name: "1".into(),
            input: input.map(Path::to_path_buf),
            expected: expected.map(Path::to_path_buf),
        };
        case.check_readable()?;
        Ok(case)
    }

    /// Opens each file once so an unreadable one is reported before anything runs: as
    /// every later open, without following a symlink and refusing anything but a regular
    /// file before it could block (a FIFO) or read a host file as root.
    fn check_readable(&self) -> Result<(), CaseError> {
        for path in self.input.iter().chain(self.expected.iter()) {
            if let Err(e) = safe_open::open_regular(path) {
                return Err(CaseError::Unreadable {
                    name: self.name.clone(),
                    path: path.clone(),
                    source: e.into_io(),
                });
            }
        }
        Ok(())
    }
}

/// Every `NAME.in` in `dir` with its `NAME.out` (when present), naturally sorted.
pub fn from_dir(dir: &Path) -> Result<Vec<TestCase>, CaseError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CaseError::Dir(dir.to_path_buf(), e))?;
    let mut names = Vec::new();
    let mut outs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CaseError::Dir(dir.to_path_buf(), e))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(name) = file.strip_suffix(".in") {
            names.push(name.to_string());
        } else if let Some(name) = file.strip_suffix(".out") {
            outs.push(name.to_string());
        }
    }
    if names.is_empty() {
        return Err(CaseError::Empty(dir.to_path_buf()));
    }
    if let Some(orphan) = outs.iter().find(|o| !names.contains(o)) {
        return Err(CaseError::Orphan {
            dir: dir.to_path_buf(),
            name: orphan.clone(),
        });
    }
    names.sort_by(|a, b| natural_cmp(a, b));
    names
        .into_iter()
        .map(|name| {
            let out = dir.join(format!("{name}.out"));
            let case = TestCase {
                input: Some(dir.join(format!("{name}.in"))),
                expected: outs.contains(&name).then_some(out),
                name,
            };
            case.check_readable().map(|_| case)
        })
        .collect()
}

/// Compares runs of digits by value, everything else bytewise: `t2 < t10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_digits(a);
                let (nb, rb) = split_digits(b);
                let (ta, tb) = (trim_zeros(na), trim_zeros(nb));
                let ord = ta
                    .len()
                    .cmp(&tb.len())
                    .then(ta.cmp(tb))
                    .then(na.len().cmp(&nb.len()));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (ra, rb);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    s.split_at(n)
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| **b == b'0').count();
    &s[n.min(s.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_sorts_numbers_by_value() {
        let mut v = vec!["t10", "t2", "t1", "a", "t02", "b1", "t100", "t9x"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "b1", "t1", "t2", "t02", "t9x", "t10", "t100"]);
    }

    #[test]
    fn a_tests_dir_pairs_in_and_out_files() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("10.in", "x"),
            ("10.out", "y"),
            ("2.in", "a"),
            ("2.out", "b"),
            ("3.in", "c"),
            ("notes.txt", ""),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let cases = from_dir(dir.path()).unwrap();
        let names: Vec<_> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["2", "3", "10"]);
        assert!(cases[1].expected.is_none());
        std::fs::write(dir.path().join("7.out"), "").unwrap();
        assert!(matches!(
            from_dir(dir.path()),
            Err(CaseError::Orphan { .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(from_dir(empty.path()), Err(CaseError::Empty(_))));
    }
}
