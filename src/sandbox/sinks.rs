//! Where a run's stdout and stderr go: kept in memory for the result, written to host
//! files, kept in memory up to a size and spilled to a file beyond it, or passed straight
//! through to judgebox's own stdout/stderr. The monitor feeds
//! them under the output cap. A write to an output file that fails (a full disk) ends the
//! run as an internal error naming the file: a silently truncated output would otherwise be
//! judged as the program's own (a wrong answer).

use super::{Config, RunResult, SandboxError};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a spilling sink keeps in memory before it moves to its file.
pub const SPILL_AT: usize = 64 << 10;

/// Where the program's stdout/stderr go.
pub enum Sink {
    Memory(Vec<u8>),
    /// A host file and the name errors give it.
    File(File, String),
    Passthrough(std::io::Stdout),
    PassthroughErr(std::io::Stderr),
    /// In memory up to [`SPILL_AT`] bytes, then all of it in a file created at the path
    /// (most tests print little: no file to create and remove for each).
    Spill {
        head: Vec<u8>,
        file: Option<File>,
        path: PathBuf,
    },
}

pub struct Sinks {
    out: Sink,
    err: Sink,
    pub out_truncated: bool,
    pub err_truncated: bool,
    /// The first failed write to an output file; the run's result reports it.
    write_error: Option<String>,
}

fn clone_file(f: &File) -> Result<File, SandboxError> {
    f.try_clone().map_err(|source| SandboxError::OutputFile {
        path: "(open file)".into(),
        source,
    })
}

impl Sinks {
    pub fn open(config: &Config) -> Result<Sinks, SandboxError> {
        let mut sinks = Sinks::for_outputs(
            config.stdout_file.as_deref(),
            config.stderr_file.as_deref(),
            config.stream_output,
        )?;
        // Already open files (the isolate front end's redirections) come first; clones
        // share one offset, so stdout and stderr sent to the same file interleave.
        if let Some(f) = &config.stdout_to {
            sinks.out = Sink::File(clone_file(f)?, "the stdout redirection".into());
        }
        if let Some(f) = &config.stderr_to {
            sinks.err = Sink::File(clone_file(f)?, "the stderr redirection".into());
        }
        Ok(sinks)
    }

    /// Spilling sinks (see [`Sink::Spill`]) for a run's stdout and stderr: the result holds
    /// what stayed in memory; what did not is in the files, which only exist then.
    pub fn spilling(stdout: &Path, stderr: &Path) -> Sinks {
        let spill = |path: &Path| Sink::Spill {
            head: Vec::new(),
            file: None,
            path: path.to_path_buf(),
        };
        Sinks {
            out: spill(stdout),
            err: spill(stderr),
            out_truncated: false,
            err_truncated: false,
            write_error: None,
        }
    }

    /// Output files (created, truncated), else passthrough when `stream`, else memory.
    pub fn for_outputs(
        stdout: Option<&Path>,
        stderr: Option<&Path>,
        stream: bool,
    ) -> Result<Sinks, SandboxError> {
        let open = |path: &Path| match File::create(path) {
            Ok(f) => Ok(Sink::File(f, path.display().to_string())),
            Err(source) => Err(SandboxError::OutputFile {
                path: path.to_path_buf(),
                source,
            }),
        };
        let out = match (stdout, stream) {
            (Some(p), _) => open(p)?,
            (None, true) => Sink::Passthrough(std::io::stdout()),
            (None, false) => Sink::Memory(Vec::new()),
        };
        let err = match (stderr, stream) {
            (Some(p), _) => open(p)?,
            (None, true) => Sink::PassthroughErr(std::io::stderr()),
            (None, false) => Sink::Memory(Vec::new()),
        };
        Ok(Sinks {
            out,
            err,
            out_truncated: false,
            err_truncated: false,
            write_error: None,
        })
    }

    /// Moves `data` to its sink. Returns false once a write to an output file has failed:
    /// the caller stops the run, whose result then reports the failure. A passthrough write
    /// that fails (judgebox's own stdout closed, as under `| head`) only drops the data, as
    /// a pipe reader that went away asks for.
    pub fn write(&mut self, stderr: bool, data: &[u8]) -> bool {
        if self.write_error.is_some() {
            return false;
        }
        let sink = if stderr { &mut self.err } else { &mut self.out };
        match sink {
            Sink::Memory(v) => v.extend_from_slice(data),
            Sink::File(f, name) => {
                if let Err(e) = f.write_all(data) {
                    let which = if stderr { "stderr" } else { "stdout" };
                    self.write_error =
                        Some(format!("cannot write the program's {which} to {name}: {e}"));
                    return false;
                }
            }
            Sink::Passthrough(s) => {
                let _ = s.write_all(data).and_then(|_| s.flush());
            }
            Sink::PassthroughErr(s) => {
                let _ = s.write_all(data);
            }
            Sink::Spill { head, file, path } => {
                if let Err(e) = spill_write(head, file, path, data) {
                    let which = if stderr { "stderr" } else { "stdout" };
                    self.write_error = Some(format!(
                        "cannot write the program's {which} to {}: {e}",
                        path.display()
                    ));
                    return false;
                }
            }
        }
        true
    }

    /// Hands the captured output to `result`; a failed output write turns it into an
    /// internal error whatever the program did, since its output was not kept whole.
    pub fn finish(self, result: &mut RunResult) {
        if let Some(message) = self.write_error {
            result.status = super::Status::InternalError;
            result.message = message;
        }
        result.stdout_truncated = self.out_truncated;
        result.stderr_truncated = self.err_truncated;
        if let Sink::Memory(v) | Sink::Spill { head: v, .. } = self.out {
            result.stdout = v;
        }
        if let Sink::Memory(v) | Sink::Spill { head: v, .. } = self.err {
            result.stderr = v;
        }
    }
}

/// Appends to the head while it stays within [`SPILL_AT`]; past that, creates the file,
/// moves the head there, and writes everything else to it.
fn spill_write(
    head: &mut Vec<u8>,
    file: &mut Option<File>,
    path: &Path,
    data: &[u8],
) -> std::io::Result<()> {
    if file.is_none() && head.len() + data.len() <= SPILL_AT {
        head.extend_from_slice(data);
        return Ok(());
    }
    if file.is_none() {
        let mut f = File::create(path)?;
        f.write_all(head)?;
        *head = Vec::new();
        *file = Some(f);
    }
    file.as_mut().expect("created above").write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spilling_sink_holds_small_output_and_moves_large_output_to_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        let mut sinks = Sinks::spilling(&out, &err);
        assert!(sinks.write(false, b"small"));
        let big = vec![b'x'; SPILL_AT];
        assert!(sinks.write(true, b"first "));
        assert!(sinks.write(true, &big));
        assert!(sinks.write(true, b" last"));
        let mut result = RunResult::new(super::super::Status::Ok, String::new());
        sinks.finish(&mut result);
        assert_eq!(result.stdout, b"small");
        assert!(!out.exists(), "small output writes no file");
        assert!(result.stderr.is_empty(), "spilled output is not held");
        let file = std::fs::read(&err).unwrap();
        assert_eq!(file.len(), 6 + SPILL_AT + 5);
        assert!(file.starts_with(b"first x") && file.ends_with(b"x last"));
    }
}
