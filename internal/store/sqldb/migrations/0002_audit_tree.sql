-- Tamper-evident audit log: the RFC 6962 tree's stored hashes (tlog
-- indexing: level-0 entries are the leaf hashes), signed checkpoints, and
-- a flag for entries whose bodies were pruned after retention (their leaf
-- hashes stay, so old checkpoints still verify).
CREATE TABLE audit_hashes (
    log_id TEXT NOT NULL,
    idx    BIGINT NOT NULL,
    hash   {{bytes}} NOT NULL,
    PRIMARY KEY (log_id, idx)
){{without_rowid}};

CREATE TABLE audit_checkpoints (
    log_id     TEXT NOT NULL,
    size       BIGINT NOT NULL,
    root       {{bytes}} NOT NULL,
    note       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (log_id, size)
);

ALTER TABLE audit_events ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0;
