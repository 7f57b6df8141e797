-- One-time share links. The envelope is encrypted by the person sharing,
-- with a key that only the link's fragment carries; it is kept as a sealed
-- record of kind "share" (record ID: the share ID), so the tenant's keyring
-- wraps it once more and shredding the tenant destroys it. This table holds
-- what lets the server check an opener without being able to decrypt: the
-- SHA-256 of the link's auth key and the public passphrase parameters. A
-- share is deleted when it is burned (read, revoked, expired, too many wrong
-- attempts); the audit log keeps its history. Times are Unix microseconds.

CREATE TABLE shares (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    label           TEXT NOT NULL,
    verifier        {{bytes}} NOT NULL,
    kdf_salt        {{bytes}},
    kdf_iterations  INTEGER NOT NULL DEFAULT 0,
    size            INTEGER NOT NULL,
    max_views       INTEGER NOT NULL,
    views           INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX shares_by_creator ON shares (tenant_id, created_by, created_at);
CREATE INDEX shares_by_expiry ON shares (expires_at);
