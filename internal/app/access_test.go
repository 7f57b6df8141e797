package app_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/authz"
)

const testPassword = "plum Vortex harbour 93 quietly"

func (n *node) operatorMay(rt api.Route) bool {
	return authz.Allow(&authz.Principal{Kind: authz.KindOperator}, rt.Perm, "", time.Time{})
}

// signin signs a member in with a password and returns the session token.
func (n *node) signin(tenant, email string) string {
	n.t.Helper()
	r := n.do("POST", "/api/v1/auth/signin", "", map[string]any{"tenant": tenant, "email": email, "password": testPassword, "want_token": true})
	if r.status != 200 {
		n.t.Fatalf("sign in %s: %d %s", email, r.status, r.body)
	}
	var sr struct{ Status, Session string }
	r.json(n.t, &sr)
	if sr.Status != "signed_in" || sr.Session == "" {
		n.t.Fatalf("sign in %s: %s", email, r.body)
	}
	return sr.Session
}

// accept accepts an invitation with the test password.
func (n *node) accept(invite string) {
	n.t.Helper()
	if r := n.do("POST", "/api/v1/auth/accept", "", map[string]string{"token": invite, "password": testPassword}); r.status != 200 {
		n.t.Fatalf("accept: %d %s", r.status, r.body)
	}
}

// owner gives a fresh tenant its first owner and returns their session.
func (n *node) owner(slug string) string {
	n.t.Helper()
	email := "owner@" + slug + ".example"
	r := n.do("POST", "/api/v1/tenants/"+slug+"/owner-invite", n.token, map[string]string{"email": email})
	if r.status != 201 {
		n.t.Fatalf("owner invite: %d %s", r.status, r.body)
	}
	var ir struct {
		InviteToken string `json:"invite_token"`
	}
	r.json(n.t, &ir)
	n.accept(ir.InviteToken)
	return n.signin(slug, email)
}

// join invites a member with a role as by and returns their ID and a
// session.
func (n *node) join(slug, by, name, role string) (id, session string) {
	n.t.Helper()
	email := name + "@" + slug + ".example"
	r := n.do("POST", "/api/v1/tenants/"+slug+"/members", by, map[string]string{"email": email, "role": role})
	if r.status != 201 {
		n.t.Fatalf("invite %s: %d %s", name, r.status, r.body)
	}
	var ir struct {
		Member      struct{ ID string } `json:"member"`
		InviteToken string              `json:"invite_token"`
	}
	r.json(n.t, &ir)
	n.accept(ir.InviteToken)
	return ir.Member.ID, n.signin(slug, email)
}

// pat turns a session into a personal API token (so the matrix's signout
// call cannot end it).
func (n *node) pat(session string) string {
	n.t.Helper()
	r := n.do("POST", "/api/v1/me/tokens", session, map[string]string{"name": "matrix"})
	if r.status != 201 {
		n.t.Fatalf("personal token: %d %s", r.status, r.body)
	}
	var nt struct{ Token string }
	r.json(n.t, &nt)
	return nt.Token
}

// Who may call each route. Letters: o operator, O owner, A admin, M member,
// U auditor, R robot; "*" is public. A route missing here fails the test,
// so every new route must say who may call it.
var routeAccess = map[string]string{
	"GET /healthz":                              "*",
	"GET /readyz":                               "*",
	"GET /metrics":                              "o",
	"GET /api/v1/openapi.json":                  "*",
	"GET /api/v1/sys/seal-status":               "*",
	"POST /api/v1/sys/init":                     "*",
	"POST /api/v1/sys/unseal":                   "*",
	"POST /api/v1/sys/seal":                     "o",
	"POST /api/v1/sys/rotate-root":              "o",
	"GET /api/v1/sys/tokens":                    "o",
	"POST /api/v1/sys/tokens":                   "o",
	"DELETE /api/v1/sys/tokens/{id}":            "o",
	"GET /api/v1/tenants":                       "o",
	"POST /api/v1/tenants":                      "o",
	"GET /api/v1/tenants/{tenant}":              "oOAMUR",
	"POST /api/v1/tenants/{tenant}/suspend":     "o",
	"POST /api/v1/tenants/{tenant}/resume":      "o",
	"POST /api/v1/tenants/{tenant}/shred":       "o",
	"GET /api/v1/tenants/{tenant}/keys":         "oOAMUR",
	"POST /api/v1/tenants/{tenant}/keys/rotate": "o",
	"GET /api/v1/tenants/{tenant}/public-key":   "oOAMUR",
	"GET /api/v1/audit/public-key":              "*",
	"GET /api/v1/jobs":                          "o",
	"GET /api/v1/jobs/{id}":                     "o",

	"GET /api/v1/tenants/{tenant}/audit/events":            "OAU",
	"GET /api/v1/tenants/{tenant}/audit/events/{seq}":      "OAU",
	"GET /api/v1/tenants/{tenant}/audit/export":            "OAU",
	"GET /api/v1/tenants/{tenant}/audit/checkpoint":        "oOAU",
	"POST /api/v1/tenants/{tenant}/audit/checkpoint":       "oOAU",
	"GET /api/v1/tenants/{tenant}/audit/checkpoints":       "oOAU",
	"GET /api/v1/tenants/{tenant}/audit/proof/inclusion":   "oOAU",
	"GET /api/v1/tenants/{tenant}/audit/proof/consistency": "oOAU",
	"POST /api/v1/tenants/{tenant}/audit/prune":            "o",
	"GET /api/v1/audit/operator/events":                    "o",
	"GET /api/v1/audit/operator/events/{seq}":              "o",
	"GET /api/v1/audit/operator/export":                    "o",
	"GET /api/v1/audit/operator/checkpoint":                "o",
	"POST /api/v1/audit/operator/checkpoint":               "o",
	"GET /api/v1/audit/operator/checkpoints":               "o",
	"GET /api/v1/audit/operator/proof/inclusion":           "o",
	"GET /api/v1/audit/operator/proof/consistency":         "o",
	"POST /api/v1/audit/operator/prune":                    "o",

	"GET /api/v1/tenants/{tenant}/members":                                "OAU",
	"POST /api/v1/tenants/{tenant}/members":                               "OA",
	"GET /api/v1/tenants/{tenant}/members/{member}":                       "OAU",
	"POST /api/v1/tenants/{tenant}/members/{member}/role":                 "OA",
	"POST /api/v1/tenants/{tenant}/members/{member}/offboard":             "OA",
	"GET /api/v1/tenants/{tenant}/offboarding/{report}":                   "OAU",
	"POST /api/v1/tenants/{tenant}/owner-invite":                          "o",
	"GET /api/v1/tenants/{tenant}/policy":                                 "OAU",
	"PUT /api/v1/tenants/{tenant}/policy":                                 "OA",
	"GET /api/v1/tenants/{tenant}/robots":                                 "OAU",
	"POST /api/v1/tenants/{tenant}/robots":                                "OA",
	"POST /api/v1/tenants/{tenant}/robots/{robot}/tokens":                 "OA",
	"POST /api/v1/tenants/{tenant}/robots/{robot}/tokens/{token}/approve": "OA",
	"POST /api/v1/tenants/{tenant}/robots/{robot}/disable":                "OA",
	"GET /api/v1/tenants/{tenant}/tokens":                                 "OAU",
	"DELETE /api/v1/tenants/{tenant}/tokens/{id}":                         "OA",
	"GET /api/v1/tenants/{tenant}/grants":                                 "OAU",
	"POST /api/v1/tenants/{tenant}/grants":                                "OA",
	"DELETE /api/v1/tenants/{tenant}/grants/{id}":                         "OA",
	"GET /api/v1/tenants/{tenant}/requests":                               "OAMU",
	"POST /api/v1/tenants/{tenant}/requests":                              "OAMU",
	"POST /api/v1/tenants/{tenant}/requests/{id}/approve":                 "OA",
	"POST /api/v1/tenants/{tenant}/requests/{id}/deny":                    "OA",
	"POST /api/v1/tenants/{tenant}/requests/{id}/cancel":                  "OAMU",
	"GET /api/v1/tenants/{tenant}/reviews":                                "OAU",
	"POST /api/v1/tenants/{tenant}/reviews":                               "OA",
	"GET /api/v1/tenants/{tenant}/reviews/{review}":                       "OAU",
	"POST /api/v1/tenants/{tenant}/reviews/{review}/decisions":            "OA",
	"POST /api/v1/tenants/{tenant}/reviews/{review}/signoff":              "OA",
	"GET /api/v1/tenants/{tenant}/reviews/{review}/export":                "OAU",
	"GET /api/v1/tenants/{tenant}/rotation-flags":                         "OAU",

	"GET /api/v1/tenants/{tenant}/credentials":                   "OAMU",
	"POST /api/v1/tenants/{tenant}/credentials":                  "OAM",
	"GET /api/v1/tenants/{tenant}/credentials/{cred}":            "OAMU",
	"DELETE /api/v1/tenants/{tenant}/credentials/{cred}":         "OAM",
	"GET /api/v1/tenants/{tenant}/credentials/{cred}/versions":   "OAMU",
	"POST /api/v1/tenants/{tenant}/credentials/{cred}/restore":   "OAM",
	"PUT /api/v1/tenants/{tenant}/credentials/{cred}/revealable": "OA",
	"POST /api/v1/tenants/{tenant}/credentials/{cred}/fetch":     "OAMUR",
	"POST /api/v1/tenants/{tenant}/credentials/{cred}/reveal":    "OAMUR",
	"GET /api/v1/tenants/{tenant}/leases":                        "OAUR",
	"GET /api/v1/tenants/{tenant}/leases/{lease}":                "OAMUR",
	"POST /api/v1/tenants/{tenant}/leases/{lease}/renew":         "OAMUR",
	"DELETE /api/v1/tenants/{tenant}/leases/{lease}":             "OAMUR",
	"GET /api/v1/tenants/{tenant}/credentials-health":            "OAMUR",
	"GET /api/v1/tenants/{tenant}/credentials-rotation":          "OAMUR",

	"GET /api/v1/tenants/{tenant}/break-glass":               "oOAMU",
	"POST /api/v1/tenants/{tenant}/break-glass":              "o",
	"POST /api/v1/tenants/{tenant}/break-glass/{id}/approve": "OA",
	"POST /api/v1/tenants/{tenant}/break-glass/{id}/deny":    "OA",
	"POST /api/v1/tenants/{tenant}/break-glass/{id}/reveal":  "o",

	// The Vault-compatible API: a tenant's people and robots reach it
	// (the vault then decides per credential), operators never.
	"GET /v1/secret/data/{path...}":                           "OAMUR",
	"PUT /v1/secret/data/{path...}":                           "OAMUR",
	"POST /v1/secret/data/{path...}":                          "OAMUR",
	"DELETE /v1/secret/data/{path...}":                        "OAMUR",
	"POST /v1/secret/delete/{path...}":                        "OAMUR",
	"PUT /v1/secret/delete/{path...}":                         "OAMUR",
	"POST /v1/secret/undelete/{path...}":                      "OAMUR",
	"PUT /v1/secret/undelete/{path...}":                       "OAMUR",
	"POST /v1/secret/destroy/{path...}":                       "OAMUR",
	"PUT /v1/secret/destroy/{path...}":                        "OAMUR",
	"GET /v1/secret/metadata/{path...}":                       "OAMUR",
	"LIST /v1/secret/metadata/{path...}":                      "OAMUR",
	"POST /v1/secret/metadata/{path...}":                      "OAMUR",
	"PUT /v1/secret/metadata/{path...}":                       "OAMUR",
	"DELETE /v1/secret/metadata/{path...}":                    "OAMUR",
	"GET /v1/sys/mounts":                                      "OAMUR",
	"GET /v1/sys/internal/ui/mounts/{path...}":                "OAMUR",
	"PUT /v1/sys/leases/renew":                                "OAMUR",
	"POST /v1/sys/leases/renew":                               "OAMUR",
	"PUT /v1/sys/leases/revoke":                               "OAMUR",
	"POST /v1/sys/leases/revoke":                              "OAMUR",
	"PUT /v1/sys/leases/renew/{lease...}":                     "OAMUR",
	"POST /v1/sys/leases/renew/{lease...}":                    "OAMUR",
	"PUT /v1/sys/leases/revoke/{lease...}":                    "OAMUR",
	"POST /v1/sys/leases/revoke/{lease...}":                   "OAMUR",
	"PUT /v1/sys/renew":                                       "OAMUR",
	"POST /v1/sys/renew":                                      "OAMUR",
	"PUT /v1/sys/renew/{lease...}":                            "OAMUR",
	"POST /v1/sys/renew/{lease...}":                           "OAMUR",
	"PUT /v1/sys/revoke":                                      "OAMUR",
	"POST /v1/sys/revoke":                                     "OAMUR",
	"PUT /v1/sys/revoke/{lease...}":                           "OAMUR",
	"POST /v1/sys/revoke/{lease...}":                          "OAMUR",
	"PUT /v1/sys/leases/lookup":                               "OAMUR",
	"POST /v1/sys/leases/lookup":                              "OAMUR",
	"GET /v1/sys/health":                                      "*",
	"GET /v1/auth/token/lookup-self":                          "*",
	"POST /v1/auth/approle/login":                             "*",
	"PUT /v1/auth/approle/login":                              "*",
	"POST /api/v1/tenants/{tenant}/shares":                    "OAM",
	"GET /api/v1/tenants/{tenant}/shares":                     "OAM",
	"DELETE /api/v1/tenants/{tenant}/shares/{id}":             "OAM",
	"GET /api/v1/shares/{id}":                                 "*",
	"POST /api/v1/shares/{id}/open":                           "*",
	"GET /s/{id}":                                             "*",
	"GET /api/v1/tenants/{tenant}/certificates":               "OAMU",
	"POST /api/v1/tenants/{tenant}/certificates":              "OAM",
	"GET /api/v1/tenants/{tenant}/certificates/{cert}":        "OAMU",
	"POST /api/v1/tenants/{tenant}/certificates/{cert}/fetch": "OAMUR",

	"GET /api/v1/me":                          "oOAMUR",
	"GET /api/v1/me/tokens":                   "OAMUR",
	"POST /api/v1/me/tokens":                  "OAMUR",
	"DELETE /api/v1/me/tokens/{id}":           "OAMUR",
	"GET /api/v1/me/sessions":                 "OAMUR",
	"POST /api/v1/me/signout":                 "OAMUR",
	"GET /api/v1/me/notifications":            "OAMUR",
	"POST /api/v1/me/notifications/{id}/read": "OAMUR",
	"POST /api/v1/me/mfa/totp":                "OAMUR",
	"POST /api/v1/me/mfa/totp/confirm":        "OAMUR",
	"POST /api/v1/me/mfa/recovery-codes":      "OAMUR",
	"POST /api/v1/me/mfa/passkeys":            "OAMUR",
	"POST /api/v1/me/mfa/passkeys/finish":     "OAMUR",

	"POST /api/v1/auth/signin":                 "*",
	"POST /api/v1/auth/signin/mfa":             "*",
	"POST /api/v1/auth/signin/passkey-options": "*",
	"POST /api/v1/auth/accept":                 "*",
	"GET /api/v1/auth/sso/{tenant}/start":      "*",
	"GET /api/v1/auth/sso/callback":            "*",
}

// TestAuthorizationMatrix calls every route as every kind of caller, on
// the caller's own tenant and on another, and checks the answer against
// routeAccess: allowed calls get past authorization (any status but 401
// and 403), refused ones get 401 without a token and 403 with one.
// Bodies are malformed on purpose, so an allowed call stops at validation
// and changes nothing.
func TestAuthorizationMatrix(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		shares := n.initAndUnseal()
		n.createTenant("acme")
		n.createTenant("beta")
		owner := n.owner("acme")
		n.owner("beta")
		_, admin := n.join("acme", owner, "ada", "admin")
		_, member := n.join("acme", owner, "mel", "member")
		_, auditor := n.join("acme", owner, "aud", "auditor")
		r := n.do("POST", "/api/v1/tenants/acme/robots", owner, map[string]string{"name": "cassius"})
		if r.status != 201 {
			t.Fatalf("robot: %d %s", r.status, r.body)
		}
		var nr struct{ Token string }
		r.json(t, &nr)
		callers := map[byte]string{'o': n.token, 'O': n.pat(owner), 'A': n.pat(admin), 'M': n.pat(member), 'U': n.pat(auditor), 'R': nr.Token}
		for _, rt := range n.app.Routes {
			key := rt.Method + " " + rt.Pattern
			allowed, ok := routeAccess[key]
			if !ok {
				t.Errorf("route %s has no row in routeAccess: say who may call it", key)
				continue
			}
			tenants := []string{"acme"}
			if rt.TenantParam != "" {
				tenants = append(tenants, "beta")
			}
			for _, tn := range tenants {
				path := strings.NewReplacer("{tenant}", tn, "{seq}", "0").Replace(rt.Pattern)
				for len(path) > 0 && strings.Contains(path, "{") {
					i, j := strings.Index(path, "{"), strings.Index(path, "}")
					path = path[:i] + "x" + path[j+1:]
				}
				for _, c := range []byte{'-', 'o', 'O', 'A', 'M', 'U', 'R'} {
					tok := callers[c]
					var body any
					if rt.Method != "GET" && rt.Method != "DELETE" {
						body = `{"malformed":`
					}
					r := n.do(rt.Method, path, tok, body)
					if n.app.Root.Sealed() {
						for _, s := range shares[:2] {
							n.do("POST", "/api/v1/sys/unseal", "", map[string]string{"share": s})
						}
					}
					may := allowed == "*" || c != '-' && strings.IndexByte(allowed, c) >= 0
					// Tenant principals never reach another tenant.
					if tn == "beta" && c != 'o' && allowed != "*" {
						may = false
					}
					// Refusals by the edge carry these codes; a route's own
					// 401 (a failed sign-in) is an answer, not a refusal.
					var denied bool
					anonymous := http.StatusUnauthorized
					if !rt.Vault {
						denied = r.status == http.StatusUnauthorized && r.errCode(t) == "unauthenticated" ||
							r.status == http.StatusForbidden && r.errCode(t) == "forbidden"
					} else {
						// Vault's dialect: 403 for a missing token too,
						// the code in a header.
						code := r.header.Get("X-Custodia-Error")
						denied = r.status == http.StatusForbidden && (code == "unauthenticated" || code == "forbidden")
						anonymous = http.StatusForbidden
					}
					switch {
					case may && denied:
						t.Errorf("%s as %c on %s: %d %s, want allowed", key, c, tn, r.status, r.body)
					case !may && c == '-' && r.status != anonymous:
						t.Errorf("%s anonymous on %s: %d, want %d", key, tn, r.status, anonymous)
					case !may && c != '-' && rt.Vault && (r.status != http.StatusForbidden || r.header.Get("X-Custodia-Error") != "forbidden"):
						t.Errorf("%s as %c on %s: %d %s, want 403", key, c, tn, r.status, r.body)
					case !may && c != '-' && !rt.Vault && (r.status != http.StatusForbidden || r.errCode(t) != "forbidden"):
						t.Errorf("%s as %c on %s: %d %s, want 403", key, c, tn, r.status, r.body)
					}
				}
			}
		}
		for key := range routeAccess {
			if !slices.ContainsFunc(n.app.Routes, func(rt api.Route) bool { return rt.Method+" "+rt.Pattern == key }) {
				t.Errorf("routeAccess names %s, which is not a route", key)
			}
		}
	})
}

// Invariant 1: no call made with one tenant's credentials reads or changes
// another tenant's data, and probing leaves no entry in the other
// tenant's log.
func TestInvariantTenantIsolation(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		betaID := n.createTenant("beta")
		acme := n.owner("acme")
		beta := n.owner("beta")
		before := len(n.auditActions(betaID))
		for _, path := range []string{"/api/v1/tenants/beta/members", "/api/v1/tenants/" + betaID + "/audit/events", "/api/v1/tenants/beta/grants",
			"/api/v1/tenants/beta/policy", "/api/v1/tenants/beta"} {
			if r := n.do("GET", path, acme, nil); r.status != 403 {
				t.Errorf("acme owner GET %s = %d %s", path, r.status, r.body)
			}
		}
		if r := n.do("POST", "/api/v1/tenants/beta/members", acme, map[string]string{"email": "spy@acme.example", "role": "owner"}); r.status != 403 {
			t.Errorf("acme owner invites into beta: %d", r.status)
		}
		if after := len(n.auditActions(betaID)); after != before {
			t.Errorf("beta's log grew from %d to %d entries while acme probed it", before, after)
		}
		var ml struct{ Members []struct{ Email string } }
		n.do("GET", "/api/v1/tenants/beta/members", beta, nil).json(t, &ml)
		if len(ml.Members) != 1 || ml.Members[0].Email != "owner@beta.example" {
			t.Errorf("beta members = %+v", ml.Members)
		}
		// An operator cannot make themselves a member of a running tenant.
		if r := n.do("POST", "/api/v1/tenants/beta/owner-invite", n.token, map[string]string{"email": "op@example.com"}); r.status != 409 {
			t.Errorf("second owner invite by an operator = %d %s", r.status, r.body)
		}
	})
}

// Invariant 4: an expired grant, token or session is refused at the
// instant it expires, before any sweeper runs.
func TestInvariantExpiryIsInstant(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.owner("acme")
		melID, mel := n.join("acme", owner, "mel", "member")
		// A member may not read the audit log; a one-hour grant lets them.
		if r := n.do("GET", "/api/v1/tenants/acme/audit/events", mel, nil); r.status != 403 {
			t.Fatalf("member reads audit without a grant: %d", r.status)
		}
		r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": melID, "permission": "audit.read",
			"duration": "1h", "reason": "year-end audit"})
		if r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		tok := n.pat(mel)
		short := n.do("POST", "/api/v1/me/tokens", mel, map[string]string{"name": "short", "ttl": "30m"})
		var st struct{ Token string }
		short.json(t, &st)

		n.clock.Add(30*time.Minute - time.Microsecond)
		if r := n.do("GET", "/api/v1/tenants/acme/audit/events", tok, nil); r.status != 200 {
			t.Fatalf("grant before expiry: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/api/v1/me", st.Token, nil); r.status != 200 {
			t.Fatalf("token before expiry: %d", r.status)
		}
		n.clock.Add(time.Microsecond)
		if r := n.do("GET", "/api/v1/me", st.Token, nil); r.status != 401 {
			t.Errorf("token at its expiry: %d, want 401", r.status)
		}
		n.clock.Add(30*time.Minute - time.Microsecond)
		if r := n.do("GET", "/api/v1/tenants/acme/audit/events", tok, nil); r.status != 200 {
			t.Fatalf("grant a microsecond before expiry: %d", r.status)
		}
		n.clock.Add(time.Microsecond)
		if r := n.do("GET", "/api/v1/tenants/acme/audit/events", tok, nil); r.status != 403 {
			t.Errorf("grant at its expiry: %d, want 403", r.status)
		}
		// Sessions: idle (30 min by default) and absolute (12 h) expiry.
		ses := n.signin("acme", "mel@acme.example")
		n.clock.Add(29 * time.Minute)
		if r := n.do("GET", "/api/v1/me", ses, nil); r.status != 200 {
			t.Fatalf("session before idle expiry: %d", r.status)
		}
		n.clock.Add(31 * time.Minute)
		if r := n.do("GET", "/api/v1/me", ses, nil); r.status != 401 {
			t.Errorf("session idle 31 min after its last use: %d, want 401", r.status)
		}
		// The sweeper later records what the decision already did.
		if err := n.app.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(n.auditActions(n.tenantID("acme")), " "); !strings.Contains(got, "grant.expire:ok") {
			t.Errorf("no grant.expire entry after the sweep: %s", got)
		}
	})
}

func (n *node) tenantID(slug string) string {
	n.t.Helper()
	t, err := n.app.Tenants.Get(n.t.Context(), slug)
	if err != nil {
		n.t.Fatal(err)
	}
	return t.ID
}

// Invariant 5: a removed member's sessions and tokens stop working at once,
// and the offboarding leaves its report and notifies the admins.
func TestInvariantOffboardingIsImmediate(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.owner("acme")
		adaID, ada := n.join("acme", owner, "ada", "admin")
		melID, mel := n.join("acme", owner, "mel", "member")
		tok := n.pat(mel)
		r := n.do("POST", "/api/v1/tenants/acme/robots", mel, map[string]string{"name": "mels-bot"})
		if r.status != 403 {
			t.Fatalf("member creates a robot: %d", r.status)
		}
		payroll := n.putBank(owner, "payroll", bankSecret)
		r = n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": melID, "permission": "credentials.reveal",
			"resource": "credential:payroll", "duration": "24h", "reason": "payroll run"})
		if r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		// A one-time link the leaver made and nobody opened yet.
		link := n.makeShare(mel, "door code 4417", shareOpts{})
		r = n.do("POST", "/api/v1/tenants/acme/members/"+melID+"/offboard", ada, map[string]string{"transfer_to": adaID, "reason": "left"})
		if r.status != 200 {
			t.Fatalf("offboard: %d %s", r.status, r.body)
		}
		var rep struct {
			ID              string
			ShareLinks      int      `json:"share_links_burned"`
			SessionsRevoked int64    `json:"sessions_revoked"`
			TokensRevoked   int64    `json:"tokens_revoked"`
			GrantsRevoked   int64    `json:"grants_revoked"`
			RotationNeeded  []string `json:"rotation_needed"`
			AdminsNotified  int      `json:"admins_notified"`
		}
		r.json(t, &rep)
		if rep.SessionsRevoked != 1 || rep.TokensRevoked != 1 || rep.GrantsRevoked != 1 || rep.AdminsNotified != 2 || rep.ShareLinks != 1 ||
			fmt.Sprint(rep.RotationNeeded) != "[credential:"+payroll+"]" {
			t.Errorf("report = %s", r.body)
		}
		for name, cred := range map[string]string{"session": mel, "token": tok} {
			if r := n.do("GET", "/api/v1/me", cred, nil); r.status != 401 {
				t.Errorf("offboarded member's %s: %d, want 401", name, r.status)
			}
		}
		if r := n.do("GET", "/api/v1/shares/"+link.link.ID, "", nil); r.status == 200 {
			t.Errorf("the leaver's share link still opens after offboarding")
		}
		if r := n.do("POST", "/api/v1/auth/signin", "", map[string]any{"tenant": "acme", "email": "mel@acme.example", "password": testPassword}); r.status != 401 {
			t.Errorf("offboarded member signs in: %d", r.status)
		}
		r = n.do("GET", "/api/v1/tenants/acme/offboarding/"+rep.ID+"?format=text", ada, nil)
		if r.status != 200 || !strings.Contains(string(r.body), "credential:"+payroll) {
			t.Errorf("text report: %d %s", r.status, r.body)
		}
		var nl struct{ Notifications []struct{ Kind string } }
		n.do("GET", "/api/v1/me/notifications", ada, nil).json(t, &nl)
		if len(nl.Notifications) == 0 || nl.Notifications[0].Kind != "offboarding" {
			t.Errorf("admin notifications = %+v", nl.Notifications)
		}
		var fl struct {
			Flags []struct {
				ResourceID string `json:"resource_id"`
			}
		}
		n.do("GET", "/api/v1/tenants/acme/rotation-flags", ada, nil).json(t, &fl)
		if len(fl.Flags) != 1 {
			t.Errorf("rotation flags = %+v", fl.Flags)
		}
		// The last owner stays.
		if r := n.do("POST", "/api/v1/tenants/acme/members/"+adaID+"/role", owner, map[string]string{"role": "owner"}); r.status != 200 {
			t.Fatalf("promote: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/members/"+adaID+"/offboard", ada, nil); r.status != 409 {
			t.Errorf("self offboard: %d", r.status)
		}
	})
}

// Just-in-time access with two approvals: no self-approval, one approval
// is not enough, the second creates a grant that works at once and ends on
// time; an unanswered request expires.
func TestJustInTimeTwoApprovals(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.owner("acme")
		_, ada := n.join("acme", owner, "ada", "admin")
		_, bea := n.join("acme", owner, "bea", "admin")
		_, mel := n.join("acme", owner, "mel", "member")
		// Tokens, not sessions: the clock moves past the idle timeout.
		ada, bea, mel = n.pat(ada), n.pat(bea), n.pat(mel)
		if r := n.do("PUT", "/api/v1/tenants/acme/policy", owner, map[string]any{"approvals": 2, "request_ttl_hours": 4}); r.status != 200 {
			t.Fatalf("policy: %d %s", r.status, r.body)
		}
		ask := func() string {
			t.Helper()
			r := n.do("POST", "/api/v1/tenants/acme/requests", mel, map[string]string{"permission": "audit.read", "duration": "2h", "reason": "VAT inspection"})
			if r.status != 201 {
				t.Fatalf("request: %d %s", r.status, r.body)
			}
			var ar struct{ ID string }
			r.json(t, &ar)
			return ar.ID
		}
		id := ask()
		if r := n.do("POST", "/api/v1/tenants/acme/requests/"+id+"/approve", mel, map[string]string{}); r.status != 403 {
			t.Errorf("requester approves: %d %s", r.status, r.body)
		}
		r := n.do("POST", "/api/v1/tenants/acme/requests/"+id+"/approve", ada, map[string]string{"note": "ok"})
		var ar struct {
			Status  string
			GrantID string `json:"grant_id"`
		}
		r.json(t, &ar)
		if r.status != 200 || ar.Status != "pending" {
			t.Fatalf("first approval: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/requests/"+id+"/approve", ada, map[string]string{}); r.status != 409 {
			t.Errorf("same approver twice: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/api/v1/tenants/acme/audit/events", mel, nil); r.status != 403 {
			t.Fatalf("access after one of two approvals: %d", r.status)
		}
		r = n.do("POST", "/api/v1/tenants/acme/requests/"+id+"/approve", bea, map[string]string{"note": "agreed"})
		r.json(t, &ar)
		if r.status != 200 || ar.Status != "approved" || ar.GrantID == "" {
			t.Fatalf("second approval: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/api/v1/tenants/acme/audit/events", mel, nil); r.status != 200 {
			t.Errorf("access after approval: %d %s", r.status, r.body)
		}
		// The grant's use is recorded (reviews show it as "last used").
		var gl struct {
			Grants []struct {
				ID         string
				LastUsedAt time.Time `json:"last_used_at"`
			}
		}
		n.do("GET", "/api/v1/tenants/acme/grants?live=true", ada, nil).json(t, &gl)
		if len(gl.Grants) != 1 || gl.Grants[0].ID != ar.GrantID || !gl.Grants[0].LastUsedAt.Equal(n.clock.Now()) {
			t.Errorf("grant after use = %+v, want last use %v", gl.Grants, n.clock.Now())
		}
		n.clock.Add(2 * time.Hour)
		if r := n.do("GET", "/api/v1/tenants/acme/audit/events", mel, nil); r.status != 403 {
			t.Errorf("access when the grant ended: %d", r.status)
		}
		// Unanswered requests expire.
		id2 := ask()
		n.clock.Add(4*time.Hour + time.Second)
		if err := n.app.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/requests/"+id2+"/approve", ada, map[string]string{}); r.status != 409 {
			t.Errorf("approving an expired request: %d %s", r.status, r.body)
		}
		got := strings.Join(n.auditActions(n.tenantID("acme")), " ")
		for _, want := range []string{"request.create:ok", "request.approve:ok", "grant.create:ok", "request.expire:ok"} {
			if !strings.Contains(got, want) {
				t.Errorf("audit lacks %s: %s", want, got)
			}
		}
	})
}

// An access review left unanswered is closed at its deadline by the
// sweeper: unanswered lines are revoked, the campaign is signed off as
// evidence.
func TestReviewClosesAtDeadline(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.owner("acme")
		adaID, ada := n.join("acme", owner, "ada", "admin")
		melID, mel := n.join("acme", owner, "mel", "member")
		owner, ada, mel = n.pat(owner), n.pat(ada), n.pat(mel)
		r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": melID, "permission": "audit.read",
			"duration": "720h", "reason": "audit season"})
		if r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		r = n.do("POST", "/api/v1/tenants/acme/reviews", owner, map[string]any{"deadline": n.clock.Now().Add(48 * time.Hour)})
		if r.status != 201 {
			t.Fatalf("start review: %d %s", r.status, r.body)
		}
		var rv struct {
			ID    string
			Lines []struct {
				Seq        int
				Kind       string
				SubjectID  string `json:"subject_id"`
				Permission string
			}
		}
		r.json(t, &rv)
		// The owner and the admin keep each other's lines (nobody decides
		// their own); mel's lines stay unanswered.
		for _, l := range rv.Lines {
			if l.SubjectID == melID {
				continue
			}
			by := ada
			if l.SubjectID == adaID {
				by = owner
			}
			d := map[string]any{"decisions": []map[string]any{{"seq": l.Seq, "decision": "keep"}}}
			if r := n.do("POST", "/api/v1/tenants/acme/reviews/"+rv.ID+"/decisions", by, d); r.status != 204 {
				t.Fatalf("decide line %d: %d %s", l.Seq, r.status, r.body)
			}
		}
		if r := n.do("GET", "/api/v1/tenants/acme/audit/events", mel, nil); r.status != 200 {
			t.Fatalf("grant before the deadline: %d", r.status)
		}
		n.clock.Add(47 * time.Hour)
		if err := n.app.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		var got struct{ Status string }
		n.do("GET", "/api/v1/tenants/acme/reviews/"+rv.ID, owner, nil).json(t, &got)
		if got.Status != "open" {
			t.Fatalf("review before its deadline = %s", got.Status)
		}
		n.clock.Add(time.Hour + time.Second)
		if err := n.app.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		n.do("GET", "/api/v1/tenants/acme/reviews/"+rv.ID, owner, nil).json(t, &got)
		if got.Status != "closed" {
			t.Fatalf("review after its deadline = %s", got.Status)
		}
		// mel's unanswered lines (role, grant, token) are revoked.
		if r := n.do("GET", "/api/v1/tenants/acme/audit/events", mel, nil); r.status != 401 {
			t.Errorf("unanswered token line still works after the deadline: %d", r.status)
		}
		var gl struct{ Grants []struct{ ID string } }
		n.do("GET", "/api/v1/tenants/acme/grants?live=true&subject="+melID, owner, nil).json(t, &gl)
		if len(gl.Grants) != 0 {
			t.Errorf("unanswered grant line still in force after the deadline: %+v", gl.Grants)
		}
		if r := n.do("GET", "/api/v1/me", ada, nil); r.status != 200 {
			t.Errorf("a kept line was revoked: %d", r.status)
		}
		r = n.do("GET", "/api/v1/tenants/acme/reviews/"+rv.ID+"/export", owner, nil)
		if r.status != 200 || !strings.Contains(string(r.body), "unanswered") {
			t.Errorf("signed-off evidence: %d %s", r.status, r.body)
		}
	})
}

// A person revokes their own token, not someone else's (that one does not
// exist for them); a revoked token stops at once; revoking twice is a
// conflict; an admin revokes any of the tenant's.
func TestRevokeTokens(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.owner("acme")
		_, ada := n.join("acme", owner, "ada", "admin")
		_, mel := n.join("acme", owner, "mel", "member")
		_, kim := n.join("acme", owner, "kim", "member")
		mk := func(session string) (id, tok string) {
			r := n.do("POST", "/api/v1/me/tokens", session, map[string]string{"name": "t"})
			var nt struct {
				Token string
				Info  struct{ ID string }
			}
			r.json(t, &nt)
			return nt.Info.ID, nt.Token
		}
		melID, melTok := mk(mel)
		if r := n.do("DELETE", "/api/v1/me/tokens/"+melID, kim, nil); r.status != 404 {
			t.Errorf("another member revokes mel's token: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/api/v1/me", melTok, nil); r.status != 200 {
			t.Fatalf("mel's token after kim's attempt: %d", r.status)
		}
		if r := n.do("DELETE", "/api/v1/me/tokens/"+melID, mel, nil); r.status != 204 {
			t.Fatalf("mel revokes her token: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/api/v1/me", melTok, nil); r.status != 401 {
			t.Errorf("revoked token: %d, want 401", r.status)
		}
		if r := n.do("DELETE", "/api/v1/me/tokens/"+melID, mel, nil); r.status != 409 {
			t.Errorf("revoke twice: %d, want 409", r.status)
		}
		kimID, kimTok := mk(kim)
		if r := n.do("DELETE", "/api/v1/tenants/acme/tokens/"+kimID, ada, nil); r.status != 204 {
			t.Fatalf("admin revokes kim's token: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/api/v1/me", kimTok, nil); r.status != 401 {
			t.Errorf("token revoked by an admin: %d, want 401", r.status)
		}
	})
}
