//! The submission store: one small trait (create, fetch, list, claim under a lease, renew,
//! finish, requeue, delete, prune, heartbeats) with two backends, embedded SQLite and
//! PostgreSQL for many hosts; the HTTP layer and the workers never know which.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgresql: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("postgresql connection pool: {0}")]
    Pool(#[from] r2d2_postgres::r2d2::Error),
    #[error("postgresql {step}: {detail}")]
    Setup { step: &'static str, detail: String },
    #[error("database schema: {0}")]
    Schema(String),
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

/// A claim's holder (one server process) and how long a claim lasts unless renewed.
#[derive(Debug, Clone)]
pub struct Lease {
    pub owner: String,
    pub ms: u64,
}

/// One worker thread as last reported by its process (`heartbeat`).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerBeat {
    /// `<node>/<index>`.
    pub id: String,
    /// The process's lease owner id.
    pub node: String,
    pub host: String,
    pub pid: u32,
    /// `idle` or `busy`.
    pub state: String,
    pub token: Option<String>,
    /// Unix milliseconds of the last heartbeat (filled when read).
    pub last_heartbeat: i64,
    /// How long ago that was by the database's clock (filled when read).
    pub age_ms: i64,
}

/// Events a shared store announces to every process (`subscribe`).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// New submissions were queued.
    Queued,
    /// This submission finished.
    Finished(String),
    /// Notifications may have been missed (reconnected, or a periodic check): look again.
    Resync,
}

/// Which events a process wants to hear (`subscribe`): a worker-only process has no
/// `wait=true` requests to wake, an API-only one no workers; neither is woken for nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hear {
    pub queued: bool,
    pub finished: bool,
}

/// The storage seam.
pub trait Store: Send + Sync {
    /// Stores new queued submissions, all or none.
    fn create(&self, subs: &[Submission]) -> Result<(), StoreError>;
    fn fetch(&self, token: &str) -> Result<Option<Submission>, StoreError>;
    /// Each of `tokens`, in order (`None`: no such submission).
    fn fetch_many(&self, tokens: &[&str]) -> Result<Vec<Option<Submission>>, StoreError> {
        tokens.iter().map(|t| self.fetch(t)).collect()
    }
    /// Newest first; returns the page and the total count.
    fn list(&self, offset: u64, limit: u64) -> Result<(Vec<Submission>, u64), StoreError>;
    /// The oldest queued submission, now marked processing under `lease`.
    fn claim_next(&self, lease: &Lease, now: i64) -> Result<Option<Submission>, StoreError>;
    /// Extends the lease on those of `tokens` that `lease.owner` still holds; returns them.
    fn renew(&self, lease: &Lease, tokens: &[String]) -> Result<Vec<String>, StoreError>;
    /// Stores the outcome and makes the status final in one transaction, only while
    /// `owner` holds the submission's lease: `false` means it did not (nothing written).
    /// Retried with the same `now` after an error, `true` when the earlier attempt had
    /// written this very result (its COMMIT went through but the answer was lost).
    fn finish(
        &self,
        token: &str,
        owner: &str,
        outcome: &Outcome,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Puts back in the queue every processing submission whose lease is no longer held
    /// (expired, or held by a process that is gone); returns how many.
    fn requeue_stale(&self) -> Result<u64, StoreError>;
    /// Deletes a finished submission; returns it.
    fn delete(&self, token: &str) -> Result<Option<Submission>, StoreError>;
    /// Deletes finished submissions created before `before`; returns how many.
    fn prune(&self, before: i64) -> Result<u64, StoreError>;
    /// How many are queued.
    fn queued(&self) -> Result<u64, StoreError>;
    fn stats(&self, today: i64) -> Result<Stats, StoreError>;
    /// Replaces the worker rows of `node` with `beats` (none: the node stopped).
    fn heartbeat(&self, node: &str, beats: &[WorkerBeat]) -> Result<(), StoreError>;
    /// Every worker of every process, as last reported.
    fn workers(&self) -> Result<Vec<WorkerBeat>, StoreError>;
    /// Calls `on` (on a thread of its own, until it returns `false`) for the events of
    /// `hear` that other processes cause, and `Resync`; `None` when there are none to hear
    /// (a store only this process uses).
    fn subscribe(
        &self,
        hear: Hear,
        on: Box<dyn Fn(Event) -> bool + Send>,
    ) -> Result<Option<std::thread::JoinHandle<()>>, StoreError>;
}

pub fn corrupt(token: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        token: token.to_string(),
        detail: e.to_string(),
    }
}

/// A row of `COLUMNS` as a submission; the JSON is decoded after the row is read.
pub type RawRow = (
    String,
    u32,
    i64,
    Option<i64>,
    Option<i64>,
    String,
    Option<String>,
);

pub fn decode(r: RawRow) -> Result<Submission, StoreError> {
    let (token, status_id, created_at, started_at, finished_at, request, outcome) = r;
    let request = serde_json::from_str(&request).map_err(|e| corrupt(&token, e))?;
    let outcome = outcome
        .map(|o| serde_json::from_str::<Outcome>(&o))
        .transpose()
        .map_err(|e| corrupt(&token, e))?;
    Ok(Submission {
        token,
        request,
        status_id,
        created_at,
        started_at,
        finished_at,
        outcome,
    })
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
