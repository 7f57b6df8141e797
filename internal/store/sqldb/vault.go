package sqldb

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

// ---- credentials ----

const credentialCols = `tenant_id, id, name, grp, kind, institution, login_id, notes, owner_id, labels, rotate_by, revealable,
	current_version, max_versions, cas_required, created_by, created_at, updated_at`

func jsonMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func scanCredential(s scanner) (store.Credential, error) {
	var c store.Credential
	dest, finish := credentialDest(&c)
	err := s.Scan(dest...)
	if err == nil {
		finish()
	}
	return c, err
}

// credentialDest returns the scan destinations of credentialCols for c,
// and what completes c once they are filled.
func credentialDest(c *store.Credential) ([]any, func()) {
	var labels, revealable string
	var rotate, created, updated int64
	var cas int
	return []any{&c.TenantID, &c.ID, &c.Name, &c.Group, &c.Kind, &c.Institution, &c.LoginID, &c.Notes, &c.OwnerID, &labels,
			&rotate, &revealable, &c.CurrentVersion, &c.MaxVersions, &cas, &c.CreatedBy, &created, &updated}, func() {
			_ = json.Unmarshal([]byte(labels), &c.Labels)
			c.Revealable = parseList(revealable)
			c.CASRequired = cas != 0
			c.RotateBy, c.CreatedAt, c.UpdatedAt = fromMicros(rotate), fromMicros(created), fromMicros(updated)
		}
}

func (t *tx) InsertCredential(ctx context.Context, c *store.Credential) error {
	_, err := t.exec(ctx, "insert credential",
		`INSERT INTO credentials (`+credentialCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		c.TenantID, c.ID, c.Name, c.Group, c.Kind, c.Institution, c.LoginID, c.Notes, c.OwnerID, jsonMap(c.Labels),
		toMicros(c.RotateBy), jsonList(c.Revealable), c.CurrentVersion, c.MaxVersions, b2i(c.CASRequired), c.CreatedBy,
		toMicros(c.CreatedAt), toMicros(c.UpdatedAt))
	return err
}

func (t *tx) UpdateCredential(ctx context.Context, c *store.Credential) error {
	res, err := t.exec(ctx, "update credential",
		`UPDATE credentials SET name = $3, grp = $4, kind = $5, institution = $6, login_id = $7, notes = $8, owner_id = $9,
		   labels = $10, rotate_by = $11, revealable = $12, current_version = $13, max_versions = $14, cas_required = $15,
		   updated_at = $16
		 WHERE tenant_id = $1 AND id = $2`,
		c.TenantID, c.ID, c.Name, c.Group, c.Kind, c.Institution, c.LoginID, c.Notes, c.OwnerID, jsonMap(c.Labels),
		toMicros(c.RotateBy), jsonList(c.Revealable), c.CurrentVersion, c.MaxVersions, b2i(c.CASRequired), toMicros(c.UpdatedAt))
	if err != nil {
		return err
	}
	return t.mustAffect("update credential", res)
}

// GetCredential and GetCredentialByName lock the credential's row in a
// write transaction where other writers exist (PostgreSQL nodes, see
// Dialect.LockRows): a concurrent write of the same credential then waits
// for this one's commit and reads its version, instead of taking the same
// version number and failing.
func (t *tx) GetCredential(ctx context.Context, tenantID, id string) (*store.Credential, error) {
	c, err := scanCredential(t.queryRow(ctx, `SELECT `+credentialCols+` FROM credentials WHERE tenant_id = $1 AND id = $2`+t.lockRows(), tenantID, id))
	if err != nil {
		return nil, t.wrap("get credential", err)
	}
	return &c, nil
}

func (t *tx) GetCredentialByName(ctx context.Context, tenantID, name string) (*store.Credential, error) {
	c, err := scanCredential(t.queryRow(ctx, `SELECT `+credentialCols+` FROM credentials WHERE tenant_id = $1 AND name = $2`+t.lockRows(), tenantID, name))
	if err != nil {
		return nil, t.wrap("get credential", err)
	}
	return &c, nil
}

func (t *tx) ListCredentials(ctx context.Context, f store.CredentialFilter) ([]store.Credential, error) {
	limit := f.Limit
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	// substr, not LIKE (no escaping rules) nor a range (PostgreSQL's
	// collations need not order bytes).
	rows, err := t.query(ctx, `SELECT `+credentialCols+` FROM credentials
		WHERE tenant_id = $1 AND substr(name, 1, length($2)) = $2 AND name > $3 AND ($4 = '' OR owner_id = $4)
		ORDER BY name LIMIT $5`, f.TenantID, f.Prefix, f.After, f.OwnerID, limit)
	if err != nil {
		return nil, t.wrap("list credentials", err)
	}
	return collect(t, "list credentials", rows, scanCredential)
}

func (t *tx) DeleteCredential(ctx context.Context, tenantID, id string) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM certificates WHERE tenant_id = $1 AND credential_id = $2`,
		`DELETE FROM leases WHERE tenant_id = $1 AND credential_id = $2`,
		`DELETE FROM credential_versions WHERE tenant_id = $1 AND credential_id = $2`,
	} {
		if _, err := t.exec(ctx, "delete credential", q, tenantID, id); err != nil {
			return err
		}
	}
	res, err := t.exec(ctx, "delete credential", `DELETE FROM credentials WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if err != nil {
		return err
	}
	return t.mustAffect("delete credential", res)
}

// ---- versions ----

const versionCols = `tenant_id, credential_id, version, fields, fingerprint, strength, breached, created_by, created_at, deleted_at, destroyed_at`

func scanVersion(s scanner) (store.CredentialVersion, error) {
	var v store.CredentialVersion
	dest, finish := versionDest(&v)
	err := s.Scan(dest...)
	finish()
	return v, err
}

// versionDest returns the scan destinations of versionCols for v, and
// what completes v once they are filled.
func versionDest(v *store.CredentialVersion) ([]any, func()) {
	var fields string
	var c, d, x int64
	var breached int
	return []any{&v.TenantID, &v.CredentialID, &v.Version, &fields, &v.Fingerprint, &v.Strength, &breached, &v.CreatedBy, &c, &d, &x}, func() {
		v.Fields, v.Breached = parseList(fields), breached != 0
		v.CreatedAt, v.DeletedAt, v.DestroyedAt = fromMicros(c), fromMicros(d), fromMicros(x)
	}
}

// GetCredentialSecret reads a credential by name with one version and that
// version's sealed record, in one read.
func (t *tx) GetCredentialSecret(ctx context.Context, tenantID, name string, version int) (*store.CredentialSecret, error) {
	return t.credentialSecret(ctx, "name", tenantID, name, version)
}

// GetCredentialSecretByID is GetCredentialSecret by the credential's ID.
func (t *tx) GetCredentialSecretByID(ctx context.Context, tenantID, id string, version int) (*store.CredentialSecret, error) {
	return t.credentialSecret(ctx, "id", tenantID, id, version)
}

// credentialSecret reads a credential whose column col ("name" or "id") is
// ref, with one version and its sealed record.
func (t *tx) credentialSecret(ctx context.Context, col, tenantID, ref string, version int) (*store.CredentialSecret, error) {
	var out store.CredentialSecret
	cd, cfinish := credentialDest(&out.Credential)
	vd, vfinish := versionDest(&out.Version)
	dest := append(append(cd, vd...), &out.Record.KeyVersion, &out.Record.Ciphertext)
	// Two statements rather than one with a CASE, and the record's ID built
	// from the credential's row, not the version's: both joins then hang
	// off the credential alone, so no join order can scan all of the
	// tenant's records (PostgreSQL chose that one before its first
	// ANALYZE, at 16 ms a read).
	which, args := `c.current_version`, []any{tenantID, ref, store.RecordCredential}
	if version > 0 {
		which, args = `$4`, append(args, version)
	}
	err := t.queryRow(ctx, `SELECT `+credentialSecretCols+`
		FROM credentials c
		JOIN credential_versions v ON v.tenant_id = c.tenant_id AND v.credential_id = c.id AND v.version = `+which+`
		JOIN records r ON r.tenant_id = c.tenant_id AND r.kind = $3 AND r.id = c.id || '/' || CAST(`+which+` AS TEXT)
		WHERE c.tenant_id = $1 AND c.`+col+` = $2`, args...).Scan(dest...)
	if err != nil {
		return nil, t.wrap("get credential secret", err)
	}
	cfinish()
	vfinish()
	out.Record.TenantID, out.Record.Kind = tenantID, store.RecordCredential
	out.Record.ID = store.CredentialRecordID(out.Credential.ID, out.Version.Version)
	return &out, nil
}

var credentialSecretCols = prefixCols("c.", credentialCols) + ", " + prefixCols("v.", versionCols) + ", r.key_version, r.ciphertext"

// prefixCols qualifies each of a comma-separated column list with prefix.
func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

func (t *tx) InsertCredentialVersion(ctx context.Context, v *store.CredentialVersion) error {
	_, err := t.exec(ctx, "insert credential version",
		`INSERT INTO credential_versions (`+versionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		v.TenantID, v.CredentialID, v.Version, jsonList(v.Fields), v.Fingerprint, v.Strength, b2i(v.Breached), v.CreatedBy,
		toMicros(v.CreatedAt), toMicros(v.DeletedAt), toMicros(v.DestroyedAt))
	return err
}

func (t *tx) UpdateCredentialVersion(ctx context.Context, v *store.CredentialVersion) error {
	res, err := t.exec(ctx, "update credential version",
		`UPDATE credential_versions SET fields = $4, fingerprint = $5, strength = $6, breached = $7, deleted_at = $8, destroyed_at = $9
		 WHERE tenant_id = $1 AND credential_id = $2 AND version = $3`,
		v.TenantID, v.CredentialID, v.Version, jsonList(v.Fields), v.Fingerprint, v.Strength, b2i(v.Breached), toMicros(v.DeletedAt),
		toMicros(v.DestroyedAt))
	if err != nil {
		return err
	}
	return t.mustAffect("update credential version", res)
}

func (t *tx) GetCredentialVersion(ctx context.Context, tenantID, credentialID string, version int) (*store.CredentialVersion, error) {
	v, err := scanVersion(t.queryRow(ctx, `SELECT `+versionCols+` FROM credential_versions
		WHERE tenant_id = $1 AND credential_id = $2 AND version = $3`, tenantID, credentialID, version))
	if err != nil {
		return nil, t.wrap("get credential version", err)
	}
	return &v, nil
}

func (t *tx) ListCredentialVersions(ctx context.Context, tenantID, credentialID string) ([]store.CredentialVersion, error) {
	rows, err := t.query(ctx, `SELECT `+versionCols+` FROM credential_versions
		WHERE tenant_id = $1 AND credential_id = $2 ORDER BY version`, tenantID, credentialID)
	if err != nil {
		return nil, t.wrap("list credential versions", err)
	}
	return collect(t, "list credential versions", rows, scanVersion)
}

func (t *tx) DeleteCredentialVersion(ctx context.Context, tenantID, credentialID string, version int) error {
	res, err := t.exec(ctx, "delete credential version",
		`DELETE FROM credential_versions WHERE tenant_id = $1 AND credential_id = $2 AND version = $3`, tenantID, credentialID, version)
	if err != nil {
		return err
	}
	return t.mustAffect("delete credential version", res)
}

// ---- leases ----

const (
	leaseCols = `id, tenant_id, credential_id, version, subject_type, subject_id, purpose, created_at, expires_at, revoked_at, granted_us, renewed_at`
	// leaseColCount is how many columns leaseCols names.
	leaseColCount = 12
)

func scanLease(s scanner) (store.Lease, error) {
	var l store.Lease
	var c, e, r, g, n int64
	err := s.Scan(&l.ID, &l.TenantID, &l.CredentialID, &l.Version, &l.SubjectType, &l.SubjectID, &l.Purpose, &c, &e, &r, &g, &n)
	l.CreatedAt, l.ExpiresAt, l.RevokedAt, l.RenewedAt = fromMicros(c), fromMicros(e), fromMicros(r), fromMicros(n)
	l.Granted = time.Duration(g) * time.Microsecond
	return l, err
}

func leaseArgs(l *store.Lease, args []any) []any {
	return append(args, l.ID, l.TenantID, l.CredentialID, l.Version, l.SubjectType, l.SubjectID, l.Purpose,
		toMicros(l.CreatedAt), toMicros(l.ExpiresAt), toMicros(l.RevokedAt), l.Granted.Microseconds(), toMicros(l.RenewedAt))
}

// InsertLease defers the insert to the transaction's flush where writes
// are deferred (group commit); see deferred.go.
func (t *tx) InsertLease(ctx context.Context, l *store.Lease) error {
	if t.deferred != nil {
		return t.insertLeaseDeferred(ctx, l)
	}
	_, err := t.exec(ctx, "insert lease",
		`INSERT INTO leases (`+leaseCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, leaseArgs(l, nil)...)
	return err
}

func (t *tx) GetLease(ctx context.Context, tenantID, id string) (*store.Lease, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	l, err := scanLease(t.queryRow(ctx, `SELECT `+leaseCols+` FROM leases WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, t.wrap("get lease", err)
	}
	return &l, nil
}

func (t *tx) UpdateLease(ctx context.Context, l *store.Lease) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	res, err := t.exec(ctx, "update lease", `UPDATE leases SET expires_at = $3, revoked_at = $4, renewed_at = $5 WHERE tenant_id = $1 AND id = $2`,
		l.TenantID, l.ID, toMicros(l.ExpiresAt), toMicros(l.RevokedAt), toMicros(l.RenewedAt))
	if err != nil {
		return err
	}
	return t.mustAffect("update lease", res)
}

func (t *tx) ListLeases(ctx context.Context, tenantID, credentialID, subjectID string, liveAt time.Time) ([]store.Lease, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	// Only the filters asked for are written, so that a credential's live
	// leases are found through leases_by_credential, not by scanning the
	// tenant's leases of the last day.
	q := `SELECT ` + leaseCols + ` FROM leases WHERE tenant_id = $1`
	args := []any{tenantID}
	add := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(cond, len(args))
	}
	if credentialID != "" {
		add(` AND credential_id = $%d`, credentialID)
	}
	if subjectID != "" {
		add(` AND subject_id = $%d`, subjectID)
	}
	if !liveAt.IsZero() {
		add(` AND expires_at > $%d AND revoked_at = 0`, toMicros(liveAt))
	}
	rows, err := t.query(ctx, q+` ORDER BY created_at DESC, id`, args...)
	if err != nil {
		return nil, t.wrap("list leases", err)
	}
	return collect(t, "list leases", rows, scanLease)
}

func (t *tx) DeleteExpiredLeases(ctx context.Context, before time.Time, limit int) (int64, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	// The limit is written into the statement: SQLite plans a bound LIMIT
	// anew at every run.
	res, err := t.exec(ctx, "delete expired leases", fmt.Sprintf(`DELETE FROM leases WHERE id IN
		(SELECT id FROM leases WHERE expires_at < $1 ORDER BY expires_at LIMIT %d)`, max(1, limit)), toMicros(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
