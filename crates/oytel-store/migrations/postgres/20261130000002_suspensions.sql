-- Who suspended an eSIM ('partner' or 'operator'; NULL when not suspended) and the operator's
-- reason. What the operator suspended, only the operator resumes (oytel_core::lifecycle).
ALTER TABLE esims ADD COLUMN suspended_by TEXT;
ALTER TABLE esims ADD COLUMN suspend_reason TEXT;
