-- A key replaced with a grace period keeps working until expires_at, then is refused as
-- revoked (`oytel-server key rotate KEY --grace-hours N`). NULL: no expiry.
ALTER TABLE api_keys ADD COLUMN expires_at TIMESTAMPTZ;
