-- What a renewal needs to know of a lease: the lifetime it was first
-- granted (a renewal without an increment extends by it, as Vault's does),
-- in microseconds, and when it was last renewed (Vault's lease lookup
-- shows it). Leases granted before this migration keep 0 in both: they
-- renew for the default lifetime and show no renewal.
ALTER TABLE leases ADD COLUMN granted_us BIGINT NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN renewed_at BIGINT NOT NULL DEFAULT 0;
