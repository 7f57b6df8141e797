-- Digital certificates: the public facts of a PKCS#12 certificate kept in
-- the vault. The certificate and its key are the sealed secret of a
-- credential of kind "certificate" (so versions, fetch under a lease,
-- reveal rules, restore and delete work as for every credential); this
-- table holds what admins may see without the key, and when each expiry or
-- holder alert went out. Times are Unix microseconds; 0 means never.

CREATE TABLE certificates (
    tenant_id              TEXT NOT NULL,
    credential_id          TEXT NOT NULL,
    version                INTEGER NOT NULL,
    subject                TEXT NOT NULL,
    issuer                 TEXT NOT NULL,
    serial                 TEXT NOT NULL,
    not_before             BIGINT NOT NULL,
    not_after              BIGINT NOT NULL,
    fingerprint            {{bytes}} NOT NULL,
    key_algorithm          TEXT NOT NULL,
    holder_id              TEXT NOT NULL,
    alerted_30d_at         BIGINT NOT NULL DEFAULT 0,
    alerted_7d_at          BIGINT NOT NULL DEFAULT 0,
    alerted_expired_at     BIGINT NOT NULL DEFAULT 0,
    alerted_holder_left_at BIGINT NOT NULL DEFAULT 0,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, credential_id),
    FOREIGN KEY (tenant_id, credential_id) REFERENCES credentials (tenant_id, id)
){{without_rowid}};
CREATE INDEX certificates_by_expiry ON certificates (not_after);
CREATE INDEX certificates_by_holder ON certificates (tenant_id, holder_id);
