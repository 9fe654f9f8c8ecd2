-- Cancellations and refunds.
--
-- An order may now have a refund beside its charge: the ledger takes `refund` rows, and an
-- order is unique per kind (one charge, one refund) instead of once in the whole ledger.
-- SQLite cannot change a column's constraints, so the table is rebuilt (as in
-- 20261130000001_paid_writes.sql), keeping every row and its sequence number.
CREATE TABLE ledger_entries_rebuilt (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT NOT NULL UNIQUE,
    partner_id           TEXT NOT NULL REFERENCES partners (id),
    amount_cents         INTEGER NOT NULL,
    balance_after_cents  INTEGER NOT NULL,
    kind                 TEXT NOT NULL CHECK (kind IN ('credit', 'charge', 'refund')),
    order_id             TEXT,
    description          TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    UNIQUE (order_id, kind)
);
INSERT INTO ledger_entries_rebuilt (seq, id, partner_id, amount_cents, balance_after_cents, kind,
    order_id, description, created_at)
SELECT seq, id, partner_id, amount_cents, balance_after_cents, kind, order_id, description,
    created_at
FROM ledger_entries;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_rebuilt RENAME TO ledger_entries;
CREATE INDEX ledger_entries_partner ON ledger_entries (partner_id, seq);

-- When an eSIM was cancelled, and the partner's reason.
ALTER TABLE esims ADD COLUMN cancelled_at TEXT;
ALTER TABLE esims ADD COLUMN cancel_reason TEXT;
