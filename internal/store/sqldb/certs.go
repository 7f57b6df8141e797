package sqldb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

// ---- certificates ----

const certificateCols = `tenant_id, credential_id, version, subject, issuer, serial, not_before, not_after, fingerprint, key_algorithm,
	holder_id, alerted_30d_at, alerted_7d_at, alerted_expired_at, alerted_holder_left_at, created_at, updated_at`

// certAlertColumn names the bookkeeping column of each alert; only these
// names ever reach SQL text.
var certAlertColumn = map[string]string{
	store.CertAlert30Days:     "alerted_30d_at",
	store.CertAlert7Days:      "alerted_7d_at",
	store.CertAlertExpired:    "alerted_expired_at",
	store.CertAlertHolderLeft: "alerted_holder_left_at",
}

func scanCertificate(s scanner) (store.Certificate, error) {
	var c store.Certificate
	var nb, na, a30, a7, ax, ah, created, updated int64
	err := s.Scan(&c.TenantID, &c.CredentialID, &c.Version, &c.Subject, &c.Issuer, &c.Serial, &nb, &na, &c.Fingerprint, &c.KeyAlgorithm,
		&c.HolderID, &a30, &a7, &ax, &ah, &created, &updated)
	c.NotBefore, c.NotAfter = fromMicros(nb), fromMicros(na)
	c.Alerted30Days, c.Alerted7Days, c.AlertedExpired, c.AlertedHolderLeft = fromMicros(a30), fromMicros(a7), fromMicros(ax), fromMicros(ah)
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return c, err
}

func (t *tx) PutCertificate(ctx context.Context, c *store.Certificate) error {
	fp := c.Fingerprint
	if fp == nil {
		fp = []byte{}
	}
	_, err := t.exec(ctx, "put certificate",
		`INSERT INTO certificates (`+certificateCols+`)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		 ON CONFLICT (tenant_id, credential_id) DO UPDATE SET version = excluded.version, subject = excluded.subject,
		   issuer = excluded.issuer, serial = excluded.serial, not_before = excluded.not_before, not_after = excluded.not_after,
		   fingerprint = excluded.fingerprint, key_algorithm = excluded.key_algorithm, holder_id = excluded.holder_id,
		   alerted_30d_at = excluded.alerted_30d_at, alerted_7d_at = excluded.alerted_7d_at,
		   alerted_expired_at = excluded.alerted_expired_at, alerted_holder_left_at = excluded.alerted_holder_left_at,
		   updated_at = excluded.updated_at`,
		c.TenantID, c.CredentialID, c.Version, c.Subject, c.Issuer, c.Serial, toMicros(c.NotBefore), toMicros(c.NotAfter), fp,
		c.KeyAlgorithm, c.HolderID, toMicros(c.Alerted30Days), toMicros(c.Alerted7Days), toMicros(c.AlertedExpired),
		toMicros(c.AlertedHolderLeft), toMicros(c.CreatedAt), toMicros(c.UpdatedAt))
	return err
}

func (t *tx) GetCertificate(ctx context.Context, tenantID, credentialID string) (*store.Certificate, error) {
	c, err := scanCertificate(t.queryRow(ctx, `SELECT `+certificateCols+` FROM certificates WHERE tenant_id = $1 AND credential_id = $2`,
		tenantID, credentialID))
	if err != nil {
		return nil, t.wrap("get certificate", err)
	}
	return &c, nil
}

// liveCertificateCols are certificateCols of the alias ce.
var liveCertificateCols = "ce." + strings.Join(strings.Fields(strings.ReplaceAll(certificateCols, ",", " ")), ", ce.")

func (t *tx) ListCertificates(ctx context.Context, f store.CertificateFilter) ([]store.Certificate, error) {
	limit := limitOr(f.Limit, store.MaxCertificatePage, store.MaxCertificatePage)
	where := ""
	if f.Unalerted != "" {
		col, ok := certAlertColumn[f.Unalerted]
		if !ok {
			return nil, fmt.Errorf("%s: list certificates: unknown alert %q", t.d.Name, f.Unalerted)
		}
		where += ` AND ce.` + col + ` = 0`
	}
	if !f.IncludeDeleted {
		where += ` AND v.deleted_at = 0`
	}
	by := int64(-1)
	if !f.ExpiresBy.IsZero() {
		by = toMicros(f.ExpiresBy)
	}
	args := []any{f.TenantID, f.HolderID, by, limit}
	if a := f.After; a != nil {
		// The order's key, spelled out rather than as a row value so that
		// the not_after index serves it on both engines.
		where += ` AND (ce.not_after > $5 OR ce.not_after = $5 AND (ce.tenant_id > $6 OR ce.tenant_id = $6 AND ce.credential_id > $7))`
		args = append(args, toMicros(a.NotAfter), a.TenantID, a.CredentialID)
	}
	// Only facts of a credential's current version, and only while that
	// version is not destroyed (nor deleted, unless f.IncludeDeleted).
	rows, err := t.query(ctx, `SELECT `+liveCertificateCols+` FROM certificates ce
		JOIN credentials c ON c.tenant_id = ce.tenant_id AND c.id = ce.credential_id AND c.current_version = ce.version
		JOIN credential_versions v ON v.tenant_id = ce.tenant_id AND v.credential_id = ce.credential_id AND v.version = ce.version
		WHERE v.destroyed_at = 0
		  AND ($1 = '' OR ce.tenant_id = $1) AND ($2 = '' OR ce.holder_id = $2) AND (CAST($3 AS BIGINT) < 0 OR ce.not_after <= $3)`+where+`
		ORDER BY ce.not_after, ce.tenant_id, ce.credential_id LIMIT $4`, args...)
	if err != nil {
		return nil, t.wrap("list certificates", err)
	}
	return collect(t, "list certificates", rows, scanCertificate)
}

func (t *tx) DeleteCertificate(ctx context.Context, tenantID, credentialID string) error {
	res, err := t.exec(ctx, "delete certificate", `DELETE FROM certificates WHERE tenant_id = $1 AND credential_id = $2`, tenantID, credentialID)
	if err != nil {
		return err
	}
	return t.mustAffect("delete certificate", res)
}

func (t *tx) MarkCertificateAlert(ctx context.Context, tenantID, credentialID, alert string, at time.Time) (bool, error) {
	col, ok := certAlertColumn[alert]
	if !ok {
		return false, fmt.Errorf("%s: mark certificate alert: unknown alert %q", t.d.Name, alert)
	}
	// The condition makes the mark a compare-and-set: a concurrent
	// transaction that marked it first leaves this one nothing to change.
	res, err := t.exec(ctx, "mark certificate alert", `UPDATE certificates SET `+col+` = $3
		WHERE tenant_id = $1 AND credential_id = $2 AND `+col+` = 0`, tenantID, credentialID, toMicros(at))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, t.wrap("mark certificate alert", err)
	}
	return n == 1, nil
}
