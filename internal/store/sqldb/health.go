package sqldb

import (
	"context"
	"strconv"

	"github.com/custodia-project/custodia/internal/store"
)

// InsertRecord uses ON CONFLICT DO NOTHING rather than a failing insert: a
// unique violation would abort a PostgreSQL transaction, while this waits
// for a concurrent inserter and then reports that it lost.
func (t *tx) InsertRecord(ctx context.Context, r *store.Record) (bool, error) {
	res, err := t.exec(ctx, "insert record",
		`INSERT INTO records (`+recordCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		 ON CONFLICT (tenant_id, kind, id) DO NOTHING`,
		r.TenantID, r.Kind, r.ID, r.KeyVersion, r.Ciphertext, toMicros(r.CreatedAt), toMicros(r.UpdatedAt))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, t.wrap("insert record", err)
	}
	return n == 1, nil
}

// currentVersionCols are versionCols of the joined version row.
const currentVersionCols = `v.tenant_id, v.credential_id, v.version, v.fields, v.fingerprint, v.strength, v.breached, v.created_by,
	v.created_at, v.deleted_at, v.destroyed_at`

func (t *tx) ListCurrentCredentialVersions(ctx context.Context, tenantID string) ([]store.CredentialVersion, error) {
	rows, err := t.query(ctx, `SELECT `+currentVersionCols+` FROM credentials c
		JOIN credential_versions v ON v.tenant_id = c.tenant_id AND v.credential_id = c.id AND v.version = c.current_version
		WHERE c.tenant_id = $1 AND v.deleted_at = 0 AND v.destroyed_at = 0 ORDER BY c.id`, tenantID)
	if err != nil {
		return nil, t.wrap("list current credential versions", err)
	}
	return collect(t, "list current credential versions", rows, scanVersion)
}

func (t *tx) CountReuse(ctx context.Context, tenantID string, fingerprint []byte, exceptID string) (int, error) {
	var n int
	err := t.queryRow(ctx, countReuseQuery, tenantID, fingerprint, exceptID).Scan(&n)
	return n, t.wrapNil("count reuse", err)
}

// countReuseQuery runs on every credential write. Its LIMIT is a literal:
// SQLite reads a bound LIMIT's value while planning and marks
// the statement to be planned again whenever that parameter is bound, so
// a "LIMIT $4" was parsed and planned anew on each write even though it
// was prepared (a fifth of the writer's time at 64 clients).
var countReuseQuery = `SELECT count(*) FROM (SELECT 1 FROM credential_versions v
	JOIN credentials c ON c.tenant_id = v.tenant_id AND c.id = v.credential_id AND c.current_version = v.version
	WHERE v.tenant_id = $1 AND v.fingerprint = $2 AND v.credential_id <> $3 AND v.deleted_at = 0 AND v.destroyed_at = 0
	LIMIT ` + strconv.Itoa(store.MaxReuseCount) + `) r`
