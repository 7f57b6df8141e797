package app_test

import (
	"slices"
	"strings"
	"sync"
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

// bgSetup makes a tenant whose break-glass needs approval, with a bank
// credential, and returns its owner's token. change, when given, tunes
// the policy further.
func bgSetup(n *node, change func(pol map[string]any)) string {
	n.t.Helper()
	n.initAndUnseal()
	n.createTenant("acme")
	owner := n.pat(n.owner("acme"))
	n.putBank(owner, "bank/santander/main", bankSecret)
	n.bgPolicy(owner, func(pol map[string]any) {
		pol["break_glass"], pol["break_glass_minutes"] = "approval", 30
		if change != nil {
			change(pol)
		}
	})
	return owner
}

// bgPolicy changes acme's policy as its owner.
func (n *node) bgPolicy(owner string, change func(pol map[string]any)) {
	n.t.Helper()
	var pol map[string]any
	n.do("GET", "/api/v1/tenants/acme/policy", owner, nil).json(n.t, &pol)
	change(pol)
	if r := n.do("PUT", "/api/v1/tenants/acme/policy", owner, pol); r.status != 200 {
		n.t.Fatalf("policy: %d %s", r.status, r.body)
	}
}

type bgView struct {
	ID        string
	Status    string
	Open      bool
	Minutes   int
	ExpiresAt time.Time `json:"expires_at"`
}

// bgAsk asks, as the operator, to reveal acme's bank credential.
func (n *node) bgAsk() bgView {
	n.t.Helper()
	r := n.do("POST", "/api/v1/tenants/acme/break-glass", n.token, map[string]string{"credential": "bank/santander/main", "reason": "incident 4711"})
	if r.status != 201 {
		n.t.Fatalf("request: %d %s", r.status, r.body)
	}
	var b bgView
	r.json(n.t, &b)
	return b
}

// bgList is acme's break-glass requests by ID.
func (n *node) bgList(tok string) map[string]bgView {
	n.t.Helper()
	var l struct{ Requests []bgView }
	n.do("GET", "/api/v1/tenants/acme/break-glass", tok, nil).json(n.t, &l)
	out := map[string]bgView{}
	for _, b := range l.Requests {
		out[b.ID] = b
	}
	return out
}

// A request's reason, and a decision's, is one line of text: control and
// bidirectional characters, which could make what the tenant's admins
// read differ from what was written, are refused as they are in a fetch
// purpose or a reveal reason, and nothing is stored.
func TestBreakGlassReasonIsOneLine(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	owner := bgSetup(n, nil)
	for name, reason := range map[string]string{
		"fail/newline":            "incident 4711\napproved by the CEO",
		"fail/escape":             "incident \x1b[2J4711",
		"fail/right-to-left mark": "incident 4711 \u202eKCOL",
		"fail/zero-width joiner":  "incident\u200d4711",
		"fail/NUL":                "incident\x004711",
	} {
		t.Run(name, func(t *testing.T) {
			r := n.do("POST", "/api/v1/tenants/acme/break-glass", n.token, map[string]string{"credential": "bank/santander/main", "reason": reason})
			if r.status != 400 || r.errCode(t) != "invalid_reason" {
				t.Errorf("request: %d %s, want 400 invalid_reason", r.status, r.body)
			}
		})
	}
	if l := n.bgList(owner); len(l) != 0 {
		t.Fatalf("refused requests were stored: %v", l)
	}
	b := n.bgAsk()
	for _, verb := range []string{"approve", "deny"} {
		r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+b.ID+"/"+verb, owner, map[string]string{"reason": "ok \u2066by me"})
		if r.status != 400 || r.errCode(t) != "invalid_reason" {
			t.Errorf("%s with a bidirectional isolate in the reason: %d %s", verb, r.status, r.body)
		}
	}
	if got := n.bgList(owner)[b.ID]; got.Status != "pending" {
		t.Errorf("after refused decisions the request is %s", got.Status)
	}
}

// A pending request waits for an answer at most the policy's
// request_ttl_hours: then it can be neither approved, nor denied, nor
// used, and is listed as expired. Lowering request_ttl_hours shortens the
// wait of requests already made.
func TestBreakGlassPendingExpires(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner := bgSetup(n, nil)
		old, young := n.bgAsk(), n.bgAsk()
		if want := n.clock.Now().Add(24 * time.Hour); !old.ExpiresAt.Equal(want) || old.Status != "pending" {
			t.Errorf("pending request = %+v, want pending until %s (request_ttl_hours' default)", old, want)
		}
		n.clock.Add(24*time.Hour - time.Microsecond)
		if r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+young.ID+"/approve", owner, nil); r.status != 200 {
			t.Fatalf("approve a microsecond before the deadline: %d %s", r.status, r.body)
		}
		n.clock.Add(time.Microsecond)
		for _, verb := range []string{"approve", "deny"} {
			r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+old.ID+"/"+verb, owner, nil)
			if r.status != 409 || r.errCode(t) != "request_expired" {
				t.Errorf("%s at the deadline: %d %s, want 409 request_expired", verb, r.status, r.body)
			}
		}
		if r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+old.ID+"/reveal", n.token, nil); r.status != 403 || r.errCode(t) != "request_expired" {
			t.Errorf("reveal of an expired request: %d %s", r.status, r.body)
		}
		l := n.bgList(owner)
		if l[old.ID].Status != "expired" || l[old.ID].Open || l[young.ID].Status != "approved" || !l[young.ID].Open {
			t.Errorf("listed: %+v", l)
		}
		// A shorter wait applies to requests already made.
		n.bgPolicy(owner, func(pol map[string]any) { pol["request_ttl_hours"] = 1 })
		b := n.bgAsk()
		n.bgPolicy(owner, func(pol map[string]any) { pol["request_ttl_hours"] = 720 })
		n.bgPolicy(owner, func(pol map[string]any) { pol["request_ttl_hours"] = 24 })
		c := n.bgAsk()
		n.bgPolicy(owner, func(pol map[string]any) { pol["request_ttl_hours"] = 1 })
		n.clock.Add(time.Hour)
		for _, id := range []string{b.ID, c.ID} {
			if r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+id+"/approve", owner, nil); r.status != 409 || r.errCode(t) != "request_expired" {
				t.Errorf("approve an hour after asking, with request_ttl_hours 1 now: %d %s", r.status, r.body)
			}
		}
		// The list applies the same rule: c, asked for under 24 hours, is
		// listed expired, at the deadline the decision refused it by.
		l = n.bgList(owner)
		if got := l[c.ID]; got.Status != "expired" || got.Open || !got.ExpiresAt.Equal(n.clock.Now()) {
			t.Errorf("listed after request_ttl_hours was lowered: %+v, want expired at %s", got, n.clock.Now())
		}
		// Turning break-glass off ends the live requests only: those that
		// lapsed unanswered stay expired, a window that closed stays
		// approved.
		live := n.bgAsk()
		n.bgPolicy(owner, func(pol map[string]any) { pol["break_glass"] = "off" })
		l = n.bgList(owner)
		if l[old.ID].Status != "expired" || l[c.ID].Status != "expired" || l[live.ID].Status != "ended" || l[young.ID].Status != "approved" {
			t.Errorf("listed after break-glass was turned off: %+v", l)
		}
	})
}

// Lowering break_glass_minutes shortens a window already open: a reveal is
// refused once the policy's minutes now, counted from the approval, have
// passed, though the stored end is later. The list says so too, showing
// the minutes the window opened with. Raising them never lengthens a
// window past the end its approval set.
func TestBreakGlassLoweredMinutesShortenOpenWindow(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner := bgSetup(n, nil)
		b := n.bgAsk()
		if r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+b.ID+"/approve", owner, nil); r.status != 200 {
			t.Fatalf("approve: %d %s", r.status, r.body)
		}
		approved := n.clock.Now()
		reveal := func() resp { return n.do("POST", "/api/v1/tenants/acme/break-glass/"+b.ID+"/reveal", n.token, nil) }
		n.clock.Add(5 * time.Minute)
		if r := reveal(); r.status != 200 {
			t.Fatalf("reveal in the 30-minute window: %d %s", r.status, r.body)
		}
		n.bgPolicy(owner, func(pol map[string]any) { pol["break_glass_minutes"] = 10 })
		got := n.bgList(owner)[b.ID]
		if want := approved.Add(10 * time.Minute); !got.Open || got.Minutes != 30 || !got.ExpiresAt.Equal(want) {
			t.Errorf("listed after break_glass_minutes was lowered to 10: %+v, want open until %s, 30 minutes", got, want)
		}
		n.clock.Add(5*time.Minute - time.Microsecond)
		if r := reveal(); r.status != 200 {
			t.Fatalf("reveal inside the 10 minutes: %d %s", r.status, r.body)
		}
		n.clock.Add(time.Microsecond)
		if r := reveal(); r.status != 403 || r.errCode(t) != "break_glass_expired" {
			t.Errorf("reveal 10 minutes after the approval, with break_glass_minutes 10 now: %d %s", r.status, r.body)
		}
		if got := n.bgList(owner)[b.ID]; got.Open || got.Status != "approved" || got.Minutes != 30 {
			t.Errorf("listed after the shortened window: %+v", got)
		}
		n.bgPolicy(owner, func(pol map[string]any) { pol["break_glass_minutes"] = 240 })
		n.clock.Add(20 * time.Minute)
		if r := reveal(); r.status != 403 || r.errCode(t) != "break_glass_expired" {
			t.Errorf("reveal after the stored end, with break_glass_minutes raised: %d %s", r.status, r.body)
		}
		if d := n.auditDetails(n.tenantID("acme"), "breakglass.reveal"); len(d) != 2 {
			t.Errorf("audited reveals: %v", d)
		}
	})
}

// An approval opens the window for the policy's minutes as they are at
// the approval: a tenant that lowered them since the request was made
// gets the shorter window.
func TestBreakGlassApprovalUsesCurrentMinutes(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner := bgSetup(n, nil)
		b := n.bgAsk()
		if b.Minutes != 30 {
			t.Fatalf("request = %+v", b)
		}
		n.bgPolicy(owner, func(pol map[string]any) { pol["break_glass_minutes"] = 10 })
		n.clock.Add(time.Minute)
		r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+b.ID+"/approve", owner, nil)
		var got bgView
		r.json(t, &got)
		if want := n.clock.Now().Add(10 * time.Minute); r.status != 200 || got.Minutes != 10 || !got.ExpiresAt.Equal(want) {
			t.Fatalf("approve: %d %s, want 10 minutes until %s", r.status, r.body, want)
		}
		if l := n.bgList(owner)[b.ID]; l.Minutes != 10 || !l.ExpiresAt.Equal(got.ExpiresAt) {
			t.Errorf("listed: %+v", l)
		}
		for _, log := range []string{n.tenantID("acme"), store.OperatorLog} {
			if d := n.auditDetails(log, "breakglass.approve"); len(d) != 1 || d[0]["minutes"] != 10.0 {
				t.Errorf("approval in log %s: %v", log, d)
			}
		}
		n.clock.Add(10*time.Minute - time.Microsecond)
		if r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+b.ID+"/reveal", n.token, nil); r.status != 200 {
			t.Fatalf("reveal inside the window: %d %s", r.status, r.body)
		}
		n.clock.Add(time.Microsecond)
		if r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+b.ID+"/reveal", n.token, nil); r.status != 403 || r.errCode(t) != "break_glass_expired" {
			t.Errorf("reveal after the 10 minutes the policy allowed at approval: %d %s", r.status, r.body)
		}
	})
}

// An approval or denial may carry a reason, kept in both logs; without a
// body (as before) it is decided without one.
func TestBreakGlassDecisionReason(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner := bgSetup(n, nil)
		a, d, bare := n.bgAsk(), n.bgAsk(), n.bgAsk()
		for id, verb := range map[string]string{a.ID: "approve", d.ID: "deny"} {
			r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+id+"/"+verb, owner, map[string]string{"reason": "  ticket 4711, " + verb + " by Olga  "})
			if r.status != 200 {
				t.Fatalf("%s with a reason: %d %s", verb, r.status, r.body)
			}
		}
		if r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+bare.ID+"/approve", owner, nil); r.status != 200 {
			t.Fatalf("approve without a body: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/break-glass/"+bare.ID+"/deny", owner, map[string]any{"reason": "x", "minutes": 240}); r.status != 400 {
			t.Errorf("a decision with an unknown field: %d %s", r.status, r.body)
		}
		for _, log := range []string{n.tenantID("acme"), store.OperatorLog} {
			ap, dn := n.auditDetails(log, "breakglass.approve"), n.auditDetails(log, "breakglass.deny")
			if len(ap) != 2 || ap[0]["reason"] != "ticket 4711, approve by Olga" || ap[1]["reason"] != nil {
				t.Errorf("approvals in log %s: %v", log, ap)
			}
			if len(dn) != 1 || dn[0]["reason"] != "ticket 4711, deny by Olga" {
				t.Errorf("denial in log %s: %v", log, dn)
			}
		}
	})
}

// Concurrent decisions on one request take turns (its row is locked on
// PostgreSQL): exactly one approval or denial wins, the others answer
// already_decided, and the audit log holds one decision.
func TestBreakGlassDecisionsRace(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner := bgSetup(n, nil)
		b := n.bgAsk()
		const deciders = 8
		codes := make(chan int, deciders)
		var wg sync.WaitGroup
		for i := range deciders {
			verb := []string{"approve", "deny"}[i%2]
			wg.Go(func() { codes <- n.do("POST", "/api/v1/tenants/acme/break-glass/"+b.ID+"/"+verb, owner, nil).status })
		}
		wg.Wait()
		close(codes)
		won := 0
		for c := range codes {
			switch c {
			case 200:
				won++
			case 409:
			default:
				t.Errorf("a racing decision answered %d", c)
			}
		}
		tid := n.tenantID("acme")
		decided := len(n.auditDetails(tid, "breakglass.approve")) + len(n.auditDetails(tid, "breakglass.deny"))
		if won != 1 || decided != 1 {
			t.Errorf("%d decisions succeeded and %d were audited, want one of each", won, decided)
		}
	})
}
