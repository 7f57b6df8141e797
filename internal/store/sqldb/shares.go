package sqldb

import (
	"context"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

const shareCols = `id, tenant_id, label, verifier, kdf_salt, kdf_iterations, size, max_views, views, failed_attempts,
	created_by, created_at, expires_at`

func scanShare(s scanner) (store.Share, error) {
	var x store.Share
	var created, expires int64
	err := s.Scan(&x.ID, &x.TenantID, &x.Label, &x.Verifier, &x.KDFSalt, &x.KDFIterations, &x.Size, &x.MaxViews, &x.Views,
		&x.FailedAttempts, &x.CreatedBy, &created, &expires)
	x.CreatedAt, x.ExpiresAt = fromMicros(created), fromMicros(expires)
	return x, err
}

func (t *tx) InsertShare(ctx context.Context, s *store.Share) error {
	var salt any
	if s.KDFSalt != nil {
		salt = s.KDFSalt
	}
	_, err := t.exec(ctx, "insert share",
		`INSERT INTO shares (`+shareCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		s.ID, s.TenantID, s.Label, s.Verifier, salt, s.KDFIterations, s.Size, s.MaxViews, s.Views, s.FailedAttempts,
		s.CreatedBy, toMicros(s.CreatedAt), toMicros(s.ExpiresAt))
	return err
}

// GetShare locks the share's row in a write transaction where other
// writers exist (PostgreSQL nodes, see Dialect.LockRows): openers racing
// for the same link then take turns, each reading the counts the one
// before committed, so every wrong key is counted and the one that reaches
// the limit burns the link; without the lock, an opener that lost the race
// was refused uncounted and could guess again.
func (t *tx) GetShare(ctx context.Context, id string) (*store.Share, error) {
	s, err := scanShare(t.queryRow(ctx, `SELECT `+shareCols+` FROM shares WHERE id = $1`+t.lockRows(), id))
	if err != nil {
		return nil, t.wrap("get share", err)
	}
	return &s, nil
}

func (t *tx) UpdateShareCounts(ctx context.Context, id string, from, to store.ShareCounts) (bool, error) {
	res, err := t.exec(ctx, "update share counts",
		`UPDATE shares SET views = $4, failed_attempts = $5 WHERE id = $1 AND views = $2 AND failed_attempts = $3`,
		id, from.Views, from.FailedAttempts, to.Views, to.FailedAttempts)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, t.wrap("update share counts", err)
	}
	return n == 1, nil
}

func (t *tx) DeleteShare(ctx context.Context, tenantID, id string) error {
	res, err := t.exec(ctx, "delete share", `DELETE FROM shares WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if err != nil {
		return err
	}
	return t.mustAffect("delete share", res)
}

func (t *tx) ListShares(ctx context.Context, f store.ShareFilter) ([]store.Share, error) {
	rows, err := t.query(ctx, `SELECT `+shareCols+` FROM shares WHERE tenant_id = $1 AND ($2 = '' OR created_by = $2)
		ORDER BY created_at DESC, id LIMIT $3`, f.TenantID, f.CreatedBy, limitOr(f.Limit, 1000, 10000))
	if err != nil {
		return nil, t.wrap("list shares", err)
	}
	return collect(t, "list shares", rows, scanShare)
}

func (t *tx) ListExpiredShares(ctx context.Context, at time.Time, limit int) ([]store.Share, error) {
	rows, err := t.query(ctx, `SELECT `+shareCols+` FROM shares WHERE expires_at <= $1 ORDER BY expires_at, id LIMIT $2`,
		toMicros(at), limitOr(limit, 1000, 10000))
	if err != nil {
		return nil, t.wrap("list expired shares", err)
	}
	return collect(t, "list expired shares", rows, scanShare)
}
