package app_test

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/custodia-project/custodia/internal/store"
)

// versionsOf lists the versions a credential keeps, as its owner sees
// them.
func (n *node) versionsOf(tok, name string) []int {
	n.t.Helper()
	var l struct{ Versions []struct{ Version int } }
	r := n.do("GET", "/api/v1/tenants/acme/credentials/"+url.PathEscape(name)+"/versions", tok, nil)
	if r.status != 200 {
		n.t.Fatalf("versions of %s: %d %s", name, r.status, r.body)
	}
	r.json(n.t, &l)
	return each(l.Versions, func(v struct{ Version int }) int { return v.Version })
}

// lastDetails returns the details of a tenant log's newest entry of
// action.
func (n *node) lastDetails(action string) map[string]any {
	n.t.Helper()
	ds := n.auditDetails(n.tenantID("acme"), action)
	if len(ds) == 0 {
		n.t.Fatalf("no %s entry", action)
	}
	return ds[len(ds)-1]
}

// Pruning past max_versions erases versions for good, so a write or
// restore prunes only for whoever may erase the credential: a plain
// member writing the owner's credential over and over keeps its history
// (past max_versions), until its owner or an admin writes it.
func TestPruningNeedsTheRightToErase(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		_, mel := n.join("acme", owner, "mel", "member")
		mel = n.pat(mel)
		put := func(tok string, i int) {
			t.Helper()
			r := n.do("POST", "/api/v1/tenants/acme/credentials", tok, map[string]any{"name": "payroll/a3", "max_versions": 3,
				"secret": map[string]string{"password": fmt.Sprint("Zq8-history-", i, "-5521")}})
			if r.status/100 != 2 {
				t.Fatalf("put %d: %d %s", i, r.status, r.body)
			}
		}
		restore := func(tok string, v int) {
			t.Helper()
			r := n.do("POST", "/api/v1/tenants/acme/credentials/payroll%2Fa3/restore", tok, map[string]int{"version": v})
			if r.status != 200 {
				t.Fatalf("restore %d: %d %s", v, r.status, r.body)
			}
		}
		put(owner, 1)
		for i := 2; i <= 6; i++ {
			put(mel, i)
		}
		if got := n.versionsOf(owner, "payroll/a3"); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6}) {
			t.Fatalf("versions after a member's writes = %v, want every one kept", got)
		}
		if d := n.lastDetails("credential.update"); d["pruned"] != nil || d["kept_over_max_versions"] != float64(3) {
			t.Errorf("member's write audited as %v, want kept_over_max_versions 3 and nothing pruned", d)
		}
		restore(mel, 1)
		if got := n.versionsOf(owner, "payroll/a3"); len(got) != 7 || got[0] != 1 {
			t.Fatalf("versions after a member's restore = %v, want all 7", got)
		}
		// The owner's write prunes down to max_versions, and says which.
		put(owner, 8)
		if got := n.versionsOf(owner, "payroll/a3"); !slices.Equal(got, []int{6, 7, 8}) {
			t.Errorf("versions after the owner's write = %v, want [6 7 8]", got)
		}
		if d := n.lastDetails("credential.update"); fmt.Sprint(d["pruned"]) != "[1 2 3 4 5]" {
			t.Errorf("owner's write audited as %v, want pruned [1 2 3 4 5]", d)
		}
		// A restore names what it pruned, as a write does.
		restore(owner, 6)
		if got := n.versionsOf(owner, "payroll/a3"); !slices.Equal(got, []int{7, 8, 9}) {
			t.Errorf("versions after the owner's restore = %v, want [7 8 9]", got)
		}
		if d := n.lastDetails("credential.restore"); fmt.Sprint(d["pruned"]) != "[6]" {
			t.Errorf("owner's restore audited as %v, want pruned [6]", d)
		}
	})
}

// versionRow reads a credential version's row from the store.
func (n *node) versionRow(credID string, version int) (*store.CredentialVersion, error) {
	n.t.Helper()
	var v *store.CredentialVersion
	err := n.app.Store.View(n.t.Context(), func(tx store.Tx) error {
		var err error
		v, err = tx.GetCredentialVersion(n.t.Context(), n.tenantID("acme"), credID, version)
		return err
	})
	return v, err
}

// Destroying a version leaves nothing derived from its password: no keyed
// fingerprint, strength or breached flag in the version's row; deleting
// the credential leaves no version row at all.
func TestDestroyLeavesNothingOfThePassword(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		id := n.putBank(owner, "bank/main", "password1") // on the breached list
		n.putBank(owner, "bank/main", bankSecret)
		before, err := n.versionRow(id, 1)
		if err != nil || before.Fingerprint == nil || !before.Breached || before.Strength < 0 {
			t.Fatalf("version 1 before destroy = %+v, %v: want a fingerprint, a strength and breached", before, err)
		}
		if r := n.do("POST", "/v1/secret/destroy/bank/main", owner, map[string]any{"versions": []int{1}}); r.status != 204 {
			t.Fatalf("destroy: %d %s", r.status, r.body)
		}
		v, err := n.versionRow(id, 1)
		if err != nil || v.DestroyedAt.IsZero() || v.Fingerprint != nil || v.Strength != -1 || v.Breached {
			t.Errorf("destroyed version 1 = %+v, %v: want destroyed, no fingerprint, strength -1, not breached", v, err)
		}
		if v, err := n.versionRow(id, 2); err != nil || v.Fingerprint == nil {
			t.Errorf("version 2 lost its fingerprint with version 1: %+v, %v", v, err)
		}
		if r := n.do("DELETE", "/api/v1/tenants/acme/credentials/"+id, owner, nil); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		for _, ver := range []int{1, 2} {
			if v, err := n.versionRow(id, ver); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("version %d after the credential's delete = %+v, %v, want none", ver, v, err)
			}
		}
	})
}

// Every read of a secret is audited: a robot's re-read under its lease is
// a lease.read entry naming the robot, lease, credential and version,
// never the secret.
func TestLeaseReadIsAudited(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		id := n.putBank(owner, "payroll/a3", bankSecret)
		botID, bot := n.robot(owner, "payroll-bot")
		n.grantFetch(owner, botID)
		var s struct {
			LeaseID string `json:"lease_id"`
		}
		n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", bot, map[string]string{"purpose": "payroll"}).json(t, &s)
		for range 2 {
			if r := n.do("GET", "/api/v1/tenants/acme/leases/"+s.LeaseID, bot, nil); r.status != 200 {
				t.Fatalf("re-read: %d %s", r.status, r.body)
			}
		}
		if r := n.do("GET", "/api/v1/tenants/acme/leases/"+s.LeaseID, owner, nil); r.status != 404 {
			t.Fatalf("someone else's re-read: %d %s", r.status, r.body)
		}
		reads := n.auditDetails(n.tenantID("acme"), "lease.read")
		if len(reads) != 2 {
			t.Fatalf("lease.read entries = %v, want one per re-read (2)", reads)
		}
		for _, d := range reads {
			if d["robot"] != botID || d["lease"] != s.LeaseID || d["credential"] != id || d["version"] != float64(1) {
				t.Errorf("lease.read details = %v", d)
			}
			if strings.Contains(fmt.Sprint(d), bankSecret) {
				t.Errorf("lease.read carries the secret: %v", d)
			}
		}
	})
}
