-- Agents' registered contacts, so a restart does not leave every agent offline until their phone
-- re-registers. Written off the call path after each REGISTER; expired rows are ignored on load.
CREATE TABLE registrations (
    agent_id    TEXT NOT NULL,
    contact     TEXT NOT NULL,
    transport   TEXT NOT NULL,
    peer        TEXT NOT NULL,
    call_id     TEXT NOT NULL,
    cseq        BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (agent_id, contact)
);
