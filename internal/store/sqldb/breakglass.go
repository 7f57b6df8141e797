package sqldb

import (
	"context"

	"github.com/custodia-project/custodia/internal/store"
)

const breakGlassCols = `id, tenant_id, operator_id, credential_id, reason, minutes, status, requested_at, decided_by, decided_at,
	expires_at, reveals`

func scanBreakGlass(s scanner) (store.BreakGlass, error) {
	var b store.BreakGlass
	var req, dec, exp int64
	err := s.Scan(&b.ID, &b.TenantID, &b.OperatorID, &b.CredentialID, &b.Reason, &b.Minutes, &b.Status, &req, &b.DecidedBy, &dec,
		&exp, &b.Reveals)
	b.RequestedAt, b.DecidedAt, b.ExpiresAt = fromMicros(req), fromMicros(dec), fromMicros(exp)
	return b, err
}

func (t *tx) InsertBreakGlass(ctx context.Context, b *store.BreakGlass) error {
	_, err := t.exec(ctx, "insert break-glass",
		`INSERT INTO break_glass (`+breakGlassCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		b.ID, b.TenantID, b.OperatorID, b.CredentialID, b.Reason, b.Minutes, b.Status, toMicros(b.RequestedAt), b.DecidedBy,
		toMicros(b.DecidedAt), toMicros(b.ExpiresAt), b.Reveals)
	return err
}

func (t *tx) GetBreakGlass(ctx context.Context, tenantID, id string) (*store.BreakGlass, error) {
	// Locked in a write transaction: two decisions, or reveals counting
	// against one window, take turns on PostgreSQL.
	b, err := scanBreakGlass(t.queryRow(ctx, `SELECT `+breakGlassCols+` FROM break_glass WHERE tenant_id = $1 AND id = $2`+t.lockRows(),
		tenantID, id))
	if err != nil {
		return nil, t.wrap("get break-glass", err)
	}
	return &b, nil
}

func (t *tx) UpdateBreakGlass(ctx context.Context, b *store.BreakGlass) error {
	res, err := t.exec(ctx, "update break-glass",
		`UPDATE break_glass SET status = $3, decided_by = $4, decided_at = $5, expires_at = $6, reveals = $7, minutes = $8
		 WHERE tenant_id = $1 AND id = $2`,
		b.TenantID, b.ID, b.Status, b.DecidedBy, toMicros(b.DecidedAt), toMicros(b.ExpiresAt), b.Reveals, b.Minutes)
	if err != nil {
		return err
	}
	return t.mustAffect("update break-glass", res)
}

func (t *tx) ListBreakGlass(ctx context.Context, tenantID string, limit int) ([]store.BreakGlass, error) {
	rows, err := t.query(ctx, `SELECT `+breakGlassCols+` FROM break_glass WHERE tenant_id = $1 ORDER BY requested_at DESC, id LIMIT $2`,
		tenantID, limit)
	if err != nil {
		return nil, t.wrap("list break-glass", err)
	}
	defer rows.Close()
	var out []store.BreakGlass
	for rows.Next() {
		b, err := scanBreakGlass(rows)
		if err != nil {
			return nil, t.wrap("list break-glass", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, t.wrap("list break-glass", err)
	}
	return out, nil
}
