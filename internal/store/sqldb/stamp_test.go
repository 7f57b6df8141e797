package sqldb

import "testing"

func TestWritesStamped(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT * FROM credentials":           false,
		"  select 1":                          false,
		"BEGIN IMMEDIATE":                     false,
		"COMMIT":                              false,
		"ROLLBACK TO g":                       false,
		"SAVEPOINT g":                         false,
		"RELEASE g":                           false,
		"INSERT INTO leases (id) VALUES ($1)": false,
		"\n\t\tINSERT INTO audit_events (log_id) VALUES ($1), ($2)":    false,
		"INSERT INTO audit_hashes(log_id, idx, hash) VALUES ($1)":      false,
		"INSERT INTO audit_logs (log_id, size) VALUES ($1, $2) ON ...": false,
		"UPDATE leases SET revoked_at = $1":                            false,
		"INSERT INTO audit_checkpoints (log_id) VALUES ($1)":           false,
		"DELETE FROM leases WHERE tenant_id = $1":                      false,
		"INSERT INTO credentials (id) VALUES ($1)":                     true,
		"UPDATE api_tokens SET last_used_at = $1":                      true,
		"update tenants set access_version = access_version + 1":       true,
		"DELETE FROM grants WHERE id = $1":                             true,
		"INSERT OR IGNORE INTO leases (id) VALUES ($1)":                true, // not plainly an INSERT INTO
		"REPLACE INTO leases (id) VALUES ($1)":                         true,
		"WITH x AS (SELECT 1) DELETE FROM grants":                      true,
		"DELETE leases":                               true,
		`INSERT INTO "leases" (id) VALUES ($1)`:       true,
		"INSERT INTO leases_archive (id) VALUES ($1)": true,
		"CREATE TABLE t (x INTEGER)":                  true,
		"PRAGMA foreign_keys = OFF":                   true,
		"":                                            true,
	} {
		if got := writesStamped(q); got != want {
			t.Errorf("writesStamped(%q) = %v, want %v", q, got, want)
		}
	}
}
