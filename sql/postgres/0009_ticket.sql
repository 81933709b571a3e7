-- The open ticket matched at call time (the newest), next to the campaign matched.
ALTER TABLE interactions ADD COLUMN ticket TEXT;
