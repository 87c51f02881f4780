//! A run's stdout and stderr captured into files in the judge's private work dir, or held
//! in memory when a warm run's output stayed small (see `Sink::Spill`): the judge compares
//! them as streams and keeps only a bounded excerpt of each, so its own memory does not
//! grow with what a program prints or how many tests there are.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("captured output {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The two files one run writes its output to (removed on drop), and what of it the run's
/// result held in memory instead.
pub struct Captured {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    held: [Vec<u8>; 2],
}

impl Captured {
    /// Fresh names in `dir` (a private 0700 directory: nobody else can place a file or a
    /// symlink there for the sandbox's create to follow).
    pub fn in_dir(dir: &Path) -> Captured {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        Captured {
            stdout: dir.join(format!("run-{n}.stdout")),
            stderr: dir.join(format!("run-{n}.stderr")),
            held: [Vec::new(), Vec::new()],
        }
    }

    /// Takes the output the run's result holds (a spilling sink's, which then wrote no
    /// file) as this capture's.
    pub fn hold(&mut self, stdout: Vec<u8>, stderr: Vec<u8>) {
        self.held = [stdout, stderr];
    }

    /// Stream `i` (0 stdout, 1 stderr): what is held, else the file, else (the run never
    /// created it, or printed nothing) an empty stream.
    fn open(&self, i: usize) -> Result<Box<dyn Read + '_>, CaptureError> {
        if !self.held[i].is_empty() {
            return Ok(Box::new(Cursor::new(&self.held[i][..])));
        }
        open_or_empty(if i == 0 { &self.stdout } else { &self.stderr })
    }

    /// The captured stdout as a stream.
    pub fn open_stdout(&self) -> Result<Box<dyn Read + '_>, CaptureError> {
        self.open(0)
    }

    /// The first `max` bytes of stdout and of stderr.
    pub fn excerpts(&self, max: usize) -> Result<(Vec<u8>, Vec<u8>), CaptureError> {
        Ok((self.excerpt(0, max)?, self.excerpt(1, max)?))
    }

    fn excerpt(&self, i: usize, max: usize) -> Result<Vec<u8>, CaptureError> {
        let mut out = Vec::new();
        self.open(i)?
            .take(max as u64)
            .read_to_end(&mut out)
            .map_err(|source| CaptureError::Read {
                path: if i == 0 { &self.stdout } else { &self.stderr }.clone(),
                source,
            })?;
        Ok(out)
    }

    /// Whether stderr contains any of `needles` anywhere (read as a stream).
    pub fn stderr_contains_any(&self, needles: &[String]) -> Result<bool, CaptureError> {
        let stream = self.open(1)?;
        contains_any(stream, needles).map_err(|source| CaptureError::Read {
            path: self.stderr.clone(),
            source,
        })
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        // A stream held in memory never had a file.
        for (held, path) in self.held.iter().zip([&self.stdout, &self.stderr]) {
            if held.is_empty() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn open_or_empty(path: &Path) -> Result<Box<dyn Read>, CaptureError> {
    match File::open(path) {
        Ok(f) => Ok(Box::new(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Box::new(io::empty())),
        Err(source) => Err(CaptureError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Substring search over a stream: each chunk is searched together with the tail of the
/// one before (one byte shorter than the longest needle), so a match across two reads is found.
pub fn contains_any(mut stream: impl Read, needles: &[String]) -> io::Result<bool> {
    let needles: Vec<&[u8]> = needles
        .iter()
        .map(|n| n.as_bytes())
        .filter(|n| !n.is_empty())
        .collect();
    let Some(keep) = needles.iter().map(|n| n.len() - 1).max() else {
        return Ok(false);
    };
    let mut window: Vec<u8> = Vec::with_capacity(keep + (64 << 10));
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        window.extend_from_slice(&chunk[..n]);
        if needles
            .iter()
            .any(|needle| window.windows(needle.len()).any(|w| w == *needle))
        {
            return Ok(true);
        }
        let drop_to = window.len().saturating_sub(keep);
        window.drain(..drop_to);
    }
}

/// How many excerpt bytes all of a submission's tests may keep together; each test takes
/// its share until none is left, so the reports stay bounded however many tests there are.
pub struct ExcerptBudget(AtomicUsize);

impl ExcerptBudget {
    pub fn new(total: usize) -> ExcerptBudget {
        ExcerptBudget(AtomicUsize::new(total))
    }

    /// Takes up to `want` bytes of the budget; returns what was granted.
    pub fn take(&self, want: usize) -> usize {
        let mut granted = 0;
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                granted = want.min(left);
                Some(left - granted)
            });
        granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one byte at a time, so every needle straddles reads.
    struct Bytewise<'a>(&'a [u8]);

    impl Read for Bytewise<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn needles_are_found_across_reads_and_absent_ones_are_not() {
        let needles = vec!["OutOfMemoryError".to_string(), "MemoryError".to_string()];
        let text = b"Traceback...\nException in thread main java.lang.OutOfMemoryError: heap";
        assert!(contains_any(Bytewise(text), &needles).unwrap());
        assert!(contains_any(&text[..], &needles).unwrap());
        assert!(!contains_any(Bytewise(b"Memory Error, OutOfMemory"), &needles).unwrap());
        assert!(!contains_any(&b"anything"[..], &[]).unwrap());
    }

    #[test]
    fn the_budget_is_shared_and_never_overdrawn() {
        let b = ExcerptBudget::new(10);
        assert_eq!(b.take(4), 4);
        assert_eq!(b.take(4), 4);
        assert_eq!(b.take(4), 2);
        assert_eq!(b.take(4), 0);
    }

    #[test]
    fn held_output_is_read_instead_of_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Captured::in_dir(dir.path());
        std::fs::write(&c.stderr, "from the file").unwrap();
        c.hold(b"held stdout".to_vec(), Vec::new());
        let mut text = String::new();
        c.open_stdout().unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "held stdout");
        assert_eq!(c.excerpts(4).unwrap(), (b"held".to_vec(), b"from".to_vec()));
        assert!(c.stderr_contains_any(&["the f".to_string()]).unwrap());
        let err = c.stderr.clone();
        drop(c);
        assert!(!err.exists());
    }

    #[test]
    fn missing_captures_read_as_empty_and_are_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let c = Captured::in_dir(dir.path());
        assert_eq!(c.excerpts(10).unwrap(), (Vec::new(), Vec::new()));
        std::fs::write(&c.stdout, "0123456789abcdef").unwrap();
        std::fs::write(&c.stderr, "err").unwrap();
        assert_eq!(c.excerpts(10).unwrap().0, b"0123456789");
        let (out, err) = (c.stdout.clone(), c.stderr.clone());
        drop(c);
        assert!(!out.exists() && !err.exists());
    }
}
