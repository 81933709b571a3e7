-- Desk sessions, so a restart or upgrade does not log every agent and supervisor out. Only a
-- hash of each token is kept: the table alone opens no session.
CREATE TABLE desk_sessions (
    token_hash TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX desk_sessions_agent ON desk_sessions (agent);
