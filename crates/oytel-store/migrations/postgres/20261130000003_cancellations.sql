-- Cancellations and refunds.
--
-- An order may now have a refund beside its charge: the ledger takes `refund` rows, and an
-- order is unique per kind (one charge, one refund) instead of once in the whole ledger.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
    CHECK (kind IN ('credit', 'charge', 'refund'));
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_order_id_key;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_order_kind UNIQUE (order_id, kind);

-- When an eSIM was cancelled, and the partner's reason.
ALTER TABLE esims ADD COLUMN cancelled_at TIMESTAMPTZ;
ALTER TABLE esims ADD COLUMN cancel_reason TEXT;
