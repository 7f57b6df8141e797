package identity

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/tenant"
)

// Token lifetimes.
const (
	DefaultTokenTTL = 30 * 24 * time.Hour
	MaxPersonalTTL  = 90 * 24 * time.Hour
	MaxRobotTTL     = 365 * 24 * time.Hour
)

// TokenInput asks for an API token.
type TokenInput struct {
	Name string `json:"name"`
	// TTL is a Go duration ("720h"); default 30 days.
	TTL string `json:"ttl,omitempty"`
	// Scopes narrow the token; empty means everything its subject may do.
	Scopes []string `json:"scopes,omitempty"`
}

func (in *TokenInput) check(max time.Duration, allowed func(authz.Permission) bool) (time.Duration, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 100 {
		return 0, fault.New(fault.Invalid, "invalid_name", "token name must be 1 to 100 characters")
	}
	ttl := DefaultTokenTTL
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil || d <= 0 {
			return 0, fault.New(fault.Invalid, "invalid_ttl", "ttl must be a positive duration like 720h")
		}
		ttl = d
	}
	if ttl > max {
		return 0, fault.New(fault.Invalid, "invalid_ttl", "token lifetime may not exceed %s", max)
	}
	for _, sc := range in.Scopes {
		if !slices.Contains(authz.All, authz.Permission(sc)) || sc == string(authz.Public) {
			return 0, fault.New(fault.Invalid, "invalid_scope", "unknown scope %q", sc)
		}
		if !allowed(authz.Permission(sc)) {
			return 0, fault.New(fault.Forbidden, "scope_not_held", "a token cannot carry %q: its subject does not hold it", sc)
		}
	}
	return ttl, nil
}

// issued says who holds a new token and whether it waits.
type issued struct {
	// Pending: it authenticates nothing until another owner or admin
	// approves it (ApproveRobotToken).
	Pending bool
	// HeldBy, when set, is kept as the token's CreatedBy instead of the
	// caller: an AppRole login's token is held by whoever issued the secret
	// ID it logged in with, so dual control judges that person by it.
	HeldBy string
}

// issue inserts a token. Its CreatedBy is the person who holds it (see
// issued.HeldBy).
func (s *Service) issue(ctx context.Context, tx store.Tx, tenantID, subjectType, subjectID, prefix string, in TokenInput, ttl time.Duration,
	how issued) (keys.Secret, *store.APIToken, error) {
	now := s.now().UTC()
	tok, hash := auth.NewToken(prefix)
	by := authz.ActorOf(ctx).ID
	if how.HeldBy != "" {
		by = how.HeldBy
	}
	rec := &store.APIToken{ID: store.NewID("tok_"), TenantID: tenantID, SubjectType: subjectType, SubjectID: subjectID, Name: in.Name,
		Hash: hash, Scopes: in.Scopes, CreatedBy: by, CreatedAt: now, ExpiresAt: now.Add(ttl), Pending: how.Pending}
	if err := tx.InsertAPIToken(ctx, rec); err != nil {
		return nil, nil, err
	}
	details := map[string]any{"subject": subjectID, "subject_type": subjectType, "name": rec.Name, "scopes": rec.Scopes,
		"expires_at": rec.ExpiresAt}
	if how.Pending {
		details["pending_approval"] = true
	}
	err := s.record(ctx, tx, tenantID, "token.create", rec.ID, details)
	return tok, rec, err
}

// CreatePersonalToken issues an API token for the calling member. Its
// scopes may only name permissions the member holds through their role or
// a live grant (on the tenant, a group or one credential), and never more than the calling token or session carries: a
// scoped caller's new token inherits its scopes when none are given.
func (s *Service) CreatePersonalToken(ctx context.Context, in TokenInput) (keys.Secret, *store.APIToken, error) {
	p := authz.ActorOf(ctx)
	if p.Kind != authz.KindMember {
		return nil, nil, fault.New(fault.Forbidden, "members_only", "only a member can create a personal token")
	}
	if p.MFAPending {
		return nil, nil, fault.New(fault.Forbidden, "mfa_enrollment_required", "this organization requires a second factor: enroll one before creating tokens")
	}
	if len(in.Scopes) == 0 && p.Scopes != nil {
		for _, sc := range p.Scopes {
			in.Scopes = append(in.Scopes, string(sc))
		}
	}
	ttl, err := in.check(MaxPersonalTTL, func(perm authz.Permission) bool {
		// A grant on one credential or group is enough: the scope only
		// bounds the token, and each use is judged on its resource.
		return (p.Scopes == nil || slices.Contains(p.Scopes, perm)) && (p.Base(perm) || p.Grants.Holds(perm, s.now()))
	})
	if err != nil {
		return nil, nil, err
	}
	var tok keys.Secret
	var rec *store.APIToken
	err = s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		tok, rec, err = s.issue(ctx, tx, p.TenantID, store.SubjectMember, p.ID, auth.PersonalTokenPrefix, in, ttl, issued{})
		return err
	})
	return tok, rec, wrapErr("create token", err)
}

// Tokens lists a tenant's tokens, of one subject when subjectID is set.
func (s *Service) Tokens(ctx context.Context, tenantID, subjectID string) ([]store.APIToken, error) {
	var out []store.APIToken
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListAPITokens(ctx, tenantID, subjectID)
		return err
	})
	return out, wrapErr("list tokens", err)
}

// RevokeToken revokes a token. Members may revoke their own; admins any of
// the tenant's.
func (s *Service) RevokeToken(ctx context.Context, tenantID, id string, anyOwner bool) error {
	p := authz.ActorOf(ctx)
	return wrapErr("revoke token", s.store.Update(ctx, func(tx store.Tx) error {
		tok, err := tx.GetAPIToken(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && !anyOwner && tok.SubjectID != p.ID {
			return fault.New(fault.NotFound, "not_found", "no token %q", id)
		}
		if err != nil {
			return err
		}
		if err := tx.RevokeAPIToken(ctx, tenantID, id, s.now().UTC()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fault.New(fault.Conflict, "already_revoked", "token %q is already revoked", id)
			}
			return err
		}
		return s.record(ctx, tx, tenantID, "token.revoke", id, map[string]any{"subject": tok.SubjectID})
	}))
}

// RobotInput creates a robot.
type RobotInput struct {
	Name string `json:"name"`
	// Token asks for the robot's first token at once.
	Token *TokenInput `json:"token,omitempty"`
}

// CreateRobot creates a service account owned by the caller, and its first
// token (shown once).
func (s *Service) CreateRobot(ctx context.Context, tenantID string, in RobotInput) (*store.Robot, keys.Secret, *store.APIToken, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" || len(name) > 64 || strings.HasPrefix(name, "rbt_") || strings.ContainsAny(name, " /\t\n") {
		return nil, nil, nil, fault.New(fault.Invalid, "invalid_name", "robot name must be 1 to 64 characters without spaces or slashes, not starting with rbt_")
	}
	ti := TokenInput{Name: name + " token"}
	if in.Token != nil {
		ti = *in.Token
		if ti.Name == "" {
			ti.Name = name + " token"
		}
	}
	ttl, err := ti.check(MaxRobotTTL, func(authz.Permission) bool { return true })
	if err != nil {
		return nil, nil, nil, err
	}
	p := authz.ActorOf(ctx)
	var r *store.Robot
	var tok keys.Secret
	var rec *store.APIToken
	err = s.store.Update(ctx, func(tx store.Tx) error {
		now := s.now().UTC()
		r = &store.Robot{ID: store.NewID("rbt_"), TenantID: tenantID, Name: name, OwnerID: p.ID, Status: store.RobotActive, CreatedAt: now}
		if err := tx.InsertRobot(ctx, r); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fault.New(fault.Conflict, "robot_exists", "a robot named %q exists", name)
			}
			return err
		}
		if err := s.record(ctx, tx, tenantID, "robot.create", r.ID, map[string]any{"name": name, "owner": p.ID}); err != nil {
			return err
		}
		// A new robot holds no grant yet: its first token is live.
		var err error
		tok, rec, err = s.issue(ctx, tx, tenantID, store.SubjectRobot, r.ID, auth.RobotTokenPrefix, ti, ttl, issued{})
		return err
	})
	return r, tok, rec, wrapErr("create robot", err)
}

// RobotToken issues another token for a robot.
func (s *Service) RobotToken(ctx context.Context, tenantID, ref string, in TokenInput) (keys.Secret, *store.APIToken, error) {
	ttl, err := in.check(MaxRobotTTL, func(authz.Permission) bool { return true })
	if err != nil {
		return nil, nil, err
	}
	var tok keys.Secret
	var rec *store.APIToken
	err = s.store.Update(ctx, func(tx store.Tx) error {
		r, err := tx.GetRobot(ctx, tenantID, ref)
		if errors.Is(err, store.ErrNotFound) {
			return fault.New(fault.NotFound, "not_found", "no robot %q", ref)
		}
		if err != nil {
			return err
		}
		if r.Status != store.RobotActive {
			return fault.New(fault.Conflict, "robot_disabled", "robot %q is disabled", r.Name)
		}
		pending, err := needsSecondPerson(ctx, tx, tenantID, r.ID, in.Scopes, s.now())
		if err != nil {
			return err
		}
		tok, rec, err = s.issue(ctx, tx, tenantID, store.SubjectRobot, r.ID, auth.RobotTokenPrefix, in, ttl, issued{Pending: pending})
		if err != nil || !pending {
			return err
		}
		_, err = NotifyAdmins(ctx, tx, s.now().UTC(), tenantID, "robot_token_pending",
			"A robot's new token waits for your approval", map[string]any{"robot": r.Name, "token": rec.ID,
				"issued_by": rec.CreatedBy})
		return err
	})
	return tok, rec, wrapErr("robot token", err)
}

// needsSecondPerson reports whether a token for a robot must wait for a
// second owner or admin (dual control): the tenant's policy asks for it,
// the robot holds a live credentials.fetch grant, and the token could
// reach secrets (no scopes, or credentials.fetch, or approle.login, whose
// logins carry every permission). Whoever issues it holds it; someone
// else must agree that they may.
func needsSecondPerson(ctx context.Context, tx store.Tx, tenantID, robotID string, scopes []string, now time.Time) (bool, error) {
	if len(scopes) > 0 && !slices.Contains(scopes, string(authz.CredentialsFetch)) && !slices.Contains(scopes, string(authz.AppRoleLogin)) {
		return false, nil
	}
	pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
	if err != nil || !pol.DualControl() {
		return false, err
	}
	gs, err := tx.ListGrants(ctx, store.GrantFilter{TenantID: tenantID, SubjectID: robotID, LiveAt: now})
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(gs, func(g store.Grant) bool { return g.Permission == string(authz.CredentialsFetch) }), nil
}

// ApproveRobotToken ends the wait of a robot's pending token. Nobody
// approves a token they issued: the point is that a second person agrees.
func (s *Service) ApproveRobotToken(ctx context.Context, tenantID, robotRef, id string) (*store.APIToken, error) {
	p := authz.ActorOf(ctx)
	var rec *store.APIToken
	err := s.store.Update(ctx, func(tx store.Tx) error {
		r, err := tx.GetRobot(ctx, tenantID, robotRef)
		if errors.Is(err, store.ErrNotFound) {
			return fault.New(fault.NotFound, "not_found", "no robot %q", robotRef)
		}
		if err != nil {
			return err
		}
		rec, err = tx.GetAPIToken(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && rec.SubjectID != r.ID {
			return fault.New(fault.NotFound, "not_found", "robot %q has no token %q", r.Name, id)
		}
		now := s.now().UTC()
		switch {
		case err != nil:
			return err
		case !rec.Pending:
			return fault.New(fault.Conflict, "not_pending", "token %s does not wait for approval", id)
		case !rec.LiveAt(now):
			return fault.New(fault.Conflict, "token_ended", "token %s is revoked or expired", id)
		case rec.CreatedBy == p.ID:
			return fault.New(fault.Forbidden, "own_token", "nobody approves a token they issued: another owner or admin must")
		}
		if err := tx.ApproveAPIToken(ctx, tenantID, id, p.ID, now); err != nil {
			return err
		}
		rec.Pending, rec.ApprovedBy, rec.ApprovedAt = false, p.ID, now
		return s.record(ctx, tx, tenantID, "token.approve", id, map[string]any{"subject": r.ID, "issued_by": rec.CreatedBy})
	})
	s.recordRefusal(ctx, tenantID, id, authz.RobotsManage, err)
	return rec, wrapErr("approve token", err)
}

// Robots lists a tenant's robots.
func (s *Service) Robots(ctx context.Context, tenantID string) ([]store.Robot, error) {
	var out []store.Robot
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListRobots(ctx, tenantID)
		return err
	})
	return out, wrapErr("list robots", err)
}

// DisableRobot stops a robot: its tokens are revoked and refused at once.
func (s *Service) DisableRobot(ctx context.Context, tenantID, ref string) (*store.Robot, error) {
	var r *store.Robot
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		r, err = tx.GetRobot(ctx, tenantID, ref)
		if errors.Is(err, store.ErrNotFound) {
			return fault.New(fault.NotFound, "not_found", "no robot %q", ref)
		}
		if err != nil {
			return err
		}
		now := s.now().UTC()
		r.Status, r.DisabledAt = store.RobotDisabled, now
		if err := tx.UpdateRobot(ctx, r); err != nil {
			return err
		}
		n, err := tx.RevokeSubjectTokens(ctx, tenantID, r.ID, now)
		if err != nil {
			return err
		}
		g, err := tx.RevokeSubjectGrants(ctx, tenantID, r.ID, now)
		if err != nil {
			return err
		}
		return s.record(ctx, tx, tenantID, "robot.disable", r.ID, map[string]any{"tokens_revoked": n, "grants_revoked": g})
	})
	return r, wrapErr("disable robot", err)
}

// Sessions lists the calling member's sessions.
func (s *Service) Sessions(ctx context.Context) ([]store.Session, error) {
	p := authz.ActorOf(ctx)
	var out []store.Session
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListSessions(ctx, p.TenantID, p.ID)
		return err
	})
	return out, wrapErr("list sessions", err)
}

// recordRefusal audits err when it is a two-person rule's refusal
// (audit.RecordRefusal).
func (s *Service) recordRefusal(ctx context.Context, tenantID, target string, perm authz.Permission, err error) {
	if aerr := audit.RecordRefusal(ctx, s.store, s.now(), tenantID, target, string(perm), err, nil); aerr != nil {
		s.log.Warn("identity: audit a refusal", "error", aerr)
	}
}
