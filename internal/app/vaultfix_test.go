package app_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// A password is judged against the credential's stored institution and
// login ID, which a caller who may not write the credential must learn
// nothing of: whether their guess of the login ID is right or wrong, their
// write is refused alike (404 to whoever may not read it, 403 to whoever
// may), and each refusal is audited once. A writer's password is still
// judged against the stored login ID.
func TestCredentialWriteRefusalIgnoresGuesses(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		tid := n.tenantID("acme")
		owner := n.pat(n.owner("acme"))
		// Strong on its own (zxcvbn 4), weak when it is the login ID.
		const login = "Kp4-login-9931-Vq"
		if r := n.do("POST", "/api/v1/tenants/acme/credentials", owner, map[string]any{"name": "bank/main", "kind": "bank",
			"institution": "Santander", "login_id": login, "secret": map[string]string{"password": bankSecret}}); r.status != 201 {
			t.Fatalf("put: %d %s", r.status, r.body)
		}
		botID, bot := n.robot(owner, "nosy-bot")
		denials := func() int {
			count := 0
			for _, d := range n.auditDetails(tid, "authz.deny") {
				if d["code"] != nil {
					count++
				}
			}
			return count
		}
		guess := func(name, password string) string {
			t.Helper()
			before := denials()
			r := n.do("PUT", "/v1/secret/data/"+name, bot, map[string]any{"data": map[string]string{"password": password}})
			if got := denials(); got != before+1 {
				t.Errorf("write of %s: %d credential denials audited, want 1", name, got-before)
			}
			body := requestID.ReplaceAllString(strings.ReplaceAll(string(r.body), name, "NAME"), "")
			return fmt.Sprint(r.status, " ", r.header.Get("X-Custodia-Error"), " ", body)
		}
		right, wrong, none := guess("bank/main", login), guess("bank/main", "Kp4-wrong-5517-Vq"), guess("bank/none", login)
		if right != wrong || right != none || !strings.HasPrefix(right, "404") {
			t.Errorf("a robot without rights: right guess %s, wrong guess %s, name holding nothing %s", right, wrong, none)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": botID, "permission": "credentials.read",
			"resource": "credential:bank/main", "duration": "1h", "reason": "inventory"}); r.status != 201 {
			t.Fatalf("read grant: %d %s", r.status, r.body)
		}
		if right, wrong := guess("bank/main", login), guess("bank/main", "Kp4-wrong-5517-Vq"); right != wrong || !strings.HasPrefix(right, "403") {
			t.Errorf("a robot that may read it: right guess %s, wrong guess %s, want the same 403", right, wrong)
		}
		if w := n.putWarn(owner, map[string]any{"name": "bank/main", "secret": map[string]string{"password": login}}); !slices.Contains(w, "weak") {
			t.Errorf("the owner's password equal to the stored login ID: warnings %v, want weak", w)
		}
	})
}

// Labels are one line each, keys and values, without control characters,
// through a native write and /v1 settings alike.
func TestCredentialLabelsAreOneLine(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		id := n.putBank(owner, "bank/main", bankSecret)
		if r := n.do("POST", "/api/v1/tenants/acme/credentials", owner, map[string]any{"name": "bank/main",
			"labels": map[string]string{"team": "nóminas y IVA"}}); r.status/100 != 2 {
			t.Fatalf("plain labels: %d %s", r.status, r.body)
		}
		for _, c := range []struct {
			name   string
			labels map[string]string
		}{
			{"fail/value on two lines", map[string]string{"team": "payroll\nowner: mallory"}},
			{"fail/value with a terminal escape", map[string]string{"team": "ops\x1b]0;pwned\a"}},
			{"fail/key with a carriage return", map[string]string{"team\rowner": "ops"}},
			{"fail/key with a bidi override", map[string]string{"team\u202e": "ops"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := n.do("POST", "/api/v1/tenants/acme/credentials", owner, map[string]any{"name": "bank/main", "labels": c.labels})
				if r.status != 400 || r.errCode(t) != "invalid_labels" {
					t.Errorf("native write: %d %s, want 400 invalid_labels", r.status, r.body)
				}
				r = n.do("POST", "/api/v1/tenants/acme/credentials", owner, map[string]any{"name": "bank/other", "labels": c.labels,
					"secret": map[string]string{"password": bankSecret}})
				if r.status != 400 || r.errCode(t) != "invalid_labels" {
					t.Errorf("new credential: %d %s, want 400 invalid_labels", r.status, r.body)
				}
				if r := n.do("POST", "/v1/secret/metadata/bank/main", owner, map[string]any{"custom_metadata": c.labels}); r.status != 400 {
					t.Errorf("/v1 settings: %d %s, want 400", r.status, r.body)
				}
			})
		}
		var got struct{ Labels map[string]string }
		n.do("GET", "/api/v1/tenants/acme/credentials/"+id, owner, nil).json(t, &got)
		if !maps.Equal(got.Labels, map[string]string{"team": "nóminas y IVA"}) {
			t.Errorf("labels after the refused writes: %v", got.Labels)
		}
	})
}

// A write answers 201 when it created the credential and 200 otherwise,
// even a metadata-only write in the microsecond of the creation (the test
// clock stands still until moved), when the credential's times are equal.
func TestCredentialCreatedInTheSameMicrosecond(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		put := func(body map[string]any) resp {
			t.Helper()
			return n.do("POST", "/api/v1/tenants/acme/credentials", owner, body)
		}
		if r := put(map[string]any{"name": "bank/main", "secret": map[string]string{"password": bankSecret}}); r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		r := put(map[string]any{"name": "bank/main", "notes": "desk 2"})
		var c struct {
			CurrentVersion int `json:"current_version"`
		}
		if r.json(t, &c); r.status != 200 || c.CurrentVersion != 1 {
			t.Errorf("metadata-only write in the microsecond of the creation: %d %s, want 200 at version 1", r.status, r.body)
		}
		n.clock.Add(time.Minute)
		if r := put(map[string]any{"name": "bank/main", "notes": "desk 3"}); r.status != 200 {
			t.Errorf("metadata-only write a minute later: %d %s, want 200", r.status, r.body)
		}
		if r := put(map[string]any{"name": "bank/main", "secret": map[string]string{"password": bankSecret + "-2"}}); r.status != 200 {
			t.Errorf("second version: %d %s, want 200", r.status, r.body)
		}
		if r := put(map[string]any{"name": "bank/other", "secret": map[string]string{"password": bankSecret}}); r.status != 201 {
			t.Errorf("another credential created: %d %s, want 201", r.status, r.body)
		}
	})
}
