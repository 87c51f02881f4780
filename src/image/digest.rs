//! Content digests (`sha256:<64 lowercase hex>`): strict parsing, so a digest can be used
//! in a path or URL only after it was validated (CVE-2024-3727), and hashing readers and
//! writers that verify size and digest while data streams through.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid digest '{0}': expected sha256:<64 lowercase hex digits>")]
    Syntax(String),
    #[error("unsupported digest algorithm in '{0}': only sha256 is supported")]
    Algorithm(String),
}

/// A validated sha256 digest. The only algorithm OCI requires, and the only one we accept.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// 64 lowercase hex digits.
    hex: String,
}

impl Digest {
    /// The hex part: safe to use as a file name (checked at parse time).
    pub fn encoded(&self) -> &str {
        &self.hex
    }

    /// `sha256/<hex>`: the blob's path relative to an image layout's `blobs/`.
    pub fn blob_path(&self) -> String {
        format!("sha256/{}", self.hex)
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hash(Sha256::digest(bytes).as_slice())
    }

    fn from_hash(hash: &[u8]) -> Digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(64);
        for b in hash {
            hex.push(HEX[(b >> 4) as usize] as char);
            hex.push(HEX[(b & 15) as usize] as char);
        }
        Digest { hex }
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(text: &str) -> Result<Digest, DigestError> {
        let Some((algo, encoded)) = text.split_once(':') else {
            return Err(DigestError::Syntax(text.to_string()));
        };
        // The grammar of other algorithms, so "sha512:..." says "unsupported", not "invalid".
        let algo_ok = !algo.is_empty()
            && algo
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
        let encoded_ok = !encoded.is_empty()
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
        if !algo_ok || !encoded_ok {
            return Err(DigestError::Syntax(text.to_string()));
        }
        if algo != "sha256" {
            return Err(DigestError::Algorithm(text.to_string()));
        }
        let hex_ok = encoded.len() == 64
            && encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            return Err(DigestError::Syntax(text.to_string()));
        }
        Ok(Digest {
            hex: encoded.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Running sha256 plus a byte count.
#[derive(Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        Digest::from_hash(self.sha.finalize().as_slice())
    }
}

/// A reader that hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(),
        }
    }

    /// Bytes read so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// Reads the rest to EOF (hashing it: trailing data is part of the digest), then
    /// returns the digest and the total length.
    pub fn drain(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let len = self.hasher.len();
        Ok((self.hasher.finish(), len))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that hashes everything written through it and refuses to go past `limit`
/// bytes (so a lying server cannot fill the disk).
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    limit: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W, limit: u64) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(),
            limit,
        }
    }

    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// The digest and length of everything written, and the inner writer (for content
    /// whose digest is learnt by writing it, such as a `docker save` layer).
    pub fn finish(self) -> (W, Digest, u64) {
        let len = self.hasher.len();
        (self.inner, self.hasher.finish(), len)
    }

    /// Checks that exactly `size` bytes hashing to `expected` went through; returns the
    /// inner writer.
    pub fn verify(self, expected: &Digest, size: u64) -> Result<W, Mismatch> {
        let len = self.hasher.len();
        let actual = self.hasher.finish();
        if len != size {
            return Err(Mismatch::Size {
                expected: size,
                actual: len,
            });
        }
        if &actual != expected {
            return Err(Mismatch::Digest {
                expected: expected.clone(),
                actual,
            });
        }
        Ok(self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.hasher.len() + buf.len() as u64 > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("more data than the expected {} bytes", self.limit),
            ));
        }
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why content did not match its descriptor.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Mismatch {
    #[error("size mismatch: expected {expected} bytes, got {actual}")]
    Size { expected: u64, actual: u64 },
    #[error("digest mismatch: expected {expected}, got {actual}")]
    Digest { expected: Digest, actual: Digest },
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input_is_the_well_known_one() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
        assert_eq!(EMPTY.parse::<Digest>().unwrap(), Digest::of(b""));
    }

    #[test]
    fn hostile_or_malformed_digests_are_rejected() {
        for bad in [
            "sha256:../../x",
            "sha256:../../../etc/passwd",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0",
            "sha256:",
            ":e3b0",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} accepted");
        }
        assert!(matches!(
            "sha512:abcd".parse::<Digest>(),
            Err(DigestError::Algorithm(_))
        ));
    }

    #[test]
    fn hashing_writer_verifies_size_and_digest_and_caps_input() {
        let mut w = HashingWriter::new(Vec::new(), 5);
        w.write_all(b"hello").unwrap();
        assert!(w.write_all(b"!").is_err(), "wrote past the limit");
        let good = Digest::of(b"hello");
        assert_eq!(w.verify(&good, 5).unwrap(), b"hello");

        let mut w = HashingWriter::new(Vec::new(), 100);
        w.write_all(b"hellO").unwrap();
        assert!(matches!(w.verify(&good, 5), Err(Mismatch::Digest { .. })));
        let mut w = HashingWriter::new(Vec::new(), 100);
        w.write_all(b"hell").unwrap();
        assert_eq!(
            w.verify(&good, 5),
            Err(Mismatch::Size {
                expected: 5,
                actual: 4
            })
        );
    }

    #[test]
    fn hashing_reader_drain_includes_trailing_bytes() {
        let data = b"abc-trailing garbage";
        let mut r = HashingReader::new(&data[..]);
        let mut first = [0u8; 3];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.drain().unwrap(), (Digest::of(data), data.len() as u64));
    }
}
