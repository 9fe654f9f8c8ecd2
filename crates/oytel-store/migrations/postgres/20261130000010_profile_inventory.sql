-- The builtin profile stock (oytel_core::inventory): ICCID batches the operator imports,
-- from which live eSIMs take their ICCIDs inside the provisioning transaction when
-- OYTEL_PROFILE_STOCK=inventory. An ICCID is in stock once, and allocated to one eSIM.
CREATE TABLE profile_inventory (
    iccid         TEXT PRIMARY KEY,
    profile_type  TEXT NOT NULL,
    environment   TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    batch_id      TEXT NOT NULL,
    esim_id       TEXT,
    imported_at   TIMESTAMPTZ NOT NULL,
    allocated_at  TIMESTAMPTZ
);
-- What allocation looks for: the next ICCID in stock of a type.
CREATE INDEX profile_inventory_available ON profile_inventory (environment, profile_type, iccid)
    WHERE esim_id IS NULL;
