-- Campaign reports count recipients per campaign and period without scanning every send.
CREATE INDEX campaign_sends_campaign ON campaign_sends (campaign, sent_at, phone);
CREATE INDEX interactions_started ON interactions (started_at);
