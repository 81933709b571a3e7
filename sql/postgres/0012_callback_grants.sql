-- Trunk callbacks granted, one row per callback (keyed by its interaction, so a replayed
-- history batch never counts one twice): the day's per-number and total caps are counted
-- from here after a restart (toll-fraud limits that a restart would otherwise reset).
CREATE TABLE callback_grants (
    interaction TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    day BIGINT NOT NULL
);
CREATE INDEX callback_grants_day ON callback_grants (day);
