-- Credential vault: credentials (metadata readable by grant), their
-- versions (metadata only: each version's secret fields are a sealed record
-- of kind "credential", ID "<credential ID>/<version>", so key rotation
-- re-wraps them and shredding destroys them like every other record), and
-- the leases robots hold on fetched secrets. Times are Unix microseconds;
-- 0 means never.

CREATE TABLE credentials (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    grp             TEXT NOT NULL,
    kind            TEXT NOT NULL,
    institution     TEXT NOT NULL,
    login_id        TEXT NOT NULL,
    notes           TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    labels          TEXT NOT NULL,
    rotate_by       BIGINT NOT NULL DEFAULT 0,
    revealable      TEXT NOT NULL,
    current_version INTEGER NOT NULL DEFAULT 0,
    max_versions    INTEGER NOT NULL,
    cas_required    INTEGER NOT NULL DEFAULT 0,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
CREATE INDEX credentials_by_owner ON credentials (tenant_id, owner_id);

CREATE TABLE credential_versions (
    tenant_id     TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    version       INTEGER NOT NULL,
    fields        TEXT NOT NULL,
    fingerprint   {{bytes}},
    strength      INTEGER NOT NULL DEFAULT -1,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    deleted_at    BIGINT NOT NULL DEFAULT 0,
    destroyed_at  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, credential_id, version)
){{without_rowid}};

CREATE TABLE leases (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    version       INTEGER NOT NULL,
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX leases_by_credential ON leases (tenant_id, credential_id, expires_at);
CREATE INDEX leases_by_subject ON leases (tenant_id, subject_id, expires_at);
