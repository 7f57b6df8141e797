-- Foundation schema. Types are written so the same text runs on SQLite and
-- PostgreSQL; {{bytes}} becomes BLOB or BYTEA, and {{without_rowid}} makes
-- SQLite store a table in its primary key's order (one B-tree, not two).
-- Times are Unix microseconds.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value {{bytes}} NOT NULL
);

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE tenant_keys (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    version         INTEGER NOT NULL,
    state           TEXT NOT NULL,
    wrapped_key     {{bytes}},
    root_generation INTEGER NOT NULL,
    hpke_public     {{bytes}} NOT NULL,
    hpke_private    {{bytes}},
    created_at      BIGINT NOT NULL,
    destroyed_at    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE records (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    ciphertext  {{bytes}} NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, id)
);
CREATE INDEX records_by_key_version ON records (tenant_id, key_version);

CREATE TABLE operator_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   {{bytes}} NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT NOT NULL DEFAULT 0
);

-- One row per audit log holds its size, so that appending takes a row lock
-- and concurrent writers get consecutive sequence numbers.
CREATE TABLE audit_logs (
    log_id TEXT PRIMARY KEY,
    size   BIGINT NOT NULL
);

CREATE TABLE audit_events (
    log_id     TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    result     TEXT NOT NULL,
    source_ip  TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    request_id TEXT NOT NULL,
    details    TEXT NOT NULL,
    PRIMARY KEY (log_id, seq)
){{without_rowid}};
CREATE INDEX audit_events_by_action ON audit_events (log_id, action, seq);
CREATE INDEX audit_events_by_actor ON audit_events (log_id, actor_id, seq);

CREATE TABLE jobs (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    state      TEXT NOT NULL,
    total      BIGINT NOT NULL,
    done       BIGINT NOT NULL,
    error      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_by_tenant ON jobs (tenant_id, created_at);
