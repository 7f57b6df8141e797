-- Staff break-glass: an operator's request to reveal one of a tenant's
-- credentials in an emergency, allowed only by the tenant's policy, for a
-- limited time, optionally after a tenant admin approves. Times are Unix
-- microseconds; 0 means never.

CREATE TABLE break_glass (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    operator_id   TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    reason        TEXT NOT NULL,
    minutes       INTEGER NOT NULL,
    status        TEXT NOT NULL,
    requested_at  BIGINT NOT NULL,
    decided_by    TEXT NOT NULL DEFAULT '',
    decided_at    BIGINT NOT NULL DEFAULT 0,
    expires_at    BIGINT NOT NULL DEFAULT 0,
    reveals       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX break_glass_by_tenant ON break_glass (tenant_id, requested_at);
