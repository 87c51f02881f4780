//! The submission store: one small trait (create, fetch, list, claim, finish, requeue,
//! delete, prune) so another backend (PostgreSQL for many hosts) drops in without
//! touching the HTTP layer or the workers. Submissions travel as JSON documents.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database record {token}: {detail}")]
    Corrupt { token: String, detail: String },
    #[error("database {path}: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Judge0's status ids of a submission that is not finished.
pub const IN_QUEUE: u32 = 1;
pub const PROCESSING: u32 = 2;

/// What the client asked for, validated, with the defaults filled in.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Request {
    #[serde(with = "b64opt")]
    pub source_code: Option<Vec<u8>>,
    pub language_id: u32,
    pub compiler_options: Option<String>,
    pub command_line_arguments: Option<String>,
    pub number_of_runs: u64,
    #[serde(with = "b64opt")]
    pub stdin: Option<Vec<u8>>,
    #[serde(with = "b64opt")]
    pub expected_output: Option<Vec<u8>>,
    pub cpu_time_limit: f64,
    pub cpu_extra_time: f64,
    pub wall_time_limit: f64,
    pub memory_limit: u64,
    pub stack_limit: u64,
    pub max_processes_and_or_threads: u64,
    pub enable_per_process_and_thread_time_limit: bool,
    pub enable_per_process_and_thread_memory_limit: bool,
    pub max_file_size: u64,
    pub redirect_stderr_to_stdout: bool,
    pub callback_url: Option<String>,
    #[serde(with = "b64opt")]
    pub additional_files: Option<Vec<u8>>,
    pub enable_network: bool,
}

/// What judging came to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Outcome {
    pub status_id: u32,
    #[serde(with = "b64opt")]
    pub stdout: Option<Vec<u8>>,
    #[serde(with = "b64opt")]
    pub stderr: Option<Vec<u8>>,
    #[serde(with = "b64opt")]
    pub compile_output: Option<Vec<u8>>,
    pub message: Option<String>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub time: Option<f64>,
    pub wall_time: Option<f64>,
    /// KB, as Judge0.
    pub memory: Option<u64>,
    /// judgebox's own verdict (`memory_limit`, ...), beyond Judge0.
    pub verdict: Option<String>,
    /// How the limits were enforced (cgroup, rlimit), beyond Judge0.
    pub enforcement: Option<serde_json::Value>,
}

/// One submission as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub token: String,
    pub request: Request,
    pub status_id: u32,
    /// Unix milliseconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub outcome: Option<Outcome>,
}

/// Counts for `/statistics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub total: u64,
    pub by_language: Vec<(u32, u64)>,
    pub by_status: Vec<(u32, u64)>,
    /// (days since the epoch, count) for the last 31 days.
    pub by_day: Vec<(i64, u64)>,
    pub size_bytes: u64,
}

/// The storage seam.
pub trait Store: Send + Sync {
    /// Stores new queued submissions, all or none.
    fn create(&self, subs: &[Submission]) -> Result<(), StoreError>;
    fn fetch(&self, token: &str) -> Result<Option<Submission>, StoreError>;
    /// Newest first; returns the page and the total count.
    fn list(&self, offset: u64, limit: u64) -> Result<(Vec<Submission>, u64), StoreError>;
    /// The oldest queued submission, now marked processing.
    fn claim_next(&self, now: i64) -> Result<Option<Submission>, StoreError>;
    /// Stores the outcome and makes the status final in one transaction. Only a
    /// submission that is processing can finish: `false` means it was not.
    fn finish(&self, token: &str, outcome: &Outcome, now: i64) -> Result<bool, StoreError>;
    /// [`Store::finish`] for several submissions, one flag each. A backend that can makes
    /// it one transaction with one sync to disk (all or none); this default finishes them
    /// one by one.
    fn finish_many(&self, done: &[(&str, &Outcome)], now: i64) -> Result<Vec<bool>, StoreError> {
        done.iter()
            .map(|(token, outcome)| self.finish(token, outcome, now))
            .collect()
    }
    /// Puts every processing submission back in the queue (after a crash); returns how many.
    fn requeue_stale(&self) -> Result<u64, StoreError>;
    /// Deletes a finished submission; returns it.
    fn delete(&self, token: &str) -> Result<Option<Submission>, StoreError>;
    /// Deletes finished submissions created before `before`; returns how many.
    fn prune(&self, before: i64) -> Result<u64, StoreError>;
    /// How many are queued.
    fn queued(&self) -> Result<u64, StoreError>;
    fn stats(&self, today: i64) -> Result<Stats, StoreError>;
}

/// `Option<Vec<u8>>` as an optional base64 string inside the stored JSON.
mod b64opt {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_some(&B64.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| B64.decode(t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
