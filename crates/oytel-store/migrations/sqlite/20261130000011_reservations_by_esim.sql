-- A cancellation finds the sold reservation of its eSIM (to retire its profile) by esim_id.
CREATE INDEX profile_reservations_esim ON profile_reservations (esim_id) WHERE esim_id IS NOT NULL;
