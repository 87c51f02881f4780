//! Judge0's configuration: `judge0.conf` (`KEY=VALUE`) overlaid by the environment, with
//! Judge0 CE 1.13's names and defaults. Keys that mean nothing here (Redis, Postgres,
//! Rails) are ignored with a notice; a malformed value is an error naming the key.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("configuration {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration {path} line {line}: expected KEY=VALUE, got '{text}'")]
    Syntax {
        path: String,
        line: usize,
        text: String,
    },
    #[error("configuration key JWT_PUBLIC_KEY_FILE: {0}")]
    Jwt(#[from] super::jwt::JwtError),
    #[error("configuration key {key}: '{value}' is not {expected}")]
    Value {
        key: String,
        value: String,
        expected: &'static str,
    },
}

/// Keys of Judge0's judge0.conf that have no meaning here.
const IGNORED: &[&str] = &[
    "JUDGE0_TELEMETRY_ENABLE",
    "RESTART_MAX_TRIES",
    "SUBMISSION_CACHE_DURATION",
    "USE_DOCS_AS_HOMEPAGE",
    "INTERVAL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "RAILS_ENV",
    "RAILS_MAX_THREADS",
    "RAILS_SERVER_PROCESSES",
    "SECRET_KEY_BASE",
    "JUDGE0_VERSION",
    "JUDGE0_HOMEPAGE",
    "JUDGE0_SOURCE_CODE",
    "JUDGE0_MAINTAINER",
];

/// Keys judgebox adds (not in Judge0).
const EXTENSIONS: &[&str] = &[
    "CALLBACKS_ALLOWED_HOSTS",
    "RESULT_RETENTION_DAYS",
    "MAX_REQUEST_SIZE",
    "JWT_HS256_SECRET",
    "JWT_PUBLIC_KEY_FILE",
    "JWT_AUDIENCE",
    "JWT_REVOKED_FILE",
];

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub maintenance_mode: bool,
    pub maintenance_message: String,
    pub enable_wait_result: bool,
    pub enable_compiler_options: bool,
    pub allowed_languages_for_compiler_options: Vec<String>,
    pub enable_command_line_arguments: bool,
    pub enable_submission_delete: bool,
    pub enable_callbacks: bool,
    pub callbacks_max_tries: u32,
    pub callbacks_timeout: f64,
    pub enable_additional_files: bool,
    pub max_queue_size: u64,
    pub cpu_time_limit: f64,
    pub max_cpu_time_limit: f64,
    pub cpu_extra_time: f64,
    pub max_cpu_extra_time: f64,
    pub wall_time_limit: f64,
    pub max_wall_time_limit: f64,
    pub memory_limit: u64,
    pub max_memory_limit: u64,
    pub stack_limit: u64,
    pub max_stack_limit: u64,
    pub max_processes_and_or_threads: u64,
    pub max_max_processes_and_or_threads: u64,
    pub enable_per_process_and_thread_time_limit: bool,
    pub allow_enable_per_process_and_thread_time_limit: bool,
    pub enable_per_process_and_thread_memory_limit: bool,
    pub allow_enable_per_process_and_thread_memory_limit: bool,
    pub max_file_size: u64,
    pub max_max_file_size: u64,
    pub number_of_runs: u64,
    pub max_number_of_runs: u64,
    pub redirect_stderr_to_stdout: bool,
    pub max_extract_size: u64,
    pub enable_batched_submissions: bool,
    pub max_submission_batch_size: u64,
    pub allow_enable_network: bool,
    pub enable_network: bool,
    /// DISABLE_IMPLICIT_BASE64_ENCODING=false: output is base64 unless
    /// `base64_encoded=false` (later Judge0); unset or true: only with `base64_encoded=true`
    /// (Judge0 1.13).
    pub implicit_base64: bool,
    pub count: Option<usize>,
    pub authn_header: String,
    pub authn_token: Vec<String>,
    pub authz_header: String,
    pub authz_token: Vec<String>,
    pub allow_origin: Vec<String>,
    pub disallow_origin: Vec<String>,
    pub allow_ip: Vec<String>,
    pub disallow_ip: Vec<String>,
    /// Hosts, IPs or CIDRs callbacks may go to (judgebox); empty: any.
    pub callbacks_allowed_hosts: Vec<String>,
    /// Finished submissions older than this many days are pruned (judgebox; 0: never).
    pub result_retention_days: u64,
    /// Largest request body in bytes (judgebox).
    pub max_request_size: u64,
    /// Bearer JWTs accepted in place of the AUTHN token (judgebox).
    pub jwt: super::jwt::Verifier,
}

/// Raw `KEY=VALUE` pairs, later sources overriding earlier ones.
#[derive(Debug, Default)]
pub struct Source {
    values: BTreeMap<String, String>,
    /// Keys that are ignored, for one notice each.
    pub ignored: Vec<String>,
}

impl Source {
    /// Reads a judge0.conf: `KEY=VALUE` lines, `#` comments, optional quotes, `export`.
    pub fn from_file(path: &Path) -> Result<Source, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Source::parse(&path.display().to_string(), &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<Source, ConfigError> {
        let mut src = Source::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((key, value)) = line.split_once('=') else {
                return Err(ConfigError::Syntax {
                    path: path.into(),
                    line: i + 1,
                    text: line.chars().take(80).collect(),
                });
            };
            src.set(key.trim(), unquote(value.trim()));
        }
        Ok(src)
    }

    /// Overlays the process environment for every key this configuration knows.
    pub fn overlay_env(&mut self) {
        for key in KNOWN.iter().chain(EXTENSIONS) {
            if let Ok(v) = std::env::var(key) {
                self.set(key, v.trim().to_string());
            }
        }
    }

    fn set(&mut self, key: &str, value: String) {
        if IGNORED.contains(&key) {
            if !self.ignored.iter().any(|k| k == key) {
                self.ignored.push(key.to_string());
            }
            return;
        }
        self.values.insert(key.to_string(), value);
    }

    /// Keys that are neither Judge0's nor judgebox's.
    pub fn unknown(&self) -> Vec<String> {
        self.values
            .keys()
            .filter(|k| !KNOWN.contains(&k.as_str()) && !EXTENSIONS.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// The value, `None` when unset or empty (Judge0's `.presence`).
    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn number<T: std::str::FromStr>(
        &self,
        key: &str,
        default: T,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ConfigError::Value {
                key: key.into(),
                value: v.into(),
                expected,
            }),
        }
    }

    fn uint(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        self.number(key, default, "a non-negative integer")
    }

    fn float(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        let v: f64 = self.number(key, default, "a number")?;
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(ConfigError::Value {
                key: key.into(),
                value: v.to_string(),
                expected: "a non-negative number",
            })
        }
    }

    /// Judge0's booleans: `default_true` keys are on unless "false", others on only if "true".
    fn flag(&self, key: &str, default_true: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default_true),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(ConfigError::Value {
                key: key.into(),
                value: v.into(),
                expected: "true or false",
            }),
        }
    }

    fn words(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| v.split_whitespace().map(String::from).collect())
            .unwrap_or_default()
    }

    fn text(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }
}

fn jwt_verifier(s: &Source) -> Result<super::jwt::Verifier, ConfigError> {
    let public_key = s
        .get("JWT_PUBLIC_KEY_FILE")
        .map(|p| super::jwt::Verifier::load_public_key(Path::new(p)))
        .transpose()?;
    Ok(super::jwt::Verifier {
        hs256_secret: s.get("JWT_HS256_SECRET").map(|v| v.as_bytes().to_vec()),
        public_key,
        audience: s.get("JWT_AUDIENCE").map(String::from),
        revoked_file: s.get("JWT_REVOKED_FILE").map(std::path::PathBuf::from),
    })
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// Judge0's keys that judgebox implements.
const KNOWN: &[&str] = &[
    "MAINTENANCE_MODE",
    "MAINTENANCE_MESSAGE",
    "ENABLE_WAIT_RESULT",
    "ENABLE_COMPILER_OPTIONS",
    "ALLOWED_LANGUAGES_FOR_COMPILER_OPTIONS",
    "ENABLE_COMMAND_LINE_ARGUMENTS",
    "ENABLE_SUBMISSION_DELETE",
    "ENABLE_BATCHED_SUBMISSIONS",
    "MAX_SUBMISSION_BATCH_SIZE",
    "ENABLE_CALLBACKS",
    "CALLBACKS_MAX_TRIES",
    "CALLBACKS_TIMEOUT",
    "ENABLE_ADDITIONAL_FILES",
    "COUNT",
    "MAX_QUEUE_SIZE",
    "ALLOW_ORIGIN",
    "DISALLOW_ORIGIN",
    "ALLOW_IP",
    "DISALLOW_IP",
    "AUTHN_HEADER",
    "AUTHN_TOKEN",
    "AUTHZ_HEADER",
    "AUTHZ_TOKEN",
    "CPU_TIME_LIMIT",
    "MAX_CPU_TIME_LIMIT",
    "CPU_EXTRA_TIME",
    "MAX_CPU_EXTRA_TIME",
    "WALL_TIME_LIMIT",
    "MAX_WALL_TIME_LIMIT",
    "MEMORY_LIMIT",
    "MAX_MEMORY_LIMIT",
    "STACK_LIMIT",
    "MAX_STACK_LIMIT",
    "MAX_PROCESSES_AND_OR_THREADS",
    "MAX_MAX_PROCESSES_AND_OR_THREADS",
    "ENABLE_PER_PROCESS_AND_THREAD_TIME_LIMIT",
    "ALLOW_ENABLE_PER_PROCESS_AND_THREAD_TIME_LIMIT",
    "ENABLE_PER_PROCESS_AND_THREAD_MEMORY_LIMIT",
    "ALLOW_ENABLE_PER_PROCESS_AND_THREAD_MEMORY_LIMIT",
    "MAX_FILE_SIZE",
    "MAX_MAX_FILE_SIZE",
    "NUMBER_OF_RUNS",
    "MAX_NUMBER_OF_RUNS",
    "REDIRECT_STDERR_TO_STDOUT",
    "MAX_EXTRACT_SIZE",
    "ALLOW_ENABLE_NETWORK",
    "ENABLE_NETWORK",
    "DISABLE_IMPLICIT_BASE64_ENCODING",
];

impl Config {
    /// Judge0's defaults.
    pub fn defaults() -> Config {
        Config::from_source(&Source::default()).expect("the defaults are valid")
    }

    pub fn from_source(s: &Source) -> Result<Config, ConfigError> {
        let count = match s.get("COUNT") {
            None => None,
            Some(_) => match s.uint("COUNT", 1)? {
                0 => {
                    return Err(ConfigError::Value {
                        key: "COUNT".into(),
                        value: "0".into(),
                        expected: "a positive integer",
                    })
                }
                n => Some(n as usize),
            },
        };
        Ok(Config {
            maintenance_mode: s.flag("MAINTENANCE_MODE", false)?,
            maintenance_message: s
                .text("MAINTENANCE_MESSAGE", "Judge0 is currently in maintenance."),
            enable_wait_result: s.flag("ENABLE_WAIT_RESULT", true)?,
            enable_compiler_options: s.flag("ENABLE_COMPILER_OPTIONS", true)?,
            allowed_languages_for_compiler_options: s
                .words("ALLOWED_LANGUAGES_FOR_COMPILER_OPTIONS"),
            enable_command_line_arguments: s.flag("ENABLE_COMMAND_LINE_ARGUMENTS", true)?,
            enable_submission_delete: s.flag("ENABLE_SUBMISSION_DELETE", false)?,
            enable_callbacks: s.flag("ENABLE_CALLBACKS", true)?,
            callbacks_max_tries: s.number("CALLBACKS_MAX_TRIES", 3, "a non-negative integer")?,
            callbacks_timeout: s.float("CALLBACKS_TIMEOUT", 5.0)?,
            enable_additional_files: s.flag("ENABLE_ADDITIONAL_FILES", true)?,
            max_queue_size: s.uint("MAX_QUEUE_SIZE", 100)?,
            cpu_time_limit: s.float("CPU_TIME_LIMIT", 5.0)?,
            max_cpu_time_limit: s.float("MAX_CPU_TIME_LIMIT", 15.0)?,
            cpu_extra_time: s.float("CPU_EXTRA_TIME", 1.0)?,
            max_cpu_extra_time: s.float("MAX_CPU_EXTRA_TIME", 5.0)?,
            wall_time_limit: s.float("WALL_TIME_LIMIT", 10.0)?,
            max_wall_time_limit: s.float("MAX_WALL_TIME_LIMIT", 20.0)?,
            memory_limit: s.uint("MEMORY_LIMIT", 128000)?,
            max_memory_limit: s.uint("MAX_MEMORY_LIMIT", 512000)?,
            stack_limit: s.uint("STACK_LIMIT", 64000)?,
            max_stack_limit: s.uint("MAX_STACK_LIMIT", 128000)?,
            max_processes_and_or_threads: s.uint("MAX_PROCESSES_AND_OR_THREADS", 60)?,
            max_max_processes_and_or_threads: s.uint("MAX_MAX_PROCESSES_AND_OR_THREADS", 120)?,
            enable_per_process_and_thread_time_limit: s
                .flag("ENABLE_PER_PROCESS_AND_THREAD_TIME_LIMIT", false)?,
            allow_enable_per_process_and_thread_time_limit: s
                .flag("ALLOW_ENABLE_PER_PROCESS_AND_THREAD_TIME_LIMIT", true)?,
            enable_per_process_and_thread_memory_limit: s
                .flag("ENABLE_PER_PROCESS_AND_THREAD_MEMORY_LIMIT", false)?,
            allow_enable_per_process_and_thread_memory_limit: s
                .flag("ALLOW_ENABLE_PER_PROCESS_AND_THREAD_MEMORY_LIMIT", true)?,
            max_file_size: s.uint("MAX_FILE_SIZE", 1024)?,
            max_max_file_size: s.uint("MAX_MAX_FILE_SIZE", 4096)?,
            number_of_runs: s.uint("NUMBER_OF_RUNS", 1)?,
            max_number_of_runs: s.uint("MAX_NUMBER_OF_RUNS", 20)?,
            redirect_stderr_to_stdout: s.flag("REDIRECT_STDERR_TO_STDOUT", false)?,
            max_extract_size: s.uint("MAX_EXTRACT_SIZE", 10240)?,
            enable_batched_submissions: s.flag("ENABLE_BATCHED_SUBMISSIONS", true)?,
            max_submission_batch_size: s.uint("MAX_SUBMISSION_BATCH_SIZE", 20)?,
            allow_enable_network: s.flag("ALLOW_ENABLE_NETWORK", true)?,
            enable_network: s.flag("ENABLE_NETWORK", false)?,
            implicit_base64: !s.flag("DISABLE_IMPLICIT_BASE64_ENCODING", true)?,
            count,
            authn_header: s.text("AUTHN_HEADER", "X-Auth-Token"),
            authn_token: s.words("AUTHN_TOKEN"),
            authz_header: s.text("AUTHZ_HEADER", "X-Auth-User"),
            authz_token: s.words("AUTHZ_TOKEN"),
            allow_origin: s.words("ALLOW_ORIGIN"),
            disallow_origin: s.words("DISALLOW_ORIGIN"),
            allow_ip: s.words("ALLOW_IP"),
            disallow_ip: s.words("DISALLOW_IP"),
            callbacks_allowed_hosts: s.words("CALLBACKS_ALLOWED_HOSTS"),
            result_retention_days: s.uint("RESULT_RETENTION_DAYS", 0)?,
            max_request_size: s.uint("MAX_REQUEST_SIZE", 32 << 20)?,
            jwt: jwt_verifier(s)?,
        })
    }

    /// `/config_info`: Judge0 1.13's keys and types (the official SDK parses it strictly).
    pub fn info(&self) -> Value {
        json!({
            "maintenance_mode": self.maintenance_mode,
            "enable_wait_result": self.enable_wait_result,
            "enable_compiler_options": self.enable_compiler_options,
            "allowed_languages_for_compile_options": self.allowed_languages_for_compiler_options,
            "enable_command_line_arguments": self.enable_command_line_arguments,
            "enable_submission_delete": self.enable_submission_delete,
            "enable_callbacks": self.enable_callbacks,
            "callbacks_max_tries": self.callbacks_max_tries,
            "callbacks_timeout": self.callbacks_timeout,
            "enable_additional_files": self.enable_additional_files,
            "max_queue_size": self.max_queue_size,
            "cpu_time_limit": self.cpu_time_limit,
            "max_cpu_time_limit": self.max_cpu_time_limit,
            "cpu_extra_time": self.cpu_extra_time,
            "max_cpu_extra_time": self.max_cpu_extra_time,
            "wall_time_limit": self.wall_time_limit,
            "max_wall_time_limit": self.max_wall_time_limit,
            "memory_limit": self.memory_limit,
            "max_memory_limit": self.max_memory_limit,
            "stack_limit": self.stack_limit,
            "max_stack_limit": self.max_stack_limit,
            "max_processes_and_or_threads": self.max_processes_and_or_threads,
            "max_max_processes_and_or_threads": self.max_max_processes_and_or_threads,
            "enable_per_process_and_thread_time_limit": self.enable_per_process_and_thread_time_limit,
            "allow_enable_per_process_and_thread_time_limit": self.allow_enable_per_process_and_thread_time_limit,
            "enable_per_process_and_thread_memory_limit": self.enable_per_process_and_thread_memory_limit,
            "allow_enable_per_process_and_thread_memory_limit": self.allow_enable_per_process_and_thread_memory_limit,
            "max_file_size": self.max_file_size,
            "max_max_file_size": self.max_max_file_size,
            "number_of_runs": self.number_of_runs,
            "max_number_of_runs": self.max_number_of_runs,
            "redirect_stderr_to_stdout": self.redirect_stderr_to_stdout,
            "max_extract_size": self.max_extract_size,
            "enable_batched_submissions": self.enable_batched_submissions,
            "max_submission_batch_size": self.max_submission_batch_size,
            "submission_cache_duration": 0.0,
            "use_docs_as_homepage": false,
            "allow_enable_network": self.allow_enable_network,
            "enable_network": self.enable_network,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_judge0s() {
        let c = Config::defaults();
        assert_eq!(c.cpu_time_limit, 5.0);
        assert_eq!(c.memory_limit, 128000);
        assert_eq!(c.max_queue_size, 100);
        assert!(c.enable_wait_result && !c.enable_submission_delete);
        assert_eq!(c.authn_header, "X-Auth-Token");
        assert_eq!(c.info()["callbacks_max_tries"], 3);
    }

    #[test]
    fn a_judge0_conf_loads_and_names_bad_keys() {
        let text = "# comment\nREDIS_PASSWORD=x\nPOSTGRES_DB=judge0\nCPU_TIME_LIMIT=3\n\
                    MAX_QUEUE_SIZE=\nENABLE_SUBMISSION_DELETE=true\nAUTHN_TOKEN=\"a b\"\n";
        let src = Source::parse("judge0.conf", text).unwrap();
        assert_eq!(src.ignored, ["REDIS_PASSWORD", "POSTGRES_DB"]);
        let c = Config::from_source(&src).unwrap();
        assert_eq!(c.cpu_time_limit, 3.0);
        assert_eq!(c.max_queue_size, 100, "empty means the default");
        assert!(c.enable_submission_delete);
        assert_eq!(c.authn_token, ["a", "b"]);
        let bad = Source::parse("j", "MEMORY_LIMIT=lots\n").unwrap();
        let err = Config::from_source(&bad).unwrap_err().to_string();
        assert!(
            err.contains("MEMORY_LIMIT") && err.contains("lots"),
            "{err}"
        );
        let bad = Source::parse("j", "ENABLE_NETWORK=yes\n").unwrap();
        assert!(Config::from_source(&bad)
            .unwrap_err()
            .to_string()
            .contains("ENABLE_NETWORK"));
        assert!(Source::parse("j", "garbage line\n").is_err());
    }
}
