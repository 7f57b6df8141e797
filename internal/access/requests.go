package access

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/store"
)

// RequestInput asks for just-in-time access.
type RequestInput struct {
	Permission string `json:"permission"`
	Resource   string `json:"resource,omitempty"`
	Duration   string `json:"duration"`
	Reason     string `json:"reason"`
}

// Request files an access request by the calling member. The tenant's
// approvers are notified.
func (s *Service) Request(ctx context.Context, tenantID string, in RequestInput) (*store.AccessRequest, error) {
	p := authz.ActorOf(ctx)
	if p.Kind != authz.KindMember {
		return nil, fault.New(fault.Forbidden, "members_only", "only a member can request access")
	}
	reason, rt, rid, err := checkAsk(tenantID, in.Permission, in.Reason, in.Resource)
	if err != nil {
		return nil, err
	}
	in.Reason = reason
	var r *store.AccessRequest
	err = s.store.Update(ctx, func(tx store.Tx) error {
		pol, d, err := askDuration(ctx, tx, tenantID, in.Duration)
		if err != nil {
			return err
		}
		rid, err := resolveResource(ctx, tx, tenantID, rt, rid)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		r = &store.AccessRequest{ID: store.NewID("req_"), TenantID: tenantID, RequesterID: p.ID, Permission: in.Permission,
			ResourceType: rt, ResourceID: rid, Duration: d, Reason: in.Reason, Status: store.RequestPending,
			ApprovalsNeeded: pol.Approvals, CreatedAt: now, ExpiresAt: now.Add(pol.RequestTTL())}
		if err := tx.InsertAccessRequest(ctx, r); err != nil {
			return err
		}
		if err := s.record(ctx, tx, tenantID, "request.create", r.ID, map[string]any{"permission": r.Permission,
			"resource": rt + ":" + rid, "duration": d.String(), "approvals_needed": r.ApprovalsNeeded}); err != nil {
			return err
		}
		_, err = identity.NotifyAdmins(ctx, tx, now, tenantID, "access_request", "An access request waits for approval",
			map[string]any{"request": r.ID, "requester": p.ID, "permission": r.Permission, "resource": rt + ":" + rid})
		return err
	})
	return r, wrapErr("request", err)
}

// Requests lists a tenant's requests.
func (s *Service) Requests(ctx context.Context, tenantID, status, requester string) ([]store.AccessRequest, error) {
	var out []store.AccessRequest
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListAccessRequests(ctx, tenantID, status, requester)
		return err
	})
	return out, wrapErr("list requests", err)
}

// GetRequest returns one request.
func (s *Service) GetRequest(ctx context.Context, tenantID, id string) (*store.AccessRequest, error) {
	var out *store.AccessRequest
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.GetAccessRequest(ctx, tenantID, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "not_found", "no request %q", id)
	}
	return out, wrapErr("get request", err)
}

// Decision answers a request.
type Decision struct {
	Approve bool   `json:"approve"`
	Note    string `json:"note,omitempty"`
}

// Decide records an approver's answer. A denial ends the request; the
// approval that reaches the tenant's count creates the grant. Nobody
// decides their own request, and nobody approves twice.
func (s *Service) Decide(ctx context.Context, tenantID, id string, d Decision) (*store.AccessRequest, error) {
	p := authz.ActorOf(ctx)
	var r *store.AccessRequest
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		r, err = tx.GetAccessRequest(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			return fault.New(fault.NotFound, "not_found", "no request %q", id)
		}
		if err != nil {
			return err
		}
		now := s.now().UTC()
		if r.Status != store.RequestPending {
			return fault.New(fault.Conflict, "request_closed", "request %s is %s", r.ID, r.Status)
		}
		if !now.Before(r.ExpiresAt) {
			return fault.New(fault.Conflict, "request_expired", "request %s expired unanswered", r.ID)
		}
		if r.RequesterID == p.ID {
			return fault.New(fault.Forbidden, "own_request", "nobody may decide their own request")
		}
		if slices.Contains(r.Approvals, p.ID) {
			return fault.New(fault.Conflict, "already_approved", "you already approved this request")
		}
		r.DecisionNote = strings.TrimSpace(d.Note)
		if !d.Approve {
			r.Status, r.DecidedBy, r.DecidedAt = store.RequestDenied, p.ID, now
		} else {
			r.Approvals = append(r.Approvals, p.ID)
			if len(r.Approvals) >= r.ApprovalsNeeded {
				g, err := s.grant(ctx, tx, tenantID, store.SubjectMember, r.RequesterID, r.Permission, r.ResourceType, r.ResourceID,
					"request "+r.ID+": "+r.Reason, r.ID, r.Duration)
				if err != nil {
					return err
				}
				r.Status, r.DecidedBy, r.DecidedAt, r.GrantID = store.RequestApproved, p.ID, now, g.ID
			}
		}
		ok, err := tx.UpdateAccessRequest(ctx, r, store.RequestPending)
		if err != nil {
			return err
		}
		if !ok {
			return fault.New(fault.Conflict, "request_closed", "request %s was decided meanwhile", r.ID)
		}
		action := "request.approve"
		if !d.Approve {
			action = "request.deny"
		}
		if err := s.record(ctx, tx, tenantID, action, r.ID, map[string]any{"status": r.Status, "approvals": len(r.Approvals),
			"needed": r.ApprovalsNeeded, "grant": r.GrantID}); err != nil {
			return err
		}
		if r.Status != store.RequestPending {
			return identity.Notify(ctx, tx, now, tenantID, r.RequesterID, "request_"+r.Status, "Your access request was "+r.Status,
				map[string]any{"request": r.ID, "grant": r.GrantID})
		}
		return nil
	})
	return r, wrapErr("decide", err)
}

// Cancel withdraws the caller's own pending request.
func (s *Service) Cancel(ctx context.Context, tenantID, id string) error {
	p := authz.ActorOf(ctx)
	return wrapErr("cancel", s.store.Update(ctx, func(tx store.Tx) error {
		r, err := tx.GetAccessRequest(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && r.RequesterID != p.ID {
			return fault.New(fault.NotFound, "not_found", "no request %q of yours", id)
		}
		if err != nil {
			return err
		}
		r.Status, r.DecidedBy, r.DecidedAt = store.RequestCanceled, p.ID, s.now().UTC()
		ok, err := tx.UpdateAccessRequest(ctx, r, store.RequestPending)
		if err != nil {
			return err
		}
		if !ok {
			return fault.New(fault.Conflict, "request_closed", "request %s is no longer pending", id)
		}
		return s.record(ctx, tx, tenantID, "request.cancel", id, nil)
	}))
}

// ExpireRequests closes pending requests nobody answered in time.
func (s *Service) ExpireRequests(ctx context.Context) (int, error) {
	var n int
	err := s.store.Update(ctx, func(tx store.Tx) error {
		now := s.now().UTC()
		rs, err := tx.PendingRequestsExpiredBy(ctx, now, 500)
		if err != nil {
			return err
		}
		n = 0
		for i := range rs {
			r := &rs[i]
			r.Status, r.DecidedAt = store.RequestExpired, now
			ok, err := tx.UpdateAccessRequest(ctx, r, store.RequestPending)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			n++
			if err := s.record(ctx, tx, r.TenantID, "request.expire", r.ID, nil); err != nil {
				return err
			}
			if err := identity.Notify(ctx, tx, now, r.TenantID, r.RequesterID, "request_expired", "Your access request expired unanswered",
				map[string]any{"request": r.ID}); err != nil {
				return err
			}
		}
		return nil
	})
	return n, wrapErr("expire requests", err)
}
