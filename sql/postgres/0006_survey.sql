-- The caller's post-call rating (1-5), when the survey ran and was answered.
ALTER TABLE interactions ADD COLUMN rating INTEGER;
