-- Per-partner limits (NULL: the server's default).
ALTER TABLE partners ADD COLUMN provision_per_hour INTEGER;
ALTER TABLE partners ADD COLUMN status_per_hour INTEGER;
ALTER TABLE partners ADD COLUMN burst_per_second INTEGER;
