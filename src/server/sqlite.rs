//! The embedded store: one SQLite database in WAL mode with `synchronous=FULL`, so a
//! finished result is on disk before its status is final, and a crash loses nothing
//! (queued and processing rows survive; processing ones are requeued at start-up). Only
//! this process uses it, so leases and worker heartbeats are kept in memory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::store::{
    corrupt, decode, Event, Hear, Lease, Outcome, RawRow, Stats, Store, StoreError, Submission,
    WorkerBeat, IN_QUEUE, PROCESSING,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS submissions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL UNIQUE,
    language_id INTEGER NOT NULL,
    status_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    request TEXT NOT NULL,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS submissions_status ON submissions(status_id, seq);
";

const COLUMNS: &str = "token, status_id, created_at, started_at, finished_at, request, outcome";

pub struct Sqlite {
    conn: Mutex<Connection>,
    /// token -> (owner, expiry) of the submissions this process judges.
    leases: Mutex<HashMap<String, (String, Instant)>>,
    /// node -> its workers, with the time of the heartbeat.
    beats: Mutex<HashMap<String, Beats>>,
}

/// A process's workers at its last heartbeat, with when that was (monotonic, Unix ms).
type Beats = (Vec<WorkerBeat>, Instant, i64);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sqlite {
    /// Opens (creating when needed) the database at `path`, its directory 0700.
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| StoreError::Dir {
                    path: dir.display().to_string(),
                    source,
                })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Sqlite {
            conn: Mutex::new(conn),
            leases: Mutex::new(HashMap::new()),
            beats: Mutex::new(HashMap::new()),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// Whether `owner` holds an unexpired lease on `token`.
    fn holds(&self, token: &str, owner: &str) -> bool {
        lock(&self.leases)
            .get(token)
            .is_some_and(|(o, until)| o == owner && *until > Instant::now())
    }
}

fn raw(row: &Row) -> rusqlite::Result<RawRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

/// Marks the oldest queued submission processing, in one immediate transaction.
fn claim(conn: &mut Connection, now: i64) -> Result<Option<Submission>, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let row = tx
        .query_row(
            &format!("SELECT {COLUMNS} FROM submissions WHERE status_id = ?1 ORDER BY seq LIMIT 1"),
            [IN_QUEUE],
            raw,
        )
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE submissions SET status_id = ?1, started_at = ?2 WHERE token = ?3",
        params![PROCESSING, now, row.0],
    )?;
    tx.commit()?;
    let mut sub = decode(row)?;
    sub.status_id = PROCESSING;
    sub.started_at = Some(now);
    Ok(Some(sub))
}

impl Store for Sqlite {
    fn create(&self, subs: &[Submission]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO submissions (token, language_id, status_id, created_at, request)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for s in subs {
                let request =
                    serde_json::to_string(&s.request).map_err(|e| corrupt(&s.token, e))?;
                insert.execute(params![
                    s.token,
                    s.request.language_id,
                    s.status_id,
                    s.created_at,
                    request
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn fetch(&self, token: &str) -> Result<Option<Submission>, StoreError> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM submissions WHERE token = ?1"),
                [token],
                raw,
            )
            .optional()?;
        row.map(decode).transpose()
    }

    fn list(&self, offset: u64, limit: u64) -> Result<(Vec<Submission>, u64), StoreError> {
        let conn = self.conn();
        let total = conn.query_row("SELECT COUNT(*) FROM submissions", [], |r| {
            r.get::<_, i64>(0)
        })? as u64;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM submissions ORDER BY seq DESC LIMIT ?1 OFFSET ?2"
        ))?;
        let rows = stmt
            .query_map(params![limit as i64, offset as i64], raw)?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        let subs = rows.into_iter().map(decode).collect::<Result<_, _>>()?;
        Ok((subs, total))
    }

    fn claim_next(&self, lease: &Lease, now: i64) -> Result<Option<Submission>, StoreError> {
        let mut conn = self.conn();
        // A claim lost to a power failure only puts the submission back in the queue: it
        // commits without an fsync (the next create or finish syncs the log).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let claimed = claim(&mut conn, now);
        conn.pragma_update(None, "synchronous", "FULL")?;
        if let Ok(Some(sub)) = &claimed {
            let until = Instant::now() + Duration::from_millis(lease.ms);
            lock(&self.leases).insert(sub.token.clone(), (lease.owner.clone(), until));
        }
        claimed
    }

    fn renew(&self, lease: &Lease, tokens: &[String]) -> Result<Vec<String>, StoreError> {
        let until = Instant::now() + Duration::from_millis(lease.ms);
        let mut leases = lock(&self.leases);
        let held = tokens
            .iter()
            .filter(|t| match leases.get_mut(t.as_str()) {
                Some((o, u)) if *o == lease.owner => {
                    *u = until;
                    true
                }
                _ => false,
            })
            .cloned()
            .collect();
        Ok(held)
    }

    fn finish(
        &self,
        token: &str,
        owner: &str,
        outcome: &Outcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        if !self.holds(token, owner) {
            return Ok(false);
        }
        let json = serde_json::to_string(outcome).map_err(|e| corrupt(token, e))?;
        let n = self.conn().execute(
            "UPDATE submissions SET status_id = ?1, outcome = ?2, finished_at = ?3
             WHERE token = ?4 AND status_id = ?5",
            params![outcome.status_id, json, now, token, PROCESSING],
        )?;
        lock(&self.leases).remove(token);
        Ok(n == 1)
    }

    fn requeue_stale(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let processing = {
            let mut stmt = tx.prepare("SELECT token FROM submissions WHERE status_id = ?1")?;
            let rows = stmt
                .query_map([PROCESSING], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        let mut leases = lock(&self.leases);
        let now = Instant::now();
        let mut n = 0;
        for token in processing {
            if leases.get(&token).is_some_and(|(_, until)| *until > now) {
                continue;
            }
            leases.remove(&token);
            n += tx.execute(
                "UPDATE submissions SET status_id = ?1, started_at = NULL
                 WHERE token = ?2 AND status_id = ?3",
                params![IN_QUEUE, token, PROCESSING],
            )? as u64;
        }
        drop(leases);
        tx.commit()?;
        Ok(n)
    }

    fn delete(&self, token: &str) -> Result<Option<Submission>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let row = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM submissions WHERE token = ?1"),
                [token],
                raw,
            )
            .optional()?;
        if row.is_some() {
            tx.execute(
                "DELETE FROM submissions WHERE token = ?1 AND status_id > ?2",
                params![token, PROCESSING],
            )?;
        }
        tx.commit()?;
        row.map(decode).transpose()
    }

    fn prune(&self, before: i64) -> Result<u64, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM submissions WHERE created_at < ?1 AND status_id > ?2",
            params![before, PROCESSING],
        )?;
        Ok(n as u64)
    }

    fn queued(&self) -> Result<u64, StoreError> {
        let n = self.conn().query_row(
            "SELECT COUNT(*) FROM submissions WHERE status_id = ?1",
            [IN_QUEUE],
            |r| r.get::<_, i64>(0),
        )?;
        Ok(n as u64)
    }

    fn stats(&self, today: i64) -> Result<Stats, StoreError> {
        let conn = self.conn();
        let pairs =
            |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<Vec<(i64, u64)>, StoreError> {
                let mut stmt = conn.prepare_cached(sql)?;
                let rows = stmt
                    .query_map(args, |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            };
        let total = conn.query_row("SELECT COUNT(*) FROM submissions", [], |r| {
            r.get::<_, i64>(0)
        })? as u64;
        let by_language = pairs(
            "SELECT language_id, COUNT(*) FROM submissions GROUP BY language_id ORDER BY 2 DESC",
            &[],
        )?;
        let by_status = pairs(
            "SELECT status_id, COUNT(*) FROM submissions GROUP BY status_id ORDER BY 2 DESC",
            &[],
        )?;
        let by_day = pairs(
            "SELECT created_at / 86400000 AS day, COUNT(*) FROM submissions
             WHERE created_at >= ?1 GROUP BY day",
            &[&((today - 30) * 86_400_000)],
        )?;
        let pages = conn.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))? as u64;
        let page_size = conn.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))? as u64;
        Ok(Stats {
            total,
            by_language: by_language
                .into_iter()
                .map(|(l, c)| (l as u32, c))
                .collect(),
            by_status: by_status.into_iter().map(|(s, c)| (s as u32, c)).collect(),
            by_day,
            size_bytes: pages * page_size,
        })
    }

    fn heartbeat(&self, node: &str, beats: &[WorkerBeat]) -> Result<(), StoreError> {
        let mut all = lock(&self.beats);
        if beats.is_empty() {
            all.remove(node);
        } else {
            all.insert(
                node.to_string(),
                (beats.to_vec(), Instant::now(), super::now_ms()),
            );
        }
        Ok(())
    }

    fn workers(&self) -> Result<Vec<WorkerBeat>, StoreError> {
        let all = lock(&self.beats);
        let mut out: Vec<WorkerBeat> = all
            .values()
            .flat_map(|(beats, at, ms)| {
                beats.iter().map(move |b| WorkerBeat {
                    last_heartbeat: *ms,
                    age_ms: at.elapsed().as_millis() as i64,
                    ..b.clone()
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn subscribe(
        &self,
        _hear: Hear,
        _on: Box<dyn Fn(Event) -> bool + Send>,
    ) -> Result<Option<std::thread::JoinHandle<()>>, StoreError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::Request;

    fn sub(token: &str, at: i64) -> Submission {
        Submission {
            token: token.into(),
            request: Request {
                source_code: Some(b"print(1)\xff".to_vec()),
                language_id: 71,
                ..Request::default()
            },
            status_id: IN_QUEUE,
            created_at: at,
            started_at: None,
            finished_at: None,
            outcome: None,
        }
    }

    #[test]
    fn the_queue_claims_finishes_and_requeues() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(&dir.path().join("a/b.db")).unwrap();
        db.create(&[sub("t1", 1), sub("t2", 2)]).unwrap();
        assert_eq!(db.queued().unwrap(), 2);
        let lease = Lease {
            owner: "me".into(),
            ms: 60_000,
        };
        let first = db.claim_next(&lease, 5).unwrap().unwrap();
        assert_eq!(first.token, "t1");
        assert_eq!(
            first.request.source_code.as_deref(),
            Some(&b"print(1)\xff"[..])
        );
        let out = Outcome {
            status_id: 3,
            stdout: Some(b"1\n".to_vec()),
            ..Outcome::default()
        };
        assert!(!db.finish("t1", "other", &out, 9).unwrap(), "not its lease");
        assert_eq!(db.requeue_stale().unwrap(), 0, "a held lease stays");
        assert!(db.finish("t1", "me", &out, 9).unwrap());
        assert!(!db.finish("t1", "me", &out, 9).unwrap(), "finishes once");
        assert!(db.delete("t2").unwrap().is_some());
        assert!(db.fetch("t2").unwrap().is_some(), "a queued one is kept");
        let short = Lease { ms: 0, ..lease };
        db.claim_next(&short, 10).unwrap().unwrap();
        assert!(db.renew(&short, &["t2".into()]).unwrap() == ["t2"]);
        assert_eq!(
            db.requeue_stale().unwrap(),
            1,
            "an expired lease is requeued"
        );
        assert!(!db.finish("t2", "me", &out, 9).unwrap());
        assert_eq!(db.fetch("t2").unwrap().unwrap().status_id, IN_QUEUE);
        let (page, total) = db.list(0, 1).unwrap();
        assert_eq!((page[0].token.as_str(), total), ("t2", 2));
        let got = db.fetch("t1").unwrap().unwrap();
        assert_eq!(got.outcome.unwrap(), out);
        assert_eq!(got.finished_at, Some(9));
        assert_eq!(db.prune(100).unwrap(), 1);
        assert_eq!(db.stats(0).unwrap().total, 1);
    }
}
