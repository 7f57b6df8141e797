package sqldb

import "testing"

func TestWritesStamped(t *testing.T) {
	for q, want := range map[string]moves{
		"SELECT * FROM credentials":           moves(0),
		"  select 1":                          moves(0),
		"BEGIN IMMEDIATE":                     moves(0),
		"COMMIT":                              moves(0),
		"ROLLBACK TO g":                       moves(0),
		"SAVEPOINT g":                         moves(0),
		"RELEASE g":                           moves(0),
		"INSERT INTO leases (id) VALUES ($1)": moves(0),
		"\n\t\tINSERT INTO audit_events (log_id) VALUES ($1), ($2)":    moves(0),
		"INSERT INTO audit_hashes(log_id, idx, hash) VALUES ($1)":      moves(0),
		"INSERT INTO audit_logs (log_id, size) VALUES ($1, $2) ON ...": moves(0),
		"UPDATE leases SET revoked_at = $1":                            moves(0),
		"INSERT INTO audit_checkpoints (log_id) VALUES ($1)":           moves(0),
		"DELETE FROM leases WHERE tenant_id = $1":                      moves(0),
		"INSERT INTO credentials (id) VALUES ($1)":                     movesWhole,
		"UPDATE credential_versions SET deleted_at = $1":               movesWhole,
		"DELETE FROM records WHERE tenant_id = $1":                     movesWhole,
		"INSERT INTO credentials_archive (id) VALUES ($1)":             movesBoth,
		"INSERT INTO certificates (id) VALUES ($1)":                    movesBoth,
		"UPDATE api_tokens SET last_used_at = $1":                      movesBoth,
		"update tenants set access_version = access_version + 1":       movesBoth,
		"DELETE FROM grants WHERE id = $1":                             movesBoth,
		"INSERT OR IGNORE INTO leases (id) VALUES ($1)":                movesBoth, // not plainly an INSERT INTO
		"REPLACE INTO leases (id) VALUES ($1)":                         movesBoth,
		"WITH x AS (SELECT 1) DELETE FROM grants":                      movesBoth,
		"DELETE leases":                               movesBoth,
		`INSERT INTO "leases" (id) VALUES ($1)`:       movesBoth,
		"INSERT INTO leases_archive (id) VALUES ($1)": movesBoth,
		"CREATE TABLE t (x INTEGER)":                  movesBoth,
		"PRAGMA foreign_keys = OFF":                   movesBoth,
		"":                                            movesBoth,
	} {
		if got := writesStamped(q); got != want {
			t.Errorf("writesStamped(%q) = %v, want %v", q, got, want)
		}
	}
}
