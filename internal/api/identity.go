package api

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/access"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/sso"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/tenant"
)

// SessionCookie carries a browser session. The __Host- prefix makes
// browsers refuse it unless it is Secure, has no Domain and has Path=/.
const SessionCookie = "__Host-custodia_session"

// SSOStateCookie binds a single sign-on to the client that started it.
const SSOStateCookie = "__Host-custodia_sso"

// ---- bodies ----

// Member is a tenant member as the API shows it.
type Member struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	Name         string    `json:"name,omitempty"`
	Role         string    `json:"role"`
	Status       string    `json:"status"`
	MFA          bool      `json:"mfa"`
	SSO          bool      `json:"sso"`
	LastSigninAt time.Time `json:"last_signin_at,omitzero"`
	LockedUntil  time.Time `json:"locked_until,omitzero"`
	CreatedAt    time.Time `json:"created_at"`
	OffboardedAt time.Time `json:"offboarded_at,omitzero"`
}

func memberView(m *store.Member) Member {
	return Member{ID: m.ID, Email: m.Email, Name: m.Name, Role: m.Role, Status: m.Status, MFA: m.MFA, SSO: m.OIDCSubject != "",
		LastSigninAt: m.LastSigninAt, LockedUntil: m.LockedUntil, CreatedAt: m.CreatedAt, OffboardedAt: m.OffboardedAt}
}

type MemberList struct {
	Members []Member `json:"members"`
}

// InviteResponse carries the invitation token, shown once.
type InviteResponse struct {
	Member      Member    `json:"member"`
	InviteToken string    `json:"invite_token"`
	ExpiresAt   time.Time `json:"expires_at"`
}

type RoleRequest struct {
	Role string `json:"role"`
}

// APIToken describes a token without its secret.
type APIToken struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	SubjectType string    `json:"subject_type"`
	SubjectID   string    `json:"subject_id"`
	Scopes      []string  `json:"scopes"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
	LastUsedAt  time.Time `json:"last_used_at,omitzero"`
	CreatedBy   string    `json:"created_by"`
	// PendingApproval marks a robot's token that authenticates nothing
	// until an owner or admin other than its issuer approves it.
	PendingApproval bool      `json:"pending_approval,omitempty"`
	ApprovedBy      string    `json:"approved_by,omitempty"`
	ApprovedAt      time.Time `json:"approved_at,omitzero"`
}

func tokenView(t *store.APIToken) APIToken {
	sc := t.Scopes
	if sc == nil {
		sc = []string{}
	}
	return APIToken{ID: t.ID, Name: t.Name, SubjectType: t.SubjectType, SubjectID: t.SubjectID, Scopes: sc,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, LastUsedAt: t.LastUsedAt, CreatedBy: t.CreatedBy,
		PendingApproval: t.Pending, ApprovedBy: t.ApprovedBy, ApprovedAt: t.ApprovedAt}
}

type APITokenList struct {
	Tokens []APIToken `json:"tokens"`
}

// NewAPIToken carries a new token, shown once.
type NewAPIToken struct {
	Token string   `json:"token"`
	Info  APIToken `json:"info"`
}

type Robot struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	OwnerID   string    `json:"owner_id"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

func robotView(r *store.Robot) Robot {
	return Robot{ID: r.ID, Name: r.Name, OwnerID: r.OwnerID, Status: r.Status, CreatedAt: r.CreatedAt}
}

type RobotList struct {
	Robots []Robot `json:"robots"`
}

type NewRobot struct {
	Robot Robot    `json:"robot"`
	Token string   `json:"token"`
	Info  APIToken `json:"info"`
}

type Grant struct {
	ID          string    `json:"id"`
	SubjectType string    `json:"subject_type"`
	SubjectID   string    `json:"subject_id"`
	Permission  string    `json:"permission"`
	Resource    string    `json:"resource"`
	Reason      string    `json:"reason"`
	CreatedBy   string    `json:"created_by"`
	RequestID   string    `json:"request_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
	RetiredAt   time.Time `json:"retired_at,omitzero"`
	LastUsedAt  time.Time `json:"last_used_at,omitzero"`
}

func grantView(g *store.Grant) Grant {
	return Grant{ID: g.ID, SubjectType: g.SubjectType, SubjectID: g.SubjectID, Permission: g.Permission, Resource: g.ResourceType + ":" + g.ResourceID,
		Reason: g.Reason, CreatedBy: g.CreatedBy, RequestID: g.RequestID, CreatedAt: g.CreatedAt, ExpiresAt: g.ExpiresAt,
		RevokedAt: g.RevokedAt, RetiredAt: g.RetiredAt, LastUsedAt: g.LastUsedAt}
}

type GrantList struct {
	Grants []Grant `json:"grants"`
}

type AccessRequest struct {
	ID              string    `json:"id"`
	RequesterID     string    `json:"requester_id"`
	Permission      string    `json:"permission"`
	Resource        string    `json:"resource"`
	Duration        string    `json:"duration"`
	Reason          string    `json:"reason"`
	Status          string    `json:"status"`
	ApprovalsNeeded int       `json:"approvals_needed"`
	Approvals       []string  `json:"approvals"`
	DecidedBy       string    `json:"decided_by,omitempty"`
	DecisionNote    string    `json:"decision_note,omitempty"`
	GrantID         string    `json:"grant_id,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	DecidedAt       time.Time `json:"decided_at,omitzero"`
}

func requestView(r *store.AccessRequest) AccessRequest {
	ap := r.Approvals
	if ap == nil {
		ap = []string{}
	}
	return AccessRequest{ID: r.ID, RequesterID: r.RequesterID, Permission: r.Permission, Resource: r.ResourceType + ":" + r.ResourceID,
		Duration: r.Duration.String(), Reason: r.Reason, Status: r.Status, ApprovalsNeeded: r.ApprovalsNeeded, Approvals: ap,
		DecidedBy: r.DecidedBy, DecisionNote: r.DecisionNote, GrantID: r.GrantID, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, DecidedAt: r.DecidedAt}
}

type AccessRequestList struct {
	Requests []AccessRequest `json:"requests"`
}

type NoteRequest struct {
	Note string `json:"note,omitempty"`
}

type Review struct {
	ID         string             `json:"id"`
	Status     string             `json:"status"`
	Unanswered string             `json:"unanswered"`
	CreatedBy  string             `json:"created_by"`
	CreatedAt  time.Time          `json:"created_at"`
	Deadline   time.Time          `json:"deadline"`
	ClosedAt   time.Time          `json:"closed_at,omitzero"`
	Lines      []store.ReviewItem `json:"lines,omitempty"`
}

func reviewView(rv *store.Review, items []store.ReviewItem) Review {
	return Review{ID: rv.ID, Status: rv.Status, Unanswered: rv.Unanswered, CreatedBy: rv.CreatedBy, CreatedAt: rv.CreatedAt,
		Deadline: rv.Deadline, ClosedAt: rv.ClosedAt, Lines: items}
}

type ReviewList struct {
	Reviews []Review `json:"reviews"`
}

type StartReviewRequest struct {
	Deadline time.Time `json:"deadline,omitzero"`
}

type DecisionsRequest struct {
	Decisions []access.LineDecision `json:"decisions"`
}

// PolicyUpdate replaces a tenant's policy; SSOClientSecret, when set, is
// sealed under the tenant's key apart from the policy.
type PolicyUpdate struct {
	tenant.Policy
	SSOClientSecret string `json:"sso_client_secret,omitempty"`
}

type RotationFlags struct {
	Flags []store.RotationFlag `json:"flags"`
}

// Me describes the caller.
type Me struct {
	Kind     string   `json:"kind"`
	ID       string   `json:"id"`
	TenantID string   `json:"tenant_id,omitempty"`
	Role     string   `json:"role,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	MFA      bool     `json:"mfa"`
	Via      string   `json:"via,omitempty"`
	// Permissions are what the caller may use on its tenant right now.
	Permissions []string `json:"permissions"`
}

type Notification struct {
	ID        string          `json:"id"`
	Kind      string          `json:"kind"`
	Subject   string          `json:"subject"`
	Body      json.RawMessage `json:"body"`
	CreatedAt time.Time       `json:"created_at"`
	ReadAt    time.Time       `json:"read_at,omitzero"`
}

type NotificationList struct {
	Notifications []Notification `json:"notifications"`
}

type Session struct {
	ID         string    `json:"id"`
	Method     string    `json:"method"`
	MFA        bool      `json:"mfa"`
	SourceIP   string    `json:"source_ip"`
	UserAgent  string    `json:"user_agent"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	Current    bool      `json:"current"`
}

type SessionList struct {
	Sessions []Session `json:"sessions"`
}

// SigninRequest is a password sign-in; WantToken returns the session
// token in the body too (for the CLI; browsers use the cookie).
type SigninRequest struct {
	identity.SigninInput
	WantToken bool `json:"want_token,omitempty"`
}

type MFARequest struct {
	identity.MFAInput
	WantToken bool `json:"want_token,omitempty"`
}

// SigninResponse is the outcome of a sign-in step.
type SigninResponse struct {
	Status     string    `json:"status"` // signed_in, mfa_required
	MemberID   string    `json:"member_id,omitempty"`
	TenantID   string    `json:"tenant_id,omitempty"`
	SessionID  string    `json:"session_id,omitempty"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	Session    string    `json:"session,omitempty"`
	MFAToken   string    `json:"mfa_token,omitempty"`
	MFAMethods []string  `json:"mfa_methods,omitempty"`
	// MFAEnroll: the tenant requires a second factor and this member has
	// none; the session may only enroll one.
	MFAEnroll bool `json:"mfa_enroll,omitempty"`
}

type MFATokenRequest struct {
	MFAToken string `json:"mfa_token"`
}

type TOTPBegin struct {
	EnrollToken string    `json:"enroll_token"`
	Secret      string    `json:"secret"`
	URL         string    `json:"url"`
	QRPNG       string    `json:"qr_png"` // base64
	ExpiresAt   time.Time `json:"expires_at"`
}

type TOTPConfirm struct {
	EnrollToken string `json:"enroll_token"`
	Code        string `json:"code"`
}

type CodeRequest struct {
	Code string `json:"code"`
}

type RecoveryCodes struct {
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
}

// SSOStart is where to send the person to sign in at the provider.
type SSOStart struct {
	AuthURL string `json:"auth_url"`
}

type PasskeyBegin struct {
	Token   string          `json:"token"`
	Options json.RawMessage `json:"options"`
}

type PasskeyFinish struct {
	Token    string          `json:"token"`
	Name     string          `json:"name,omitempty"`
	Response json.RawMessage `json:"response"`
}

type InviteOwnerRequest struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// ---- routes ----

func identityRoutes(h *handlers) []Route {
	t := func(method, path string, perm authz.Permission, tag, summary string, req, resp any, fn Handler) Route {
		return Route{Method: method, Pattern: "/api/v1/tenants/{tenant}" + path, Perm: perm, TenantParam: "tenant", Unsealed: true,
			Tag: tag, Summary: summary, Request: req, Response: resp, Handler: fn}
	}
	me := func(method, path string, summary string, req, resp any, fn Handler) Route {
		return Route{Method: method, Pattern: "/api/v1/me" + path, Perm: authz.Self, Unsealed: true, Tag: "me",
			Summary: summary, Request: req, Response: resp, Handler: fn}
	}
	pub := func(method, path string, summary string, req, resp any, fn Handler) Route {
		return Route{Method: method, Pattern: "/api/v1/auth" + path, Perm: authz.Public, Unsealed: true, Tag: "auth",
			Summary: summary, Request: req, Response: resp, Handler: fn}
	}
	// Any caller may describe itself, whatever its token's scopes: this is
	// how a client learns its tenant.
	whoami := me("GET", "", "The caller: kind, tenant, role, scopes and permissions (any token, whatever its scopes)", nil, Me{}, h.me)
	whoami.Perm = authz.Whoami
	created := func(r Route) Route { r.Status = http.StatusCreated; return r }
	noContent := func(r Route) Route { r.Status = http.StatusNoContent; return r }
	report := t("GET", "/offboarding/{report}", authz.MembersRead, "members", "An offboarding (blast-radius) report: JSON, or ?format=text for a readable document", nil, access.Report{}, h.offboardReport)
	report.Query = []Param{{"format", "json (default) or text", "string"}}
	grants := t("GET", "/grants", authz.GrantsRead, "grants", "Grants of the tenant", nil, GrantList{}, h.listGrants)
	grants.Query = []Param{{"subject", "only this subject (member or robot ID)", "string"}, {"live", "only grants in force now (true/false)", "string"}}
	reqs := t("GET", "/requests", authz.RequestsCreate, "requests", "Access requests: all of them for approvers, one's own otherwise", nil, AccessRequestList{}, h.listRequests)
	reqs.Query = []Param{{"status", "pending, approved, denied, expired or canceled", "string"}}
	ssoStart := pub("GET", "/sso/{tenant}/start", "Start single sign-on: redirects to the tenant's OpenID provider and sets a cookie the callback needs",
		nil, SSOStart{}, h.ssoStart)
	ssoStart.Query = []Param{{"redirect", "false: answer with the provider URL as JSON instead of redirecting (command-line sign-in)", "string"}}
	ssoCallback := pub("GET", "/sso/callback", "Where the OpenID provider returns; signs the member in (needs the cookie set at start)", nil, SigninResponse{}, h.ssoCallback)
	ssoCallback.Query = []Param{{"code", "from the provider", "string"}, {"state", "from the provider", "string"},
		{"want_token", "true: return the session token in the body as well (command-line sign-in)", "string"}}
	export := t("GET", "/reviews/{review}/export", authz.ReviewsRead, "reviews", "The signed-off campaign as evidence (JSON)", nil, access.Signoff{}, h.exportReview)
	return []Route{
		t("GET", "/members", authz.MembersRead, "members", "Members of the tenant", nil, MemberList{}, h.listMembers),
		created(t("POST", "/members", authz.MembersManage, "members", "Invite a person; the invitation token is shown once", identity.InviteInput{}, InviteResponse{}, h.invite)),
		t("GET", "/members/{member}", authz.MembersRead, "members", "One member (by ID or email)", nil, Member{}, h.getMember),
		t("POST", "/members/{member}/role", authz.MembersManage, "members", "Change a member's role (the tenant keeps an owner)", RoleRequest{}, Member{}, h.setRole),
		t("POST", "/members/{member}/offboard", authz.MembersManage, "members",
			"Offboard in one action: revoke sessions, tokens and grants, transfer what they owned, and return the blast-radius report",
			access.OffboardInput{}, access.Report{}, h.offboard),
		report,
		created(t("POST", "/owner-invite", authz.TenantsManage, "members", "Invite the tenant's first owner (operators; refused once it has one)",
			InviteOwnerRequest{}, InviteResponse{}, h.inviteOwner)),
		t("GET", "/policy", authz.MembersRead, "policy", "The tenant's security policy", nil, tenant.Policy{}, h.getPolicy),
		t("PUT", "/policy", authz.PolicyManage, "policy", "Replace the tenant's security policy (2FA rule, approvals, reviews, sessions, SSO)",
			PolicyUpdate{}, tenant.Policy{}, h.putPolicy),
		t("GET", "/robots", authz.MembersRead, "robots", "Robots (service accounts)", nil, RobotList{}, h.listRobots),
		created(t("POST", "/robots", authz.RobotsManage, "robots", "Create a robot; its token is shown once", identity.RobotInput{}, NewRobot{}, h.createRobot)),
		created(t("POST", "/robots/{robot}/tokens", authz.RobotsManage, "robots", "Another token for a robot, shown once", identity.TokenInput{}, NewAPIToken{}, h.robotToken)),
		t("POST", "/robots/{robot}/tokens/{token}/approve", authz.RobotsManage, "robots",
			"Approve a robot's token that waits for a second owner or admin (robot dual control); never one's own", nil, APIToken{},
			h.approveRobotToken),
		t("POST", "/robots/{robot}/disable", authz.RobotsManage, "robots", "Disable a robot: its tokens and grants stop at once", nil, Robot{}, h.disableRobot),
		t("GET", "/tokens", authz.MembersRead, "tokens", "Every API token of the tenant (people and robots)", nil, APITokenList{}, h.listTenantTokens),
		noContent(t("DELETE", "/tokens/{id}", authz.MembersManage, "tokens", "Revoke any token of the tenant at once", nil, nil, h.revokeTenantToken)),
		grants,
		created(t("POST", "/grants", authz.GrantsManage, "grants", "Grant a permission on a resource until an expiry", access.GrantInput{}, Grant{}, h.createGrant)),
		noContent(t("DELETE", "/grants/{id}", authz.GrantsManage, "grants", "Revoke a grant at once", nil, nil, h.revokeGrant)),
		reqs,
		created(t("POST", "/requests", authz.RequestsCreate, "requests", "Request a permission for a while, with a reason", access.RequestInput{}, AccessRequest{}, h.createRequest)),
		t("POST", "/requests/{id}/approve", authz.RequestsDecide, "requests", "Approve (the last needed approval creates the grant)", NoteRequest{}, AccessRequest{}, h.decide(true)),
		t("POST", "/requests/{id}/deny", authz.RequestsDecide, "requests", "Deny a request", NoteRequest{}, AccessRequest{}, h.decide(false)),
		noContent(t("POST", "/requests/{id}/cancel", authz.RequestsCreate, "requests", "Withdraw one's own pending request", nil, nil, h.cancelRequest)),
		t("GET", "/reviews", authz.ReviewsRead, "reviews", "Access-review campaigns, newest first", nil, ReviewList{}, h.listReviews),
		created(t("POST", "/reviews", authz.ReviewsManage, "reviews", "Open an access review of every role, grant, token and robot", StartReviewRequest{}, Review{}, h.startReview)),
		t("GET", "/reviews/{review}", authz.ReviewsRead, "reviews", "A campaign and its lines", nil, Review{}, h.getReview),
		noContent(t("POST", "/reviews/{review}/decisions", authz.ReviewsManage, "reviews", "Keep or revoke lines", DecisionsRequest{}, nil, h.decideLines)),
		t("POST", "/reviews/{review}/signoff", authz.ReviewsManage, "reviews", "Sign the campaign off: apply revocations and keep the evidence", nil, access.Signoff{}, h.signoff),
		export,
		t("GET", "/rotation-flags", authz.MembersRead, "members", "Credentials marked rotation needed", nil, RotationFlags{}, h.rotationFlags),

		whoami,
		me("GET", "/tokens", "The caller's own API tokens", nil, APITokenList{}, h.myTokens),
		created(me("POST", "/tokens", "Create a personal API token, shown once (scopes within one's role)", identity.TokenInput{}, NewAPIToken{}, h.createMyToken)),
		noContent(me("DELETE", "/tokens/{id}", "Revoke one of one's own tokens", nil, nil, h.revokeMyToken)),
		me("GET", "/sessions", "The caller's sessions", nil, SessionList{}, h.mySessions),
		noContent(me("POST", "/signout", "End the current session", nil, nil, h.signout)),
		me("GET", "/notifications", "The caller's notifications, newest first", nil, NotificationList{}, h.notifications),
		noContent(me("POST", "/notifications/{id}/read", "Mark a notification read", nil, nil, h.markRead)),
		me("POST", "/mfa/totp", "Start enrolling an authenticator app (secret shown once)", nil, TOTPBegin{}, h.beginTOTP),
		me("POST", "/mfa/totp/confirm", "Confirm the app with a first code; recovery codes are shown once", TOTPConfirm{}, RecoveryCodes{}, h.confirmTOTP),
		me("POST", "/mfa/recovery-codes", "Replace the recovery codes (needs a current code); shown once", CodeRequest{}, RecoveryCodes{}, h.recoveryCodes),
		me("POST", "/mfa/passkeys", "Start registering a passkey (WebAuthn options)", nil, PasskeyBegin{}, h.beginPasskey),
		me("POST", "/mfa/passkeys/finish", "Finish registering a passkey", PasskeyFinish{}, RecoveryCodes{}, h.finishPasskey),

		pub("POST", "/signin", "Sign in with a password; may ask for a second factor", SigninRequest{}, SigninResponse{}, h.signin),
		pub("POST", "/signin/mfa", "Give the second factor of a pending sign-in", MFARequest{}, SigninResponse{}, h.signinMFA),
		pub("POST", "/signin/passkey-options", "WebAuthn options for the second factor of a pending sign-in", MFATokenRequest{}, json.RawMessage{}, h.passkeyOptions),
		pub("POST", "/accept", "Accept an invitation and set a password", identity.AcceptInput{}, Member{}, h.accept),
		ssoStart, ssoCallback,
	}
}

// ---- helpers ----

type tenantKey struct{}

// WithTenantID records the tenant the edge already resolved from the
// route's path, so handlers do not look it up again.
func WithTenantID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, tenantKey{}, id)
}

func (h *handlers) tenantID(r *http.Request) (string, error) {
	if id, ok := r.Context().Value(tenantKey{}).(string); ok {
		return id, nil
	}
	t, err := h.d.Tenants.Get(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return "", err
	}
	return t.ID, nil
}

// tenantCall resolves the route's tenant and runs fn.
func (h *handlers) tenantCall(fn func(w http.ResponseWriter, r *http.Request, tenantID string) error) Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := h.tenantID(r)
		if err != nil {
			return err
		}
		return fn(w, r, id)
	}
}

func ok(w http.ResponseWriter, v any) error {
	WriteJSON(w, http.StatusOK, v)
	return nil
}

// ---- members ----

func (h *handlers) listMembers(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		ms, err := h.d.Identity.Members(r.Context(), tid)
		if err != nil {
			return err
		}
		out := MemberList{Members: []Member{}}
		for i := range ms {
			out.Members = append(out.Members, memberView(&ms[i]))
		}
		return ok(w, out)
	})(w, r)
}

func (h *handlers) invite(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in identity.InviteInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		inv, err := h.d.Identity.Invite(r.Context(), tid, in)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusCreated, InviteResponse{Member: memberView(inv.Member), InviteToken: string(inv.Token), ExpiresAt: inv.ExpiresAt})
		return nil
	})(w, r)
}

func (h *handlers) inviteOwner(w http.ResponseWriter, r *http.Request) error {
	var in InviteOwnerRequest
	if err := Decode(r, &in); err != nil {
		return err
	}
	inv, err := h.d.Identity.InviteOwner(r.Context(), r.PathValue("tenant"), identity.InviteInput{Email: in.Email, Name: in.Name})
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, InviteResponse{Member: memberView(inv.Member), InviteToken: string(inv.Token), ExpiresAt: inv.ExpiresAt})
	return nil
}

func (h *handlers) getMember(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		m, err := h.d.Identity.Member(r.Context(), tid, r.PathValue("member"))
		if err != nil {
			return err
		}
		return ok(w, memberView(m))
	})(w, r)
}

func (h *handlers) setRole(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in RoleRequest
		if err := Decode(r, &in); err != nil {
			return err
		}
		m, err := h.d.Identity.SetRole(r.Context(), tid, r.PathValue("member"), in.Role)
		if err != nil {
			return err
		}
		return ok(w, memberView(m))
	})(w, r)
}

func (h *handlers) offboard(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in access.OffboardInput
		if r.ContentLength != 0 {
			if err := Decode(r, &in); err != nil {
				return err
			}
		}
		rep, err := h.d.Access.Offboard(r.Context(), tid, r.PathValue("member"), in)
		if err != nil {
			return err
		}
		return ok(w, rep)
	})(w, r)
}

func (h *handlers) offboardReport(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		rep, err := h.d.Access.OffboardReport(r.Context(), tid, r.PathValue("report"))
		if err != nil {
			return err
		}
		switch r.URL.Query().Get("format") {
		case "", "json":
			return ok(w, rep)
		case "text":
			w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+rep.ID+`.md"`)
			_, err := w.Write([]byte(rep.Text()))
			return err
		}
		return fault.New(fault.Invalid, "invalid_format", "format must be json or text")
	})(w, r)
}

func (h *handlers) rotationFlags(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var fs []store.RotationFlag
		err := h.d.Store.View(r.Context(), func(tx store.Tx) error {
			var err error
			fs, err = tx.ListRotationFlags(r.Context(), tid)
			return err
		})
		if err != nil {
			return err
		}
		if fs == nil {
			fs = []store.RotationFlag{}
		}
		return ok(w, RotationFlags{Flags: fs})
	})(w, r)
}

// ---- policy ----

func (h *handlers) getPolicy(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		p, err := h.d.Identity.Policy(r.Context(), tid)
		if err != nil {
			return err
		}
		return ok(w, p)
	})(w, r)
}

func (h *handlers) putPolicy(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in PolicyUpdate
		if err := Decode(r, &in); err != nil {
			return err
		}
		p, err := h.d.Identity.SetPolicy(r.Context(), tid, in.Policy, in.SSOClientSecret)
		if err != nil {
			return err
		}
		return ok(w, p)
	})(w, r)
}

// ---- robots and tokens ----

func (h *handlers) listRobots(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		rs, err := h.d.Identity.Robots(r.Context(), tid)
		if err != nil {
			return err
		}
		out := RobotList{Robots: []Robot{}}
		for i := range rs {
			out.Robots = append(out.Robots, robotView(&rs[i]))
		}
		return ok(w, out)
	})(w, r)
}

func (h *handlers) createRobot(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in identity.RobotInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		rb, tok, rec, err := h.d.Identity.CreateRobot(r.Context(), tid, in)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusCreated, NewRobot{Robot: robotView(rb), Token: string(tok), Info: tokenView(rec)})
		return nil
	})(w, r)
}

func (h *handlers) robotToken(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in identity.TokenInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		tok, rec, err := h.d.Identity.RobotToken(r.Context(), tid, r.PathValue("robot"), in)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusCreated, NewAPIToken{Token: string(tok), Info: tokenView(rec)})
		return nil
	})(w, r)
}

func (h *handlers) approveRobotToken(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		rec, err := h.d.Identity.ApproveRobotToken(r.Context(), tid, r.PathValue("robot"), r.PathValue("token"))
		if err != nil {
			return err
		}
		return ok(w, tokenView(rec))
	})(w, r)
}

func (h *handlers) disableRobot(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		rb, err := h.d.Identity.DisableRobot(r.Context(), tid, r.PathValue("robot"))
		if err != nil {
			return err
		}
		return ok(w, robotView(rb))
	})(w, r)
}

func tokenList(ts []store.APIToken) APITokenList {
	out := APITokenList{Tokens: []APIToken{}}
	for i := range ts {
		out.Tokens = append(out.Tokens, tokenView(&ts[i]))
	}
	return out
}

func (h *handlers) listTenantTokens(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		ts, err := h.d.Identity.Tokens(r.Context(), tid, "")
		if err != nil {
			return err
		}
		return ok(w, tokenList(ts))
	})(w, r)
}

func (h *handlers) revokeTenantToken(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		if err := h.d.Identity.RevokeToken(r.Context(), tid, r.PathValue("id"), true); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})(w, r)
}

// ---- grants, requests, reviews ----

func (h *handlers) listGrants(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		q := r.URL.Query()
		gs, err := h.d.Access.Grants(r.Context(), tid, q.Get("subject"), q.Get("live") == "true")
		if err != nil {
			return err
		}
		out := GrantList{Grants: []Grant{}}
		for i := range gs {
			out.Grants = append(out.Grants, grantView(&gs[i]))
		}
		return ok(w, out)
	})(w, r)
}

func (h *handlers) createGrant(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in access.GrantInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		g, err := h.d.Access.Grant(r.Context(), tid, in)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusCreated, grantView(g))
		return nil
	})(w, r)
}

func (h *handlers) revokeGrant(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		if err := h.d.Access.Revoke(r.Context(), tid, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})(w, r)
}

func (h *handlers) listRequests(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		requester := ""
		if p := authz.From(r.Context()); !authz.Allow(p, authz.RequestsDecide, tid, h.d.Now()) {
			requester = p.ID
		}
		rs, err := h.d.Access.Requests(r.Context(), tid, r.URL.Query().Get("status"), requester)
		if err != nil {
			return err
		}
		out := AccessRequestList{Requests: []AccessRequest{}}
		for i := range rs {
			out.Requests = append(out.Requests, requestView(&rs[i]))
		}
		return ok(w, out)
	})(w, r)
}

func (h *handlers) createRequest(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in access.RequestInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		req, err := h.d.Access.Request(r.Context(), tid, in)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusCreated, requestView(req))
		return nil
	})(w, r)
}

func (h *handlers) decide(approve bool) Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
			var in NoteRequest
			if r.ContentLength != 0 {
				if err := Decode(r, &in); err != nil {
					return err
				}
			}
			req, err := h.d.Access.Decide(r.Context(), tid, r.PathValue("id"), access.Decision{Approve: approve, Note: in.Note})
			if err != nil {
				return err
			}
			return ok(w, requestView(req))
		})(w, r)
	}
}

func (h *handlers) cancelRequest(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		if err := h.d.Access.Cancel(r.Context(), tid, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})(w, r)
}

func (h *handlers) listReviews(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		rs, err := h.d.Access.Reviews(r.Context(), tid)
		if err != nil {
			return err
		}
		out := ReviewList{Reviews: []Review{}}
		for i := range rs {
			out.Reviews = append(out.Reviews, reviewView(&rs[i], nil))
		}
		return ok(w, out)
	})(w, r)
}

func (h *handlers) startReview(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in StartReviewRequest
		if r.ContentLength != 0 {
			if err := Decode(r, &in); err != nil {
				return err
			}
		}
		rv, items, err := h.d.Access.StartReview(r.Context(), tid, in.Deadline)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusCreated, reviewView(rv, items))
		return nil
	})(w, r)
}

func (h *handlers) getReview(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		rv, items, err := h.d.Access.Review(r.Context(), tid, r.PathValue("review"))
		if err != nil {
			return err
		}
		return ok(w, reviewView(rv, items))
	})(w, r)
}

func (h *handlers) decideLines(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in DecisionsRequest
		if err := Decode(r, &in); err != nil {
			return err
		}
		if err := h.d.Access.DecideLines(r.Context(), tid, r.PathValue("review"), in.Decisions); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})(w, r)
}

func (h *handlers) signoff(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		so, err := h.d.Access.CloseReview(r.Context(), tid, r.PathValue("review"))
		if err != nil {
			return err
		}
		return ok(w, so)
	})(w, r)
}

func (h *handlers) exportReview(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		rv, _, err := h.d.Access.Review(r.Context(), tid, r.PathValue("review"))
		if err != nil {
			return err
		}
		if rv.Status != store.ReviewClosed {
			return fault.New(fault.Conflict, "review_open", "review %s is not signed off yet", rv.ID)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="`+rv.ID+`.json"`)
		_, err = w.Write(rv.Signoff)
		return err
	})(w, r)
}

// ---- me ----

func (h *handlers) me(w http.ResponseWriter, r *http.Request) error {
	p := authz.From(r.Context())
	out := Me{Kind: p.Kind, ID: p.ID, TenantID: p.TenantID, Role: p.Role, MFA: p.MFA, Via: p.Via, Permissions: []string{}}
	for _, s := range p.Scopes {
		out.Scopes = append(out.Scopes, string(s))
	}
	for _, perm := range authz.All {
		if perm != authz.Public && authz.Allow(p, perm, p.TenantID, h.d.Now()) {
			out.Permissions = append(out.Permissions, string(perm))
		}
	}
	return ok(w, out)
}

func (h *handlers) myTokens(w http.ResponseWriter, r *http.Request) error {
	p := authz.From(r.Context())
	ts, err := h.d.Identity.Tokens(r.Context(), p.TenantID, p.ID)
	if err != nil {
		return err
	}
	return ok(w, tokenList(ts))
}

func (h *handlers) createMyToken(w http.ResponseWriter, r *http.Request) error {
	var in identity.TokenInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	tok, rec, err := h.d.Identity.CreatePersonalToken(r.Context(), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, NewAPIToken{Token: string(tok), Info: tokenView(rec)})
	return nil
}

func (h *handlers) revokeMyToken(w http.ResponseWriter, r *http.Request) error {
	p := authz.From(r.Context())
	if err := h.d.Identity.RevokeToken(r.Context(), p.TenantID, r.PathValue("id"), false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handlers) mySessions(w http.ResponseWriter, r *http.Request) error {
	p := authz.From(r.Context())
	ss, err := h.d.Identity.Sessions(r.Context())
	if err != nil {
		return err
	}
	out := SessionList{Sessions: []Session{}}
	for _, s := range ss {
		out.Sessions = append(out.Sessions, Session{ID: s.ID, Method: s.Method, MFA: s.MFA, SourceIP: s.SourceIP, UserAgent: s.UserAgent,
			CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt, RevokedAt: s.RevokedAt, Current: s.ID == p.Via})
	}
	return ok(w, out)
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (h *handlers) signout(w http.ResponseWriter, r *http.Request) error {
	p := authz.From(r.Context())
	if !strings.HasPrefix(p.Via, "ses_") {
		return fault.New(fault.Invalid, "not_a_session", "this request is not signed in with a session; revoke tokens instead")
	}
	if err := h.d.Identity.SignOut(r.Context(), p.Via); err != nil {
		return err
	}
	clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handlers) notifications(w http.ResponseWriter, r *http.Request) error {
	ns, err := h.d.Identity.Notifications(r.Context(), 100)
	if err != nil {
		return err
	}
	out := NotificationList{Notifications: []Notification{}}
	for _, n := range ns {
		out.Notifications = append(out.Notifications, Notification{ID: n.ID, Kind: n.Kind, Subject: n.Subject, Body: n.Body, CreatedAt: n.CreatedAt, ReadAt: n.ReadAt})
	}
	return ok(w, out)
}

func (h *handlers) markRead(w http.ResponseWriter, r *http.Request) error {
	if err := h.d.Identity.MarkRead(r.Context(), r.PathValue("id")); err != nil {
		return notFoundAs(err, "no unread notification %q", r.PathValue("id"))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func notFoundAs(err error, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return fault.New(fault.NotFound, "not_found", format, args...)
	}
	return err
}

func (h *handlers) beginTOTP(w http.ResponseWriter, r *http.Request) error {
	e, err := h.d.Identity.BeginTOTP(r.Context())
	if err != nil {
		return err
	}
	return ok(w, TOTPBegin{EnrollToken: string(e.Token), Secret: string(e.Secret), URL: string(e.URL),
		QRPNG: base64.StdEncoding.EncodeToString(e.QRPNG), ExpiresAt: e.ExpiresAt})
}

func (h *handlers) confirmTOTP(w http.ResponseWriter, r *http.Request) error {
	var in TOTPConfirm
	if err := Decode(r, &in); err != nil {
		return err
	}
	codes, err := h.d.Identity.ConfirmTOTP(r.Context(), in.EnrollToken, in.Code)
	if err != nil {
		return err
	}
	return ok(w, RecoveryCodes{RecoveryCodes: codes})
}

func (h *handlers) recoveryCodes(w http.ResponseWriter, r *http.Request) error {
	var in CodeRequest
	if err := Decode(r, &in); err != nil {
		return err
	}
	codes, err := h.d.Identity.NewRecoveryCodes(r.Context(), in.Code)
	if err != nil {
		return err
	}
	return ok(w, RecoveryCodes{RecoveryCodes: codes})
}

func (h *handlers) beginPasskey(w http.ResponseWriter, r *http.Request) error {
	opts, tok, err := h.d.Identity.BeginPasskey(r.Context())
	if err != nil {
		return err
	}
	return ok(w, PasskeyBegin{Token: string(tok), Options: opts})
}

func (h *handlers) finishPasskey(w http.ResponseWriter, r *http.Request) error {
	var in PasskeyFinish
	if err := Decode(r, &in); err != nil {
		return err
	}
	codes, err := h.d.Identity.FinishPasskey(r.Context(), in.Token, in.Response, in.Name)
	if err != nil {
		return err
	}
	return ok(w, RecoveryCodes{RecoveryCodes: codes})
}

// ---- sign-in ----

func withPrevious(r *http.Request) *http.Request {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		return r.WithContext(identity.WithPreviousSession(r.Context(), c.Value))
	}
	return r
}

func signedIn(w http.ResponseWriter, s *identity.Signin, wantToken bool) error {
	out := SigninResponse{MemberID: s.MemberID, TenantID: s.TenantID}
	if s.MFAToken != nil {
		out.Status, out.MFAToken, out.MFAMethods = "mfa_required", string(s.MFAToken), s.MFAMethods
		return ok(w, out)
	}
	out.Status, out.SessionID, out.ExpiresAt, out.MFAEnroll = "signed_in", s.SessionID, s.ExpiresAt, s.MFAEnroll
	if wantToken {
		out.Session = string(s.Session)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: string(s.Session), Path: "/", Expires: s.ExpiresAt,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return ok(w, out)
}

func (h *handlers) signin(w http.ResponseWriter, r *http.Request) error {
	var in SigninRequest
	if err := Decode(r, &in); err != nil {
		return err
	}
	r = withPrevious(r)
	s, err := h.d.Identity.SignIn(r.Context(), in.SigninInput)
	if err != nil {
		return err
	}
	return signedIn(w, s, in.WantToken)
}

func (h *handlers) signinMFA(w http.ResponseWriter, r *http.Request) error {
	var in MFARequest
	if err := Decode(r, &in); err != nil {
		return err
	}
	r = withPrevious(r)
	s, err := h.d.Identity.SignInMFA(r.Context(), in.MFAInput)
	if err != nil {
		return err
	}
	return signedIn(w, s, in.WantToken)
}

func (h *handlers) passkeyOptions(w http.ResponseWriter, r *http.Request) error {
	var in MFATokenRequest
	if err := Decode(r, &in); err != nil {
		return err
	}
	opts, err := h.d.Identity.PasskeyChallenge(r.Context(), in.MFAToken)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(opts)
	return err
}

func (h *handlers) accept(w http.ResponseWriter, r *http.Request) error {
	var in identity.AcceptInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	m, err := h.d.Identity.Accept(r.Context(), in)
	if err != nil {
		return err
	}
	return ok(w, memberView(m))
}

func (h *handlers) ssoStart(w http.ResponseWriter, r *http.Request) error {
	u, err := h.d.Identity.StartSSO(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	// The state is bound to the client that started: the callback is only
	// accepted with this cookie, so a callback URL sent to someone else
	// (login CSRF) cannot sign them in as its sender. Lax, because the
	// provider's redirect is a cross-site top-level navigation.
	pu, err := url.Parse(u)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: SSOStateCookie, Value: pu.Query().Get("state"), Path: "/",
		MaxAge: int(sso.PendingTTL / time.Second), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if r.URL.Query().Get("redirect") == "false" {
		return ok(w, SSOStart{AuthURL: u})
	}
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

func (h *handlers) ssoCallback(w http.ResponseWriter, r *http.Request) error {
	c, err := r.Cookie(SSOStateCookie)
	state := r.URL.Query().Get("state")
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		return fault.New(fault.Unauthenticated, "sso_failed",
			"single sign-on must finish where it started: if that was `custodia login --sso`, paste this page's address there; otherwise start again")
	}
	http.SetCookie(w, &http.Cookie{Name: SSOStateCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	r = withPrevious(r)
	s, err := h.d.Identity.FinishSSO(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	return signedIn(w, s, r.URL.Query().Get("want_token") == "true")
}
