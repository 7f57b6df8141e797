// Package authz decides whether a principal may use a permission. It is the
// one place where that decision is made; the route table names a permission
// for every route and the server asks Allow before the handler runs.
//
// Operators run the installation and never hold tenant permissions: they
// cannot read a tenant's members, grants, requests, reviews or audit
// entries. Tenant principals (members, robots) act only inside their own
// tenant, with their role's permissions plus the grants in force at the
// moment of the check, narrowed by their token's scopes.
//
// It must never consult the request beyond the principal and the tenant the
// route addresses, and never keep a decision beyond the call.
package authz

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Permission is what a route requires.
type Permission string

// Permissions. Public needs no token at all; every other permission needs
// an authenticated principal.
const (
	Public Permission = "public"
	// Metrics is public only when the operator turned that on.
	Metrics Permission = "metrics.read"

	// Operator permissions.
	SysManage         Permission = "sys.manage"     // seal, rotate the root key
	TokensManage      Permission = "tokens.manage"  // operator tokens
	TenantsManage     Permission = "tenants.manage" // create, suspend, shred, rotate keys
	OperatorAuditRead Permission = "audit.operator.read"
	AuditManage       Permission = "audit.manage" // prune entry bodies after retention
	JobsRead          Permission = "jobs.read"
	// BreakGlass lets the operator's staff ask to reveal a tenant's
	// credential in an emergency; the tenant's policy decides whether
	// they may (see vault.RequestBreakGlass).
	BreakGlass Permission = "breakglass.use"
	// BreakGlassRead lists a tenant's break-glass requests: the operator's
	// staff and the tenant's people see every step; robots do not.
	BreakGlassRead Permission = "breakglass.read"

	// TenantsRead is the tenant's record and key metadata: operators, and
	// the tenant's own members.
	TenantsRead Permission = "tenants.read"
	// AuditProofs are a log's checkpoints and proofs (hashes only, no
	// entry bodies): operators verify every log, tenant readers their own.
	AuditProofs Permission = "audit.proofs"

	// Tenant permissions.
	Self Permission = "self" // own profile, factors, sessions, tokens, notifications
	// Whoami is describing oneself (GET /api/v1/me): who the caller is, its
	// tenant, scopes and permissions. Every principal holds it and every
	// token's scopes imply it, so a client can always learn its tenant.
	Whoami         Permission = "whoami"
	AuditRead      Permission = "audit.read"
	MembersRead    Permission = "members.read"
	MembersManage  Permission = "members.manage" // invite, change roles, offboard
	RobotsManage   Permission = "robots.manage"
	GrantsRead     Permission = "grants.read"
	GrantsManage   Permission = "grants.manage"
	RequestsCreate Permission = "requests.create"
	RequestsDecide Permission = "requests.decide"
	ReviewsRead    Permission = "reviews.read"
	ReviewsManage  Permission = "reviews.manage"
	PolicyManage   Permission = "policy.manage" // 2FA rule, SSO, approvals

	// Credential permissions, used by grants on the tenant, a group of
	// credentials or one credential; the vault checks them per resource.
	CredentialsRead   Permission = "credentials.read"   // list and see metadata
	CredentialsWrite  Permission = "credentials.write"  // create and replace (write-only)
	CredentialsReveal Permission = "credentials.reveal" // a person reads a secret back
	CredentialsFetch  Permission = "credentials.fetch"  // a robot fetches under a lease
	// VaultUse admits a tenant's people and robots (never operators) to
	// the routes where the vault decides per credential (fetch, reveal,
	// leases): holding it grants nothing by itself.
	VaultUse Permission = "vault.use"
	// VaultWrite admits them to the /v1 routes a writing client needs
	// (KV writes, deletes and settings; mount discovery), where again the
	// vault decides per credential. Apart from VaultUse so that a token
	// scoped to credentials.write (a web tier's) writes through /v1
	// without reaching the metadata and lease routes.
	VaultWrite Permission = "vault.write"
	// AppRoleLogin is a scope only: a robot token carrying just it is an
	// AppRole secret ID, good for nothing but exchanging for a
	// short-lived token at /v1/auth/approle/login.
	AppRoleLogin Permission = "approle.login"
	// SharesCreate makes one-time share links and lists or burns one's
	// own; SharesManage lists and burns anyone's in the tenant.
	SharesCreate Permission = "shares.create"
	SharesManage Permission = "shares.manage"
)

// All is every permission a route may declare; a route naming anything else
// fails the route-table test.
var All = []Permission{Public, Metrics, SysManage, TokensManage, TenantsManage, OperatorAuditRead, AuditManage, JobsRead, BreakGlass,
	BreakGlassRead, TenantsRead, AuditProofs, Self, Whoami, AuditRead, MembersRead, MembersManage, RobotsManage, GrantsRead, GrantsManage,
	RequestsCreate, RequestsDecide, ReviewsRead, ReviewsManage, PolicyManage,
	CredentialsRead, CredentialsWrite, CredentialsReveal, CredentialsFetch, VaultUse, VaultWrite, AppRoleLogin, SharesCreate, SharesManage}

// Grantable are the permissions a grant or an access request may carry.
var Grantable = []Permission{AuditRead, MembersRead, GrantsRead, ReviewsRead,
	CredentialsRead, CredentialsWrite, CredentialsReveal, CredentialsFetch}

// Principal kinds.
const (
	KindOperator = "operator"
	KindMember   = "member"
	KindRobot    = "robot"
)

// Roles of tenant members, from most to least powerful.
const (
	RoleOwner   = "owner"
	RoleAdmin   = "admin"
	RoleMember  = "member"
	RoleAuditor = "auditor"
)

// Roles lists the member roles.
var Roles = []string{RoleOwner, RoleAdmin, RoleMember, RoleAuditor}

var operatorPerms = []Permission{Metrics, SysManage, TokensManage, TenantsManage, OperatorAuditRead, AuditManage, JobsRead, BreakGlass,
	BreakGlassRead, TenantsRead, AuditProofs, Whoami}

var (
	readerPerms = []Permission{TenantsRead, Self, Whoami, RequestsCreate, VaultUse, VaultWrite, BreakGlassRead}
	auditorOnly = []Permission{AuditRead, AuditProofs, MembersRead, GrantsRead, ReviewsRead, CredentialsRead}
	adminPerms  = []Permission{MembersManage, RobotsManage, GrantsManage, RequestsDecide, ReviewsManage, PolicyManage,
		CredentialsWrite, SharesCreate, SharesManage}
	rolePerms = map[string][]Permission{
		RoleOwner:   slices.Concat(readerPerms, auditorOnly, adminPerms),
		RoleAdmin:   slices.Concat(readerPerms, auditorOnly, adminPerms),
		RoleMember:  slices.Concat(readerPerms, []Permission{CredentialsRead, CredentialsWrite, SharesCreate}),
		RoleAuditor: slices.Concat(readerPerms, auditorOnly),
	}
	// Robots have no role: what they may do comes from their token's scopes
	// and their grants. TenantsRead and Self let a robot look itself up.
	robotPerms = []Permission{TenantsRead, Self, Whoami, VaultUse, VaultWrite}
)

// RolePermissions returns the permissions a role carries.
func RolePermissions(role string) []Permission { return rolePerms[role] }

// ValidRole reports whether role is a member role.
func ValidRole(role string) bool { return slices.Contains(Roles, role) }

// Rank orders roles: a higher rank may manage a lower one.
func Rank(role string) int {
	switch role {
	case RoleOwner:
		return 3
	case RoleAdmin:
		return 2
	case RoleMember, RoleAuditor:
		return 1
	}
	return 0
}

// Principal is an authenticated caller.
type Principal struct {
	Kind string
	ID   string
	// TenantID is the tenant a tenant principal belongs to; empty for
	// operators.
	TenantID string
	// Role is a member's role; empty for robots and operators.
	Role string
	// Scopes, when not nil, narrow a token to these permissions.
	Scopes []Permission
	// Via names what authenticated the request: a token or session ID.
	Via string
	// MFA reports that the session was opened with a second factor.
	MFA bool
	// MFAPending marks a member held to enrolling a second factor (the
	// tenant requires one): Scopes then allow only that.
	MFAPending bool
	// Grants are the subject's grants, for checks at the time of the
	// request.
	Grants *GrantSet
}

// Tenant reports whether p is a tenant principal.
func (p *Principal) Tenant() bool {
	return p != nil && (p.Kind == KindMember || p.Kind == KindRobot)
}

func (p *Principal) scoped(perm Permission) bool {
	if p.Scopes == nil || slices.Contains(p.Scopes, perm) || perm == Whoami {
		return true
	}
	// A token scoped to fetching or revealing reaches the routes where the
	// vault decides that per credential.
	fetchOrReveal := slices.Contains(p.Scopes, CredentialsFetch) || slices.Contains(p.Scopes, CredentialsReveal)
	if perm == VaultUse && fetchOrReveal {
		return true
	}
	// Likewise the /v1 write routes, for those and for a token scoped to
	// writing (or to vault.use, as before vault.write existed).
	if perm == VaultWrite && (fetchOrReveal || slices.Contains(p.Scopes, CredentialsWrite) || slices.Contains(p.Scopes, VaultUse)) {
		return true
	}
	// A token scoped to writing credentials may read the tenant's record and
	// public key, so it can seal what it writes (sealed submissions).
	return perm == TenantsRead && slices.Contains(p.Scopes, CredentialsWrite)
}

// Denial explains why Allow refused p perm on tenantID, without saying
// whether another tenant exists.
func Denial(p *Principal, perm Permission, tenantID string) (code, message string) {
	switch {
	case p.MFAPending:
		return "mfa_enrollment_required", "this organization requires a second factor: enroll one (POST /api/v1/me/mfa/totp) and sign in again"
	case p.Tenant() && tenantID != "" && tenantID != p.TenantID:
		return "forbidden", "this is not your organization"
	case !p.scoped(perm):
		return "forbidden", fmt.Sprintf("this token is scoped and does not carry %q", perm)
	case p.Kind == KindMember:
		return "forbidden", fmt.Sprintf("the %s role does not allow %q here, and no grant in force does", p.Role, perm)
	case p.Kind == KindRobot && !slices.Contains(Grantable, perm):
		return "forbidden", fmt.Sprintf("robots may not use %q: no grant gives it to a robot", perm)
	case p.Kind == KindRobot:
		return "forbidden", fmt.Sprintf("this robot holds no grant in force for %q here", perm)
	}
	return "forbidden", fmt.Sprintf("operators may not use %q", perm)
}

// Base reports whether p's kind and role carry perm, ignoring grants and
// scopes.
func (p *Principal) Base(perm Permission) bool {
	switch p.Kind {
	case KindOperator:
		return slices.Contains(operatorPerms, perm)
	case KindMember:
		return slices.Contains(rolePerms[p.Role], perm)
	case KindRobot:
		return slices.Contains(robotPerms, perm)
	}
	return false
}

// Allow reports whether p may use perm on tenantID ("" when the route
// addresses no tenant) at now. A nil principal may use only Public.
func Allow(p *Principal, perm Permission, tenantID string, now time.Time) bool {
	if perm == Public {
		return true
	}
	if p == nil {
		return false
	}
	switch p.Kind {
	case KindOperator:
		return slices.Contains(operatorPerms, perm)
	case KindMember, KindRobot:
		// A tenant principal acts only on routes that address its own
		// tenant, or on its own self (routes under /api/v1/me).
		if tenantID == "" {
			return (perm == Self || perm == Whoami) && p.scoped(perm)
		}
		if tenantID != p.TenantID || !p.scoped(perm) {
			return false
		}
		if p.Base(perm) {
			return true
		}
		return p.Grants.Allows(perm, Resource{Type: ResourceTenant, ID: tenantID}, now) != ""
	}
	return false
}

// Check reports whether p may use perm on one resource of its tenant (a
// credential, a group): its role's permissions cover every resource of the
// tenant; grants cover the resource they name, the group holding it, or the
// whole tenant. It returns the grant that allowed it ("" when the role did
// or nothing did) and whether it is allowed.
func Check(p *Principal, perm Permission, tenantID string, res Resource, now time.Time) (grantID string, ok bool) {
	if !p.Tenant() || tenantID != p.TenantID || !p.scoped(perm) {
		return "", false
	}
	if p.Base(perm) {
		return "", true
	}
	if id := p.Grants.Allows(perm, res, now); id != "" {
		return id, true
	}
	// A grant on the whole tenant covers each of its resources.
	if res.Type != ResourceTenant {
		if id := p.Grants.Allows(perm, Resource{Type: ResourceTenant, ID: tenantID}, now); id != "" {
			return id, true
		}
	}
	return "", false
}

// Resource types a grant may name.
const (
	ResourceTenant     = "tenant"
	ResourceGroup      = "group"
	ResourceCredential = "credential"
)

// Resource is what a grant applies to. Group is the group a credential
// belongs to, so a grant on the group covers it.
type Resource struct {
	Type  string
	ID    string
	Group string
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// The installation itself, acting for no caller (sweeps, jobs): the
// principal ActorOf returns, named as the audit log names it.
const (
	KindSystem = "system"
	SystemID   = "custodia"
)

// ActorOf returns the principal in ctx, or the installation's own when
// there is none.
func ActorOf(ctx context.Context) *Principal {
	if p := From(ctx); p != nil {
		return p
	}
	return &Principal{Kind: KindSystem, ID: SystemID}
}

// From returns the principal in ctx, or nil.
func From(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}
