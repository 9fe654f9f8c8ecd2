-- Webhooks: the outbox (events), destinations, deliveries and their attempts; usage records
-- applied once; thresholds announced once per eSIM.

ALTER TABLE esims ADD COLUMN thresholds_notified INTEGER NOT NULL DEFAULT 0;
CREATE INDEX esims_expiry ON esims (status, expires_at);

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    partner_id   TEXT NOT NULL,
    environment  TEXT NOT NULL,
    esim_id      TEXT,
    event_type   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX events_scope ON events (partner_id, environment, seq);

CREATE TABLE webhook_endpoints (
    seq                         INTEGER PRIMARY KEY AUTOINCREMENT,
    id                          TEXT NOT NULL UNIQUE,
    partner_id                  TEXT NOT NULL REFERENCES partners (id),
    environment                 TEXT NOT NULL,
    url                         TEXT NOT NULL,
    description                 TEXT,
    event_types                 TEXT NOT NULL,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  TEXT,
    enabled                     BOOLEAN NOT NULL,
    disabled_reason             TEXT,
    failing_since               TEXT,
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_scope ON webhook_endpoints (partner_id, environment);

-- The secret signing deliveries to per-eSIM webhook_urls, per partner and environment.
CREATE TABLE signing_secrets (
    partner_id                  TEXT NOT NULL,
    environment                 TEXT NOT NULL,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  TEXT,
    PRIMARY KEY (partner_id, environment)
);

CREATE TABLE deliveries (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    event_id          TEXT NOT NULL REFERENCES events (id),
    endpoint_id       TEXT,
    partner_id        TEXT NOT NULL,
    environment       TEXT NOT NULL,
    url               TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TEXT,
    locked_until      TEXT,
    last_status_code  INTEGER,
    delivered_at      TEXT,
    created_at        TEXT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status);

CREATE TABLE delivery_attempts (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    delivery_id      TEXT NOT NULL REFERENCES deliveries (id),
    attempt          INTEGER NOT NULL,
    status_code      INTEGER,
    duration_ms      INTEGER NOT NULL,
    error            TEXT,
    next_attempt_at  TEXT,
    delivery_status  TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id);

CREATE TABLE usage_records (
    record_id    TEXT PRIMARY KEY,
    esim_id      TEXT NOT NULL,
    data_mb      INTEGER NOT NULL,
    calls        INTEGER NOT NULL,
    sms          INTEGER NOT NULL,
    recorded_at  TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
