-- The Path a registration came through (RFC 3327): the edge proxies to route requests for the
-- contact back through, one URI per line, outermost first (issue 14).
ALTER TABLE registrations ADD COLUMN path TEXT NOT NULL DEFAULT '';
