package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/tenant"
)

// Staff break-glass: the operator's staff may reveal one of a tenant's
// credentials in an emergency only when the tenant's policy allows it,
// with a reason, for a limited time, after a tenant admin approves when
// the policy asks for that. The tenant's admins are told at each step, and
// each step is in both the tenant's log and the operator's.
//
// A pending request waits for an answer at most the policy's
// request_ttl_hours (24 by default), as access requests do: approving it
// later would open a window long after the emergency it was asked for.
// Its deadline is kept in ExpiresAt until a decision replaces it with the
// window's end.

// BreakGlassExpired is the status shown for a pending request whose
// deadline passed unanswered; it can no longer be decided or used.
const BreakGlassExpired = "expired"

// maxBreakGlassReason bounds a request's or a decision's reason.
const maxBreakGlassReason = 500

// BreakGlassInput asks for emergency access to one credential.
type BreakGlassInput struct {
	Credential string `json:"credential"`
	Reason     string `json:"reason"`
}

// BreakGlassDecision is a tenant admin's optional note on an approval or
// denial, kept in both audit logs.
type BreakGlassDecision struct {
	Reason string `json:"reason,omitempty"`
}

// breakGlassReason trims a reason and checks it is one line of text of at
// most maxBreakGlassReason bytes (as fetch purposes and reveal reasons
// are): a reason is shown to the tenant's admins and kept in both logs,
// where control or bidirectional characters could disguise what it says.
func breakGlassReason(reason string, required bool) (string, error) {
	reason = strings.TrimSpace(reason)
	if required && (reason == "" || len(reason) > maxBreakGlassReason) {
		return "", invalid("reason_required", "say why you must see this credential (reason, 1 to %d characters)", maxBreakGlassReason)
	}
	if len(reason) > maxBreakGlassReason {
		return "", invalid("invalid_reason", "reason must be at most %d characters", maxBreakGlassReason)
	}
	if !oneLine(reason) {
		return "", invalid("invalid_reason", "reason must be one line of text, without control characters")
	}
	return reason, nil
}

// windowEnd is when an approved request's window closes: its stored end,
// or the policy's minutes as they are now counted from when it opened, if
// that is sooner. A tenant that lowers break_glass_minutes (perhaps
// because a window was too long) shortens windows already open; raising
// them lengthens none. Requests approved before DecidedAt was kept have
// only their stored end.
func windowEnd(b *store.BreakGlass, pol tenant.Policy) time.Time {
	end := b.ExpiresAt
	if b.DecidedAt.IsZero() {
		return end
	}
	if e := b.DecidedAt.Add(time.Duration(pol.BreakGlassMinutes) * time.Minute); e.Before(end) {
		end = e
	}
	return end
}

// errWindowClosed refuses a reveal after b's window (windowEnd) closed,
// saying so when the policy's lowered minutes closed it early.
func errWindowClosed(b *store.BreakGlass, pol tenant.Policy) error {
	end := windowEnd(b, pol)
	if end.Equal(b.ExpiresAt) {
		return fault.New(fault.Forbidden, "break_glass_expired", "this request's window closed at %s", end.Format(time.RFC3339))
	}
	return fault.New(fault.Forbidden, "break_glass_expired", "this request's window closed at %s: the tenant's policy now allows "+
		"%d minutes from its approval", end.Format(time.RFC3339), pol.BreakGlassMinutes)
}

func errRequestExpired(kind fault.Kind, b *store.BreakGlass, at time.Time) error {
	return fault.New(kind, "request_expired", "break-glass request %q expired unanswered at %s; the operator may ask again",
		b.ID, at.Format(time.RFC3339))
}

// BreakGlass is a break-glass request as both sides see it.
type BreakGlass struct {
	ID           string    `json:"id"`
	OperatorID   string    `json:"operator_id"`
	CredentialID string    `json:"credential_id"`
	Reason       string    `json:"reason"`
	Minutes      int       `json:"minutes"`
	Status       string    `json:"status"`
	RequestedAt  time.Time `json:"requested_at"`
	DecidedBy    string    `json:"decided_by,omitempty"`
	DecidedAt    time.Time `json:"decided_at,omitzero"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	Reveals      int       `json:"reveals"`
	// Open reports whether the operator may reveal now.
	Open bool `json:"open"`
}

// breakGlassView is b as pol, the tenant's policy now, makes it: the same
// rules as deciding and revealing, so that a list never shows pending or
// open a request a decision or a reveal would refuse as expired. ExpiresAt
// is when a pending request lapses or an open window closes under those
// rules; Minutes stay those stored.
func (s *Service) breakGlassView(b *store.BreakGlass, pol tenant.Policy) BreakGlass {
	now := s.now()
	status, expires, open := b.Status, b.ExpiresAt, false
	switch b.Status {
	case store.BreakGlassPending:
		if expires = pol.BreakGlassDeadline(b); !now.Before(expires) {
			status = BreakGlassExpired
		}
	case store.BreakGlassApproved:
		expires = windowEnd(b, pol)
		open = now.Before(expires) && pol.BreakGlass != tenant.BreakGlassOff
	}
	// Minutes are the policy's when the request was made, and those an
	// approval opened the window for once approved.
	return BreakGlass{ID: b.ID, OperatorID: b.OperatorID, CredentialID: b.CredentialID, Reason: b.Reason, Minutes: b.Minutes, Status: status,
		RequestedAt: b.RequestedAt, DecidedBy: b.DecidedBy, DecidedAt: b.DecidedAt, ExpiresAt: expires, Reveals: b.Reveals, Open: open}
}

// recordBoth writes the same event in the tenant's log and the operator's.
func (s *Service) recordBoth(ctx context.Context, tx store.AuditTx, tenantID, action, target string, details map[string]any) error {
	return audit.AppendBoth(ctx, tx, s.now(), tenantID, action, target, details)
}

// RequestBreakGlass records an operator's emergency request. Under the
// "notify" policy it is open at once; under "approval" it waits for a
// tenant admin; under "off" (the default) it is refused.
func (s *Service) RequestBreakGlass(ctx context.Context, tenantID string, in BreakGlassInput) (*BreakGlass, error) {
	p := authz.From(ctx)
	if p == nil || p.Kind != authz.KindOperator {
		return nil, fault.New(fault.Forbidden, "operators_only", "break-glass is for the operator's staff")
	}
	reason, err := breakGlassReason(in.Reason, true)
	if err != nil {
		return nil, err
	}
	in.Reason = reason
	var out BreakGlass
	err = s.store.Update(ctx, func(tx store.Tx) error {
		pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if pol.BreakGlass == tenant.BreakGlassOff {
			return fault.New(fault.Forbidden, "break_glass_disabled",
				"this tenant's policy does not allow break-glass: its owner can set break_glass to \"approval\" or \"notify\"")
		}
		c, err := Lookup(ctx, tx, tenantID, in.Credential)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		b := &store.BreakGlass{ID: store.NewID("brk_"), TenantID: tenantID, OperatorID: p.ID, CredentialID: c.ID, Reason: in.Reason,
			Minutes: pol.BreakGlassMinutes, Status: store.BreakGlassPending, RequestedAt: now}
		details := map[string]any{"credential": c.ID, "name": c.Name, "reason": in.Reason, "status": store.BreakGlassPending, "minutes": b.Minutes}
		if pol.BreakGlass == tenant.BreakGlassNotify {
			b.Status, b.DecidedBy, b.DecidedAt, b.ExpiresAt = store.BreakGlassApproved, "policy", now, now.Add(time.Duration(b.Minutes)*time.Minute)
			details["status"] = b.Status
		} else {
			b.ExpiresAt = now.Add(pol.RequestTTL())
			details["answer_by"] = b.ExpiresAt
		}
		if err := tx.InsertBreakGlass(ctx, b); err != nil {
			return err
		}
		subject := fmt.Sprintf("Operator staff asked to reveal %s", c.Name)
		if b.Status == store.BreakGlassPending {
			subject += ": your approval is needed"
		}
		if _, err := identity.NotifyAdmins(ctx, tx, now, tenantID, "break_glass_requested", subject,
			map[string]any{"break_glass": b.ID, "credential": c.ID, "operator": p.ID, "reason": in.Reason, "status": b.Status}); err != nil {
			return err
		}
		out = s.breakGlassView(b, pol)
		return s.recordBoth(ctx, tx, tenantID, "breakglass.request", b.ID, details)
	})
	if err != nil {
		return nil, wrapErr("break-glass request", err)
	}
	return &out, nil
}

// DecideBreakGlass approves or denies a pending request that has not
// lapsed: a tenant admin (requests.decide), with an optional reason kept in
// both logs. Approval opens it for the policy's minutes as they are now,
// which may be fewer than when it was asked for.
func (s *Service) DecideBreakGlass(ctx context.Context, tenantID, id string, approve bool, in BreakGlassDecision) (*BreakGlass, error) {
	p := authz.From(ctx)
	if p == nil || p.Kind != authz.KindMember {
		return nil, fault.New(fault.Forbidden, "members_only", "a tenant admin decides break-glass requests")
	}
	reason, err := breakGlassReason(in.Reason, false)
	if err != nil {
		return nil, err
	}
	var out BreakGlass
	err = s.store.Update(ctx, func(tx store.Tx) error {
		b, err := tx.GetBreakGlass(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			return fault.New(fault.NotFound, "not_found", "no break-glass request %q", id)
		}
		if err != nil {
			return err
		}
		if b.Status != store.BreakGlassPending {
			return fault.New(fault.Conflict, "already_decided", "break-glass request %q is already %s", id, b.Status)
		}
		now := s.now().UTC()
		// The policy as it is now, not as it was when the operator asked.
		pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if deadline := pol.BreakGlassDeadline(b); !now.Before(deadline) {
			return errRequestExpired(fault.Conflict, b, deadline)
		}
		details := map[string]any{"credential": b.CredentialID, "by": p.ID}
		b.DecidedBy, b.DecidedAt, b.Status, b.ExpiresAt = p.ID, now, store.BreakGlassDenied, time.Time{}
		action := "breakglass.deny"
		if approve {
			// Turning break-glass off ends pending requests; one that
			// slipped past (a decision racing the policy change) still
			// does not open.
			if pol.BreakGlass == tenant.BreakGlassOff {
				return fault.New(fault.Forbidden, "break_glass_disabled", "this tenant's policy no longer allows break-glass")
			}
			b.Status, b.Minutes, action = store.BreakGlassApproved, pol.BreakGlassMinutes, "breakglass.approve"
			b.ExpiresAt = now.Add(time.Duration(b.Minutes) * time.Minute)
			details["minutes"] = pol.BreakGlassMinutes
		}
		details["expires_at"] = b.ExpiresAt
		if reason != "" {
			details["reason"] = reason
		}
		if err := tx.UpdateBreakGlass(ctx, b); err != nil {
			return err
		}
		out = s.breakGlassView(b, pol)
		return s.recordBoth(ctx, tx, tenantID, action, b.ID, details)
	})
	if err != nil {
		return nil, wrapErr("break-glass decide", err)
	}
	return &out, nil
}

// RevealBreakGlass shows the requesting operator the credential's current
// secret while the request is open. Each reveal is in both logs and every
// admin of the tenant is told.
func (s *Service) RevealBreakGlass(ctx context.Context, tenantID, id string) (*Secret, error) {
	p := authz.From(ctx)
	if p == nil || p.Kind != authz.KindOperator {
		return nil, fault.New(fault.Forbidden, "operators_only", "break-glass is for the operator's staff")
	}
	var out *Secret
	err := s.store.Update(ctx, func(tx store.Tx) error {
		b, err := tx.GetBreakGlass(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && b.OperatorID != p.ID {
			return fault.New(fault.NotFound, "not_found", "no break-glass request %q of yours", id)
		}
		if err != nil {
			return err
		}
		now := s.now().UTC()
		// The policy is read again at each reveal: a tenant that turned
		// break-glass off ends every open request at once, and one that
		// lowered its minutes shortens open windows.
		pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		switch {
		case b.Status == store.BreakGlassPending:
			if deadline := pol.BreakGlassDeadline(b); !now.Before(deadline) {
				return errRequestExpired(fault.Forbidden, b, deadline)
			}
			return fault.New(fault.Forbidden, "approval_pending", "a tenant admin has not approved this request yet")
		case b.Status == store.BreakGlassEnded:
			return fault.New(fault.Forbidden, "break_glass_ended", "this request was ended when the tenant turned break-glass off; ask again if the policy allows it")
		case b.Status != store.BreakGlassApproved:
			return fault.New(fault.Forbidden, "break_glass_denied", "this request was %s", b.Status)
		case !now.Before(windowEnd(b, pol)):
			return errWindowClosed(b, pol)
		case pol.BreakGlass == tenant.BreakGlassOff:
			return fault.New(fault.Forbidden, "break_glass_disabled", "this tenant's policy no longer allows break-glass")
		}
		c, err := tx.GetCredential(ctx, tenantID, b.CredentialID)
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound(b.CredentialID)
		}
		if err != nil {
			return err
		}
		f, v, err := s.open(ctx, tx, c, 0)
		if err != nil {
			return err
		}
		b.Reveals++
		if err := tx.UpdateBreakGlass(ctx, b); err != nil {
			return err
		}
		if _, err := identity.NotifyAdmins(ctx, tx, now, tenantID, "break_glass_revealed", fmt.Sprintf("Operator staff revealed %s", c.Name),
			map[string]any{"break_glass": b.ID, "credential": c.ID, "operator": p.ID, "reason": b.Reason}); err != nil {
			return err
		}
		out = secretOf(c, v, f)
		return s.recordBoth(ctx, tx, tenantID, "breakglass.reveal", b.ID, map[string]any{"credential": c.ID, "name": c.Name,
			"version": v.Version, "reason": b.Reason})
	})
	if err != nil {
		return nil, wrapErr("break-glass reveal", err)
	}
	return out, nil
}

// BreakGlassRequests lists a tenant's break-glass requests, newest first.
func (s *Service) BreakGlassRequests(ctx context.Context, tenantID string) ([]BreakGlass, error) {
	var out []BreakGlass
	err := s.store.View(ctx, func(tx store.Tx) error {
		pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		bs, err := tx.ListBreakGlass(ctx, tenantID, 200)
		for i := range bs {
			out = append(out, s.breakGlassView(&bs[i], pol))
		}
		return err
	})
	return out, wrapErr("break-glass list", err)
}
