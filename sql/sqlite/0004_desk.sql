-- The desk: who may do what, and what each call became.
ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'agent';

ALTER TABLE interactions ADD COLUMN dialed TEXT;
ALTER TABLE interactions ADD COLUMN rule TEXT;
ALTER TABLE interactions ADD COLUMN reason TEXT;
ALTER TABLE interactions ADD COLUMN campaign TEXT;
ALTER TABLE interactions ADD COLUMN wait_ms BIGINT;
ALTER TABLE interactions ADD COLUMN talk_ms BIGINT;
ALTER TABLE interactions ADD COLUMN transfers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE interactions ADD COLUMN disposition TEXT;
ALTER TABLE interactions ADD COLUMN note TEXT;
CREATE INDEX interactions_campaign ON interactions (campaign, started_at);
