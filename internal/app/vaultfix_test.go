package app_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
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
