-- Identity and access: tenant members, robots (service accounts), API
-- tokens and browser sessions (hashes only), one-time challenges (invites,
-- pending sign-ins, WebAuthn and OIDC ceremonies), expiring grants,
-- just-in-time access requests, access reviews, notifications, evidence
-- documents and rotation flags. Times are Unix microseconds; 0 means never.

-- access_version changes with every grant, so every node can tell that its
-- cached grant index of the tenant is stale.
ALTER TABLE tenants ADD COLUMN access_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE members (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    email           TEXT NOT NULL,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL,
    status          TEXT NOT NULL,
    password_hash   TEXT NOT NULL DEFAULT '',
    mfa             INTEGER NOT NULL DEFAULT 0,
    oidc_subject    TEXT NOT NULL DEFAULT '',
    failed_signins  INTEGER NOT NULL DEFAULT 0,
    locked_until    BIGINT NOT NULL DEFAULT 0,
    last_signin_at  BIGINT NOT NULL DEFAULT 0,
    last_seen_at    BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    offboarded_at   BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, email)
);

CREATE TABLE robots (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    disabled_at BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, name)
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    subject_type TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    token_hash   {{bytes}} NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_by_subject ON api_tokens (tenant_id, subject_id);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    member_id    TEXT NOT NULL,
    token_hash   {{bytes}} NOT NULL UNIQUE,
    mfa          INTEGER NOT NULL DEFAULT 0,
    method       TEXT NOT NULL,
    source_ip    TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_member ON sessions (tenant_id, member_id);

CREATE TABLE challenges (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    token_hash {{bytes}} NOT NULL UNIQUE,
    tenant_id  TEXT NOT NULL,
    member_id  TEXT NOT NULL,
    data       {{bytes}} NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX challenges_by_expiry ON challenges (expires_at);

CREATE TABLE grants (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    permission    TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    reason        TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    request_id    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT NOT NULL DEFAULT 0,
    retired_at    BIGINT NOT NULL DEFAULT 0,
    last_used_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX grants_by_subject ON grants (tenant_id, subject_id);
CREATE INDEX grants_by_expiry ON grants (retired_at, revoked_at, expires_at);

CREATE TABLE access_requests (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    requester_id     TEXT NOT NULL,
    permission       TEXT NOT NULL,
    resource_type    TEXT NOT NULL,
    resource_id      TEXT NOT NULL,
    duration_s       BIGINT NOT NULL,
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL,
    approvals_needed INTEGER NOT NULL,
    approvals        TEXT NOT NULL,
    decided_by       TEXT NOT NULL DEFAULT '',
    decision_note    TEXT NOT NULL DEFAULT '',
    grant_id         TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    decided_at       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX access_requests_by_tenant ON access_requests (tenant_id, status);
CREATE INDEX access_requests_by_expiry ON access_requests (status, expires_at);

CREATE TABLE reviews (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    status     TEXT NOT NULL,
    unanswered TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deadline   BIGINT NOT NULL,
    closed_at  BIGINT NOT NULL DEFAULT 0,
    signoff    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reviews_by_tenant ON reviews (tenant_id, created_at);

CREATE TABLE review_items (
    review_id     TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    label         TEXT NOT NULL,
    permission    TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    ref_id        TEXT NOT NULL,
    last_used_at  BIGINT NOT NULL,
    decision      TEXT NOT NULL DEFAULT '',
    decided_by    TEXT NOT NULL DEFAULT '',
    note          TEXT NOT NULL DEFAULT '',
    decided_at    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (review_id, seq)
);

CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    member_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX notifications_by_member ON notifications (tenant_id, member_id, created_at);

CREATE TABLE evidence (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    kind       TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX evidence_by_tenant ON evidence (tenant_id, kind, created_at);

CREATE TABLE rotation_flags (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    reason        TEXT NOT NULL,
    source        TEXT NOT NULL,
    flagged_at    BIGINT NOT NULL,
    cleared_at    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, resource_type, resource_id)
);
