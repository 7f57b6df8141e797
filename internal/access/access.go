// Package access owns who may reach what over time: grants that expire,
// just-in-time access requests with approvals, access-review campaigns and
// one-action offboarding with its blast-radius report.
//
// Every change it makes is audited in the tenant's log in the same
// transaction. It must never extend a grant past its tenant's bound, let a
// requester approve their own request, let anyone grant themselves the
// right to read a secret back, or keep a leaver's access alive.
package access

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/tenant"
	"github.com/custodia-project/custodia/internal/vault"
)

// Service is the access domain.
type Service struct {
	store store.Store
	now   func() time.Time
	log   *slog.Logger
}

// New returns the service.
func New(s store.Store, now func() time.Time, log *slog.Logger) *Service {
	return &Service{store: s, now: now, log: log}
}

func (s *Service) record(ctx context.Context, tx store.AuditTx, tenantID, action, target string, details map[string]any) error {
	return audit.Append(ctx, tx, s.now(), audit.Entry{Log: tenantID, Action: action, Target: target, Details: details})
}

func wrapErr(op string, err error) error { return fault.Annotate("access", op, err) }

// GrantInput gives a subject a permission on a resource for a while.
type GrantInput struct {
	// Subject is a member (ID or email) or a robot (ID or name).
	Subject    string `json:"subject"`
	Permission string `json:"permission"`
	// Resource is "tenant" (default), "group:ID" or "credential:ID".
	Resource string `json:"resource,omitempty"`
	// Duration is a Go duration ("8h", "720h"); required: grants always
	// expire.
	Duration string `json:"duration"`
	Reason   string `json:"reason"`
}

// ParseResource splits "type:id" ("tenant" alone is the whole tenant). A
// credential may be named by its ID or its name; resolveResource turns a
// name into the ID.
func ParseResource(tenantID, s string) (typ, id string, err error) {
	if s == "" || s == "tenant" {
		return store.ResourceTenant, tenantID, nil
	}
	typ, id, ok := strings.Cut(s, ":")
	if !ok || id == "" || len(id) > 200 || (typ != store.ResourceGroup && typ != store.ResourceCredential) {
		return "", "", fault.New(fault.Invalid, "invalid_resource", `resource must be "tenant", "group:NAME" or "credential:NAME-OR-ID"`)
	}
	return typ, id, nil
}

func checkPermission(p string) error {
	if !slices.Contains(authz.Grantable, authz.Permission(p)) {
		names := make([]string, len(authz.Grantable))
		for i, g := range authz.Grantable {
			names[i] = string(g)
		}
		return fault.New(fault.Invalid, "invalid_permission", "permission must be one of %s", strings.Join(names, ", "))
	}
	return nil
}

// checkAsk validates what a grant or a request asks for: a grantable
// permission, a reason, and a resource of the tenant.
func checkAsk(tenantID, perm, reason, resource string) (string, string, string, error) {
	if err := checkPermission(perm); err != nil {
		return "", "", "", err
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 500 {
		return "", "", "", fault.New(fault.Invalid, "invalid_reason", "a reason of 1 to 500 characters is required")
	}
	rt, rid, err := ParseResource(tenantID, resource)
	return reason, rt, rid, err
}

// resolveResource returns the ID a grant or request keeps for a resource:
// for a credential, the ID of the credential named (by name or ID) as it
// is now, since authorization compares IDs. A credential that does not
// exist is refused: a grant on it would never apply.
func resolveResource(ctx context.Context, tx store.Tx, tenantID, typ, id string) (string, error) {
	if typ != store.ResourceCredential {
		return id, nil
	}
	c, err := vault.Lookup(ctx, tx, tenantID, id)
	if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
		return "", fault.New(fault.NotFound, "credential_not_found", "no credential %q in this organization", id)
	}
	if err != nil {
		return "", err
	}
	return c.ID, nil
}

// askDuration reads the tenant's policy and parses a duration within its
// bound on grants.
func askDuration(ctx context.Context, tx store.Tx, tenantID, s string) (tenant.Policy, time.Duration, error) {
	pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
	if err != nil {
		return pol, 0, err
	}
	d, err := parseDuration(s, pol.MaxGrant())
	return pol, d, err
}

func parseDuration(s string, max time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fault.New(fault.Invalid, "invalid_duration", "duration must be a positive Go duration such as 8h or 720h")
	}
	if d > max {
		return 0, fault.New(fault.Invalid, "duration_too_long", "this tenant allows grants of at most %s", max)
	}
	return d, nil
}

// findSubject finds the member (by ID or email) or robot (by ID or name)
// ref names, whatever its status; exactly one of the two is returned.
func findSubject(ctx context.Context, tx store.Tx, tenantID, ref string) (*store.Member, *store.Robot, error) {
	if strings.HasPrefix(ref, "rbt_") || !strings.Contains(ref, "@") && !strings.HasPrefix(ref, "mem_") {
		r, err := tx.GetRobot(ctx, tenantID, ref)
		if err == nil {
			return nil, r, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, nil, err
		}
	}
	var m *store.Member
	var err error
	if strings.Contains(ref, "@") {
		email, _ := identity.NormalizeEmail(ref)
		m, err = tx.GetMemberByEmail(ctx, tenantID, email)
	} else {
		m, err = tx.GetMember(ctx, tenantID, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fault.New(fault.NotFound, "not_found", "no member or robot %q", ref)
	}
	return m, nil, err
}

// resolveSubject finds an active member or robot of the tenant.
func resolveSubject(ctx context.Context, tx store.Tx, tenantID, ref string) (typ, id string, err error) {
	m, r, err := findSubject(ctx, tx, tenantID, ref)
	switch {
	case err != nil:
		return "", "", err
	case r != nil && r.Status != store.RobotActive:
		return "", "", fault.New(fault.Conflict, "robot_disabled", "robot %q is disabled", r.Name)
	case r != nil:
		return store.SubjectRobot, r.ID, nil
	case m.Status != store.MemberActive:
		return "", "", fault.New(fault.Conflict, "member_inactive", "member %s is %s", m.ID, m.Status)
	}
	return store.SubjectMember, m.ID, nil
}

// Grant creates a grant.
func (s *Service) Grant(ctx context.Context, tenantID string, in GrantInput) (*store.Grant, error) {
	reason, rt, rid, err := checkAsk(tenantID, in.Permission, in.Reason, in.Resource)
	if err != nil {
		return nil, err
	}
	in.Reason = reason
	var g *store.Grant
	err = s.store.Update(ctx, func(tx store.Tx) error {
		_, d, err := askDuration(ctx, tx, tenantID, in.Duration)
		if err != nil {
			return err
		}
		st, sid, err := resolveSubject(ctx, tx, tenantID, in.Subject)
		if err != nil {
			return err
		}
		if err := notSelfReveal(ctx, st, sid, in.Permission); err != nil {
			return err
		}
		holders, err := notOwnRobotsFetch(ctx, tx, tenantID, st, sid, in.Permission, s.now())
		if err != nil {
			return err
		}
		rid, err := resolveResource(ctx, tx, tenantID, rt, rid)
		if err != nil {
			return err
		}
		g, err = s.grant(ctx, tx, tenantID, st, sid, in.Permission, rt, rid, in.Reason, "", d)
		if err != nil || holders == nil {
			return err
		}
		// Who can use the grant at once: the people holding the robot's
		// live tokens, whom the granter has just agreed may fetch.
		return s.record(ctx, tx, tenantID, "grant.robot_token_holders", g.ID, map[string]any{"robot": sid, "holders": holders})
	})
	if aerr := audit.RecordRefusal(ctx, s.store, s.now(), tenantID, "grant", string(authz.GrantsManage), err,
		map[string]any{"subject": in.Subject, "granted": in.Permission, "resource": in.Resource}); aerr != nil {
		s.log.Warn("access: audit a refused grant", "error", aerr)
	}
	return g, wrapErr("grant", err)
}

// notSelfReveal refuses a grant of credentials.reveal to the person
// making it: with a credential made revealable to them, one owner or admin
// alone could then read a write-only secret back (invariant 3). Another
// owner or admin grants it, or the person asks through an access request,
// which nobody decides for themselves.
func notSelfReveal(ctx context.Context, subjectType, subjectID, perm string) error {
	if perm == string(authz.CredentialsReveal) && subjectType == store.SubjectMember && subjectID == authz.ActorOf(ctx).ID {
		return fault.New(fault.Forbidden, "self_grant", "nobody may grant themselves credentials.reveal; "+
			"another owner or admin must grant it, or ask for it with an access request")
	}
	return nil
}

// notOwnRobotsFetch refuses, under the tenant's robot dual control, a
// grant of credentials.fetch to a robot one of whose live tokens the
// granter issued: they would hold both the token and the right, and so
// read every secret it reaches alone (invariant 3). A token issued for
// the robot afterwards waits for a second person (identity's
// needsSecondPerson), so every way to a robot's secrets takes two. It
// returns who holds the robot's live tokens (nil when the rule does not
// apply), for the grant's audit trail.
func notOwnRobotsFetch(ctx context.Context, tx store.Tx, tenantID, subjectType, subjectID, perm string, now time.Time) ([]string, error) {
	if subjectType != store.SubjectRobot || perm != string(authz.CredentialsFetch) {
		return nil, nil
	}
	pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
	if err != nil || !pol.DualControl() {
		return nil, err
	}
	held, err := identity.RobotTokenHolders(ctx, tx, tenantID, subjectID, now)
	if err != nil {
		return nil, err
	}
	if tok, ok := held[authz.ActorOf(ctx).ID]; ok {
		return nil, fault.New(fault.Forbidden, "dual_control", "you issued this robot's token %s, so another owner or admin must "+
			"grant it credentials.fetch (or revoke that token first): the tenant's robot dual control takes two people", tok)
	}
	// Never nil: the rule applied, even to a robot with no live token.
	return append([]string{}, slices.Sorted(maps.Keys(held))...), nil
}

func (s *Service) grant(ctx context.Context, tx store.Tx, tenantID, st, sid, perm, rt, rid, reason, requestID string, d time.Duration) (*store.Grant, error) {
	now := s.now().UTC()
	g := &store.Grant{ID: store.NewID("grt_"), TenantID: tenantID, SubjectType: st, SubjectID: sid, Permission: perm,
		ResourceType: rt, ResourceID: rid, Reason: reason, CreatedBy: authz.ActorOf(ctx).ID, RequestID: requestID,
		CreatedAt: now, ExpiresAt: now.Add(d)}
	if err := tx.InsertGrant(ctx, g); err != nil {
		return nil, err
	}
	return g, s.record(ctx, tx, tenantID, "grant.create", g.ID, map[string]any{"subject": sid, "permission": perm,
		"resource": rt + ":" + rid, "expires_at": g.ExpiresAt, "request": requestID})
}

// Grants lists a tenant's grants (live ones only when live).
func (s *Service) Grants(ctx context.Context, tenantID, subject string, live bool) ([]store.Grant, error) {
	f := store.GrantFilter{TenantID: tenantID, SubjectID: subject}
	if live {
		f.LiveAt = s.now()
	}
	var out []store.Grant
	err := s.store.View(ctx, func(tx store.Tx) error {
		// An email or a robot's name is looked up, whatever the
		// subject's status: the list shows a disabled robot's grants and
		// a former member's. An ID is taken as it is.
		if subject != "" && !strings.HasPrefix(subject, "mem_") && !strings.HasPrefix(subject, "rbt_") {
			m, r, err := findSubject(ctx, tx, tenantID, subject)
			switch {
			case err != nil:
				return err
			case r != nil:
				f.SubjectID = r.ID
			default:
				f.SubjectID = m.ID
			}
		}
		var err error
		out, err = tx.ListGrants(ctx, f)
		return err
	})
	return out, wrapErr("list grants", err)
}

// Revoke ends a grant at once.
func (s *Service) Revoke(ctx context.Context, tenantID, id string) error {
	return wrapErr("revoke grant", s.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.RevokeGrant(ctx, tenantID, id, s.now().UTC()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fault.New(fault.NotFound, "not_found", "no live grant %q", id)
			}
			return err
		}
		return s.record(ctx, tx, tenantID, "grant.revoke", id, nil)
	}))
}

// RetireExpired marks grants past their expiry as retired and records each
// in its tenant's log. The decision never waits for this: an expired grant
// is refused at the instant of expiry.
func (s *Service) RetireExpired(ctx context.Context) (int, error) {
	total := 0
	for {
		var n int
		err := s.store.Update(ctx, func(tx store.Tx) error {
			gs, err := tx.RetireExpiredGrants(ctx, s.now(), 500)
			if err != nil {
				return err
			}
			n = len(gs)
			for _, g := range gs {
				if err := s.record(ctx, tx, g.TenantID, "grant.expire", g.ID, map[string]any{"subject": g.SubjectID,
					"permission": g.Permission, "expired_at": g.ExpiresAt}); err != nil {
					return err
				}
			}
			return nil
		})
		total += n
		if err != nil || n < 500 {
			return total, wrapErr("retire grants", err)
		}
	}
}
