// Package authz decides whether a principal may use a permission. It is the
// one place where that decision is made; the route table names a permission
// for every route and the server asks Allow before the handler runs.
//
// It must never consult the request beyond the principal and the tenant the
// route addresses.
package authz

// Permission is what a route requires.
type Permission string

// Permissions. Public needs no token at all; every other permission needs
// an authenticated principal.
const (
	Public Permission = "public"
	// Metrics is public only when the operator turned that on.
	Metrics Permission = "metrics.read"

	SysManage     Permission = "sys.manage"     // seal, rotate the root key
	TokensManage  Permission = "tokens.manage"  // operator tokens
	TenantsManage Permission = "tenants.manage" // create, suspend, shred, rotate keys
	TenantsRead   Permission = "tenants.read"
	AuditRead     Permission = "audit.read"
	AuditManage   Permission = "audit.manage" // prune entry bodies after retention
	JobsRead      Permission = "jobs.read"
)

// All is every permission a route may declare; a route naming anything else
// fails the route-table test.
var All = []Permission{Public, Metrics, SysManage, TokensManage, TenantsManage, TenantsRead, AuditRead, AuditManage, JobsRead}

// Principal kinds.
const (
	KindOperator = "operator"
)

// Principal is an authenticated caller.
type Principal struct {
	Kind string
	ID   string
	// TenantID is the tenant a tenant-scoped principal belongs to; empty for
	// operators.
	TenantID string
}

// Allow reports whether p may use perm on tenantID ("" when the route
// addresses no tenant). A nil principal may use only Public.
func Allow(p *Principal, perm Permission, tenantID string) bool {
	if perm == Public {
		return true
	}
	if p == nil {
		return false
	}
	switch p.Kind {
	case KindOperator:
		// Operators run the installation; tenant data itself stays sealed
		// from them (later capabilities gate reveals separately).
		return true
	}
	return false
}
