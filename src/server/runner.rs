//! Runs one submission through the judge pipeline (`judge::judge`) and turns the report
//! into Judge0's result fields. Judge0's options become wrappers around the language's
//! commands: a tar of `additional_files` unpacked into /box, `2>&1` for
//! redirect_stderr_to_stdout, the zip's `compile`/`run` scripts for language 89.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::files::{self, BOX_TAR_NAME, TAR_NAME};
use super::languages::{Entry, EXECUTABLE};
use super::store::{Outcome, Request};
use crate::cgroup::Manager;
use crate::image::store::Store as ImageStore;
use crate::judge::{self, Compare, Environment, Job, Overrides, Report, TestCase, Verdict};
use crate::lang::{Language, Step};
use crate::seccomp::Filter;

/// What every run shares: the cgroup manager, the image store (opened once) or a rootfs
/// that replaces every image.
pub struct Runner {
    pub cgroups: Manager,
    pub images: Option<ImageStore>,
    pub rootfs: Option<PathBuf>,
    pub scratch: PathBuf,
    /// KB the whole process tree may use when memory is limited per process
    /// (MAX_MEMORY_LIMIT): RLIMIT_AS caps each process, this keeps the host safe from many.
    pub memory_ceiling_kb: u64,
}

/// Judge0's status 13 with a message.
fn internal(message: String) -> Outcome {
    Outcome {
        status_id: 13,
        message: Some(message),
        verdict: Some(Verdict::InternalError.as_str().into()),
        ..Outcome::default()
    }
}

impl Runner {
    /// Judges `req` in the language `entry`; never fails (problems are status 13). With
    /// the outcome comes the sandbox overhead in seconds when judging got that far.
    pub fn run(&self, token: &str, entry: &Entry, req: &Request) -> (Outcome, Option<f64>) {
        let dir = match Scratch::create(&self.scratch, token) {
            Ok(d) => d,
            Err(e) => return (internal(format!("scratch directory: {e}")), None),
        };
        match self.judge_in(&dir.0, entry, req) {
            Ok(report) => (outcome(&report), Some(overhead(&report))),
            Err(message) => (internal(message), None),
        }
    }

    fn judge_in(&self, dir: &Path, entry: &Entry, req: &Request) -> Result<Report, String> {
        let lang = prepare_language(entry, req)?;
        let source = write_source(dir, entry, req, &lang)?;
        let write = |name: &str, data: &Option<Vec<u8>>| -> Result<Option<PathBuf>, String> {
            data.as_ref()
                .map(|d| write_file(&dir.join(name), d, false))
                .transpose()
        };
        let stdin = write("stdin", &req.stdin)?;
        let expected = write("expected", &req.expected_output)?;
        let (env, _lease) = self.environment(&lang)?;
        let filter = Filter::load(&lang.seccomp)
            .map_err(|e| format!("seccomp profile {}: {e}", lang.seccomp))?;
        let case = TestCase {
            name: "1".into(),
            input: stdin,
            expected,
        };
        let job = Job {
            lang: &lang,
            env,
            source,
            compiler_options: words(req.compiler_options.as_deref()),
            args: words(req.command_line_arguments.as_deref()),
            tests: vec![case; req.number_of_runs.max(1) as usize],
            compare: Compare::Trim,
            parallel: 1,
            stop_on_first_failure: true,
            overrides: self.overrides(req),
            filter,
            cgroups: &self.cgroups,
            // A warm sandbox, as `judgebox judge` uses by default: measured ~5% faster than
            // a fresh one even for a single run (scripts/bench-serve.py), and it serves
            // number_of_runs > 1 with one sandbox.
            reuse: true,
            network: req.enable_network,
            on_test: None,
        };
        judge::judge(&job).map_err(|e| e.to_string())
    }

    /// The run limits as Judge0 passes them to isolate: `-t`, `-x`, `-w`, `-k`, `-p`, `-f`,
    /// and the memory limit as `-m` (each process's address space) with
    /// enable_per_process_and_thread_memory_limit, else as `--cg-mem` (the whole tree);
    /// enable_per_process_and_thread_time_limit limits each process's CPU time instead of
    /// the tree's total (`--no-cg-timing`).
    fn overrides(&self, req: &Request) -> Overrides {
        let memory = req.memory_limit.saturating_mul(1024);
        Overrides {
            time: Some(req.cpu_time_limit.max(0.001)),
            extra_time: Some(req.cpu_extra_time),
            wall_time: Some(req.wall_time_limit.max(0.001)),
            memory: Some(memory),
            pids: Some(req.max_processes_and_or_threads),
            output: Some(req.max_file_size.max(1).saturating_mul(1024)),
            stack: Some(req.stack_limit.saturating_mul(1024)),
            cpu_per_process: req.enable_per_process_and_thread_time_limit,
            memory_per_process: req.enable_per_process_and_thread_memory_limit,
            memory_ceiling: Some(self.memory_ceiling_kb.saturating_mul(1024).max(memory)),
        }
    }

    /// The language's rootfs: the override, or its image (with a lease against pruning).
    fn environment(
        &self,
        lang: &Language,
    ) -> Result<(Environment, Option<crate::image::store::Resolved>), String> {
        if let Some(rootfs) = &self.rootfs {
            let env = Environment {
                rootfs: rootfs.clone(),
                image_env: Vec::new(),
            };
            return Ok((env, None));
        }
        let store = self
            .images
            .as_ref()
            .ok_or("no image store and no --rootfs")?;
        let resolved = store
            .resolve(&lang.image)
            .map_err(|e| format!("image {}: {e}", lang.image))?;
        let env = Environment {
            rootfs: resolved.rootfs.clone(),
            image_env: resolved.env(&[]),
        };
        Ok((env, Some(resolved)))
    }
}

/// Judge0 splits options and arguments with bash after dropping `$&;<>|` and backticks.
fn words(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("")
        .chars()
        .filter(|c| !"$&;<>|`".contains(*c))
        .collect::<String>()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// A private per-submission directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    /// `base/token`, inside the server's own 0700 directory (made again, never followed
    /// through a symlink, if something removed it).
    fn create(base: &Path, token: &str) -> std::io::Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        let path = base.join(token);
        let _ = std::fs::remove_dir_all(&path);
        let mkdir = || std::fs::DirBuilder::new().mode(0o700).create(&path);
        match mkdir() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::scratch::private_dir(base)?;
                mkdir()?;
            }
            r => r?,
        }
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_file(path: &Path, data: &[u8], executable: bool) -> Result<PathBuf, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if executable { 0o755 } else { 0o644 })
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(data)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.to_path_buf())
}

/// Writes what goes into /box as the language's source file: the source itself, or a tar
/// of the additional files (and the source) when the language unpacks one.
fn write_source(
    dir: &Path,
    entry: &Entry,
    req: &Request,
    lang: &Language,
) -> Result<PathBuf, String> {
    let source = req.source_code.as_deref().unwrap_or_default();
    let executable = entry.id == EXECUTABLE;
    if lang.source_file != TAR_NAME {
        return write_file(&dir.join("source"), source, executable);
    }
    let zip = req.additional_files.as_deref().unwrap_or_default();
    let entries =
        files::read_zip(zip, u64::MAX / 1024).map_err(|e| format!("additional_files {e}"))?;
    let own =
        (!entry.is_multi_file()).then_some((entry.lang.source_file.as_str(), source, executable));
    let tar = files::to_tar(&entries, own).map_err(|e| format!("additional_files: {e}"))?;
    write_file(&dir.join("files.tar"), &tar, false)
}

/// The language with Judge0's options applied as wrappers around its commands.
fn prepare_language(entry: &Entry, req: &Request) -> Result<Language, String> {
    let mut lang = entry.lang.clone();
    if req.redirect_stderr_to_stdout {
        lang.run.command = wrap("exec \"$@\" 2>&1", &lang.run.command);
    }
    if entry.is_multi_file() {
        multi_file(&mut lang, req.redirect_stderr_to_stdout);
    } else if req.additional_files.is_some() {
        with_files(&mut lang);
    }
    Ok(lang)
}

fn wrap(script: &str, inner: &[String]) -> Vec<String> {
    let mut argv = vec![
        "/bin/sh".to_string(),
        "-c".into(),
        script.into(),
        "sh".into(),
    ];
    argv.extend(inner.iter().cloned());
    argv
}

/// Unpacks the tar before compiling (keeping the whole of /box for the run) or running.
fn with_files(lang: &mut Language) {
    lang.source_file = TAR_NAME.into();
    match &mut lang.compile {
        Some(step) => {
            step.command = wrap(&compile_script("\"$@\""), &step.command);
            lang.artifacts = vec![BOX_TAR_NAME.into()];
            lang.run.command = wrap(
                &format!("tar xf {BOX_TAR_NAME} && exec \"$@\""),
                &lang.run.command,
            );
        }
        None => {
            lang.run.command = wrap(
                &format!("tar xf {TAR_NAME} && exec \"$@\""),
                &lang.run.command,
            );
        }
    }
}

/// A compile step that unpacks the files, runs `command`, and packs /box for the run.
fn compile_script(command: &str) -> String {
    format!(
        "tar xf {TAR_NAME} && rm -f {TAR_NAME} && {command} && tar cf /tmp/{BOX_TAR_NAME} . && mv /tmp/{BOX_TAR_NAME} {BOX_TAR_NAME}"
    )
}

/// Language 89: the zip's `compile` (when present) and `run`, with bash when the image has it.
fn multi_file(lang: &mut Language, redirect: bool) {
    let shell = "$(command -v bash || echo /bin/sh)";
    let compile = format!("if [ -f compile ]; then {shell} compile; fi");
    let step = lang.compile.clone().unwrap_or_else(|| Step {
        command: Vec::new(),
        ..lang.run.clone()
    });
    lang.compile = Some(Step {
        command: wrap(&compile_script(&compile), &[]),
        ..step
    });
    lang.source_file = TAR_NAME.into();
    lang.artifacts = vec![BOX_TAR_NAME.into()];
    let tail = if redirect { " 2>&1" } else { "" };
    lang.run.command = wrap(
        &format!("tar xf {BOX_TAR_NAME} && exec {shell} run \"$@\"{tail}"),
        &["{args}".to_string()],
    );
}

/// Judge0's result fields from a report: the last run's output, time and memory averaged
/// over the runs, the compile output, isolate's message.
fn outcome(report: &Report) -> Outcome {
    let mut out = Outcome {
        status_id: report.judge0.id,
        verdict: Some(report.verdict.as_str().into()),
        ..Outcome::default()
    };
    if let Some(c) = &report.compile {
        let text = judge::compile_output(&c.run);
        out.compile_output = (!text.is_empty()).then(|| text.into_bytes());
        if c.verdict != Verdict::Accepted {
            if c.verdict == Verdict::CompilationError && c.run.status.isolate_code() == Some("TO") {
                out.compile_output = Some(b"Compilation time limit exceeded.".to_vec());
            }
            if c.verdict == Verdict::InternalError {
                out.message = Some(c.run.message.clone());
            }
            return out;
        }
    }
    let runs: Vec<_> = report.tests.iter().filter_map(|t| t.run.as_ref()).collect();
    let Some(last) = runs.last() else {
        return out;
    };
    let n = runs.len() as f64;
    out.time = Some(runs.iter().map(|r| r.cpu_time).sum::<f64>() / n);
    out.wall_time = Some(runs.iter().map(|r| r.wall_time).sum::<f64>() / n);
    let mem: u64 = runs
        .iter()
        .map(|r| r.memory_peak.unwrap_or(r.max_rss_kb * 1024))
        .sum();
    out.memory = Some(mem / runs.len() as u64 / 1024);
    out.stdout = (!last.stdout.is_empty()).then(|| last.stdout.clone());
    out.stderr = (!last.stderr.is_empty()).then(|| last.stderr.clone());
    out.exit_code = Some(last.exit_code.unwrap_or(0));
    out.exit_signal = last.signal;
    out.message = isolate_message(&last.to_meta());
    if report.verdict == Verdict::MemoryLimit {
        out.message = Some("Memory limit exceeded".into());
    }
    out.enforcement = Some(json!(last.enforcement));
    out
}

/// The judging's wall time outside the programs' own (the compiler's and each test's):
/// what the sandbox's setup and teardown, cgroups and copies took.
fn overhead(report: &Report) -> f64 {
    let compile = report.compile.as_ref().map_or(0.0, |c| c.run.wall_time);
    let tests: f64 = report
        .tests
        .iter()
        .filter_map(|t| t.run.as_ref())
        .map(|r| r.wall_time)
        .sum();
    (report.elapsed - compile - tests).max(0.0)
}

/// The `message:` line of isolate's meta file.
fn isolate_message(meta: &str) -> Option<String> {
    meta.lines()
        .find_map(|l| l.strip_prefix("message:"))
        .filter(|m| !m.is_empty())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_like_judge0() {
        assert_eq!(words(Some(" -O2  -DX;rm `x` ")), ["-O2", "-DXrm", "x"]);
        assert!(words(None).is_empty());
    }

    #[test]
    fn meta_message_is_found() {
        assert_eq!(
            isolate_message("time:0.1\nstatus:RE\nmessage:Exited with error status 3\n"),
            Some("Exited with error status 3".into())
        );
        assert_eq!(isolate_message("time:0.1\n"), None);
    }
}
