//! Output comparison: `exact` (byte equality) and `trim` (Judge0's rule: trailing
//! whitespace of each line and trailing blank lines do not count; leading whitespace and
//! blank lines inside the output do). Both read the two sides as streams in fixed buffers.

use std::io::{self, Read};

use serde::Serialize;
use thiserror::Error;

/// Bytes read at a time from each side: the comparison's whole memory.
const CHUNK: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compare {
    /// Byte for byte.
    Exact,
    /// Ignore trailing whitespace on each line and trailing blank lines (Judge0).
    Trim,
}

/// Which side of a comparison could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The program's output.
    Actual,
    /// The expected output.
    Expected,
}

#[derive(Debug, Error)]
pub enum CompareError {
    #[error("reading the {} output: {source}", if *.side == Side::Actual { "program's" } else { "expected" })]
    Read {
        side: Side,
        #[source]
        source: io::Error,
    },
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
    /// Compares two in-memory outputs (the same rule as [`Compare::matches_stream`]).
    pub fn matches(self, actual: &[u8], expected: &[u8]) -> bool {
        self.matches_stream(actual, expected)
            .expect("reading a slice cannot fail")
    }

    /// Compares two outputs read as streams, in memory bounded by two buffers whatever
    /// their size (a line may be gigabytes long); stops at the first difference.
    pub fn matches_stream(
        self,
        actual: impl Read,
        expected: impl Read,
    ) -> Result<bool, CompareError> {
        let mut a = Stream::new(actual, Side::Actual);
        let mut b = Stream::new(expected, Side::Expected);
        match self {
            Compare::Exact => exact(&mut a, &mut b),
            Compare::Trim => trim(&mut a, &mut b),
        }
    }
}

/// One side, buffered; `window` is what has been read and not consumed yet.
struct Stream<R> {
    inner: R,
    side: Side,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl<R: Read> Stream<R> {
    fn new(inner: R, side: Side) -> Stream<R> {
        Stream {
            inner,
            side,
            buf: vec![0; CHUNK],
            pos: 0,
            len: 0,
        }
    }

    /// The unconsumed bytes, refilled when empty; empty only at the end of the stream.
    fn window(&mut self) -> Result<&[u8], CompareError> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(CompareError::Read {
                            side: self.side,
                            source,
                        })
                    }
                }
            };
        }
        Ok(&self.buf[self.pos..self.len])
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    fn next_byte(&mut self) -> Result<Option<u8>, CompareError> {
        let b = self.window()?.first().copied();
        if b.is_some() {
            self.consume(1);
        }
        Ok(b)
    }
}

/// How a line ended once its remainder was found to be blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineEnd {
    Newline,
    Eof,
}

fn exact<A: Read, B: Read>(a: &mut Stream<A>, b: &mut Stream<B>) -> Result<bool, CompareError> {
    loop {
        let (wa, wb) = (a.window()?.len(), b.window()?.len());
        if wa == 0 || wb == 0 {
            return Ok(wa == wb);
        }
        let n = wa.min(wb);
        if a.buf[a.pos..a.pos + n] != b.buf[b.pos..b.pos + n] {
            return Ok(false);
        }
        a.consume(n);
        b.consume(n);
    }
}

/// Both sides in lockstep while they agree. Where they first differ within a line, the
/// trimmed lines are equal exactly when the rest of each line is whitespace (the common
/// prefix then trims to the same length on both sides). When one side ends, everything
/// left on the other must be whitespace (trailing blank lines).
fn trim<A: Read, B: Read>(a: &mut Stream<A>, b: &mut Stream<B>) -> Result<bool, CompareError> {
    loop {
        skip_common_prefix(a, b)?;
        let (x, y) = (a.next_byte()?, b.next_byte()?);
        if x.is_none() && y.is_none() {
            return Ok(true);
        }
        let (Some(ea), Some(eb)) = (rest_of_line_blank(a, x)?, rest_of_line_blank(b, y)?) else {
            return Ok(false);
        };
        match (ea, eb) {
            (LineEnd::Newline, LineEnd::Newline) => continue,
            (LineEnd::Eof, LineEnd::Eof) => return Ok(true),
            (LineEnd::Eof, LineEnd::Newline) => return rest_blank(b),
            (LineEnd::Newline, LineEnd::Eof) => return rest_blank(a),
        }
    }
}

/// Consumes the bytes both sides have in common from here.
fn skip_common_prefix<A: Read, B: Read>(
    a: &mut Stream<A>,
    b: &mut Stream<B>,
) -> Result<(), CompareError> {
    loop {
        let (wa, wb) = (a.window()?.len(), b.window()?.len());
        let n = wa.min(wb);
        let same = a.buf[a.pos..a.pos + n]
            .iter()
            .zip(&b.buf[b.pos..b.pos + n])
            .position(|(x, y)| x != y)
            .unwrap_or(n);
        a.consume(same);
        b.consume(same);
        if same < n || n == 0 {
            return Ok(());
        }
    }
}

/// Given the first byte of a line's remainder (already consumed), consumes the rest of
/// the line; `None` when a non-whitespace byte shows up.
fn rest_of_line_blank<R: Read>(
    s: &mut Stream<R>,
    first: Option<u8>,
) -> Result<Option<LineEnd>, CompareError> {
    let mut next = first;
    loop {
        match next {
            None => return Ok(Some(LineEnd::Eof)),
            Some(b'\n') => return Ok(Some(LineEnd::Newline)),
            Some(c) if c.is_ascii_whitespace() => next = s.next_byte()?,
            Some(_) => return Ok(None),
        }
    }
}

/// Whether everything left in `s` is whitespace (newlines included).
fn rest_blank<R: Read>(s: &mut Stream<R>) -> Result<bool, CompareError> {
    loop {
        let w = s.window()?;
        if w.is_empty() {
            return Ok(true);
        }
        if !w.iter().all(u8::is_ascii_whitespace) {
            return Ok(false);
        }
        let n = w.len();
        s.consume(n);
    }
}

/// The trim rule as first written (whole outputs in memory) and a reader that returns a
/// few bytes at a time: what the unit tests and the fuzz target check the streams against.
#[doc(hidden)]
pub mod oracle {
    use std::io::{self, Read};

    /// Trailing whitespace per line and trailing blank lines ignored, on whole outputs.
    pub fn trim_matches(actual: &[u8], expected: &[u8]) -> bool {
        fn lines(text: &[u8]) -> Vec<&[u8]> {
            let mut v: Vec<&[u8]> = text
                .split(|b| *b == b'\n')
                .map(|l| {
                    let end = l
                        .iter()
                        .rposition(|b| !b.is_ascii_whitespace())
                        .map_or(0, |i| i + 1);
                    &l[..end]
                })
                .collect();
            while v.last().is_some_and(|l| l.is_empty()) {
                v.pop();
            }
            v
        }
        lines(actual) == lines(expected)
    }

    /// Reads at most `step` bytes at a time, to put buffer boundaries everywhere.
    pub struct Dribble<'a> {
        pub data: &'a [u8],
        pub step: usize,
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::oracle::{trim_matches as reference_trim, Dribble};
    use super::Compare::*;
    use super::*;

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

    fn random_text(seed: &mut u64, max: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ab \t\r\n\x0b\x0c";
        let mut next = || {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed
        };
        let len = (next() % max as u64) as usize;
        (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect()
    }

    #[test]
    fn streaming_trim_agrees_with_the_in_memory_rule_at_every_buffer_boundary() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut equal_cases = 0;
        for i in 0..20_000 {
            let a = random_text(&mut seed, 12);
            // Half the time derive b from a, so that matching pairs are common.
            let b = if i % 2 == 0 {
                let mut b = a.clone();
                b.extend(
                    random_text(&mut seed, 4)
                        .iter()
                        .filter(|c| c.is_ascii_whitespace()),
                );
                b
            } else {
                random_text(&mut seed, 12)
            };
            let want = reference_trim(&a, &b);
            equal_cases += want as usize;
            for (sa, sb) in [(1, 1), (1, 3), (5, 2), (64, 64)] {
                let got = Trim
                    .matches_stream(
                        Dribble { data: &a, step: sa },
                        Dribble { data: &b, step: sb },
                    )
                    .unwrap();
                assert_eq!(got, want, "{a:?} vs {b:?} (steps {sa}, {sb})");
            }
            let exact = Exact
                .matches_stream(Dribble { data: &a, step: 3 }, Dribble { data: &b, step: 2 })
                .unwrap();
            assert_eq!(exact, a == b, "{a:?} vs {b:?}");
        }
        assert!(equal_cases > 2_000, "too few matching pairs: {equal_cases}");
    }

    #[test]
    fn one_huge_line_compares_across_many_buffers() {
        // 64 MiB in one line, a thousand buffers: no line is ever held whole.
        let line = vec![b'x'; 64 << 20];
        let mut with_blanks = line.clone();
        with_blanks.extend_from_slice(b"   \n\n \t\n");
        assert!(Trim.matches_stream(&line[..], &with_blanks[..]).unwrap());
        let mut other = line.clone();
        *other.last_mut().unwrap() = b'y';
        assert!(!Trim.matches_stream(&line[..], &other[..]).unwrap());
    }

    #[test]
    fn a_read_error_names_its_side() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
        }
        let err = Trim.matches_stream(&b"1"[..], Broken).unwrap_err();
        assert!(matches!(
            err,
            CompareError::Read {
                side: Side::Expected,
                ..
            }
        ));
        assert!(err.to_string().contains("expected output"), "{err}");
    }
}
