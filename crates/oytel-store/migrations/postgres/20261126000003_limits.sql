-- Per-partner limits (NULL: the server's default).
ALTER TABLE partners ADD COLUMN provision_per_hour BIGINT;
ALTER TABLE partners ADD COLUMN status_per_hour BIGINT;
ALTER TABLE partners ADD COLUMN burst_per_second BIGINT;

-- Hourly quota counters shared by every instance.
CREATE TABLE rate_windows (
    partner_id    TEXT NOT NULL,
    environment   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    window_start  TIMESTAMPTZ NOT NULL,
    count         BIGINT NOT NULL,
    PRIMARY KEY (partner_id, environment, kind, window_start)
);
CREATE INDEX rate_windows_start ON rate_windows (window_start);
