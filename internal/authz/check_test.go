package authz

import (
	"testing"
	"time"
)

// A grant on the whole tenant covers each credential of it, as one on the
// credential or its group does; on another tenant, or expired, it covers
// nothing. And a token scoped to writing credentials may read the tenant's
// public key.
func TestCheckTenantGrant(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	robot := func(refs ...GrantRef) *Principal {
		return &Principal{Kind: KindRobot, ID: "rbt_1", TenantID: "t1", Grants: NewGrantSet(refs)}
	}
	cred := Resource{Type: ResourceCredential, ID: "c1", Group: "bank"}
	for name, c := range map[string]struct {
		p      *Principal
		tenant string
		at     time.Time
		want   string
	}{
		"ok/tenant grant": {robot(GrantRef{ID: "g1", Perm: CredentialsWrite, Resource: Resource{Type: ResourceTenant, ID: "t1"},
			ExpiresAt: now.Add(time.Hour)}), "t1", now, "g1"},
		"ok/group grant": {robot(GrantRef{ID: "g2", Perm: CredentialsWrite, Resource: Resource{Type: ResourceGroup, ID: "bank"},
			ExpiresAt: now.Add(time.Hour)}), "t1", now, "g2"},
		"fail/expired tenant grant": {robot(GrantRef{ID: "g1", Perm: CredentialsWrite, Resource: Resource{Type: ResourceTenant, ID: "t1"},
			ExpiresAt: now}), "t1", now, ""},
		"fail/grant of another permission": {robot(GrantRef{ID: "g1", Perm: CredentialsRead, Resource: Resource{Type: ResourceTenant, ID: "t1"},
			ExpiresAt: now.Add(time.Hour)}), "t1", now, ""},
		"fail/another tenant": {robot(GrantRef{ID: "g1", Perm: CredentialsWrite, Resource: Resource{Type: ResourceTenant, ID: "t1"},
			ExpiresAt: now.Add(time.Hour)}), "t2", now, ""},
	} {
		t.Run(name, func(t *testing.T) {
			id, ok := Check(c.p, CredentialsWrite, c.tenant, cred, c.at)
			if id != c.want || ok != (c.want != "") {
				t.Fatalf("Check = %q, %v; want %q", id, ok, c.want)
			}
		})
	}

	writer := &Principal{Kind: KindMember, ID: "mem_1", TenantID: "t1", Role: RoleMember, Scopes: []Permission{CredentialsWrite}}
	if !Allow(writer, TenantsRead, "t1", now) {
		t.Error("ok/a write-scoped token may read the tenant (its public key)")
	}
	if Allow(writer, CredentialsRead, "t1", now) || Allow(writer, MembersRead, "t1", now) {
		t.Error("fail/a write-scoped token reads more than the tenant")
	}
	fetcher := &Principal{Kind: KindRobot, ID: "rbt_1", TenantID: "t1", Scopes: []Permission{CredentialsFetch}}
	if Allow(fetcher, TenantsRead, "t1", now) {
		t.Error("fail/a fetch-scoped token reads the tenant")
	}
}
