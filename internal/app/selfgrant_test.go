package app_test

import "testing"

// Invariant 3, the grant half: nobody may grant themselves
// credentials.reveal, so one owner or admin alone cannot make a
// write-only secret readable to themselves; another person grants it, or
// an access request that someone else decides. Other permissions, and a
// reveal grant to someone else, are not affected.
func TestNoSelfGrantOfReveal(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		adaID, ada := n.join("acme", owner, "ada", "admin")
		ada = n.pat(ada)
		id := n.putBank(ada, "bank/santander/main", bankSecret)

		grant := func(tok, subject, perm string) resp {
			t.Helper()
			return n.do("POST", "/api/v1/tenants/acme/grants", tok, map[string]string{"subject": subject, "permission": perm,
				"resource": "credential:" + id, "duration": "1h", "reason": "month-end close"})
		}
		for who, c := range map[string]struct{ tok, self string }{"owner": {owner, "owner@acme.example"}, "admin": {ada, adaID}} {
			if r := grant(c.tok, c.self, "credentials.reveal"); r.status != 403 || r.errCode(t) != "self_grant" {
				t.Errorf("%s grants themselves reveal: %d %s", who, r.status, r.body)
			}
			if r := grant(c.tok, "ada@acme.example", "credentials.reveal"); who == "admin" && (r.status != 403 || r.errCode(t) != "self_grant") {
				t.Errorf("admin grants themselves reveal by email: %d %s", r.status, r.body)
			}
		}
		if r := grant(owner, adaID, "credentials.reveal"); r.status != 201 {
			t.Errorf("owner grants the admin reveal: %d %s", r.status, r.body)
		}
		if r := grant(ada, adaID, "credentials.read"); r.status != 201 {
			t.Errorf("admin grants themselves read: %d %s", r.status, r.body)
		}
	})
}
