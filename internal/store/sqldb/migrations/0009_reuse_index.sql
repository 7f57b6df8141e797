-- The reuse check of every credential write (CountReuse) searches the
-- tenant's versions by fingerprint. With the index of 0008 holding only
-- (tenant_id, fingerprint), SQLite's planner preferred scanning every
-- version of the tenant through the primary key, which covers all columns:
-- a write cost grew with the tenant's size. This index covers the whole
-- search (the live-version filter and the join keys), so the planner takes
-- it and a write reads only the versions that share the password.

DROP INDEX credential_versions_by_fingerprint;
CREATE INDEX credential_versions_by_fingerprint
    ON credential_versions (tenant_id, fingerprint, deleted_at, destroyed_at, credential_id, version);
