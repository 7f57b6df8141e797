package app_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/custodia-project/custodia/internal/client"
)

const sealedSecret = "Qv7-sealed-submission-4410"

// publicKey fetches a tenant's sealed-submission key as tok.
func (n *node) publicKey(tok, tenant string) client.PublicKey {
	n.t.Helper()
	r := n.do("GET", "/api/v1/tenants/"+tenant+"/public-key", tok, nil)
	if r.status != 200 {
		n.t.Fatalf("public key: %d %s", r.status, r.body)
	}
	var pk client.PublicKey
	r.json(n.t, &pk)
	return pk
}

func seal(t *testing.T, pub client.PublicKey, name string, fields map[string]string, cas *int) string {
	t.Helper()
	s, err := client.SealSecret(pub, name, fields, cas)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A credential written as a sealed submission is stored like a plaintext
// one and fetched by a robot; a sealed secret cannot be replayed into
// another credential, over a newer version or into another tenant, and
// garbage is refused with a 4xx and stores nothing.
func TestSealedSubmission(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		n.createTenant("beta")
		session := n.owner("acme")
		owner := n.pat(session)
		betaPub := n.publicKey(n.owner("beta"), "beta")
		pub := n.publicKey(owner, "acme")
		if pub.Version != 1 || pub.TenantID != n.tenantID("acme") {
			t.Fatalf("public key = %+v", pub)
		}
		cl, err := client.New(client.Options{Addr: n.srv.URL, Token: owner, InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := cl.TenantPublicKey(t.Context(), "acme"); err != nil || got != pub {
			t.Fatalf("client.TenantPublicKey = %+v, %v; want %+v", got, err, pub)
		}
		put := func(tok string, body map[string]any) resp {
			t.Helper()
			return n.do("POST", "/api/v1/tenants/acme/credentials", tok, body)
		}
		exists := func(name string) bool {
			t.Helper()
			return n.do("GET", "/api/v1/tenants/acme/credentials/"+url.PathEscape(name), owner, nil).status == 200
		}
		fields := map[string]string{"password": sealedSecret, "pin": "4821"}
		blob := seal(t, pub, "bank/santander/main", fields, nil)
		r := put(owner, map[string]any{"name": "bank/santander/main", "kind": "bank", "sealed_secret": blob})
		var c struct {
			ID             string
			Fields         []string `json:"fields"`
			CurrentVersion int      `json:"current_version"`
		}
		r.json(t, &c)
		if r.status != 201 || strings.Join(c.Fields, ",") != "password,pin" || c.CurrentVersion != 1 || strings.Contains(string(r.body), sealedSecret) {
			t.Fatalf("sealed put: %d %s", r.status, r.body)
		}

		// The robot gets the plaintext the client sealed.
		botID, bot := n.soloRobot(owner, "statements-bot")
		if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": botID, "permission": "credentials.fetch",
			"resource": "group:bank", "duration": "1h", "reason": "statements"}); r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		r = n.do("POST", "/api/v1/tenants/acme/credentials/"+c.ID+"/fetch", bot, map[string]string{"purpose": "November statements"})
		var sec struct {
			Secret map[string]string `json:"secret"`
		}
		r.json(t, &sec)
		if r.status != 200 || sec.Secret["password"] != sealedSecret || sec.Secret["pin"] != "4821" || len(sec.Secret) != 2 {
			t.Fatalf("fetch of a sealed credential: %d", r.status)
		}

		before := len(n.auditActions(n.tenantID("acme")))
		refused := []struct {
			name string
			body map[string]any
			code string
		}{
			{"fail/replayed under another name", map[string]any{"name": "bank/other", "sealed_secret": blob}, "sealed_name_mismatch"},
			{"fail/secret and sealed secret", map[string]any{"name": "bank/both", "sealed_secret": blob, "secret": fields}, "secret_and_sealed_secret"},
			{"fail/garbage", map[string]any{"name": "bank/garbage", "sealed_secret": "AQAAAAEgarbage=="}, "invalid_sealed_secret"},
			{"fail/not base64", map[string]any{"name": "bank/garbage", "sealed_secret": "not base64 at all"}, "invalid_sealed_secret"},
			{"fail/sealed to another tenant", map[string]any{"name": "bank/beta",
				"sealed_secret": seal(t, betaPub, "bank/beta", fields, nil)}, "invalid_sealed_secret"},
			{"fail/second factor inside", map[string]any{"name": "bank/card", "sealed_secret": seal(t, pub, "bank/card",
				map[string]string{"password": "x-Strong-pass-1", "totp": "otpauth://totp/Bank:me?secret=JBSWY3DPEHPK3PXP"}, nil)}, "second_factor_refused"},
			{"fail/outer cas contradicts the sealed one", map[string]any{"name": "bank/cas", "cas": 1,
				"sealed_secret": seal(t, pub, "bank/cas", fields, new(int))}, "cas_mismatch"},
		}
		for _, c := range refused {
			r := put(owner, c.body)
			if r.status != 400 || r.errCode(t) != c.code || strings.Contains(string(r.body), sealedSecret) {
				t.Errorf("%s: %d %s, want 400 %s", c.name, r.status, r.body, c.code)
			}
			if name := c.body["name"].(string); exists(name) {
				t.Errorf("%s: %s was stored", c.name, name)
			}
		}
		// The sealed cas stops a replay over a newer version.
		zero := 0
		r = put(owner, map[string]any{"name": "bank/santander/main", "sealed_secret": seal(t, pub, "bank/santander/main", fields, &zero)})
		if r.status != 409 || r.errCode(t) != "cas_mismatch" {
			t.Errorf("replay of a cas-0 submission over an existing credential: %d %s", r.status, r.body)
		}
		if after := len(n.auditActions(n.tenantID("acme"))); after != before {
			t.Errorf("refused sealed puts left %d audit entries", after-before)
		}

		// Sealed to the previous key version, it still opens while that
		// version lives; the public key moves to the new version.
		if r := n.do("POST", "/api/v1/tenants/acme/keys/rotate", n.token, nil); r.status != 202 {
			t.Fatalf("rotate: %d %s", r.status, r.body)
		}
		old := seal(t, pub, "payroll/a3", map[string]string{"password": sealedSecret + "-old"}, nil)
		if r := put(owner, map[string]any{"name": "payroll/a3", "sealed_secret": old}); r.status != 201 {
			t.Errorf("sealed to the retired key version: %d %s", r.status, r.body)
		}
		pub2 := n.publicKey(owner, "acme")
		if pub2.Version != 2 || pub2.PublicKey == pub.PublicKey {
			t.Errorf("public key after rotation = version %d", pub2.Version)
		}
		if r := put(owner, map[string]any{"name": "payroll/a3", "sealed_secret": seal(t, pub2, "payroll/a3", fields, nil)}); r.status != 200 {
			t.Errorf("sealed to the new key version: %d %s", r.status, r.body)
		}

		// A token scoped to writing credentials (a web tier's) fetches the
		// key and writes sealed, and can read nothing else.
		r = n.do("POST", "/api/v1/me/tokens", session, map[string]any{"name": "web tier", "scopes": []string{"credentials.write"}})
		var wt struct{ Token string }
		r.json(t, &wt)
		if r.status != 201 {
			t.Fatalf("scoped token: %d %s", r.status, r.body)
		}
		wpub := n.publicKey(wt.Token, "acme")
		if r := put(wt.Token, map[string]any{"name": "tax/aeat", "sealed_secret": seal(t, wpub, "tax/aeat", fields, nil)}); r.status != 201 {
			t.Errorf("sealed put by a write-scoped token: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/api/v1/tenants/acme/credentials", wt.Token, nil); r.status != 403 {
			t.Errorf("write-scoped token lists credentials: %d", r.status)
		}
	})
}
