package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/tenant"
)

// Token prefixes of tenant principals, recognizable by secret scanners.
const (
	PersonalTokenPrefix = "cust_pat_"
	RobotTokenPrefix    = "cust_rbt_"
	SessionPrefix       = "cust_ses_"
)

// touchEvery throttles last-use writes: a token or session used many times
// a minute is written once a minute.
const touchEvery = time.Minute

// ErrTenantInactive refuses the principals of a suspended or shredded
// tenant.
var ErrTenantInactive = fault.New(fault.Forbidden, "tenant_inactive", "this tenant is suspended")

// subject checks that a token's or session's subject is still active and
// returns the principal's kind and role.
func subject(ctx context.Context, tx store.Tx, tenantID, typ, id string) (kind, role string, mfa bool, err error) {
	switch typ {
	case store.SubjectMember:
		m, err := tx.GetMember(ctx, tenantID, id)
		if err != nil {
			return "", "", false, err
		}
		if m.Status != store.MemberActive {
			return "", "", false, fault.ErrUnauthenticated
		}
		return authz.KindMember, m.Role, m.MFA, nil
	case store.SubjectRobot:
		r, err := tx.GetRobot(ctx, tenantID, id)
		if err != nil {
			return "", "", false, err
		}
		if r.Status != store.RobotActive {
			return "", "", false, fault.ErrUnauthenticated
		}
		return authz.KindRobot, "", false, nil
	}
	return "", "", false, fault.ErrUnauthenticated
}

// tenantPrincipal finishes a tenant principal inside the lookup's
// transaction: the tenant must be active, and the subject's grants come
// from the index when it holds the tenant's current access version.
func (s *Service) tenantPrincipal(ctx context.Context, tx store.Tx, p *authz.Principal, now time.Time) error {
	t, err := tx.GetTenant(ctx, p.TenantID)
	if err != nil {
		return err
	}
	v, err := tx.AccessVersion(ctx, p.TenantID)
	if err != nil {
		return err
	}
	return s.finishPrincipal(ctx, tx, p, t.Status, v, now)
}

// finishPrincipal refuses a principal of an inactive tenant and gives it
// its grants as of access version v.
func (s *Service) finishPrincipal(ctx context.Context, tx store.Tx, p *authz.Principal, tenantStatus string, v int64, now time.Time) error {
	if tenantStatus != store.TenantActive {
		return ErrTenantInactive
	}
	set, ok := s.grants.Lookup(p.TenantID, v, p.ID)
	if !ok {
		gs, err := tx.ListGrants(ctx, store.GrantFilter{TenantID: p.TenantID, LiveAt: now})
		if err != nil {
			return err
		}
		by := map[string][]authz.GrantRef{}
		for _, g := range gs {
			by[g.SubjectID] = append(by[g.SubjectID], authz.GrantRef{ID: g.ID, Perm: authz.Permission(g.Permission),
				Resource: authz.Resource{Type: g.ResourceType, ID: g.ResourceID}, ExpiresAt: g.ExpiresAt})
		}
		s.grants.Store(p.TenantID, v, by)
		set, _ = s.grants.Lookup(p.TenantID, v, p.ID)
	}
	p.Grants = set
	return nil
}

func notFoundIsUnauthenticated(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fault.ErrUnauthenticated
	}
	if _, ok := fault.As(err); ok {
		return err
	}
	return fmt.Errorf("auth: %w", err)
}

// ErrTokenPending refuses a robot's token that waits for a second owner or
// admin to approve it (the tenant's robot dual control). Only its holder
// can present it, so saying why costs nothing.
var ErrTokenPending = fault.New(fault.Unauthenticated, "token_pending_approval",
	"this robot token waits for an owner or admin other than its issuer to approve it (custodia robot approve-token)")

// cachedToken is what authenticating a token read: the principal (its
// grants are judged at each request's time) and the token's own times.
type cachedToken struct {
	p         authz.Principal
	expiresAt time.Time
	lastUsed  time.Time
	tokenID   string
}

func (s *Service) authenticateToken(ctx context.Context, token string) (*authz.Principal, error) {
	now := s.now()
	hash := Hash(token)
	if c, ok := s.tokens.Get(ctx, string(hash)); ok {
		if !now.Before(c.expiresAt) {
			return nil, fault.ErrUnauthenticated
		}
		p := c.p
		p.Scopes = slices.Clone(c.p.Scopes)
		s.touchToken(ctx, c.tokenID, c.lastUsed, now)
		return &p, nil
	}
	stamp, cacheable := s.tokens.Stamp()
	var p *authz.Principal
	var rec *store.APIToken
	// One read gives the token, its subject's state and its tenant's.
	err := s.store.View(ctx, func(tx store.Tx) error {
		a, err := tx.GetTokenAuth(ctx, hash)
		if err != nil {
			return err
		}
		rec = &a.Token
		if !rec.RevokedAt.IsZero() || !now.Before(rec.ExpiresAt) {
			return fault.ErrUnauthenticated
		}
		if rec.Pending {
			return ErrTokenPending
		}
		var kind string
		switch {
		case rec.SubjectType == store.SubjectMember && a.SubjectStatus == store.MemberActive:
			kind = authz.KindMember
		case rec.SubjectType == store.SubjectRobot && a.SubjectStatus == store.RobotActive:
			kind = authz.KindRobot
		default:
			return fault.ErrUnauthenticated
		}
		p = &authz.Principal{Kind: kind, ID: rec.SubjectID, TenantID: rec.TenantID, Role: a.Role, Via: rec.ID}
		if len(rec.Scopes) > 0 {
			p.Scopes = make([]authz.Permission, len(rec.Scopes))
			for i, sc := range rec.Scopes {
				p.Scopes[i] = authz.Permission(sc)
			}
		}
		// A person's token is held to the tenant's second-factor rule as
		// their sessions are: without an enrolled factor it only enrolls.
		if kind == authz.KindMember && !a.MFA {
			pol, err := tenant.ReadPolicy(ctx, tx, rec.TenantID)
			if err != nil {
				return err
			}
			if pol.RequireMFA {
				p.Scopes, p.MFAPending = mfaPending, true
			}
		}
		return s.finishPrincipal(ctx, tx, p, a.TenantStatus, a.AccessVersion, now)
	})
	if err != nil {
		return nil, notFoundIsUnauthenticated(err)
	}
	if cacheable {
		c := cachedToken{p: *p, expiresAt: rec.ExpiresAt, lastUsed: rec.LastUsedAt, tokenID: rec.ID}
		c.p.Scopes = slices.Clone(p.Scopes)
		s.tokens.Put(string(hash), c, stamp, 512)
	}
	s.touchToken(ctx, rec.ID, rec.LastUsedAt, now)
	return p, nil
}

// touchToken records a token's use at most once every touchEvery.
func (s *Service) touchToken(ctx context.Context, id string, lastUsed, now time.Time) {
	if now.Sub(lastUsed) >= touchEvery {
		_ = s.store.Update(ctx, func(tx store.Tx) error { return tx.TouchAPIToken(ctx, id, now.UTC()) })
	}
}

// mfaPending are the permissions of a member who must enroll a second
// factor before doing anything else.
var mfaPending = []authz.Permission{authz.Self, authz.TenantsRead}

func (s *Service) authenticateSession(ctx context.Context, token string) (*authz.Principal, error) {
	now := s.now()
	var p *authz.Principal
	var ses *store.Session
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		ses, err = tx.GetSessionByHash(ctx, Hash(token))
		if err != nil {
			return err
		}
		pol, err := tenant.ReadPolicy(ctx, tx, ses.TenantID)
		if err != nil {
			return err
		}
		if !ses.RevokedAt.IsZero() || !now.Before(ses.ExpiresAt) || !now.Before(ses.LastSeenAt.Add(pol.SessionIdle())) {
			return fault.ErrUnauthenticated
		}
		kind, role, hasMFA, err := subject(ctx, tx, ses.TenantID, store.SubjectMember, ses.MemberID)
		if err != nil {
			return err
		}
		p = &authz.Principal{Kind: kind, ID: ses.MemberID, TenantID: ses.TenantID, Role: role, Via: ses.ID, MFA: ses.MFA}
		if pol.RequireMFA && (!hasMFA || !ses.MFA) {
			p.Scopes, p.MFAPending = mfaPending, true
		}
		return s.tenantPrincipal(ctx, tx, p, now)
	})
	if err != nil {
		return nil, notFoundIsUnauthenticated(err)
	}
	if now.Sub(ses.LastSeenAt) >= touchEvery {
		_ = s.store.Update(ctx, func(tx store.Tx) error { return tx.TouchSession(ctx, ses.ID, now.UTC()) })
	}
	return p, nil
}

// Grants exposes the grant index (for benchmarks and the vault).
func (s *Service) Grants() *authz.Index { return s.grants }

// GrantUsed records that a grant authorized a request, for access reviews
// ("last used") and offboarding reports. Writes are throttled to one a
// minute per grant per node; a failed write is only a stale "last used".
func (s *Service) GrantUsed(ctx context.Context, grantID string) {
	now := s.now()
	if last, ok := s.grantUse.Load(grantID); ok && now.Sub(last.(time.Time)) < touchEvery {
		return
	}
	s.grantUse.Store(grantID, now)
	_ = s.store.Update(ctx, func(tx store.Tx) error { return tx.TouchGrant(ctx, grantID, now.UTC()) })
}
