-- The journal of profiles reserved at an SM-DP+ (oytel_core::profiles): one row per attempt,
-- written before each ES2+ call, marked `sold` in the provisioning transaction, and put back
-- (`cancelling` → `cancelled`) by the request or by the reconciler when it is not sold.
CREATE TABLE profile_reservations (
    id               TEXT PRIMARY KEY,
    partner_id       TEXT NOT NULL REFERENCES partners (id),
    environment      TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    profile_type     TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN
                         ('ordering', 'ordered', 'released', 'sold', 'cancelling', 'cancelled')),
    iccid            TEXT,
    matching_id      TEXT,
    smdp_address     TEXT,
    esim_id          TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    next_attempt_at  TIMESTAMPTZ
);
-- What the reconciler looks for: unfinished rows, by age.
CREATE INDEX profile_reservations_open ON profile_reservations (updated_at)
    WHERE state NOT IN ('sold', 'cancelled');
