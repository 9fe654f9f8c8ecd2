-- A counter bumped by every change to a key or a partner other than an insert: revocation,
-- limit changes, deletions. Servers cache key lookups and check this one value (one read
-- shared by all requests that arrive together), so a revocation is refused at once by every
-- instance. Nothing may update these tables per request.
CREATE TABLE auth_epoch (
    id    SMALLINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO auth_epoch (id, value) VALUES (1, 0);

CREATE FUNCTION oytel_bump_auth_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION oytel_bump_auth_epoch();
CREATE TRIGGER partners_changed AFTER UPDATE OR DELETE ON partners
    FOR EACH STATEMENT EXECUTE FUNCTION oytel_bump_auth_epoch();
