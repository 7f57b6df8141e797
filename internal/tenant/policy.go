package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/store"
)

// Policy is a tenant's security settings. The zero value of each field
// means its default; Defaults fills them in.
type Policy struct {
	// RequireMFA makes every member give a second factor at sign-in.
	// Members without one can only enroll one until they do.
	RequireMFA bool `json:"require_mfa"`
	// Approvals is how many admins must approve an access request (1 means
	// any admin).
	Approvals int `json:"approvals,omitempty"`
	// RequestTTLHours is how long a request waits for an answer.
	RequestTTLHours int `json:"request_ttl_hours,omitempty"`
	// MaxGrantHours bounds how long a grant or an approved request may last.
	MaxGrantHours int `json:"max_grant_hours,omitempty"`
	// ReviewEveryDays schedules access reviews (90: quarterly; -1: only on
	// demand).
	ReviewEveryDays int `json:"review_every_days,omitempty"`
	// ReviewWindowDays is how long reviewers have before the deadline.
	ReviewWindowDays int `json:"review_window_days,omitempty"`
	// ReviewUnanswered is what happens to lines nobody answered by the
	// deadline: "revoke" or "escalate" (kept, and every owner notified).
	ReviewUnanswered string `json:"review_unanswered,omitempty"`
	// SessionIdleMinutes and SessionMaxHours bound browser sessions.
	SessionIdleMinutes int `json:"session_idle_minutes,omitempty"`
	SessionMaxHours    int `json:"session_max_hours,omitempty"`
	// SSO is the tenant's OpenID Connect provider, if any. Its client
	// secret is kept sealed, apart from the policy.
	SSO *SSO `json:"sso,omitempty"`
	// BreakGlass says whether the operator's staff may reveal one of the
	// tenant's credentials in an emergency: "off" (the default: never),
	// "approval" (a tenant admin approves each request first) or "notify"
	// (allowed at once; the tenant is told). Every reveal needs a reason,
	// is in both audit logs and notifies the tenant's admins.
	BreakGlass string `json:"break_glass,omitempty"`
	// BreakGlassMinutes is how long an allowed break-glass lasts.
	BreakGlassMinutes int `json:"break_glass_minutes,omitempty"`
	// RobotDualControl keeps any one person from reading secrets through
	// a robot: "on" (the default) or "off". While on, nobody grants
	// credentials.fetch to a robot one of whose live tokens they issued,
	// and a token issued for a robot that holds such a grant waits until
	// another owner or admin approves it. Off suits a tenant with a single
	// owner or admin; turning it off notifies every owner and admin.
	RobotDualControl string `json:"robot_dual_control,omitempty"`
}

// Dual-control settings.
const (
	DualControlOn  = "on"
	DualControlOff = "off"
)

// DualControl reports whether robots' secret access takes two people.
func (p Policy) DualControl() bool { return p.RobotDualControl != DualControlOff }

// Break-glass settings.
const (
	BreakGlassOff      = "off"
	BreakGlassApproval = "approval"
	BreakGlassNotify   = "notify"
)

// SSO configures per-tenant OpenID Connect sign-in.
type SSO struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// RedirectURL is this server's callback as the provider knows it:
	// https://HOST/api/v1/auth/sso/callback.
	RedirectURL string `json:"redirect_url"`
	// JIT creates a member on first sign-in with DefaultRole when no member
	// has the verified email yet.
	JIT         bool   `json:"jit,omitempty"`
	DefaultRole string `json:"default_role,omitempty"`
	// Only, when set, refuses password sign-in for every member.
	Only bool `json:"only,omitempty"`
}

// Defaults returns p with every unset field at its default.
func (p Policy) Defaults() Policy {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.Approvals, 1)
	def(&p.RequestTTLHours, 24)
	def(&p.MaxGrantHours, 90*24)
	def(&p.ReviewEveryDays, 90)
	def(&p.ReviewWindowDays, 14)
	def(&p.SessionIdleMinutes, 30)
	def(&p.SessionMaxHours, 12)
	if p.ReviewUnanswered == "" {
		p.ReviewUnanswered = "revoke"
	}
	if p.BreakGlass == "" {
		p.BreakGlass = BreakGlassOff
	}
	def(&p.BreakGlassMinutes, 30)
	if p.RobotDualControl == "" {
		p.RobotDualControl = DualControlOn
	}
	if p.SSO != nil && p.SSO.DefaultRole == "" {
		p.SSO.DefaultRole = store.RoleMember
	}
	return p
}

// Validate refuses settings out of range.
func (p Policy) Validate() error {
	bad := func(field, rule string) error {
		return fault.New(fault.Invalid, "invalid_policy", "%s %s", field, rule)
	}
	switch {
	case p.Approvals < 0 || p.Approvals > 10:
		return bad("approvals", "must be 1 to 10")
	case p.RequestTTLHours < 0 || p.RequestTTLHours > 24*30:
		return bad("request_ttl_hours", "must be 1 to 720")
	case p.MaxGrantHours < 0 || p.MaxGrantHours > 24*366:
		return bad("max_grant_hours", "must be 1 to 8784")
	case p.ReviewEveryDays < -1 || p.ReviewEveryDays > 366:
		return bad("review_every_days", "must be -1 (on demand only) or 1 to 366")
	case p.ReviewWindowDays < 0 || p.ReviewWindowDays > 90:
		return bad("review_window_days", "must be 1 to 90")
	case p.ReviewUnanswered != "" && p.ReviewUnanswered != "revoke" && p.ReviewUnanswered != "escalate":
		return bad("review_unanswered", `must be "revoke" or "escalate"`)
	case p.SessionIdleMinutes < 0 || p.SessionIdleMinutes > 24*60:
		return bad("session_idle_minutes", "must be 1 to 1440")
	case p.SessionMaxHours < 0 || p.SessionMaxHours > 24*30:
		return bad("session_max_hours", "must be 1 to 720")
	case p.BreakGlass != "" && !slices.Contains([]string{BreakGlassOff, BreakGlassApproval, BreakGlassNotify}, p.BreakGlass):
		return bad("break_glass", `must be "off", "approval" or "notify"`)
	case p.BreakGlassMinutes < 0 || p.BreakGlassMinutes > 240:
		return bad("break_glass_minutes", "must be 1 to 240")
	case p.RobotDualControl != "" && p.RobotDualControl != DualControlOn && p.RobotDualControl != DualControlOff:
		return bad("robot_dual_control", `must be "on" or "off"`)
	}
	if s := p.SSO; s != nil {
		u, err := url.Parse(s.Issuer)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !loopback(u)) {
			return bad("sso.issuer", "must be an https URL")
		}
		if r, err := url.Parse(s.RedirectURL); err != nil || r.Host == "" || (r.Scheme != "https" && !loopback(r)) {
			return bad("sso.redirect_url", "must be this server's https URL ending in /api/v1/auth/sso/callback")
		}
		if s.ClientID == "" || len(s.ClientID) > 200 {
			return bad("sso.client_id", "must be 1 to 200 characters")
		}
		if s.DefaultRole != "" && !slices.Contains([]string{store.RoleMember, store.RoleAuditor}, s.DefaultRole) {
			return bad("sso.default_role", `must be "member" or "auditor" (raise roles by hand)`)
		}
	}
	return nil
}

func loopback(u *url.URL) bool {
	h := u.Hostname()
	return u.Scheme == "http" && (h == "127.0.0.1" || h == "localhost" || h == "::1")
}

// BreakGlassDeadline is when a pending break-glass request lapses
// unanswered: the deadline set when it was made, or request_ttl_hours
// after it was made if that is sooner (or if it was made before deadlines
// were kept). Deciding, listing and ending requests all judge by it.
func (p Policy) BreakGlassDeadline(b *store.BreakGlass) time.Time {
	d := b.RequestedAt.Add(p.RequestTTL())
	if !b.ExpiresAt.IsZero() && b.ExpiresAt.Before(d) {
		d = b.ExpiresAt
	}
	return d
}

// Durations of the policy.
func (p Policy) SessionIdle() time.Duration { return time.Duration(p.SessionIdleMinutes) * time.Minute }
func (p Policy) SessionMax() time.Duration  { return time.Duration(p.SessionMaxHours) * time.Hour }
func (p Policy) RequestTTL() time.Duration  { return time.Duration(p.RequestTTLHours) * time.Hour }
func (p Policy) MaxGrant() time.Duration    { return time.Duration(p.MaxGrantHours) * time.Hour }

func policyKey(tenantID string) string { return "tenant/" + tenantID + "/policy" }

// ReadPolicy returns a tenant's policy with defaults filled in.
func ReadPolicy(ctx context.Context, tx store.MetaTx, tenantID string) (Policy, error) {
	var p Policy
	b, err := tx.GetMeta(ctx, policyKey(tenantID))
	if errors.Is(err, store.ErrNotFound) {
		return p.Defaults(), nil
	}
	if err != nil {
		return p, fmt.Errorf("tenant: read policy: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("tenant: decode policy: %w", err)
	}
	return p.Defaults(), nil
}

// WritePolicy stores a validated policy.
func WritePolicy(ctx context.Context, tx store.MetaTx, tenantID string, p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(p.Defaults())
	if err != nil {
		return err
	}
	return tx.PutMeta(ctx, policyKey(tenantID), b)
}
