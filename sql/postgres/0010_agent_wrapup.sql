-- An agent's own after-call time in seconds (NULL: the queue's wrapup_s applies).
ALTER TABLE agents ADD COLUMN wrapup_s BIGINT;
