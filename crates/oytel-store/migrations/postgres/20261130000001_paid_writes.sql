-- One idempotent path for every paid or state-changing write.
--
-- An idempotency key names the operation it was used for and the resource it created (an
-- order today; top-ups and refunds later), not only an order. Keys stored by release 0.1 were
-- all provisionings that created orders. `order_id` stays, still written for orders, so that
-- an instance of release 0.1 running beside this one during a rolling upgrade reads
-- completions as before.
ALTER TABLE idempotency_keys
    ADD COLUMN operation TEXT NOT NULL DEFAULT 'esim.provision',
    ADD COLUMN resource_kind TEXT,
    ADD COLUMN resource_id TEXT;
UPDATE idempotency_keys SET resource_kind = 'order', resource_id = order_id
    WHERE order_id IS NOT NULL;

-- An eSIM may have several orders (its provisioning, then top-ups).
ALTER TABLE orders DROP CONSTRAINT orders_esim_id_key;
CREATE INDEX orders_esim ON orders (esim_id);
