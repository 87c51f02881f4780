-- Submissions, the queue (status 1) and results, as the SQLite store keeps them, plus the
-- lease of a processing submission: which process holds it and until when (by the
-- database's clock, so the hosts' clocks need not agree).
CREATE TABLE submissions (
    seq BIGSERIAL PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    language_id INTEGER NOT NULL,
    status_id INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    request TEXT NOT NULL,
    outcome TEXT,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    claims INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX submissions_queue ON submissions (seq) WHERE status_id = 1;
CREATE INDEX submissions_leases ON submissions (lease_until) WHERE status_id = 2;
CREATE INDEX submissions_created ON submissions (created_at);
