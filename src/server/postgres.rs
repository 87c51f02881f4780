//! The shared store: PostgreSQL (pooled connections, TLS with rustls), for any number of
//! API and worker processes on any hosts. Workers claim with `FOR UPDATE SKIP LOCKED`
//! under a lease; `LISTEN/NOTIFY` announces new and finished submissions to every process.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use postgres::{Client, Config, GenericClient, Row};
use r2d2_postgres::r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::store::{
    corrupt, decode, Event, Hear, Lease, Outcome, RawRow, Stats, Store, StoreError, Submission,
    WorkerBeat, IN_QUEUE, PROCESSING,
};

/// The schema, one migration per version (applied in order by `migrate`).
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_submissions.sql"),
    include_str!("migrations/0002_workers.sql"),
];

/// Serialises concurrent `--migrate` runs (pg_advisory_xact_lock key).
const MIGRATE_LOCK: i64 = 0x6a75_6467_6562_6f78;
const QUEUED_CHANNEL: &str = "judgebox_queued";
const FINISHED_CHANNEL: &str = "judgebox_finished";
/// Without a notification for this long, the listener asks its caller to look again.
const RESYNC: Duration = Duration::from_secs(2);

const COLUMNS: &str = "token, status_id, created_at, started_at, finished_at, request, outcome";

type Manager = PostgresConnectionManager<MakeRustlsConnect>;

pub struct Postgres {
    pool: Pool<Manager>,
    /// Connections whose commits do not wait for the WAL's flush, for claims only: a
    /// claim lost in a database crash puts its submission back in the queue, where it
    /// is claimed again, and the first worker's result is then refused (its lease is
    /// gone), so nothing is finished twice. That saves one fsync on every submission's
    /// path. Results, submissions and leases keep the durable default.
    claims: Pool<Manager>,
    config: Config,
    tls: MakeRustlsConnect,
}

fn setup(step: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Setup {
        step,
        detail: detail.to_string(),
    }
}

/// TLS for `sslmode=prefer|require`: rustls with ring and the system's trusted roots.
fn tls() -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup("tls", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The URL's settings, with timeouts that notice a lost host or network in seconds
/// (unless the URL sets its own).
fn config(url: &str) -> Result<Config, StoreError> {
    let mut c = Config::from_str(url).map_err(|e| setup("database URL", e))?;
    if c.get_connect_timeout().is_none() {
        c.connect_timeout(Duration::from_secs(5));
    }
    if c.get_tcp_user_timeout().is_none() {
        c.tcp_user_timeout(Duration::from_secs(10));
    }
    c.keepalives_idle(Duration::from_secs(10));
    if c.get_application_name().is_none() {
        c.application_name("judgebox");
    }
    Ok(c)
}

impl Postgres {
    /// Connects (pooling up to `connections`) and checks the schema is this binary's.
    pub fn open(url: &str, connections: u32) -> Result<Postgres, StoreError> {
        let store = Postgres::connect(url, connections)?;
        let version = schema_version(&mut *store.conn()?)?;
        check_version(version)?;
        Ok(store)
    }

    fn connect(url: &str, connections: u32) -> Result<Postgres, StoreError> {
        let config = config(url)?;
        let tls = tls()?;
        let pool = new_pool(config.clone(), &tls, connections);
        let mut unflushed = config.clone();
        let options = config.get_options().unwrap_or("");
        unflushed.options(format!("{options} -c synchronous_commit=off").trim_start());
        let claims = new_pool(unflushed, &tls, connections);
        Ok(Postgres {
            pool,
            claims,
            config,
            tls,
        })
    }

    fn conn(&self) -> Result<PooledConnection<Manager>, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` on a pooled connection, once more on another if that one turned out to be
    /// closed (the database restarted since it was last used).
    fn with<T>(
        &self,
        f: impl Fn(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        with_pool(&self.pool, f)
    }
}

/// Up to `connections` connections, opened when first needed.
fn new_pool(config: Config, tls: &MakeRustlsConnect, connections: u32) -> Pool<Manager> {
    Pool::builder()
        .max_size(connections.max(2))
        .min_idle(Some(0))
        // No round trip per checkout: `with_pool` retries on a closed connection instead.
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(5))
        .build_unchecked(PostgresConnectionManager::new(config, tls.clone()))
}

/// `Postgres::with` on the connections of `pool`.
fn with_pool<T>(
    pool: &Pool<Manager>,
    f: impl Fn(&mut Client) -> Result<T, postgres::Error>,
) -> Result<T, StoreError> {
    let mut conn = pool.get()?;
    match f(&mut conn) {
        Err(_) if conn.is_closed() => {
            drop(conn);
            Ok(f(&mut *pool.get()?)?)
        }
        r => Ok(r?),
    }
}

/// Applies the migrations the database lacks; returns (version before, version after).
pub fn migrate(url: &str) -> Result<(usize, usize), StoreError> {
    let store = Postgres::connect(url, 1)?;
    let mut conn = store.conn()?;
    let mut tx = conn.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS judgebox_schema (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )?;
    let before = schema_version(&mut tx)?;
    if before > MIGRATIONS.len() {
        return Err(newer(before));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(before) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO judgebox_schema (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )?;
    }
    tx.commit()?;
    Ok((before, MIGRATIONS.len()))
}

fn newer(version: usize) -> StoreError {
    StoreError::Schema(format!(
        "the database's schema is version {version}, newer than this judgebox's ({}): \
         upgrade judgebox on this host",
        MIGRATIONS.len()
    ))
}

/// The schema version (0 when nothing was migrated).
fn schema_version(c: &mut impl GenericClient) -> Result<usize, StoreError> {
    let exists: bool = c
        .query_one("SELECT to_regclass('judgebox_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = c
        .query_one("SELECT max(version) FROM judgebox_schema", &[])?
        .get(0);
    Ok(v.unwrap_or(0) as usize)
}

fn check_version(version: usize) -> Result<(), StoreError> {
    match version.cmp(&MIGRATIONS.len()) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(newer(version)),
        std::cmp::Ordering::Less => Err(StoreError::Schema(format!(
            "the database's schema is version {version}, this judgebox needs {}: run \
             `judgebox serve --database URL --migrate` first",
            MIGRATIONS.len()
        ))),
    }
}

fn raw(row: &Row) -> RawRow {
    let status: i32 = row.get(1);
    (
        row.get(0),
        status as u32,
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
        row.get(6),
    )
}

/// PostgreSQL's text cannot hold NUL: no stored token has one.
fn storable(token: &str) -> bool {
    !token.contains('\0')
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

impl Store for Postgres {
    fn create(&self, subs: &[Submission]) -> Result<(), StoreError> {
        let requests = subs
            .iter()
            .map(|s| serde_json::to_string(&s.request).map_err(|e| corrupt(&s.token, e)))
            .collect::<Result<Vec<_>, _>>()?;
        self.with(|c| {
            let mut tx = c.transaction()?;
            let insert = tx.prepare(
                "INSERT INTO submissions (token, language_id, status_id, created_at, request)
                 VALUES ($1, $2, $3, $4, $5)",
            )?;
            for (s, request) in subs.iter().zip(&requests) {
                tx.execute(
                    &insert,
                    &[
                        &s.token,
                        &(s.request.language_id as i32),
                        &(s.status_id as i32),
                        &s.created_at,
                        request,
                    ],
                )?;
            }
            tx.batch_execute(&format!("NOTIFY {QUEUED_CHANNEL}"))?;
            tx.commit()
        })
    }

    fn fetch(&self, token: &str) -> Result<Option<Submission>, StoreError> {
        if !storable(token) {
            return Ok(None);
        }
        // Typed: one round trip, no separate prepare (the API's hottest call).
        let row = self.with(|c| {
            c.query_typed_opt(
                &format!("SELECT {COLUMNS} FROM submissions WHERE token = $1"),
                &[(&token, Type::TEXT)],
            )
        })?;
        row.map(|r| decode(raw(&r))).transpose()
    }

    fn fetch_many(&self, tokens: &[&str]) -> Result<Vec<Option<Submission>>, StoreError> {
        let wanted: Vec<&str> = tokens.iter().copied().filter(|t| storable(t)).collect();
        let rows = self.with(|c| {
            c.query_typed(
                &format!("SELECT {COLUMNS} FROM submissions WHERE token = ANY($1)"),
                &[(&wanted, Type::TEXT_ARRAY)],
            )
        })?;
        let mut found = std::collections::HashMap::new();
        for r in &rows {
            let sub = decode(raw(r))?;
            found.insert(sub.token.clone(), sub);
        }
        Ok(tokens.iter().map(|t| found.get(*t).cloned()).collect())
    }

    fn list(&self, offset: u64, limit: u64) -> Result<(Vec<Submission>, u64), StoreError> {
        let (total, rows) = self.with(|c| {
            let total: i64 = c.query_one("SELECT COUNT(*) FROM submissions", &[])?.get(0);
            let rows = c.query(
                &format!("SELECT {COLUMNS} FROM submissions ORDER BY seq DESC LIMIT $1 OFFSET $2"),
                &[&(limit as i64), &(offset as i64)],
            )?;
            Ok((total, rows))
        })?;
        let subs = rows
            .iter()
            .map(|r| decode(raw(r)))
            .collect::<Result<_, _>>()?;
        Ok((subs, total as u64))
    }

    fn claim_next(&self, lease: &Lease, now: i64) -> Result<Option<Submission>, StoreError> {
        let (processing, queued) = (PROCESSING as i32, IN_QUEUE as i32);
        let secs = secs(lease.ms);
        let row = with_pool(&self.claims, |c| {
            c.query_typed_opt(
                &format!(
                    "UPDATE submissions SET status_id = $1, started_at = $2, lease_owner = $3,
                         lease_until = now() + make_interval(secs => $4), claims = claims + 1
                     WHERE seq = (SELECT seq FROM submissions WHERE status_id = $5
                                  ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING {COLUMNS}"
                ),
                &[
                    (&processing, Type::INT4),
                    (&now, Type::INT8),
                    (&lease.owner, Type::TEXT),
                    (&secs, Type::FLOAT8),
                    (&queued, Type::INT4),
                ],
            )
        })?;
        row.map(|r| decode(raw(&r))).transpose()
    }

    fn renew(&self, lease: &Lease, tokens: &[String]) -> Result<Vec<String>, StoreError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.with(|c| {
            c.query(
                "UPDATE submissions SET lease_until = now() + make_interval(secs => $1)
             WHERE token = ANY($2) AND lease_owner = $3 AND status_id = $4
             RETURNING token",
                &[&secs(lease.ms), &tokens, &lease.owner, &(PROCESSING as i32)],
            )
        })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn finish(
        &self,
        token: &str,
        owner: &str,
        outcome: &Outcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(outcome).map_err(|e| corrupt(token, e))?;
        // One statement, so one transaction: the notification goes out when it commits.
        // Typed: one round trip (no separate prepare) on every worker's critical path.
        let (status, processing) = (outcome.status_id as i32, PROCESSING as i32);
        let rows = self.with(|c| {
            c.query_typed(
                &format!(
                    "WITH done AS (
                    UPDATE submissions SET status_id = $1, outcome = $2, finished_at = $3,
                        lease_owner = NULL, lease_until = NULL
                    WHERE token = $4 AND status_id = $5 AND lease_owner = $6
                        AND lease_until > now()
                    RETURNING token)
                 SELECT pg_notify('{FINISHED_CHANNEL}', token) FROM done"
                ),
                &[
                    (&status, Type::INT4),
                    (&json, Type::TEXT),
                    (&now, Type::INT8),
                    (&token, Type::TEXT),
                    (&processing, Type::INT4),
                    (&owner, Type::TEXT),
                ],
            )
        })?;
        if rows.len() == 1 {
            return Ok(true);
        }
        // Nothing updated. A connection lost while its COMMIT was under way (the server
        // restarted, the network cut) leaves the caller not knowing whether that attempt
        // landed, and this retry then finds the submission finished: by that attempt
        // exactly when the row holds this very result, stamped at this `now`.
        let landed = self.with(|c| {
            c.query_typed(
                "SELECT 1 FROM submissions WHERE token = $1 AND status_id = $2
                    AND finished_at = $3 AND outcome = $4 AND lease_owner IS NULL",
                &[
                    (&token, Type::TEXT),
                    (&status, Type::INT4),
                    (&now, Type::INT8),
                    (&json, Type::TEXT),
                ],
            )
        })?;
        Ok(landed.len() == 1)
    }

    fn requeue_stale(&self) -> Result<u64, StoreError> {
        let row = self.with(|c| {
            c.query_one(
                &format!(
                    "WITH back AS (
                    UPDATE submissions SET status_id = $1, started_at = NULL,
                        lease_owner = NULL, lease_until = NULL
                    WHERE status_id = $2 AND lease_until <= now()
                    RETURNING token),
                 note AS (SELECT pg_notify('{QUEUED_CHANNEL}', '') FROM back LIMIT 1)
                 SELECT (SELECT COUNT(*) FROM back), (SELECT COUNT(*) FROM note)"
                ),
                &[&(IN_QUEUE as i32), &(PROCESSING as i32)],
            )
        })?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn delete(&self, token: &str) -> Result<Option<Submission>, StoreError> {
        if !storable(token) {
            return Ok(None);
        }
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let row = tx.query_opt(
            &format!("SELECT {COLUMNS} FROM submissions WHERE token = $1 FOR UPDATE"),
            &[&token],
        )?;
        if row.is_some() {
            tx.execute(
                "DELETE FROM submissions WHERE token = $1 AND status_id > $2",
                &[&token, &(PROCESSING as i32)],
            )?;
        }
        tx.commit()?;
        row.map(|r| decode(raw(&r))).transpose()
    }

    fn prune(&self, before: i64) -> Result<u64, StoreError> {
        let n = self.with(|c| {
            c.execute(
                "DELETE FROM submissions WHERE created_at < $1 AND status_id > $2",
                &[&before, &(PROCESSING as i32)],
            )
        })?;
        Ok(n)
    }

    fn queued(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()?
            .query_one(
                "SELECT COUNT(*) FROM submissions WHERE status_id = $1",
                &[&(IN_QUEUE as i32)],
            )?
            .get(0);
        Ok(n as u64)
    }

    fn stats(&self, today: i64) -> Result<Stats, StoreError> {
        let mut conn = self.conn()?;
        let mut pairs = |sql: &str, args: &[&(dyn postgres::types::ToSql + Sync)]| {
            conn.query(sql, args).map(|rows| {
                rows.iter()
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1) as u64))
                    .collect::<Vec<_>>()
            })
        };
        let total = pairs("SELECT 0::bigint, COUNT(*) FROM submissions", &[])?;
        let by_language = pairs(
            "SELECT language_id::bigint, COUNT(*) FROM submissions
             GROUP BY language_id ORDER BY 2 DESC",
            &[],
        )?;
        let by_status = pairs(
            "SELECT status_id::bigint, COUNT(*) FROM submissions
             GROUP BY status_id ORDER BY 2 DESC",
            &[],
        )?;
        let by_day = pairs(
            "SELECT created_at / 86400000 AS day, COUNT(*) FROM submissions
             WHERE created_at >= $1 GROUP BY day",
            &[&((today - 30) * 86_400_000)],
        )?;
        let size = pairs(
            "SELECT 0::bigint, pg_total_relation_size('submissions')",
            &[],
        )?;
        Ok(Stats {
            total: total.first().map_or(0, |p| p.1),
            by_language: by_language
                .into_iter()
                .map(|(l, c)| (l as u32, c))
                .collect(),
            by_status: by_status.into_iter().map(|(s, c)| (s as u32, c)).collect(),
            by_day,
            size_bytes: size.first().map_or(0, |p| p.1),
        })
    }

    fn heartbeat(&self, node: &str, beats: &[WorkerBeat]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute("DELETE FROM workers WHERE node = $1", &[&node])?;
        // Rows of processes that stopped without saying so are kept a day, then dropped.
        tx.execute(
            "DELETE FROM workers WHERE heartbeat < now() - interval '1 day'",
            &[],
        )?;
        let insert = tx.prepare(
            "INSERT INTO workers (id, node, host, pid, state, token, heartbeat)
             VALUES ($1, $2, $3, $4, $5, $6, now())",
        )?;
        for b in beats {
            tx.execute(
                &insert,
                &[&b.id, &node, &b.host, &(b.pid as i32), &b.state, &b.token],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn workers(&self) -> Result<Vec<WorkerBeat>, StoreError> {
        let rows = self.with(|c| {
            c.query(
                "SELECT id, node, host, pid, state, token,
                    (extract(epoch FROM heartbeat) * 1000)::bigint,
                    (extract(epoch FROM now() - heartbeat) * 1000)::bigint
             FROM workers ORDER BY id",
                &[],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| WorkerBeat {
                id: r.get(0),
                node: r.get(1),
                host: r.get(2),
                pid: r.get::<_, i32>(3) as u32,
                state: r.get(4),
                token: r.get(5),
                last_heartbeat: r.get(6),
                age_ms: r.get(7),
            })
            .collect())
    }

    fn subscribe(
        &self,
        hear: Hear,
        on: Box<dyn Fn(Event) -> bool + Send>,
    ) -> Result<Option<std::thread::JoinHandle<()>>, StoreError> {
        let channels: Vec<String> = [
            (hear.queued, QUEUED_CHANNEL),
            (hear.finished, FINISHED_CHANNEL),
        ]
        .iter()
        .filter(|(wanted, _)| *wanted)
        .map(|(_, channel)| format!("LISTEN {channel};"))
        .collect();
        if channels.is_empty() {
            return Ok(None);
        }
        let listen_sql = channels.join(" ");
        let (config, tls) = (self.config.clone(), self.tls.clone());
        let handle = std::thread::Builder::new()
            .name("judgebox-listen".into())
            .spawn(move || listen(&config, &tls, &listen_sql, &*on))
            .map_err(|e| setup("listener thread", e))?;
        Ok(Some(handle))
    }
}

/// Listens on its own connection until `on` returns false, reconnecting with backoff.
fn listen(config: &Config, tls: &MakeRustlsConnect, sql: &str, on: &dyn Fn(Event) -> bool) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let connected = config.connect(tls.clone()).and_then(|mut c| {
            c.batch_execute(sql)?;
            Ok(c)
        });
        match connected {
            Ok(mut client) => {
                backoff = Duration::from_millis(250);
                // Whatever was announced while we were not listening is looked up again.
                if !on(Event::Resync) || !relay(&mut client, on) {
                    return;
                }
            }
            Err(e) => {
                super::log(
                    "store_error",
                    serde_json::json!({"step": "listen", "error": e.to_string()}),
                );
                if !on(Event::Resync) {
                    return;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(8));
            }
        }
    }
}

/// Passes notifications on until the connection fails (`true`) or `on` says stop (`false`).
fn relay(client: &mut Client, on: &dyn Fn(Event) -> bool) -> bool {
    loop {
        let next = client.notifications().timeout_iter(RESYNC).next();
        let event = match next {
            Ok(Some(n)) if n.channel() == FINISHED_CHANNEL => {
                Event::Finished(n.payload().to_string())
            }
            Ok(Some(_)) => Event::Queued,
            Ok(None) if client.is_closed() => return true,
            Ok(None) => Event::Resync,
            Err(e) => {
                super::log(
                    "store_error",
                    serde_json::json!({"step": "listen", "error": e.to_string()}),
                );
                return true;
            }
        };
        if !on(event) {
            return false;
        }
    }
}
