-- What each agent chose at the desk (ready, paused with a reason, logged out) and when their
-- after-call work ends: a restart neither logs agents out nor ends a pause (issue 12).
CREATE TABLE agent_desk (
    agent_id TEXT PRIMARY KEY,
    choice TEXT NOT NULL,
    reason TEXT,
    wrap_until_ms BIGINT,
    updated_ms BIGINT NOT NULL
);
