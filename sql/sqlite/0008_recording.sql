-- Where the call's recording is (queues with record = true), until retention removes it.
ALTER TABLE interactions ADD COLUMN recording TEXT;
