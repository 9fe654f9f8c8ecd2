-- Web console sessions (oytel_core::sessions): the token's hash only, the partner's key as
-- hashed for key lookups (NULL for the operator), and the times that end it.
CREATE TABLE dashboard_sessions (
    token_hash    TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('partner', 'operator')),
    key_hash      TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX dashboard_sessions_last_seen ON dashboard_sessions (last_seen_at);
