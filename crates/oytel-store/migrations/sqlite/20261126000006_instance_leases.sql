-- Leases of running server instances on the auth epoch. An instance serves cached key
-- lookups only while it holds a lease, and records the epoch it serves with; a revocation
-- returns once every instance with a live lease serves its epoch or later. Times are
-- milliseconds since 1970 on the database's clock.
CREATE TABLE instance_leases (
    instance_id     TEXT PRIMARY KEY,
    serving_epoch   INTEGER NOT NULL,
    lease_until_ms  INTEGER NOT NULL
);
