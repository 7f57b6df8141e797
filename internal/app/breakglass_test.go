package app_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

// Staff break-glass: refused while the tenant's policy is off; under
// "approval" the operator waits for a tenant admin, reveals only while the
// window is open, every step is in both logs and the tenant is told; under
// "notify" it opens at once; turning the policy off ends it.
func TestBreakGlass(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		tid := n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		id := n.putBank(owner, "bank/santander/main", bankSecret)
		ask := map[string]string{"credential": "bank/santander/main", "reason": "incident 4711: payroll robot fails, customer asked"}
		if r := n.do("POST", "/api/v1/tenants/acme/break-glass", n.token, ask); r.status != 403 || r.errCode(t) != "break_glass_disabled" {
			t.Fatalf("break-glass under the default policy: %d %s", r.status, r.body)
		}
		setPolicy := func(mode string) {
			var pol map[string]any
			n.do("GET", "/api/v1/tenants/acme/policy", owner, nil).json(t, &pol)
			pol["break_glass"], pol["break_glass_minutes"] = mode, 30
			if r := n.do("PUT", "/api/v1/tenants/acme/policy", owner, pol); r.status != 200 {
				t.Fatalf("policy: %d %s", r.status, r.body)
			}
		}
		setPolicy("approval")
		if r := n.do("POST", "/api/v1/tenants/acme/break-glass", n.token, map[string]string{"credential": id}); r.status != 400 {
			t.Errorf("break-glass without a reason: %d %s", r.status, r.body)
		}
		var b struct {
			ID     string
			Status string
			Open   bool
		}
		r := n.do("POST", "/api/v1/tenants/acme/break-glass", n.token, ask)
		if r.status != 201 {
			t.Fatalf("request: %d %s", r.status, r.body)
		}
		r.json(t, &b)
		if b.Status != store.BreakGlassPending || b.Open {
			t.Errorf("request = %+v", b)
		}
		reveal := func() resp { return n.do("POST", "/api/v1/tenants/acme/break-glass/"+b.ID+"/reveal", n.token, nil) }
		if r := reveal(); r.status != 403 || r.errCode(t) != "approval_pending" {
			t.Errorf("reveal before approval: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+b.ID+"/approve", owner, nil); r.status != 200 {
			t.Fatalf("approve: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+b.ID+"/approve", owner, nil); r.status != 409 {
			t.Errorf("second approval: %d", r.status)
		}
		r = reveal()
		if r.status != 200 || !strings.Contains(string(r.body), bankSecret) || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("reveal: %d %s", r.status, r.body)
		}
		for _, log := range []string{tid, store.OperatorLog} {
			acts := n.auditActions(log)
			for _, want := range []string{"breakglass.request:ok", "breakglass.approve:ok", "breakglass.reveal:ok"} {
				if !slices.Contains(acts, want) {
					t.Errorf("log %s lacks %s: %v", log, want, acts)
				}
			}
		}
		var notes struct{ Notifications []struct{ Kind string } }
		n.do("GET", "/api/v1/me/notifications", owner, nil).json(t, &notes)
		kinds := []string{}
		for _, x := range notes.Notifications {
			kinds = append(kinds, x.Kind)
		}
		if !slices.Contains(kinds, "break_glass_requested") || !slices.Contains(kinds, "break_glass_revealed") {
			t.Errorf("owner notifications = %v", kinds)
		}
		// The window closes at its end, to the instant.
		n.clock.Add(30 * time.Minute)
		if r := reveal(); r.status != 403 || r.errCode(t) != "break_glass_expired" {
			t.Errorf("reveal after the window: %d %s", r.status, r.body)
		}
		// A denied request never opens.
		r = n.do("POST", "/api/v1/tenants/acme/break-glass", n.token, ask)
		r.json(t, &b)
		n.do("POST", "/api/v1/tenants/acme/break-glass/"+b.ID+"/deny", owner, nil)
		if r := reveal(); r.status != 403 || r.errCode(t) != "break_glass_denied" {
			t.Errorf("reveal after denial: %d %s", r.status, r.body)
		}
		// "notify": open at once; turning the policy off ends it.
		setPolicy("notify")
		r = n.do("POST", "/api/v1/tenants/acme/break-glass", n.token, ask)
		r.json(t, &b)
		if !b.Open {
			t.Errorf("notify request = %s", r.body)
		}
		if r := reveal(); r.status != 200 {
			t.Errorf("reveal under notify: %d %s", r.status, r.body)
		}
		setPolicy("off")
		if r := reveal(); r.status != 403 || r.errCode(t) != "break_glass_ended" {
			t.Errorf("reveal after the policy was turned off: %d %s", r.status, r.body)
		}
		// Ended for good: turning break-glass on again opens no old
		// request.
		setPolicy("notify")
		if r := reveal(); r.status != 403 || r.errCode(t) != "break_glass_ended" {
			t.Errorf("reveal of an ended request after the policy was turned on again: %d %s", r.status, r.body)
		}
		var l struct {
			Requests []struct {
				ID, Status string
				Open       bool
			}
		}
		n.do("GET", "/api/v1/tenants/acme/break-glass", owner, nil).json(t, &l)
		if len(l.Requests) != 3 {
			t.Errorf("tenant sees %d requests, want 3", len(l.Requests))
		}
		for _, q := range l.Requests {
			if q.ID == b.ID && (q.Status != "ended" || q.Open) {
				t.Errorf("the request open when break-glass was turned off is listed %s, open %v", q.Status, q.Open)
			}
		}
		for log, acts := range map[string][]string{"tenant": n.auditActions(n.tenantID("acme")), "operator": n.auditActions(store.OperatorLog)} {
			if !slices.Contains(acts, "breakglass.end:ok") {
				t.Errorf("the %s log does not record the ended request: %v", log, acts)
			}
		}
		// The break-glass responses never carried the secret but the
		// reveal; the tenant's people still cannot read it back.
		if r := n.do("GET", "/v1/secret/data/bank/santander/main", owner, nil); r.status != 403 {
			t.Errorf("owner after break-glass: %d", r.status)
		}
	})
}
