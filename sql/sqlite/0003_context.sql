-- The caller context: who is calling, what we sent them, what is open, how they were tagged,
-- and what happened on earlier calls. Phone numbers are E.164; times are Unix seconds.
CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT,
    created_at  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE customer_phones (
    phone        TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE
);
CREATE INDEX customer_phones_customer ON customer_phones (customer_id);

CREATE TABLE customer_tags (
    customer_id  TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    tag          TEXT NOT NULL,
    tagged_at    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, tag)
);

CREATE TABLE campaigns (
    name            TEXT PRIMARY KEY,
    offer           TEXT NOT NULL DEFAULT '',
    queue           TEXT,
    skills          TEXT NOT NULL DEFAULT '',
    window_minutes  BIGINT NOT NULL DEFAULT 1440
);

-- "Latest sends to this phone" is one index range scan: (phone, sent_at) leads the key.
CREATE TABLE campaign_sends (
    phone     TEXT NOT NULL,
    sent_at   BIGINT NOT NULL,
    campaign  TEXT NOT NULL,
    PRIMARY KEY (phone, sent_at, campaign)
) WITHOUT ROWID;

CREATE TABLE tickets (
    id           TEXT PRIMARY KEY,
    phone        TEXT,
    customer_id  TEXT,
    status       TEXT NOT NULL DEFAULT 'open',
    subject      TEXT NOT NULL DEFAULT '',
    skill        TEXT,
    opened_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tickets_phone ON tickets (phone);
CREATE INDEX tickets_customer ON tickets (customer_id);

CREATE TABLE interactions (
    id           TEXT PRIMARY KEY,
    phone        TEXT NOT NULL,
    customer_id  TEXT,
    started_at   BIGINT NOT NULL,
    queue        TEXT,
    agent_id     TEXT,
    outcome      TEXT,
    tags         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX interactions_phone ON interactions (phone, started_at);
