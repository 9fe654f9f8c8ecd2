-- Packages and top-ups.
--
-- An eSIM holds packages: the one it was provisioned with, then renewals bought as top-ups
-- (queued until the package in force ends). The eSIM row keeps the figures of the package in
-- force (data_limit_mb, data_used_mb, expires_at, thresholds_notified), written in the same
-- transaction as the package's; `packages` keeps every package's own.
CREATE TABLE packages (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    esim_id         TEXT NOT NULL REFERENCES esims (id),
    position        BIGINT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('plan', 'renewal')),
    order_id        TEXT,
    purchase_id     TEXT,
    plan_id         TEXT NOT NULL,
    term_months     BIGINT NOT NULL CHECK (term_months IN (1, 3, 6, 12)),
    data_mb         BIGINT NOT NULL,
    data_used_mb    BIGINT NOT NULL DEFAULT 0,
    price_cents     BIGINT NOT NULL CHECK (price_cents >= 0),
    state           TEXT NOT NULL CHECK (state IN ('queued', 'active', 'depleted', 'expired', 'cancelled', 'refunded')),
    activated_at    TIMESTAMPTZ,
    starts_at       TIMESTAMPTZ,
    ends_at         TIMESTAMPTZ,
    ended_at        TIMESTAMPTZ,
    refund_reason   TEXT,
    refunded_cents  BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (esim_id, position)
);

-- Top-up purchases: data add-ons (added to the package in force) and renewals (a package).
CREATE TABLE topups (
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    partner_id           TEXT NOT NULL REFERENCES partners (id),
    environment          TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    esim_id              TEXT NOT NULL REFERENCES esims (id),
    package_id           TEXT NOT NULL REFERENCES packages (id),
    topup_id             TEXT NOT NULL,
    kind                 TEXT NOT NULL CHECK (kind IN ('addon', 'renewal')),
    data_mb              BIGINT NOT NULL,
    term_months          BIGINT,
    amount_cents         BIGINT NOT NULL CHECK (amount_cents >= 0),
    currency             TEXT NOT NULL,
    balance_after_cents  BIGINT NOT NULL,
    request_id           TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX topups_esim ON topups (esim_id, seq);

-- A top-up's charge and refund are ledger rows naming the purchase, once per kind.
ALTER TABLE ledger_entries ADD COLUMN purchase_id TEXT;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_purchase_kind UNIQUE (purchase_id, kind);

-- Every eSIM made before packages holds one: the one it was provisioned with, in the state
-- its eSIM's implies. A cancelled eSIM's package says whether it was refunded, by the rule
-- that refunded it (oytel_core::billing): never activated, no usage, within 30 days.
INSERT INTO packages (id, esim_id, position, kind, order_id, plan_id, term_months, data_mb,
    data_used_mb, price_cents, state, activated_at, starts_at, ends_at, ended_at,
    refund_reason, refunded_cents, created_at)
SELECT
    'pkg_' || substr(e.id, 6), e.id, 1, 'plan', e.order_id, e.plan_id, e.term_months,
    e.data_limit_mb, e.data_used_mb, o.amount_cents,
    CASE
        WHEN e.status = 'expired' THEN 'expired'
        WHEN e.status = 'cancelled' THEN
            CASE WHEN r.reason = 'unused' THEN 'refunded' ELSE 'cancelled' END
        WHEN e.data_used_mb >= e.data_limit_mb THEN 'depleted'
        ELSE 'active'
    END,
    e.activated_at, e.created_at, e.expires_at,
    CASE
        WHEN e.status = 'expired' THEN e.expires_at
        WHEN e.status = 'cancelled' THEN e.cancelled_at
    END,
    r.reason,
    CASE WHEN r.reason = 'unused' THEN o.amount_cents ELSE 0 END,
    e.created_at
FROM esims e
JOIN orders o ON o.id = e.order_id
LEFT JOIN (
    SELECT e2.id AS esim_id,
        CASE
            WHEN e2.activated_at IS NOT NULL THEN 'activated'
            WHEN e2.data_used_mb > 0 OR e2.calls_made > 0 OR e2.sms_sent > 0 THEN 'used'
            WHEN e2.cancelled_at - o2.created_at > INTERVAL '30 days' THEN 'too_late'
            ELSE 'unused'
        END AS reason
    FROM esims e2 JOIN orders o2 ON o2.id = e2.order_id
    WHERE e2.status = 'cancelled'
) r ON r.esim_id = e.id
ORDER BY e.seq;
