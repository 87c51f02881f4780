//! Where a run's stdout and stderr go: kept in memory for the result, written to host
//! files, or passed straight through to judgebox's own stdout/stderr. The monitor feeds
//! them under the output cap.

use super::{Config, RunResult, SandboxError};
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Where the program's stdout/stderr go.
pub enum Sink {
    Memory(Vec<u8>),
    File(File),
    Passthrough(std::io::Stdout),
    PassthroughErr(std::io::Stderr),
}

pub struct Sinks {
    out: Sink,
    err: Sink,
    pub out_truncated: bool,
    pub err_truncated: bool,
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
            sinks.out = Sink::File(clone_file(f)?);
        }
        if let Some(f) = &config.stderr_to {
            sinks.err = Sink::File(clone_file(f)?);
        }
        Ok(sinks)
    }

    /// Output files (created, truncated), else passthrough when `stream`, else memory.
    pub fn for_outputs(
        stdout: Option<&Path>,
        stderr: Option<&Path>,
        stream: bool,
    ) -> Result<Sinks, SandboxError> {
        let open = |path: &Path| {
            File::create(path).map_err(|source| SandboxError::OutputFile {
                path: path.to_path_buf(),
                source,
            })
        };
        let out = match (stdout, stream) {
            (Some(p), _) => Sink::File(open(p)?),
            (None, true) => Sink::Passthrough(std::io::stdout()),
            (None, false) => Sink::Memory(Vec::new()),
        };
        let err = match (stderr, stream) {
            (Some(p), _) => Sink::File(open(p)?),
            (None, true) => Sink::PassthroughErr(std::io::stderr()),
            (None, false) => Sink::Memory(Vec::new()),
        };
        Ok(Sinks {
            out,
            err,
            out_truncated: false,
            err_truncated: false,
        })
    }

    pub fn write(&mut self, stderr: bool, data: &[u8]) {
        let sink = if stderr { &mut self.err } else { &mut self.out };
        let _ = match sink {
            Sink::Memory(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
            Sink::File(f) => f.write_all(data),
            Sink::Passthrough(s) => s.write_all(data).and_then(|_| s.flush()),
            Sink::PassthroughErr(s) => s.write_all(data),
        };
    }

    pub fn finish(self, result: &mut RunResult) {
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
