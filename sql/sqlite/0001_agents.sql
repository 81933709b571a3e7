-- Agents who log in from softphones. Digest secrets are stored as HA1 hashes, never passwords.
CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    realm       TEXT NOT NULL,
    ha1_md5     TEXT NOT NULL,
    ha1_sha256  TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE agent_skills (
    agent_id  TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    skill     TEXT NOT NULL,
    level     INTEGER NOT NULL CHECK (level BETWEEN 1 AND 10),
    PRIMARY KEY (agent_id, skill)
);
