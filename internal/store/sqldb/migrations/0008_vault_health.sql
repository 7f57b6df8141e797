-- Password health of credential versions (issue 5): whether the version's
-- password was on the shipped breached-password list when it was written,
-- beside its keyed fingerprint and zxcvbn strength (0004), and an index to
-- find the tenant's credentials sharing a fingerprint (reuse) without any
-- plaintext. Fingerprints are HMACs under a per-tenant key kept as a
-- sealed record (kind "keys.mac"), so equal passwords of two tenants never
-- give equal fingerprints.

ALTER TABLE credential_versions ADD COLUMN breached INTEGER NOT NULL DEFAULT 0;
CREATE INDEX credential_versions_by_fingerprint ON credential_versions (tenant_id, fingerprint);
