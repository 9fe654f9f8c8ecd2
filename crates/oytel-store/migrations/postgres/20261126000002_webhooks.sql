-- Webhooks: the outbox (events), destinations, deliveries and their attempts; usage records
-- applied once; thresholds announced once per eSIM.

ALTER TABLE esims ADD COLUMN thresholds_notified BIGINT NOT NULL DEFAULT 0;
CREATE INDEX esims_expiry ON esims (status, expires_at);

CREATE TABLE events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    partner_id   TEXT NOT NULL,
    environment  TEXT NOT NULL,
    esim_id      TEXT,
    event_type   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_scope ON events (partner_id, environment, seq);

CREATE TABLE webhook_endpoints (
    seq                         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                          TEXT NOT NULL UNIQUE,
    partner_id                  TEXT NOT NULL REFERENCES partners (id),
    environment                 TEXT NOT NULL,
    url                         TEXT NOT NULL,
    description                 TEXT,
    event_types                 TEXT NOT NULL,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  TIMESTAMPTZ,
    enabled                     BOOLEAN NOT NULL,
    disabled_reason             TEXT,
    failing_since               TIMESTAMPTZ,
    created_at                  TIMESTAMPTZ NOT NULL,
    updated_at                  TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_scope ON webhook_endpoints (partner_id, environment);

-- The secret signing deliveries to per-eSIM webhook_urls, per partner and environment.
CREATE TABLE signing_secrets (
    partner_id                  TEXT NOT NULL,
    environment                 TEXT NOT NULL,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  TIMESTAMPTZ,
    PRIMARY KEY (partner_id, environment)
);

CREATE TABLE deliveries (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    event_id          TEXT NOT NULL REFERENCES events (id),
    endpoint_id       TEXT,
    partner_id        TEXT NOT NULL,
    environment       TEXT NOT NULL,
    url               TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMPTZ,
    locked_until      TIMESTAMPTZ,
    last_status_code  BIGINT,
    delivered_at      TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status);

CREATE TABLE delivery_attempts (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    delivery_id      TEXT NOT NULL REFERENCES deliveries (id),
    attempt          BIGINT NOT NULL,
    status_code      BIGINT,
    duration_ms      BIGINT NOT NULL,
    error            TEXT,
    next_attempt_at  TIMESTAMPTZ,
    delivery_status  TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id);

CREATE TABLE usage_records (
    record_id    TEXT PRIMARY KEY,
    esim_id      TEXT NOT NULL,
    data_mb      BIGINT NOT NULL,
    calls        BIGINT NOT NULL,
    sms          BIGINT NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
