-- Calls in progress, one row each, written as they change and deleted when they end: a process
-- that dies leaves them for the next start, which takes the calls over (issue 12).
CREATE TABLE call_snapshots (
    interaction TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
