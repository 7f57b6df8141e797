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

// BreakGlassInput asks for emergency access to one credential.
type BreakGlassInput struct {
	Credential string `json:"credential"`
	Reason     string `json:"reason"`
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

func (s *Service) breakGlassView(b *store.BreakGlass) BreakGlass {
	return BreakGlass{ID: b.ID, OperatorID: b.OperatorID, CredentialID: b.CredentialID, Reason: b.Reason, Minutes: b.Minutes, Status: b.Status,
		RequestedAt: b.RequestedAt, DecidedBy: b.DecidedBy, DecidedAt: b.DecidedAt, ExpiresAt: b.ExpiresAt, Reveals: b.Reveals,
		Open: b.Status == store.BreakGlassApproved && s.now().Before(b.ExpiresAt)}
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
	in.Reason = strings.TrimSpace(in.Reason)
	if in.Reason == "" || len(in.Reason) > 500 {
		return nil, invalid("reason_required", "say why you must see this credential (reason, 1 to 500 characters)")
	}
	var out BreakGlass
	err := s.store.Update(ctx, func(tx store.Tx) error {
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
		if pol.BreakGlass == tenant.BreakGlassNotify {
			b.Status, b.DecidedBy, b.DecidedAt, b.ExpiresAt = store.BreakGlassApproved, "policy", now, now.Add(time.Duration(b.Minutes)*time.Minute)
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
		out = s.breakGlassView(b)
		return s.recordBoth(ctx, tx, tenantID, "breakglass.request", b.ID, map[string]any{"credential": c.ID, "name": c.Name,
			"reason": in.Reason, "status": b.Status, "minutes": b.Minutes})
	})
	if err != nil {
		return nil, wrapErr("break-glass request", err)
	}
	return &out, nil
}

// DecideBreakGlass approves or denies a pending request: a tenant admin
// (requests.decide). Approval opens it for the policy's minutes.
func (s *Service) DecideBreakGlass(ctx context.Context, tenantID, id string, approve bool) (*BreakGlass, error) {
	p := authz.From(ctx)
	if p == nil || p.Kind != authz.KindMember {
		return nil, fault.New(fault.Forbidden, "members_only", "a tenant admin decides break-glass requests")
	}
	var out BreakGlass
	err := s.store.Update(ctx, func(tx store.Tx) error {
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
		b.DecidedBy, b.DecidedAt, b.Status = p.ID, now, store.BreakGlassDenied
		action := "breakglass.deny"
		if approve {
			b.Status, b.ExpiresAt, action = store.BreakGlassApproved, now.Add(time.Duration(b.Minutes)*time.Minute), "breakglass.approve"
		}
		if err := tx.UpdateBreakGlass(ctx, b); err != nil {
			return err
		}
		out = s.breakGlassView(b)
		return s.recordBoth(ctx, tx, tenantID, action, b.ID, map[string]any{"credential": b.CredentialID, "by": p.ID,
			"expires_at": b.ExpiresAt})
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
		switch {
		case b.Status == store.BreakGlassPending:
			return fault.New(fault.Forbidden, "approval_pending", "a tenant admin has not approved this request yet")
		case b.Status == store.BreakGlassEnded:
			return fault.New(fault.Forbidden, "break_glass_ended", "this request was ended when the tenant turned break-glass off; ask again if the policy allows it")
		case b.Status != store.BreakGlassApproved:
			return fault.New(fault.Forbidden, "break_glass_denied", "this request was %s", b.Status)
		case !now.Before(b.ExpiresAt):
			return fault.New(fault.Forbidden, "break_glass_expired", "this request's window closed at %s", b.ExpiresAt.Format(time.RFC3339))
		}
		// The policy is read again: a tenant that turned break-glass off
		// ends every open request at once.
		pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if pol.BreakGlass == tenant.BreakGlassOff {
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
		bs, err := tx.ListBreakGlass(ctx, tenantID, 200)
		for i := range bs {
			out = append(out, s.breakGlassView(&bs[i]))
		}
		return err
	})
	return out, wrapErr("break-glass list", err)
}
