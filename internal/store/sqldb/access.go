package sqldb

import (
	"context"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

// ---- grants ----

const grantCols = `id, tenant_id, subject_type, subject_id, permission, resource_type, resource_id, reason, created_by, request_id,
	created_at, expires_at, revoked_at, retired_at, last_used_at`

func scanGrant(s scanner) (store.Grant, error) {
	var g store.Grant
	var c, e, r, rt, l int64
	err := s.Scan(&g.ID, &g.TenantID, &g.SubjectType, &g.SubjectID, &g.Permission, &g.ResourceType, &g.ResourceID, &g.Reason,
		&g.CreatedBy, &g.RequestID, &c, &e, &r, &rt, &l)
	g.CreatedAt, g.ExpiresAt, g.RevokedAt, g.RetiredAt, g.LastUsedAt = fromMicros(c), fromMicros(e), fromMicros(r), fromMicros(rt), fromMicros(l)
	return g, err
}

func (t *tx) InsertGrant(ctx context.Context, g *store.Grant) error {
	_, err := t.exec(ctx, "insert grant",
		`INSERT INTO grants (`+grantCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		g.ID, g.TenantID, g.SubjectType, g.SubjectID, g.Permission, g.ResourceType, g.ResourceID, g.Reason, g.CreatedBy, g.RequestID,
		toMicros(g.CreatedAt), toMicros(g.ExpiresAt), toMicros(g.RevokedAt), toMicros(g.RetiredAt), toMicros(g.LastUsedAt))
	if err != nil {
		return err
	}
	return t.BumpAccess(ctx, g.TenantID)
}

func (t *tx) GetGrant(ctx context.Context, tenantID, id string) (*store.Grant, error) {
	g, err := scanGrant(t.queryRow(ctx, `SELECT `+grantCols+` FROM grants WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, t.wrap("get grant", err)
	}
	return &g, nil
}

func (t *tx) ListGrants(ctx context.Context, f store.GrantFilter) ([]store.Grant, error) {
	live := int64(-1)
	if !f.LiveAt.IsZero() {
		live = toMicros(f.LiveAt)
	}
	rows, err := t.query(ctx, `SELECT `+grantCols+` FROM grants
		WHERE tenant_id = $1 AND ($2 = '' OR subject_id = $2)
		  AND (CAST($3 AS BIGINT) < 0 OR (revoked_at = 0 AND retired_at = 0 AND expires_at > $3))
		ORDER BY created_at, id`, f.TenantID, f.SubjectID, live)
	if err != nil {
		return nil, t.wrap("list grants", err)
	}
	return collect(t, "list grants", rows, scanGrant)
}

func (t *tx) RevokeGrant(ctx context.Context, tenantID, id string, at time.Time) error {
	res, err := t.exec(ctx, "revoke grant",
		`UPDATE grants SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at = 0 AND retired_at = 0`, toMicros(at), tenantID, id)
	if err != nil {
		return err
	}
	if err := t.mustAffect("revoke grant", res); err != nil {
		return err
	}
	return t.BumpAccess(ctx, tenantID)
}

func (t *tx) RevokeSubjectGrants(ctx context.Context, tenantID, subjectID string, at time.Time) (int64, error) {
	res, err := t.exec(ctx, "revoke subject grants",
		`UPDATE grants SET revoked_at = $1 WHERE tenant_id = $2 AND subject_id = $3 AND revoked_at = 0 AND retired_at = 0`,
		toMicros(at), tenantID, subjectID)
	if err != nil {
		return 0, err
	}
	n, err := t.affected("revoke subject grants", res)
	if err != nil || n == 0 {
		return n, err
	}
	return n, t.BumpAccess(ctx, tenantID)
}

func (t *tx) RetireExpiredGrants(ctx context.Context, now time.Time, limit int) ([]store.Grant, error) {
	rows, err := t.query(ctx, `SELECT `+grantCols+` FROM grants
		WHERE retired_at = 0 AND revoked_at = 0 AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2`,
		toMicros(now), limitOr(limit, 100, 10000))
	if err != nil {
		return nil, t.wrap("list expired grants", err)
	}
	gs, err := collect(t, "list expired grants", rows, scanGrant)
	if err != nil {
		return nil, err
	}
	tenants := map[string]bool{}
	for i := range gs {
		if _, err := t.exec(ctx, "retire grant", `UPDATE grants SET retired_at = $1 WHERE id = $2`, toMicros(now), gs[i].ID); err != nil {
			return nil, err
		}
		gs[i].RetiredAt = now
		tenants[gs[i].TenantID] = true
	}
	for id := range tenants {
		if err := t.BumpAccess(ctx, id); err != nil {
			return nil, err
		}
	}
	return gs, nil
}

func (t *tx) TouchGrant(ctx context.Context, id string, at time.Time) error {
	_, err := t.exec(ctx, "touch grant", `UPDATE grants SET last_used_at = $1 WHERE id = $2`, toMicros(at), id)
	return err
}

func (t *tx) AccessVersion(ctx context.Context, tenantID string) (int64, error) {
	var v int64
	err := t.queryRow(ctx, `SELECT access_version FROM tenants WHERE id = $1`, tenantID).Scan(&v)
	return v, t.wrapNil("access version", err)
}

func (t *tx) BumpAccess(ctx context.Context, tenantID string) error {
	res, err := t.exec(ctx, "bump access", `UPDATE tenants SET access_version = access_version + 1 WHERE id = $1`, tenantID)
	if err != nil {
		return err
	}
	return t.mustAffect("bump access", res)
}

// ---- access requests ----

const requestCols = `id, tenant_id, requester_id, permission, resource_type, resource_id, duration_s, reason, status,
	approvals_needed, approvals, decided_by, decision_note, grant_id, created_at, expires_at, decided_at`

func scanRequest(s scanner) (store.AccessRequest, error) {
	var r store.AccessRequest
	var dur, c, e, d int64
	var approvals string
	err := s.Scan(&r.ID, &r.TenantID, &r.RequesterID, &r.Permission, &r.ResourceType, &r.ResourceID, &dur, &r.Reason, &r.Status,
		&r.ApprovalsNeeded, &approvals, &r.DecidedBy, &r.DecisionNote, &r.GrantID, &c, &e, &d)
	r.Duration = time.Duration(dur) * time.Second
	r.Approvals = parseList(approvals)
	r.CreatedAt, r.ExpiresAt, r.DecidedAt = fromMicros(c), fromMicros(e), fromMicros(d)
	return r, err
}

func (t *tx) InsertAccessRequest(ctx context.Context, r *store.AccessRequest) error {
	_, err := t.exec(ctx, "insert access request",
		`INSERT INTO access_requests (`+requestCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		r.ID, r.TenantID, r.RequesterID, r.Permission, r.ResourceType, r.ResourceID, int64(r.Duration/time.Second), r.Reason, r.Status,
		r.ApprovalsNeeded, jsonList(r.Approvals), r.DecidedBy, r.DecisionNote, r.GrantID,
		toMicros(r.CreatedAt), toMicros(r.ExpiresAt), toMicros(r.DecidedAt))
	return err
}

func (t *tx) GetAccessRequest(ctx context.Context, tenantID, id string) (*store.AccessRequest, error) {
	r, err := scanRequest(t.queryRow(ctx, `SELECT `+requestCols+` FROM access_requests WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, t.wrap("get access request", err)
	}
	return &r, nil
}

func (t *tx) ListAccessRequests(ctx context.Context, tenantID, status, requesterID string) ([]store.AccessRequest, error) {
	rows, err := t.query(ctx, `SELECT `+requestCols+` FROM access_requests
		WHERE tenant_id = $1 AND ($2 = '' OR status = $2) AND ($3 = '' OR requester_id = $3)
		ORDER BY created_at DESC, id DESC LIMIT 1000`, tenantID, status, requesterID)
	if err != nil {
		return nil, t.wrap("list access requests", err)
	}
	return collect(t, "list access requests", rows, scanRequest)
}

func (t *tx) UpdateAccessRequest(ctx context.Context, r *store.AccessRequest, fromStatus string) (bool, error) {
	res, err := t.exec(ctx, "update access request",
		`UPDATE access_requests SET status = $1, approvals = $2, decided_by = $3, decision_note = $4, grant_id = $5, decided_at = $6
		 WHERE tenant_id = $7 AND id = $8 AND status = $9`,
		r.Status, jsonList(r.Approvals), r.DecidedBy, r.DecisionNote, r.GrantID, toMicros(r.DecidedAt), r.TenantID, r.ID, fromStatus)
	if err != nil {
		return false, err
	}
	n, err := t.affected("update access request", res)
	return n == 1, err
}

func (t *tx) PendingRequestsExpiredBy(ctx context.Context, now time.Time, limit int) ([]store.AccessRequest, error) {
	rows, err := t.query(ctx, `SELECT `+requestCols+` FROM access_requests WHERE status = $1 AND expires_at <= $2
		ORDER BY expires_at, id LIMIT $3`, store.RequestPending, toMicros(now), limitOr(limit, 100, 10000))
	if err != nil {
		return nil, t.wrap("list expired requests", err)
	}
	return collect(t, "list expired requests", rows, scanRequest)
}

// ---- reviews ----

const reviewCols = `id, tenant_id, status, unanswered, created_by, created_at, deadline, closed_at, signoff`

func scanReview(s scanner) (store.Review, error) {
	var r store.Review
	var c, d, cl int64
	var signoff string
	err := s.Scan(&r.ID, &r.TenantID, &r.Status, &r.Unanswered, &r.CreatedBy, &c, &d, &cl, &signoff)
	r.CreatedAt, r.Deadline, r.ClosedAt = fromMicros(c), fromMicros(d), fromMicros(cl)
	if signoff != "" {
		r.Signoff = []byte(signoff)
	}
	return r, err
}

const reviewItemCols = `review_id, seq, kind, subject_type, subject_id, label, permission, resource_type, resource_id, ref_id,
	last_used_at, decision, decided_by, note, decided_at`

func scanReviewItem(s scanner) (store.ReviewItem, error) {
	var it store.ReviewItem
	var l, d int64
	err := s.Scan(&it.ReviewID, &it.Seq, &it.Kind, &it.SubjectType, &it.SubjectID, &it.Label, &it.Permission, &it.ResourceType,
		&it.ResourceID, &it.RefID, &l, &it.Decision, &it.DecidedBy, &it.Note, &d)
	it.LastUsedAt, it.DecidedAt = fromMicros(l), fromMicros(d)
	return it, err
}

func (t *tx) InsertReview(ctx context.Context, r *store.Review, items []store.ReviewItem) error {
	if _, err := t.exec(ctx, "insert review", `INSERT INTO reviews (`+reviewCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.ID, r.TenantID, r.Status, r.Unanswered, r.CreatedBy, toMicros(r.CreatedAt), toMicros(r.Deadline), toMicros(r.ClosedAt),
		string(r.Signoff)); err != nil {
		return err
	}
	for _, it := range items {
		if _, err := t.exec(ctx, "insert review item",
			`INSERT INTO review_items (`+reviewItemCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			r.ID, it.Seq, it.Kind, it.SubjectType, it.SubjectID, it.Label, it.Permission, it.ResourceType, it.ResourceID, it.RefID,
			toMicros(it.LastUsedAt), it.Decision, it.DecidedBy, it.Note, toMicros(it.DecidedAt)); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) GetReview(ctx context.Context, tenantID, id string) (*store.Review, error) {
	r, err := scanReview(t.queryRow(ctx, `SELECT `+reviewCols+` FROM reviews WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, t.wrap("get review", err)
	}
	return &r, nil
}

func (t *tx) LatestReview(ctx context.Context, tenantID string) (*store.Review, error) {
	r, err := scanReview(t.queryRow(ctx, `SELECT `+reviewCols+` FROM reviews WHERE tenant_id = $1
		ORDER BY created_at DESC, id DESC LIMIT 1`, tenantID))
	if err != nil {
		return nil, t.wrap("latest review", err)
	}
	return &r, nil
}

func (t *tx) ListReviews(ctx context.Context, tenantID string) ([]store.Review, error) {
	rows, err := t.query(ctx, `SELECT `+reviewCols+` FROM reviews WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC`, tenantID)
	if err != nil {
		return nil, t.wrap("list reviews", err)
	}
	return collect(t, "list reviews", rows, scanReview)
}

func (t *tx) ListReviewItems(ctx context.Context, reviewID string) ([]store.ReviewItem, error) {
	rows, err := t.query(ctx, `SELECT `+reviewItemCols+` FROM review_items WHERE review_id = $1 ORDER BY seq`, reviewID)
	if err != nil {
		return nil, t.wrap("list review items", err)
	}
	return collect(t, "list review items", rows, scanReviewItem)
}

func (t *tx) UpdateReviewItem(ctx context.Context, it *store.ReviewItem) error {
	res, err := t.exec(ctx, "update review item", `UPDATE review_items SET decision = $1, decided_by = $2, note = $3, decided_at = $4
		WHERE review_id = $5 AND seq = $6`, it.Decision, it.DecidedBy, it.Note, toMicros(it.DecidedAt), it.ReviewID, it.Seq)
	if err != nil {
		return err
	}
	return t.mustAffect("update review item", res)
}

func (t *tx) UpdateReview(ctx context.Context, r *store.Review) error {
	res, err := t.exec(ctx, "update review", `UPDATE reviews SET status = $1, closed_at = $2, signoff = $3, deadline = $4
		WHERE tenant_id = $5 AND id = $6`, r.Status, toMicros(r.ClosedAt), string(r.Signoff), toMicros(r.Deadline), r.TenantID, r.ID)
	if err != nil {
		return err
	}
	return t.mustAffect("update review", res)
}

func (t *tx) OpenReviewsDueBy(ctx context.Context, now time.Time) ([]store.Review, error) {
	rows, err := t.query(ctx, `SELECT `+reviewCols+` FROM reviews WHERE status = $1 AND deadline <= $2 ORDER BY deadline, id LIMIT 100`,
		store.ReviewOpen, toMicros(now))
	if err != nil {
		return nil, t.wrap("list due reviews", err)
	}
	return collect(t, "list due reviews", rows, scanReview)
}

// ---- notifications, evidence, rotation flags ----

const notificationCols = `id, tenant_id, member_id, kind, subject, body, created_at, read_at`

func scanNotification(s scanner) (store.Notification, error) {
	var n store.Notification
	var body string
	var c, r int64
	err := s.Scan(&n.ID, &n.TenantID, &n.MemberID, &n.Kind, &n.Subject, &body, &c, &r)
	n.Body, n.CreatedAt, n.ReadAt = []byte(body), fromMicros(c), fromMicros(r)
	return n, err
}

func (t *tx) InsertNotification(ctx context.Context, n *store.Notification) error {
	_, err := t.exec(ctx, "insert notification", `INSERT INTO notifications (`+notificationCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		n.ID, n.TenantID, n.MemberID, n.Kind, n.Subject, string(n.Body), toMicros(n.CreatedAt), toMicros(n.ReadAt))
	return err
}

func (t *tx) ListNotifications(ctx context.Context, tenantID, memberID string, limit int) ([]store.Notification, error) {
	rows, err := t.query(ctx, `SELECT `+notificationCols+` FROM notifications WHERE tenant_id = $1 AND member_id = $2
		ORDER BY created_at DESC, id DESC LIMIT $3`, tenantID, memberID, limitOr(limit, 100, 1000))
	if err != nil {
		return nil, t.wrap("list notifications", err)
	}
	return collect(t, "list notifications", rows, scanNotification)
}

func (t *tx) MarkNotificationRead(ctx context.Context, tenantID, memberID, id string, at time.Time) error {
	res, err := t.exec(ctx, "mark notification read", `UPDATE notifications SET read_at = $1
		WHERE tenant_id = $2 AND member_id = $3 AND id = $4 AND read_at = 0`, toMicros(at), tenantID, memberID, id)
	if err != nil {
		return err
	}
	return t.mustAffect("mark notification read", res)
}

const evidenceCols = `id, tenant_id, kind, subject_id, body, created_at`

func scanEvidence(s scanner) (store.Evidence, error) {
	var e store.Evidence
	var body string
	var c int64
	err := s.Scan(&e.ID, &e.TenantID, &e.Kind, &e.SubjectID, &body, &c)
	e.Body, e.CreatedAt = []byte(body), fromMicros(c)
	return e, err
}

func (t *tx) InsertEvidence(ctx context.Context, e *store.Evidence) error {
	_, err := t.exec(ctx, "insert evidence", `INSERT INTO evidence (`+evidenceCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.ID, e.TenantID, e.Kind, e.SubjectID, string(e.Body), toMicros(e.CreatedAt))
	return err
}

func (t *tx) GetEvidence(ctx context.Context, tenantID, id string) (*store.Evidence, error) {
	e, err := scanEvidence(t.queryRow(ctx, `SELECT `+evidenceCols+` FROM evidence WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, t.wrap("get evidence", err)
	}
	return &e, nil
}

func (t *tx) ListEvidence(ctx context.Context, tenantID, kind string) ([]store.Evidence, error) {
	rows, err := t.query(ctx, `SELECT `+evidenceCols+` FROM evidence WHERE tenant_id = $1 AND ($2 = '' OR kind = $2)
		ORDER BY created_at DESC, id DESC LIMIT 1000`, tenantID, kind)
	if err != nil {
		return nil, t.wrap("list evidence", err)
	}
	return collect(t, "list evidence", rows, scanEvidence)
}

const flagCols = `tenant_id, resource_type, resource_id, reason, source, flagged_at, cleared_at`

func (t *tx) FlagRotation(ctx context.Context, f *store.RotationFlag) error {
	_, err := t.exec(ctx, "flag rotation", `INSERT INTO rotation_flags (`+flagCols+`) VALUES ($1, $2, $3, $4, $5, $6, 0)
		ON CONFLICT (tenant_id, resource_type, resource_id) DO UPDATE SET
		  reason = excluded.reason, source = excluded.source, flagged_at = excluded.flagged_at, cleared_at = 0`,
		f.TenantID, f.ResourceType, f.ResourceID, f.Reason, f.Source, toMicros(f.FlaggedAt))
	return err
}

func (t *tx) ListRotationFlags(ctx context.Context, tenantID string) ([]store.RotationFlag, error) {
	rows, err := t.query(ctx, `SELECT `+flagCols+` FROM rotation_flags WHERE tenant_id = $1 AND cleared_at = 0
		ORDER BY resource_type, resource_id`, tenantID)
	if err != nil {
		return nil, t.wrap("list rotation flags", err)
	}
	return collect(t, "list rotation flags", rows, func(s scanner) (store.RotationFlag, error) {
		var f store.RotationFlag
		var fl, cl int64
		err := s.Scan(&f.TenantID, &f.ResourceType, &f.ResourceID, &f.Reason, &f.Source, &fl, &cl)
		f.FlaggedAt, f.ClearedAt = fromMicros(fl), fromMicros(cl)
		return f, err
	})
}
