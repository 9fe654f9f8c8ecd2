-- A sold profile whose eSIM was cancelled before the phone downloaded it is retired at the
-- SM-DP+ (cancelOrder to Unavailable, by the reconciler), not put back in stock: its
-- customer holds the activation code (oytel_core::profiles::retired_on_cancel).
ALTER TABLE profile_reservations ADD COLUMN retire BOOLEAN NOT NULL DEFAULT FALSE;
