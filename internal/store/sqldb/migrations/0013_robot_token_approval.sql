-- Dual control of robots' secret access: a token or AppRole secret ID
-- issued for a robot that already holds a credentials.fetch grant waits
-- (pending = 1) until an owner or admin other than its issuer approves it.
-- Tokens issued before this migration are live as they were.
ALTER TABLE api_tokens ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN approved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN approved_at BIGINT NOT NULL DEFAULT 0;
