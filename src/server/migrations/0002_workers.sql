-- Every worker thread of every server process, replaced by its process at each heartbeat.
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    state TEXT NOT NULL,
    token TEXT,
    heartbeat TIMESTAMPTZ NOT NULL
);
CREATE INDEX workers_node ON workers (node);
