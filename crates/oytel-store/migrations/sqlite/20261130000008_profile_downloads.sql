-- What the SM-DP+ reports about a profile's download (oytel_core::downloads): the eSIM's
-- profile as last reported (NULL for builtin profiles), and every report received, kept once
-- per call identifier (a repeat is not applied twice).
ALTER TABLE esims ADD COLUMN profile_state TEXT
    CHECK (profile_state IN ('released', 'downloaded', 'installed', 'error', 'deleted'));
ALTER TABLE esims ADD COLUMN eid TEXT;
ALTER TABLE esims ADD COLUMN profile_updated_at TEXT;
ALTER TABLE esims ADD COLUMN profile_result TEXT;

CREATE TABLE profile_notifications (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    requester_id  TEXT NOT NULL,
    call_id       TEXT NOT NULL,
    iccid         TEXT NOT NULL,
    esim_id       TEXT,
    point         INTEGER NOT NULL,
    success       BOOLEAN NOT NULL,
    result        TEXT NOT NULL,
    eid           TEXT,
    happened_at   TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    UNIQUE (requester_id, call_id)
);
CREATE INDEX profile_notifications_iccid ON profile_notifications (iccid, seq);
