-- Customer email filters compare lower(customer_email), the same SQL on every backend.
DROP INDEX esims_email;
CREATE INDEX esims_email ON esims (partner_id, environment, lower(customer_email));
