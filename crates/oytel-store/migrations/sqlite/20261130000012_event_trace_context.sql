-- The W3C traceparent of the request that wrote an event, so that its webhook deliveries join
-- that trace. Events written before this release have none.
ALTER TABLE events ADD COLUMN traceparent TEXT;
