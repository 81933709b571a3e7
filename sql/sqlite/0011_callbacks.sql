-- Callbacks promised to callers who hung up to keep their place; a row lives until the
-- callback is answered, given up or cancelled, so a restart does not forget anyone.
CREATE TABLE callbacks (
    interaction TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    target TEXT NOT NULL,
    peer TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority BIGINT NOT NULL,
    dialed TEXT NOT NULL,
    pcma BIGINT NOT NULL,
    arrived_at_ms BIGINT NOT NULL,
    requested_at_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0
);
