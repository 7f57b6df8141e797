package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/tenant"
)

// Review line kinds and decisions.
const (
	LineRole  = "role"
	LineGrant = "grant"
	LineToken = "token"
	LineRobot = "robot"

	Keep   = "keep"
	Revoke = "revoke"
)

// StartReview opens an access-review campaign: one line per member role,
// live grant, live token and active robot, each with its last use. At most
// one campaign is open per tenant.
func (s *Service) StartReview(ctx context.Context, tenantID string, deadline time.Time) (*store.Review, []store.ReviewItem, error) {
	var rv *store.Review
	var items []store.ReviewItem
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		rv, items, err = s.startReview(ctx, tx, tenantID, deadline)
		return err
	})
	return rv, items, wrapErr("start review", err)
}

func (s *Service) startReview(ctx context.Context, tx store.Tx, tenantID string, deadline time.Time) (*store.Review, []store.ReviewItem, error) {
	now := s.now().UTC()
	if last, err := tx.LatestReview(ctx, tenantID); err == nil && last.Status == store.ReviewOpen {
		return nil, nil, fault.New(fault.Conflict, "review_open", "review %s is still open", last.ID)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, nil, err
	}
	pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
	if err != nil {
		return nil, nil, err
	}
	if deadline.IsZero() {
		deadline = now.Add(time.Duration(pol.ReviewWindowDays) * 24 * time.Hour)
	}
	if !deadline.After(now) || deadline.Sub(now) > 90*24*time.Hour {
		return nil, nil, fault.New(fault.Invalid, "invalid_deadline", "the deadline must be in the next 90 days")
	}
	rv := &store.Review{ID: store.NewID("rev_"), TenantID: tenantID, Status: store.ReviewOpen, Unanswered: pol.ReviewUnanswered,
		CreatedBy: authz.ActorOf(ctx).ID, CreatedAt: now, Deadline: deadline.UTC()}
	items, err := reviewLines(ctx, tx, tenantID, now)
	if err != nil {
		return nil, nil, err
	}
	for i := range items {
		items[i].ReviewID, items[i].Seq = rv.ID, i
	}
	if err := tx.InsertReview(ctx, rv, items); err != nil {
		return nil, nil, err
	}
	if err := s.record(ctx, tx, tenantID, "review.start", rv.ID, map[string]any{"lines": len(items), "deadline": rv.Deadline}); err != nil {
		return nil, nil, err
	}
	_, err = identity.NotifyAdmins(ctx, tx, now, tenantID, "access_review", "An access review is open",
		map[string]any{"review": rv.ID, "deadline": rv.Deadline, "lines": len(items)})
	return rv, items, err
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func reviewLines(ctx context.Context, tx store.Tx, tenantID string, now time.Time) ([]store.ReviewItem, error) {
	var items []store.ReviewItem
	members, err := tx.ListMembers(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	tokens, err := tx.ListAPITokens(ctx, tenantID, "")
	if err != nil {
		return nil, err
	}
	lastUse := map[string]time.Time{}
	for _, t := range tokens {
		lastUse[t.SubjectID] = later(lastUse[t.SubjectID], t.LastUsedAt)
	}
	for _, m := range members {
		if m.Status == store.MemberOffboarded {
			continue
		}
		items = append(items, store.ReviewItem{Kind: LineRole, SubjectType: store.SubjectMember, SubjectID: m.ID, Label: m.Email,
			Permission: m.Role, ResourceType: store.ResourceTenant, ResourceID: tenantID, RefID: m.ID,
			LastUsedAt: later(later(m.LastSigninAt, m.LastSeenAt), lastUse[m.ID])})
	}
	grants, err := tx.ListGrants(ctx, store.GrantFilter{TenantID: tenantID, LiveAt: now})
	if err != nil {
		return nil, err
	}
	for _, g := range grants {
		items = append(items, store.ReviewItem{Kind: LineGrant, SubjectType: g.SubjectType, SubjectID: g.SubjectID, Label: g.Reason,
			Permission: g.Permission, ResourceType: g.ResourceType, ResourceID: g.ResourceID, RefID: g.ID, LastUsedAt: g.LastUsedAt})
	}
	for _, t := range tokens {
		if !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt) {
			continue
		}
		items = append(items, store.ReviewItem{Kind: LineToken, SubjectType: t.SubjectType, SubjectID: t.SubjectID, Label: t.Name,
			Permission: jsonScopes(t.Scopes), ResourceType: store.ResourceTenant, ResourceID: tenantID, RefID: t.ID, LastUsedAt: t.LastUsedAt})
	}
	robots, err := tx.ListRobots(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	for _, r := range robots {
		if r.Status != store.RobotActive {
			continue
		}
		items = append(items, store.ReviewItem{Kind: LineRobot, SubjectType: store.SubjectRobot, SubjectID: r.ID, Label: r.Name,
			ResourceType: store.ResourceTenant, ResourceID: tenantID, RefID: r.ID, LastUsedAt: lastUse[r.ID]})
	}
	return items, nil
}

func jsonScopes(sc []string) string {
	if len(sc) == 0 {
		return "*"
	}
	b, _ := json.Marshal(sc)
	return string(b)
}

// Reviews lists a tenant's campaigns, newest first.
func (s *Service) Reviews(ctx context.Context, tenantID string) ([]store.Review, error) {
	var out []store.Review
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListReviews(ctx, tenantID)
		return err
	})
	return out, wrapErr("list reviews", err)
}

// Review returns a campaign and its lines.
func (s *Service) Review(ctx context.Context, tenantID, id string) (*store.Review, []store.ReviewItem, error) {
	var rv *store.Review
	var items []store.ReviewItem
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		if rv, err = tx.GetReview(ctx, tenantID, id); err != nil {
			return err
		}
		items, err = tx.ListReviewItems(ctx, rv.ID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fault.New(fault.NotFound, "not_found", "no review %q", id)
	}
	return rv, items, wrapErr("get review", err)
}

// LineDecision keeps or revokes one line.
type LineDecision struct {
	Seq      int    `json:"seq"`
	Decision string `json:"decision"`
	Note     string `json:"note,omitempty"`
}

// DecideLines records reviewers' answers. A reviewer never decides a line
// about their own access.
func (s *Service) DecideLines(ctx context.Context, tenantID, id string, ds []LineDecision) error {
	p := authz.ActorOf(ctx)
	return wrapErr("decide lines", s.store.Update(ctx, func(tx store.Tx) error {
		rv, err := tx.GetReview(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			return fault.New(fault.NotFound, "not_found", "no review %q", id)
		}
		if err != nil {
			return err
		}
		if rv.Status != store.ReviewOpen {
			return fault.New(fault.Conflict, "review_closed", "review %s is closed", id)
		}
		items, err := tx.ListReviewItems(ctx, rv.ID)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		for _, d := range ds {
			if d.Seq < 0 || d.Seq >= len(items) {
				return fault.New(fault.Invalid, "invalid_line", "no line %d", d.Seq)
			}
			if d.Decision != Keep && d.Decision != Revoke {
				return fault.New(fault.Invalid, "invalid_decision", `decision must be "keep" or "revoke"`)
			}
			it := &items[d.Seq]
			if it.SubjectID == p.ID {
				return fault.New(fault.Forbidden, "own_access", "line %d is about your own access; another reviewer must decide it", d.Seq)
			}
			it.Decision, it.DecidedBy, it.Note, it.DecidedAt = d.Decision, p.ID, d.Note, now
			if err := tx.UpdateReviewItem(ctx, it); err != nil {
				return err
			}
			if err := s.record(ctx, tx, tenantID, "review.decide", rv.ID, map[string]any{"line": d.Seq, "kind": it.Kind,
				"ref": it.RefID, "decision": d.Decision}); err != nil {
				return err
			}
		}
		return nil
	}))
}

// Signoff is the evidence a closed campaign leaves.
type Signoff struct {
	Review      string             `json:"review"`
	Tenant      string             `json:"tenant"`
	StartedAt   time.Time          `json:"started_at"`
	Deadline    time.Time          `json:"deadline"`
	ClosedAt    time.Time          `json:"closed_at"`
	SignedBy    string             `json:"signed_by"`
	Unanswered  string             `json:"unanswered_policy"`
	Kept        int                `json:"kept"`
	Revoked     int                `json:"revoked"`
	Escalated   int                `json:"escalated"`
	Lines       []store.ReviewItem `json:"lines"`
	Applied     []string           `json:"applied"`
	Failures    []string           `json:"failures,omitempty"`
	EvidenceSHA string             `json:"-"`
}

// CloseReview signs a campaign off: revoked lines are revoked, unanswered
// lines follow the tenant's policy, and the result is kept as evidence
// whose SHA-256 goes into the audit log.
func (s *Service) CloseReview(ctx context.Context, tenantID, id string) (*Signoff, error) {
	rv, items, err := s.Review(ctx, tenantID, id)
	if err != nil {
		return nil, err
	}
	if rv.Status != store.ReviewOpen {
		return nil, fault.New(fault.Conflict, "review_closed", "review %s is closed", id)
	}
	p := authz.ActorOf(ctx)
	now := s.now().UTC()
	so := &Signoff{Review: rv.ID, Tenant: tenantID, StartedAt: rv.CreatedAt, Deadline: rv.Deadline, ClosedAt: now, SignedBy: p.ID,
		Unanswered: rv.Unanswered, Applied: []string{}}
	for i := range items {
		it := &items[i]
		if it.Decision == "" {
			if rv.Unanswered == "escalate" {
				so.Escalated++
				it.Note = "unanswered at close: escalated to owners"
				continue
			}
			it.Decision, it.DecidedBy, it.DecidedAt, it.Note = Revoke, "policy:unanswered", now, "unanswered at close"
		}
		if it.Decision == Keep {
			so.Kept++
			continue
		}
		so.Revoked++
		if err := s.applyRevoke(ctx, tenantID, it); err != nil {
			so.Failures = append(so.Failures, it.Kind+":"+it.RefID+": "+err.Error())
			continue
		}
		so.Applied = append(so.Applied, it.Kind+":"+it.RefID)
	}
	so.Lines = items
	body, err := json.Marshal(so)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	so.EvidenceSHA = hex.EncodeToString(sum[:])
	err = s.store.Update(ctx, func(tx store.Tx) error {
		for i := range items {
			if items[i].DecidedBy == "policy:unanswered" || items[i].Decision == "" {
				if err := tx.UpdateReviewItem(ctx, &items[i]); err != nil {
					return err
				}
			}
		}
		rv.Status, rv.ClosedAt, rv.Signoff = store.ReviewClosed, now, body
		if err := tx.UpdateReview(ctx, rv); err != nil {
			return err
		}
		if err := tx.InsertEvidence(ctx, &store.Evidence{ID: store.NewID("evd_"), TenantID: tenantID, Kind: "access_review", SubjectID: rv.ID,
			Body: body, CreatedAt: now}); err != nil {
			return err
		}
		if so.Escalated > 0 {
			ms, err := tx.ListMembers(ctx, tenantID)
			if err != nil {
				return err
			}
			for _, m := range ms {
				if m.Role == store.RoleOwner && m.Status == store.MemberActive {
					if err := identity.Notify(ctx, tx, now, tenantID, m.ID, "review_escalated", "Access review lines were left unanswered",
						map[string]any{"review": rv.ID, "escalated": so.Escalated}); err != nil {
						return err
					}
				}
			}
		}
		return s.record(ctx, tx, tenantID, "review.signoff", rv.ID, map[string]any{"kept": so.Kept, "revoked": so.Revoked,
			"escalated": so.Escalated, "evidence_sha256": so.EvidenceSHA})
	})
	if err != nil {
		return nil, wrapErr("close review", err)
	}
	return so, nil
}

func (s *Service) applyRevoke(ctx context.Context, tenantID string, it *store.ReviewItem) error {
	switch it.Kind {
	case LineGrant:
		return s.Revoke(ctx, tenantID, it.RefID)
	case LineToken:
		return s.store.Update(ctx, func(tx store.Tx) error {
			if err := tx.RevokeAPIToken(ctx, tenantID, it.RefID, s.now().UTC()); err != nil {
				return err
			}
			return s.record(ctx, tx, tenantID, "token.revoke", it.RefID, map[string]any{"by": "access_review"})
		})
	case LineRobot:
		return s.store.Update(ctx, func(tx store.Tx) error {
			r, err := tx.GetRobot(ctx, tenantID, it.RefID)
			if err != nil {
				return err
			}
			now := s.now().UTC()
			r.Status, r.DisabledAt = store.RobotDisabled, now
			if err := tx.UpdateRobot(ctx, r); err != nil {
				return err
			}
			if _, err := tx.RevokeSubjectTokens(ctx, tenantID, r.ID, now); err != nil {
				return err
			}
			if _, err := tx.RevokeSubjectGrants(ctx, tenantID, r.ID, now); err != nil {
				return err
			}
			return s.record(ctx, tx, tenantID, "robot.disable", r.ID, map[string]any{"by": "access_review"})
		})
	case LineRole:
		_, err := s.Offboard(ctx, tenantID, it.RefID, OffboardInput{Reason: "access review"})
		return err
	}
	return nil
}

// RunReviews closes campaigns past their deadline and opens scheduled
// ones (quarterly by default).
func (s *Service) RunReviews(ctx context.Context) error {
	var due []store.Review
	if err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		due, err = tx.OpenReviewsDueBy(ctx, s.now())
		return err
	}); err != nil {
		return wrapErr("due reviews", err)
	}
	for _, rv := range due {
		if _, err := s.CloseReview(ctx, rv.TenantID, rv.ID); err != nil {
			s.log.Error("close review at deadline", "review", rv.ID, "err", err)
		}
	}
	var tenants []store.Tenant
	after := ""
	for {
		var page []store.Tenant
		if err := s.store.View(ctx, func(tx store.Tx) error {
			var err error
			page, err = tx.ListTenants(ctx, store.Page{After: after, Limit: 1000})
			return err
		}); err != nil {
			return wrapErr("list tenants", err)
		}
		tenants = append(tenants, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	for _, t := range tenants {
		if t.Status != store.TenantActive {
			continue
		}
		err := s.store.Update(ctx, func(tx store.Tx) error {
			pol, err := tenant.ReadPolicy(ctx, tx, t.ID)
			if err != nil || pol.ReviewEveryDays <= 0 {
				return err
			}
			since := t.CreatedAt
			if last, err := tx.LatestReview(ctx, t.ID); err == nil {
				since = last.CreatedAt
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if s.now().Sub(since) < time.Duration(pol.ReviewEveryDays)*24*time.Hour {
				return nil
			}
			_, _, err = s.startReview(ctx, tx, t.ID, time.Time{})
			if f, ok := fault.As(err); ok && f.Code == "review_open" {
				return nil
			}
			return err
		})
		if err != nil {
			s.log.Error("scheduled review", "tenant", t.ID, "err", err)
		}
	}
	return nil
}
