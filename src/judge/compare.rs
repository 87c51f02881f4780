//! Output comparison: `exact` (byte equality) and `trim` (Judge0's rule: trailing
//! whitespace of each line and trailing blank lines do not count; leading whitespace and
//! blank lines inside the output do).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compare {
    /// Byte for byte.
    Exact,
    /// Ignore trailing whitespace on each line and trailing blank lines (Judge0).
    Trim,
}

impl std::str::FromStr for Compare {
    type Err = String;

    fn from_str(s: &str) -> Result<Compare, String> {
        match s {
            "exact" => Ok(Compare::Exact),
            "trim" => Ok(Compare::Trim),
            _ => Err(format!("'{s}': expected exact or trim")),
        }
    }
}

impl Compare {
    pub fn matches(self, actual: &[u8], expected: &[u8]) -> bool {
        match self {
            Compare::Exact => actual == expected,
            Compare::Trim => trimmed_lines(actual).eq(trimmed_lines(expected)),
        }
    }
}

/// Lines with trailing whitespace removed, without the trailing blank ones.
fn trimmed_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').map(trim_end).collect();
    let keep = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    lines.into_iter().take(keep)
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::Compare::*;

    #[test]
    fn trim_ignores_trailing_space_and_blank_lines_only() {
        assert!(Trim.matches(b"1 2\n3\n", b"1 2\n3"));
        assert!(Trim.matches(b"1 2  \r\n3\t\n\n\n", b"1 2\n3\n"));
        assert!(Trim.matches(b"", b"\n\n"));
        assert!(!Trim.matches(b" 1\n", b"1\n"), "leading space counts");
        assert!(
            !Trim.matches(b"1\n\n2\n", b"1\n2\n"),
            "inner blank lines count"
        );
        assert!(!Trim.matches(b"1 2\n", b"12\n"));
        assert!(!Trim.matches(b"1\n2\n", b"1\n"));
    }

    #[test]
    fn exact_is_byte_equality() {
        assert!(Exact.matches(b"42\n", b"42\n"));
        assert!(!Exact.matches(b"42", b"42\n"));
        assert!(!Exact.matches(b"42 \n", b"42\n"));
    }
}
