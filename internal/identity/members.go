package identity

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
)

// InviteTokenPrefix marks invitation tokens.
const InviteTokenPrefix = "cust_inv_"

// InviteTTL is how long an invitation stays valid.
const InviteTTL = 7 * 24 * time.Hour

// Challenge kinds.
const (
	kindInvite    = "invite"
	kindSigninMFA = "signin_mfa"
	kindTOTP      = "totp_enroll"
	kindPasskey   = "passkey"
	kindSSO       = "sso"
)

// InviteInput invites a person into a tenant.
type InviteInput struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
	Role  string `json:"role"`
}

// Invitation is a new member and the token they accept it with, shown once.
type Invitation struct {
	Member    *store.Member
	Token     keys.Secret
	ExpiresAt time.Time
}

func (in *InviteInput) validate() error {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return err
	}
	in.Email, in.Name = email, strings.TrimSpace(in.Name)
	if len(in.Name) > 200 {
		return fault.New(fault.Invalid, "invalid_name", "name must be at most 200 characters")
	}
	if !authz.ValidRole(in.Role) {
		return fault.New(fault.Invalid, "invalid_role", "role must be one of %s", strings.Join(authz.Roles, ", "))
	}
	return nil
}

// mayManage reports whether the actor may give or take away role: owners
// manage everyone, admins everyone but owners.
func mayManage(actor *authz.Principal, role string) bool {
	return actor.Kind == authz.KindMember && authz.Rank(actor.Role) >= authz.Rank(role) && authz.Rank(actor.Role) >= authz.Rank(authz.RoleAdmin)
}

// Invite creates an invited member. Admins may invite anyone but owners;
// owners may invite owners.
func (s *Service) Invite(ctx context.Context, tenantID string, in InviteInput) (*Invitation, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	actor := authz.ActorOf(ctx)
	if !mayManage(actor, in.Role) {
		return nil, fault.New(fault.Forbidden, "role_too_high", "only an owner may invite an owner")
	}
	var inv *Invitation
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		inv, err = s.invite(ctx, tx, tenantID, in)
		return err
	})
	return inv, wrapErr("invite", err)
}

func (s *Service) invite(ctx context.Context, tx store.Tx, tenantID string, in InviteInput) (*Invitation, error) {
	now := s.now().UTC()
	m := &store.Member{ID: store.NewID("mem_"), TenantID: tenantID, Email: in.Email, Name: in.Name, Role: in.Role,
		Status: store.MemberInvited, CreatedAt: now, UpdatedAt: now}
	if err := tx.InsertMember(ctx, m); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, fault.New(fault.Conflict, "member_exists", "a member with that email already exists")
		}
		return nil, err
	}
	tok, hash := auth.NewToken(InviteTokenPrefix)
	c := &store.Challenge{ID: store.NewID("chl_"), Kind: kindInvite, Hash: hash, TenantID: tenantID, MemberID: m.ID,
		CreatedAt: now, ExpiresAt: now.Add(InviteTTL)}
	if err := tx.InsertChallenge(ctx, c); err != nil {
		return nil, err
	}
	if err := s.record(ctx, tx, tenantID, "member.invite", m.ID, map[string]any{"role": m.Role, "expires_at": c.ExpiresAt}); err != nil {
		return nil, err
	}
	if err := tellAdminsOfNewAdmin(ctx, tx, now, tenantID, m, "invited"); err != nil {
		return nil, err
	}
	return &Invitation{Member: m, Token: tok, ExpiresAt: c.ExpiresAt}, nil
}

// InviteOwner lets an operator invite a tenant's first owner. It is refused
// once the tenant has an active owner, so an operator can never make
// themselves a member of a running tenant.
func (s *Service) InviteOwner(ctx context.Context, ref string, in InviteInput) (*Invitation, error) {
	in.Role = authz.RoleOwner
	if err := in.validate(); err != nil {
		return nil, err
	}
	var inv *Invitation
	err := s.store.Update(ctx, func(tx store.Tx) error {
		t, err := tenantOf(ctx, tx, ref)
		if err != nil {
			return err
		}
		if t.Status != store.TenantActive {
			return fault.New(fault.Conflict, "tenant_inactive", "tenant %q is %s", t.Slug, t.Status)
		}
		n, err := tx.CountOwners(ctx, t.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			return fault.New(fault.Conflict, "has_owner", "tenant %q already has an owner; its owners invite members", t.Slug)
		}
		if inv, err = s.invite(ctx, tx, t.ID, in); err != nil {
			return err
		}
		return audit.Append(ctx, tx, s.now(), audit.Entry{Log: store.OperatorLog, Action: "tenant.owner_invite", Target: t.ID,
			Details: map[string]any{"member": inv.Member.ID}})
	})
	return inv, wrapErr("invite owner", err)
}

// AcceptInput accepts an invitation.
type AcceptInput struct {
	Token    string `json:"token"`
	Name     string `json:"name,omitempty"`
	Password string `json:"password,omitempty"`
}

// Accept activates an invited member with a password (or none, when the
// tenant signs in only through SSO). The invitation is spent.
func (s *Service) Accept(ctx context.Context, in AcceptInput) (*store.Member, error) {
	if !strings.HasPrefix(in.Token, InviteTokenPrefix) {
		return nil, invalidInvite
	}
	var c *store.Challenge
	var m *store.Member
	var t *store.Tenant
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		if c, err = tx.GetChallenge(ctx, kindInvite, auth.Hash(in.Token)); err != nil {
			return err
		}
		if m, err = tx.GetMember(ctx, c.TenantID, c.MemberID); err != nil {
			return err
		}
		t, err = tx.GetTenant(ctx, c.TenantID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || err == nil && (!s.now().Before(c.ExpiresAt) || m.Status != store.MemberInvited) {
		return nil, invalidInvite
	}
	if err != nil {
		return nil, wrapErr("accept", err)
	}
	if name := strings.TrimSpace(in.Name); name != "" {
		m.Name = name
	}
	hash := ""
	if in.Password != "" {
		if err := s.o.Policy.Check(in.Password, m.Email, m.Name, t.Name, t.Slug); err != nil {
			return nil, err
		}
		if hash, err = s.o.Hasher.Hash(ctx, []byte(in.Password)); err != nil {
			return nil, wrapErr("hash password", err)
		}
	}
	err = s.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.UseChallenge(ctx, c.ID, s.now().UTC()); err != nil {
			return invalidInvite
		}
		now := s.now().UTC()
		m.Status, m.PasswordHash, m.UpdatedAt = store.MemberActive, hash, now
		if err := tx.UpdateMember(ctx, m); err != nil {
			return err
		}
		ctx := audit.WithSource(ctx, withActor(audit.SourceFrom(ctx), audit.ActorPerson, m.ID))
		return s.record(ctx, tx, m.TenantID, "member.join", m.ID, map[string]any{"role": m.Role, "password": hash != ""})
	})
	if err != nil {
		return nil, wrapErr("accept", err)
	}
	return m, nil
}

var invalidInvite = fault.New(fault.Invalid, "invalid_invitation", "the invitation is invalid, used or expired")

func withActor(src audit.Source, typ, id string) audit.Source {
	src.ActorType, src.ActorID = typ, id
	return src
}

// Members lists a tenant's members.
func (s *Service) Members(ctx context.Context, tenantID string) ([]store.Member, error) {
	var out []store.Member
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListMembers(ctx, tenantID)
		return err
	})
	return out, wrapErr("list members", err)
}

// Member returns one member by ID or email.
func (s *Service) Member(ctx context.Context, tenantID, ref string) (*store.Member, error) {
	var m *store.Member
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		m, err = member(ctx, tx, tenantID, ref)
		return err
	})
	return m, wrapErr("get member", err)
}

// SetRole changes a member's role. The actor must outrank or equal both the
// old and the new role, and the tenant keeps at least one owner.
func (s *Service) SetRole(ctx context.Context, tenantID, ref, role string) (*store.Member, error) {
	if !authz.ValidRole(role) {
		return nil, fault.New(fault.Invalid, "invalid_role", "role must be one of %s", strings.Join(authz.Roles, ", "))
	}
	actor := authz.ActorOf(ctx)
	var m *store.Member
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		if m, err = member(ctx, tx, tenantID, ref); err != nil {
			return err
		}
		if m.Status == store.MemberOffboarded {
			return fault.New(fault.Conflict, "offboarded", "member %s was offboarded", m.ID)
		}
		if !mayManage(actor, m.Role) || !mayManage(actor, role) {
			return fault.New(fault.Forbidden, "role_too_high", "only an owner may change an owner or make one")
		}
		if m.Role == authz.RoleOwner && role != authz.RoleOwner && m.Status == store.MemberActive {
			if err := keepsOwner(ctx, tx, tenantID); err != nil {
				return err
			}
		}
		old := m.Role
		m.Role, m.UpdatedAt = role, s.now().UTC()
		if err := tx.UpdateMember(ctx, m); err != nil {
			return err
		}
		if err := s.record(ctx, tx, tenantID, "member.role", m.ID, map[string]any{"from": old, "to": role}); err != nil {
			return err
		}
		if old == authz.RoleOwner || old == authz.RoleAdmin {
			return nil
		}
		return tellAdminsOfNewAdmin(ctx, tx, m.UpdatedAt, tenantID, m, "promoted")
	})
	return m, wrapErr("set role", err)
}

// tellAdminsOfNewAdmin notifies the tenant's owners and admins that m is
// invited or promoted to owner or admin. A new admin is a second person
// for every two-person rule (robot dual control, reveal grants), so one
// admin inviting a second they control must not go unseen.
func tellAdminsOfNewAdmin(ctx context.Context, tx store.Tx, now time.Time, tenantID string, m *store.Member, how string) error {
	if m.Role != authz.RoleOwner && m.Role != authz.RoleAdmin {
		return nil
	}
	_, err := NotifyAdmins(ctx, tx, now, tenantID, "admin_"+how, "A member was "+how+" as "+m.Role,
		map[string]any{"member": m.ID, "email": m.Email, "role": m.Role, "by": authz.ActorOf(ctx).ID})
	return err
}

// keepsOwner refuses a change that would leave the tenant without an
// active owner (called before taking one away).
func keepsOwner(ctx context.Context, tx store.IdentityTx, tenantID string) error {
	n, err := tx.CountOwners(ctx, tenantID)
	if err != nil {
		return err
	}
	if n <= 1 {
		return fault.New(fault.Conflict, "last_owner", "a tenant must keep at least one owner; make another member owner first")
	}
	return nil
}

// MemberOf loads a member by ID or email inside tx.
func MemberOf(ctx context.Context, tx store.IdentityTx, tenantID, ref string) (*store.Member, error) {
	return member(ctx, tx, tenantID, ref)
}

// KeepsOwner is keepsOwner for the access domain (offboarding).
func KeepsOwner(ctx context.Context, tx store.IdentityTx, tenantID string) error {
	return keepsOwner(ctx, tx, tenantID)
}
