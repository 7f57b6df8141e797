package authz

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkCheck10kGrants is the in-memory part of a request's
// authorization with 10,000 live grants in the tenant: look the subject up
// in the cached index and decide one credential.
func BenchmarkCheck10kGrants(b *testing.B) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	by := map[string][]GrantRef{}
	for i := range 10_000 {
		sub := fmt.Sprintf("mem_%d", i%500)
		by[sub] = append(by[sub], GrantRef{ID: fmt.Sprintf("grt_%d", i), Perm: CredentialsReveal,
			Resource: Resource{Type: ResourceCredential, ID: fmt.Sprintf("cred_%d", i)}, ExpiresAt: now.Add(time.Hour)})
	}
	x := NewIndex()
	x.Store("t1", 7, by)
	b.ReportAllocs()
	for b.Loop() {
		set, ok := x.Lookup("t1", 7, "mem_42")
		p := &Principal{Kind: KindMember, ID: "mem_42", TenantID: "t1", Role: RoleMember, Grants: set}
		if _, allowed := Check(p, CredentialsReveal, "t1", Resource{Type: ResourceCredential, ID: "cred_9542"}, now); !ok || !allowed {
			b.Fatal("refused")
		}
	}
}

func TestGrantSetExpiry(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	s := NewGrantSet([]GrantRef{
		{ID: "g1", Perm: CredentialsReveal, Resource: Resource{Type: ResourceGroup, ID: "payroll"}, ExpiresAt: now.Add(time.Hour)},
		{ID: "g2", Perm: AuditRead, Resource: Resource{Type: ResourceTenant, ID: "t1"}, ExpiresAt: now.Add(time.Minute)},
	})
	cred := Resource{Type: ResourceCredential, ID: "c1", Group: "payroll"}
	if s.Allows(CredentialsReveal, cred, now) != "g1" {
		t.Error("ok/group grant covers its credential")
	}
	if s.Allows(CredentialsReveal, Resource{Type: ResourceCredential, ID: "c2", Group: "bank"}, now) != "" {
		t.Error("fail/group grant covers another group")
	}
	if s.Allows(CredentialsReveal, cred, now.Add(time.Hour)) != "" {
		t.Error("fail/grant allowed at its expiry")
	}
	if s.Allows(AuditRead, Resource{Type: ResourceTenant, ID: "t1"}, now.Add(time.Minute-time.Nanosecond)) != "g2" {
		t.Error("ok/tenant grant just before expiry")
	}
	var nilSet *GrantSet
	if nilSet.Allows(AuditRead, Resource{Type: ResourceTenant, ID: "t1"}, now) != "" {
		t.Error("fail/nil set allows")
	}
	// Holds: a live grant of the permission on any resource.
	if !s.Holds(CredentialsReveal, now) || s.Holds(CredentialsFetch, now) {
		t.Error("Holds: a group grant of reveal holds reveal, and nothing else")
	}
	if s.Holds(AuditRead, now.Add(time.Minute)) || nilSet.Holds(AuditRead, now) {
		t.Error("fail/Holds an expired grant, or from a nil set")
	}
	op := &Principal{Kind: KindOperator}
	if Allow(op, MembersRead, "t1", now) || Allow(op, AuditRead, "t1", now) || Allow(op, CredentialsReveal, "t1", now) {
		t.Error("fail/operator holds a tenant permission")
	}
	admin := &Principal{Kind: KindMember, TenantID: "t1", Role: RoleAdmin}
	if Allow(admin, CredentialsReveal, "t1", now) {
		t.Error("fail/an admin's role reveals credentials (invariant 3 needs a grant)")
	}
	if !Allow(admin, MembersManage, "t1", now) || Allow(admin, MembersManage, "t2", now) {
		t.Error("admin's own tenant only")
	}
	scoped := &Principal{Kind: KindMember, TenantID: "t1", Role: RoleAdmin, Scopes: []Permission{MembersRead}}
	if Allow(scoped, MembersManage, "t1", now) || !Allow(scoped, MembersRead, "t1", now) {
		t.Error("scopes narrow a token")
	}
}

// A grant on the whole tenant covers each credential of that tenant, and
// no other tenant's.
func TestTenantGrantCoversCredentials(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	set := NewGrantSet([]GrantRef{{ID: "g1", Perm: CredentialsFetch, Resource: Resource{Type: ResourceTenant, ID: "t1"}, ExpiresAt: now.Add(time.Hour)}})
	robot := &Principal{Kind: KindRobot, ID: "rbt_1", TenantID: "t1", Grants: set}
	cred := Resource{Type: ResourceCredential, ID: "crd_1", Group: "bank"}
	if id, ok := Check(robot, CredentialsFetch, "t1", cred, now); !ok || id != "g1" {
		t.Errorf("tenant grant on a credential = %q %v", id, ok)
	}
	if _, ok := Check(robot, CredentialsFetch, "t1", cred, now.Add(time.Hour)); ok {
		t.Error("expired tenant grant still covers a credential")
	}
	if _, ok := Check(robot, CredentialsReveal, "t1", cred, now); ok {
		t.Error("a fetch grant allowed a reveal")
	}
	other := &Principal{Kind: KindRobot, ID: "rbt_1", TenantID: "t2", Grants: set}
	if _, ok := Check(other, CredentialsFetch, "t2", cred, now); ok {
		t.Error("a grant on t1 covers a credential of t2")
	}
}
