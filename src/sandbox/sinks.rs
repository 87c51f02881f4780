//! Where a run's stdout and stderr go: kept in memory for the result, written to host
//! files, or passed straight through to judgebox's own stdout/stderr. The monitor feeds
//! them under the output cap. A write to an output file that fails (a full disk) ends the
//! run as an internal error naming the file: a silently truncated output would otherwise be
//! judged as the program's own (a wrong answer).

use super::{Config, RunResult, SandboxError};
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Where the program's stdout/stderr go.
pub enum Sink {
    Memory(Vec<u8>),
    /// A host file and the name errors give it.
    File(File, String),
    Passthrough(std::io::Stdout),
    PassthroughErr(std::io::Stderr),
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
        if let Sink::Memory(v) = self.out {
            result.stdout = v;
        }
        if let Sink::Memory(v) = self.err {
            result.stderr = v;
        }
    }
}
