-- Every event of every call, in order: the audit trail and the source for replays.
CREATE TABLE interaction_events (
    interaction  TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    at_ms        BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (interaction, seq)
);
