-- Instances take status quota units in blocks: the units the last reservation granted.
ALTER TABLE rate_windows ADD COLUMN last_grant BIGINT NOT NULL DEFAULT 0;
