package app_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/postgres"
	"github.com/custodia-project/custodia/internal/store/postgres/pgtest"
	"github.com/custodia-project/custodia/internal/store/sqlite"
	"github.com/custodia-project/custodia/internal/vault"
)

const bankSecret = "Zq8-vault-test-secret-7731"

// putBank stores a bank login as by and returns its ID.
func (n *node) putBank(by, name, secret string) string {
	n.t.Helper()
	r := n.do("POST", "/api/v1/tenants/acme/credentials", by, map[string]any{"name": name, "kind": "bank", "institution": "Santander",
		"login_id": "B12345678", "secret": map[string]string{"password": secret}})
	if r.status != 201 && r.status != 200 {
		n.t.Fatalf("put %s: %d %s", name, r.status, r.body)
	}
	if strings.Contains(string(r.body), secret) {
		n.t.Fatalf("put answered with the secret: %s", r.body)
	}
	var c struct{ ID string }
	r.json(n.t, &c)
	return c.ID
}

// robot creates a robot and returns its ID and token.
func (n *node) robot(by, name string) (id, token string) {
	n.t.Helper()
	r := n.do("POST", "/api/v1/tenants/acme/robots", by, map[string]string{"name": name})
	if r.status != 201 {
		n.t.Fatalf("robot: %d %s", r.status, r.body)
	}
	var nr struct {
		Robot struct{ ID string }
		Token string
	}
	r.json(n.t, &nr)
	return nr.Robot.ID, nr.Token
}

// Invariant 3: a tenant admin (or owner, or anyone) cannot read a
// write-only credential back through any route; and invariant 2's
// database half: the secret is not in the database files.
func TestInvariantWriteOnlyCredentials(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		adaID, ada := n.join("acme", owner, "ada", "admin")
		ada = n.pat(ada)
		id := n.putBank(ada, "bank/santander/main", bankSecret)
		n.putBank(ada, "bank/santander/main", bankSecret+"-v2") // version 2

		// Even with a reveal grant, a credential not made revealable to
		// the admin stays write-only.
		r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": adaID, "permission": "credentials.reveal",
			"resource": "credential:" + id, "duration": "1h", "reason": "testing"})
		if r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/reveal", ada, map[string]string{"reason": "curious"}); r.status != 403 ||
			r.errCode(t) != "write_only" {
			t.Errorf("admin reveals a write-only credential: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", owner, map[string]string{"purpose": "x"}); r.status != 403 {
			t.Errorf("owner fetches: %d %s", r.status, r.body)
		}
		// Every read route, as every role, never carries the secret.
		esc := url.PathEscape("bank/santander/main")
		for _, path := range []string{
			"/api/v1/tenants/acme/credentials", "/api/v1/tenants/acme/credentials/" + id, "/api/v1/tenants/acme/credentials/" + esc,
			"/api/v1/tenants/acme/credentials/" + id + "/versions", "/api/v1/tenants/acme/audit/events?limit=1000",
			"/api/v1/tenants/acme/audit/export", "/api/v1/tenants/acme/leases", "/api/v1/me/notifications",
		} {
			for who, tok := range map[string]string{"owner": owner, "admin": ada} {
				r := n.do("GET", path, tok, nil)
				if strings.Contains(string(r.body), bankSecret) {
					t.Errorf("GET %s as %s carries the secret", path, who)
				}
			}
		}
		var c struct {
			Name           string
			Fields         []string `json:"fields"`
			CurrentVersion int      `json:"current_version"`
		}
		n.do("GET", "/api/v1/tenants/acme/credentials/"+esc, ada, nil).json(t, &c)
		if c.Name != "bank/santander/main" || len(c.Fields) != 1 || c.Fields[0] != "password" || c.CurrentVersion != 2 {
			t.Errorf("metadata by escaped name = %+v", c)
		}
		// Restoring version 1 needs no read: the admin never sees it.
		r = n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/restore", ada, map[string]int{"version": 1})
		if r.status != 200 || strings.Contains(string(r.body), bankSecret) {
			t.Errorf("restore: %d %s", r.status, r.body)
		}
	})
}

// assertNotOnDisk fails if any file of the data directory holds secret.
func assertNotOnDisk(t *testing.T, dir, secret string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) == 0 {
		t.Fatalf("no database files in %s", dir)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the secret in plaintext", f)
		}
	}
}

// A robot with a fetch grant gets the secret under a lease, with its
// purpose audited; revocation and expiry end the lease at once.
func TestRobotFetchUnderLease(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		id := n.putBank(owner, "payroll/a3", bankSecret)
		botID, bot := n.soloRobot(owner, "payroll-bot")
		// Without a grant a robot may not even see it: it is not found.
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", bot, map[string]string{"purpose": "payroll"}); r.status != 404 {
			t.Fatalf("fetch without a grant: %d %s", r.status, r.body)
		}
		r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": botID, "permission": "credentials.fetch",
			"resource": "group:payroll", "duration": "24h", "reason": "monthly payroll"})
		if r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", bot, map[string]string{}); r.status != 400 || r.errCode(t) != "purpose_required" {
			t.Errorf("fetch without a purpose: %d %s", r.status, r.body)
		}
		// A purpose is read by people, in the log and on terminals: no
		// escape sequences, no second line.
		for _, bad := range []string{"nightly\x1b]0;pwned\a run", "payroll\nforged: line", "run \u202eexe"} {
			if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", bot, map[string]string{"purpose": bad}); r.status != 400 ||
				r.errCode(t) != "invalid_purpose" {
				t.Errorf("fetch with purpose %q: %d %s", bad, r.status, r.body)
			}
		}
		r = n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", bot, map[string]string{"purpose": "November payroll run"})
		var s struct {
			Secret  map[string]string `json:"secret"`
			LeaseID string            `json:"lease_id"`
			Expires time.Time         `json:"lease_expires_at"`
		}
		r.json(t, &s)
		if r.status != 200 || s.Secret["password"] != bankSecret || s.LeaseID == "" || !s.Expires.Equal(n.clock.Now().Add(5*time.Minute)) {
			t.Fatalf("fetch: %d %s", r.status, r.body)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("a secret response may be cached: %q", r.header.Get("Cache-Control"))
		}
		lease := "/api/v1/tenants/acme/leases/" + s.LeaseID
		if r := n.do("GET", lease, bot, nil); r.status != 200 || !strings.Contains(string(r.body), bankSecret) {
			t.Errorf("re-read under the lease: %d", r.status)
		}
		if r := n.do("GET", lease, owner, nil); r.status != 404 {
			t.Errorf("someone else reads the lease: %d", r.status)
		}
		// Expiry is instant.
		n.clock.Add(5 * time.Minute)
		if r := n.do("GET", lease, bot, nil); r.status != 404 {
			t.Errorf("lease at its expiry: %d", r.status)
		}
		// Renew, then revoke by the owner.
		r = n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", bot, map[string]string{"purpose": "retry", "ttl": "1m"})
		r.json(t, &s)
		lease = "/api/v1/tenants/acme/leases/" + s.LeaseID
		for _, bad := range []string{"500ms", "0s", "2h", "soon"} {
			if r := n.do("POST", lease+"/renew", bot, map[string]string{"ttl": bad}); r.status != 400 || r.errCode(t) != "invalid_ttl" {
				t.Errorf("renew with ttl %s: %d %s", bad, r.status, r.body)
			}
		}
		if r := n.do("POST", lease+"/renew", bot, map[string]string{"ttl": "10m"}); r.status != 200 {
			t.Errorf("renew: %d %s", r.status, r.body)
		}
		n.clock.Add(2 * time.Minute)
		if r := n.do("GET", lease, bot, nil); r.status != 200 {
			t.Errorf("renewed lease: %d", r.status)
		}
		// Without a ttl, a renewal is for the lifetime first granted (the
		// fetch's 1m), not the last renewal's 10m nor the default 5m.
		var renewed struct {
			ExpiresAt time.Time `json:"expires_at"`
		}
		r = n.do("POST", lease+"/renew", bot, map[string]string{})
		r.json(t, &renewed)
		if r.status != 200 || !renewed.ExpiresAt.Equal(n.clock.Now().Add(time.Minute)) {
			t.Errorf("renew without a ttl: %d %s, want an expiry 1m from now", r.status, r.body)
		}
		if r := n.do("DELETE", lease, owner, nil); r.status != 204 {
			t.Errorf("owner revokes the lease: %d %s", r.status, r.body)
		}
		if r := n.do("GET", lease, bot, nil); r.status != 404 {
			t.Errorf("revoked lease: %d", r.status)
		}
		// Dead leases are kept for a day, then the sweep deletes them; the
		// audit log keeps the fetches.
		leases := func() int {
			t.Helper()
			var ls []store.Lease
			if err := n.app.Store.View(t.Context(), func(tx store.Tx) error {
				var err error
				ls, err = tx.ListLeases(t.Context(), n.tenantID("acme"), "", "", time.Time{})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return len(ls)
		}
		sweep := func() {
			t.Helper()
			if err := n.app.Sweep(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		n.clock.Add(vault.LeaseRetention - 10*time.Minute)
		sweep()
		if got := leases(); got != 2 {
			t.Errorf("leases a day after their end, before the sweep's cut = %d, want 2", got)
		}
		n.clock.Add(30 * time.Minute)
		sweep()
		if got := leases(); got != 0 {
			t.Errorf("leases past their retention after a sweep = %d", got)
		}
		got := strings.Join(n.auditActions(n.tenantID("acme")), " ")
		for _, want := range []string{"credential.create:ok", "credential.fetch:ok", "lease.renew:ok", "lease.revoke:ok"} {
			if !strings.Contains(got, want) {
				t.Errorf("audit lacks %s: %s", want, got)
			}
		}
		var ev struct {
			Events []struct {
				Action  string
				Details map[string]any
			}
		}
		n.do("GET", "/api/v1/tenants/acme/audit/events?action=credential.fetch", owner, nil).json(t, &ev)
		if len(ev.Events) == 0 || ev.Events[0].Details["purpose"] != "November payroll run" {
			t.Errorf("fetch audit entry = %+v", ev.Events)
		}
	})
}

// A credential made revealable to a member can be revealed by them with a
// reason and a grant; the owner is notified.
func TestRevealRevealable(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, st)
	shares := n.initAndUnseal()
	n.createTenant("acme")
	owner := n.pat(n.owner("acme"))
	melID, mel := n.join("acme", owner, "mel", "member")
	mel = n.pat(mel)
	id := n.putBank(owner, "tax/aeat", bankSecret)
	// Only active members may be named.
	if r := n.do("POST", "/api/v1/tenants/acme/members", owner, map[string]string{"email": "ivy@acme.example", "role": "member"}); r.status != 201 {
		t.Fatalf("invite: %d %s", r.status, r.body)
	}
	if r := n.do("PUT", "/api/v1/tenants/acme/credentials/"+id+"/revealable", owner, map[string]any{"members": []string{"ivy@acme.example"}}); r.status != 400 ||
		r.errCode(t) != "member_not_active" {
		t.Errorf("revealable to an invited member: %d %s", r.status, r.body)
	}
	// The list is always given: a body without it clears nothing.
	for _, body := range []any{map[string]any{}, map[string]any{"members": nil}} {
		if r := n.do("PUT", "/api/v1/tenants/acme/credentials/"+id+"/revealable", owner, body); r.status != 400 || r.errCode(t) != "members_required" {
			t.Errorf("revealable without members: %d %s", r.status, r.body)
		}
	}
	if r := n.do("PUT", "/api/v1/tenants/acme/credentials/"+id+"/revealable", owner, map[string]any{"members": []string{"mel@acme.example"}}); r.status != 200 {
		t.Fatalf("revealable: %d %s", r.status, r.body)
	}
	if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/reveal", mel, map[string]string{"reason": "filing"}); r.status != 403 {
		t.Errorf("reveal without a grant: %d %s", r.status, r.body)
	}
	revealScoped := map[string]any{"name": "reveal only", "scopes": []string{"credentials.reveal"}}
	if r := n.do("POST", "/api/v1/me/tokens", mel, revealScoped); r.status != 403 || r.errCode(t) != "scope_not_held" {
		t.Errorf("reveal-scoped token without a grant: %d %s", r.status, r.body)
	}
	n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": melID, "permission": "credentials.reveal",
		"resource": "credential:" + id, "duration": "1h", "reason": "quarterly VAT"})
	if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/reveal", mel, map[string]string{}); r.status != 400 {
		t.Errorf("reveal without a reason: %d", r.status)
	}
	// A grant on one credential is enough to mint a token scoped to reveal
	// (only a tenant-wide grant was, before), and that token reveals.
	r := n.do("POST", "/api/v1/me/tokens", mel, revealScoped)
	var scoped struct{ Token string }
	if r.status != 201 {
		t.Fatalf("reveal-scoped token with a credential grant: %d %s", r.status, r.body)
	}
	r.json(t, &scoped)
	r = n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/reveal", scoped.Token, map[string]string{"reason": "quarterly VAT filing"})
	if r.status != 200 || !strings.Contains(string(r.body), bankSecret) {
		t.Fatalf("reveal: %d %s", r.status, r.body)
	}
	var nl struct{ Notifications []struct{ Kind string } }
	n.do("GET", "/api/v1/me/notifications", owner, nil).json(t, &nl)
	if len(nl.Notifications) == 0 || nl.Notifications[0].Kind != "credential_revealed" {
		t.Errorf("owner notifications = %+v", nl.Notifications)
	}
	for range 9 {
		n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/reveal", mel, map[string]string{"reason": "again"})
	}
	if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/reveal", mel, map[string]string{"reason": "again"}); r.status != 429 ||
		r.errCode(t) != "too_many_reveals" {
		t.Errorf("11th reveal in an hour: %d %s", r.status, r.body)
	}
	// The limit is counted in the audit log, not in this node's memory:
	// a node that has never seen mel (a restart, another node) refuses too.
	n2 := newNodeSharing(t, n, shares)
	if r := n2.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/reveal", mel, map[string]string{"reason": "again"}); r.status != 429 {
		t.Errorf("11th reveal in an hour, through another node: %d %s", r.status, r.body)
	}
	// An hour later (with a new grant: the first was for an hour) it opens.
	n.clock.Add(61 * time.Minute)
	if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": melID, "permission": "credentials.reveal",
		"resource": "credential:" + id, "duration": "1h", "reason": "quarterly VAT"}); r.status != 201 {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}
	if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/reveal", mel, map[string]string{"reason": "next hour"}); r.status != 200 {
		t.Errorf("reveal an hour later: %d %s", r.status, r.body)
	}
	// Invariant 2, database half: written, versioned, revealed, and still
	// nowhere in the database files.
	assertNotOnDisk(t, dir, bankSecret)
}

// A sealed secret copied onto another credential's record does not open:
// the ciphertext is bound to its tenant, kind and record ID.
func TestMovedCiphertextFails(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	n.initAndUnseal()
	n.createTenant("acme")
	owner := n.pat(n.owner("acme"))
	a := n.putBank(owner, "bank/a", bankSecret)
	b := n.putBank(owner, "bank/b", "other-secret-value")
	botID, bot := n.soloRobot(owner, "bot")
	n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": botID, "permission": "credentials.fetch",
		"resource": "group:bank", "duration": "1h", "reason": "test"})
	tid := n.tenantID("acme")
	err := n.app.Store.Update(t.Context(), func(tx store.Tx) error {
		ra, err := tx.GetRecord(t.Context(), tid, store.RecordCredential, store.CredentialRecordID(a, 1))
		if err != nil {
			return err
		}
		ra.ID = store.CredentialRecordID(b, 1)
		return tx.PutRecord(t.Context(), ra)
	})
	if err != nil {
		t.Fatal(err)
	}
	r := n.do("POST", "/api/v1/tenants/acme/credentials/"+b+"/fetch", bot, map[string]string{"purpose": "test"})
	if r.status != 500 || strings.Contains(string(r.body), bankSecret) {
		t.Errorf("fetch of a moved ciphertext: %d %s", r.status, r.body)
	}
}

// Second factors are refused with an explanation (the seeds' promise).
func TestSecondFactorsRefused(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	n.initAndUnseal()
	n.createTenant("acme")
	owner := n.pat(n.owner("acme"))
	for name, secret := range map[string]map[string]string{
		"totp seed":  {"password": "x-Strong-pass-1", "totp": "otpauth://totp/Bank:me?secret=JBSWY3DPEHPK3PXP&issuer=Bank"},
		"coord card": {"password": "x-Strong-pass-1", "tarjeta de coordenadas": "A1 123 A2 456 A3 789 B1 012 B2 345 B3 678"},
	} {
		r := n.do("POST", "/api/v1/tenants/acme/credentials", owner, map[string]any{"name": "bank/x", "secret": secret})
		if r.status != 400 || r.errCode(t) != "second_factor_refused" || !strings.Contains(string(r.body), "move money") {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := n.do("GET", "/api/v1/tenants/acme/credentials/bank%2Fx", owner, nil); r.status != 404 {
		t.Errorf("a refused credential was stored: %d", r.status)
	}
}

// A new credential's name may not pass for another's: a Cyrillic "а" in a
// Latin word, or full-width letters, are refused, natively and through
// /v1.
func TestLookAlikeNamesRefused(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	n.initAndUnseal()
	n.createTenant("acme")
	owner := n.pat(n.owner("acme"))
	n.putBank(owner, "bank/santander", bankSecret)
	for name, code := range map[string]string{"bank/s\u0430ntander": "mixed_script_name", "bank/\uff53antander": "invalid_name"} {
		r := n.do("POST", "/api/v1/tenants/acme/credentials", owner, map[string]any{"name": name, "secret": map[string]string{"password": bankSecret}})
		if r.status != 400 || r.errCode(t) != code {
			t.Errorf("put %q: %d %s, want 400 %s", name, r.status, r.body, code)
		}
		r = n.do("PUT", "/v1/secret/data/"+url.PathEscape(name), owner, map[string]any{"data": map[string]string{"password": bankSecret}})
		if r.status != 400 || !strings.Contains(string(r.body), "script") && !strings.Contains(string(r.body), "compatibility") {
			t.Errorf("/v1 write %q: %d %s, want 400 saying why", name, r.status, r.body)
		}
	}
}

// Offboarding hands the leaver's credentials to the heir.
func TestOffboardingTransfersCredentials(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	n.initAndUnseal()
	n.createTenant("acme")
	owner := n.pat(n.owner("acme"))
	adaID, _ := n.join("acme", owner, "ada", "admin")
	melID, mel := n.join("acme", owner, "mel", "member")
	id := n.putBank(n.pat(mel), "payroll/a3", bankSecret)
	// Someone else's credential, revealable to the leaver and to Ada: the
	// leaver's name is taken off, Ada's stays.
	other := n.putBank(owner, "payroll/b7", bankSecret)
	if r := n.do("PUT", "/api/v1/tenants/acme/credentials/"+other+"/revealable", owner,
		map[string][]string{"members": {melID, adaID}}); r.status != 200 {
		t.Fatalf("revealable: %d %s", r.status, r.body)
	}
	if r := n.do("POST", "/api/v1/tenants/acme/members/"+melID+"/offboard", owner, map[string]string{}); r.status != 400 ||
		r.errCode(t) != "transfer_required" {
		t.Errorf("offboard an owner of credentials without an heir: %d %s", r.status, r.body)
	}
	r := n.do("POST", "/api/v1/tenants/acme/members/"+melID+"/offboard", owner, map[string]string{"transfer_to": adaID})
	if r.status != 200 || !strings.Contains(string(r.body), "credential:"+id) {
		t.Fatalf("offboard: %d %s", r.status, r.body)
	}
	var rep struct {
		ID                string   `json:"id"`
		RevealableRemoved []string `json:"revealable_removed"`
	}
	r.json(t, &rep)
	if !slices.Equal(rep.RevealableRemoved, []string{"credential:" + other}) {
		t.Errorf("revealable_removed = %v, want [credential:%s]", rep.RevealableRemoved, other)
	}
	var c struct {
		OwnerID    string   `json:"owner_id"`
		Revealable []string `json:"revealable_to"`
	}
	n.do("GET", "/api/v1/tenants/acme/credentials/"+id, owner, nil).json(t, &c)
	if c.OwnerID != adaID {
		t.Errorf("owner after offboarding = %q, want %q", c.OwnerID, adaID)
	}
	n.do("GET", "/api/v1/tenants/acme/credentials/"+other, owner, nil).json(t, &c)
	if !slices.Equal(c.Revealable, []string{adaID}) {
		t.Errorf("revealable_to after offboarding = %v, want only Ada %s", c.Revealable, adaID)
	}
	if r := n.do("GET", "/api/v1/tenants/acme/offboarding/"+rep.ID+"?format=text", owner, nil); !strings.Contains(string(r.body),
		"credential:"+other+": no longer revealable to them") {
		t.Errorf("report text does not name the revealable list changed:\n%s", r.body)
	}
}

// viewCounter counts read transactions, passing the store's change stamp
// through so that the caches over it stay on.
type viewCounter struct {
	store.Store
	views atomic.Int64
}

func (c *viewCounter) View(ctx context.Context, fn func(store.Tx) error) error {
	c.views.Add(1)
	return c.Store.View(ctx, fn)
}

func stamped(s store.Stamper) bool {
	_, ok := s.Stamp()
	return ok
}

func (c *viewCounter) Stamp() (uint64, bool) {
	if st, ok := c.Store.(store.Stamper); ok {
		return st.Stamp()
	}
	return 0, false
}

func (c *viewCounter) AccessStamp() (uint64, bool) {
	if st, ok := c.Store.(store.AccessStamper); ok {
		return st.AccessStamp()
	}
	return c.Stamp()
}

func (c *viewCounter) StampLags() bool {
	cf, ok := c.Store.(store.Confirmer)
	return ok && cf.StampLags()
}

func (c *viewCounter) ConfirmStamp(ctx context.Context, stamp uint64) error {
	return c.Store.(store.Confirmer).ConfirmStamp(ctx, stamp)
}

// TestCachedFetchIsNeverStale: a robot's repeated fetch reads nothing (its
// token and the sealed credential are cached while the store's change
// stamp holds), and every committed change a fetch depends on (a new
// secret, a revoked grant, a disabled robot, a deleted version or
// credential, the token's expiry) takes effect on the very next fetch. On
// PostgreSQL the changes are made through another node, on a store of its
// own: the fetching node never sees them happen, and its caches' values
// are confirmed against the database's change stamp.
func TestCachedFetchIsNeverStale(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			open := e.open
			if e.name == "postgres" {
				u := pgtest.URL(t)
				open = func(t testing.TB) store.Store {
					s, err := postgres.Open(context.Background(), u, postgres.Options{MaxConns: 8})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { s.Close() })
					return s
				}
			}
			st := &viewCounter{Store: open(t)}
			n := newNode(t, st)
			shares := n.initAndUnseal()
			other := n // SQLite: one process holds the data directory
			if e.name == "postgres" {
				other = newNodeOn(t, n, open(t), shares)
			}
			other.createTenant("acme")
			owner := other.pat(other.owner("acme"))
			id := other.putBank(owner, "payroll/a3", bankSecret)
			botID, bot := other.soloRobot(owner, "payroll-bot")
			grant := func(subject string) string {
				t.Helper()
				r := other.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": subject, "permission": "credentials.fetch",
					"resource": "group:payroll", "duration": "24h", "reason": "monthly payroll"})
				if r.status != 201 {
					t.Fatalf("grant: %d %s", r.status, r.body)
				}
				var g struct{ ID string }
				r.json(t, &g)
				return g.ID
			}
			g := grant(botID)
			fetch := func(want int) string {
				t.Helper()
				// By name through /v1, the path Vault clients take.
				r := n.do("GET", "/v1/secret/data/payroll/a3", bot, nil)
				if r.status != want {
					t.Fatalf("fetch: %d %s, want %d", r.status, r.body, want)
				}
				var s struct {
					Data struct {
						Data map[string]string `json:"data"`
					} `json:"data"`
				}
				if r.status != 200 {
					return string(r.body)
				}
				r.json(t, &s)
				return s.Data.Data["password"]
			}
			// reads counts the read transactions of a repeated call. A
			// background write of either node (a job started at unseal)
			// may move the stamp at any time, so it tries a few times.
			reads := func(call func()) int64 {
				var n int64
				for range 5 {
					before := st.views.Load()
					call()
					if n = st.views.Load() - before; n == 0 {
						break
					}
				}
				return n
			}
			fetch(200) // the first use of a token writes its last use, a change
			if n := reads(func() {
				if got := fetch(200); got != bankSecret {
					t.Fatalf("repeated fetch = %q", got)
				}
			}); stamped(st) != (n == 0) {
				t.Fatalf("a repeated fetch ran %d read transactions (stamped store: %v)", n, stamped(st))
			}
			// The native fetch, by ID, is cached the same way.
			native := func(want string) {
				t.Helper()
				r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", bot, map[string]string{"purpose": "payroll"})
				if r.status != 200 || !strings.Contains(string(r.body), want) {
					t.Fatalf("native fetch: %d %s, want %s", r.status, r.body, want)
				}
			}
			native(bankSecret)
			if n := reads(func() { native(bankSecret) }); stamped(st) != (n == 0) {
				t.Fatalf("a repeated native fetch ran %d read transactions", n)
			}

			// A write of another credential moves the whole stamp but not
			// the access stamp (SQLite; PostgreSQL keeps one): the fetch
			// reads its credential again, but not its token. Before the
			// two stamps it read both.
			if e.name == "sqlite" {
				one := false
				for i := range 5 { // a background write may move both stamps
					other.putBank(owner, fmt.Sprintf("payroll/other-%d", i), "Zq8-another-secret-7731")
					before := st.views.Load()
					native(bankSecret)
					if st.views.Load()-before == 1 {
						one = true
						break
					}
				}
				if !one {
					t.Error("after a credential write, a fetch read its token again (or ran no read at all)")
				}
			}

			// A new version: on PostgreSQL the native fetch, served from the
			// caches, confirms them stale and runs again on its body.
			other.putBank(owner, "payroll/a3", "Zq8-the-rotated-one-5512")
			native("Zq8-the-rotated-one-5512")
			if got := fetch(200); got != "Zq8-the-rotated-one-5512" {
				t.Fatalf("fetch after a new version = %q", got)
			}
			if r := other.do("DELETE", "/api/v1/tenants/acme/grants/"+g, owner, nil); r.status != 204 {
				t.Fatalf("revoke grant: %d %s", r.status, r.body)
			}
			if got := fetch(404); strings.Contains(got, "valid token") {
				t.Fatalf("fetch after the grant's revocation: %s", got)
			}
			grant(botID)
			fetch(200)
			if r := other.do("DELETE", "/v1/secret/data/payroll/a3", owner, nil); r.status != 204 {
				t.Fatalf("delete the current version: %d %s", r.status, r.body)
			}
			fetch(404)
			other.putBank(owner, "payroll/a3", bankSecret+"-2")
			fetch(200)
			if r := other.do("POST", "/api/v1/tenants/acme/robots/"+botID+"/disable", owner, nil); r.status != 200 {
				t.Fatalf("disable robot: %d %s", r.status, r.body)
			}
			// Routes that do not confirm are never served from caches
			// another node can make stale.
			if r := n.do("GET", "/v1/secret/metadata/payroll/a3", bot, nil); r.status != 403 {
				t.Fatalf("metadata read by a disabled robot: %d %s", r.status, r.body)
			}
			if got := fetch(403); !strings.Contains(got, "a valid token is required") { // Vault's answer
				t.Fatalf("fetch by a disabled robot: %s", got)
			}

			// Another robot's token, cached, expires on the clock.
			botID, _ = other.soloRobot(owner, "payroll-bot-2")
			grant(botID)
			r := other.do("POST", "/api/v1/tenants/acme/robots/"+botID+"/tokens", owner, map[string]string{"name": "short", "ttl": "1h"})
			if r.status != 201 {
				t.Fatalf("robot token: %d %s", r.status, r.body)
			}
			var nt struct{ Token string }
			r.json(t, &nt)
			bot = nt.Token
			fetch(200)
			fetch(200)
			n.clock.Add(time.Hour)
			if got := fetch(403); !strings.Contains(got, "a valid token is required") {
				t.Fatalf("fetch with an expired token: %s", got)
			}
			if r := other.do("DELETE", "/api/v1/tenants/acme/credentials/"+id, owner, nil); r.status != 204 {
				t.Fatalf("delete the credential: %d %s", r.status, r.body)
			}
		})
	}
}

// TestVersionsPruned: a credential keeps its newest max_versions versions,
// and lowering the setting prunes at the next write; the answer to a write
// names the fields of the version just written.
func TestVersionsPruned(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		put := func(i int, extra map[string]any) {
			t.Helper()
			body := map[string]any{"name": "payroll/a3", "secret": map[string]string{"password": fmt.Sprint("Zq8-pruned-", i, "-8841"), "pin": "x"}}
			maps.Copy(body, extra)
			r := n.do("POST", "/api/v1/tenants/acme/credentials", owner, body)
			var c struct {
				CurrentVersion int      `json:"current_version"`
				Fields         []string `json:"fields"`
			}
			r.json(t, &c)
			if r.status/100 != 2 || c.CurrentVersion != i || strings.Join(c.Fields, ",") != "password,pin" {
				t.Fatalf("put %d: %d %s", i, r.status, r.body)
			}
		}
		versions := func() string {
			t.Helper()
			var l struct{ Versions []struct{ Version int } }
			n.do("GET", "/api/v1/tenants/acme/credentials/payroll%2Fa3/versions", owner, nil).json(t, &l)
			return fmt.Sprint(each(l.Versions, func(v struct{ Version int }) int { return v.Version }))
		}
		put(1, map[string]any{"max_versions": 3})
		for i := 2; i <= 5; i++ {
			put(i, nil)
		}
		if got := versions(); got != "[3 4 5]" {
			t.Fatalf("versions kept with max_versions 3 = %s", got)
		}
		put(6, map[string]any{"max_versions": 2})
		if got := versions(); got != "[5 6]" {
			t.Fatalf("versions kept after lowering max_versions to 2 = %s", got)
		}
	})
}

func each[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// TestTwoNodesWriteOneCredential: two PostgreSQL nodes write the same
// credential at once, without check-and-set. Every write succeeds, each
// as its own version: a node reads the credential locked, so the other
// waits for its commit instead of failing on the version both would take.
func TestTwoNodesWriteOneCredential(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short outside CI: needs PostgreSQL")
	}
	u := pgtest.URL(t)
	open := func() store.Store {
		s, err := postgres.Open(context.Background(), u, postgres.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := newNode(t, open())
	shares := a.initAndUnseal()
	a.createTenant("acme")
	owner := a.pat(a.owner("acme"))
	a.putBank(owner, "payroll/a3", bankSecret)
	b := newNodeOn(t, a, open(), shares)
	const each = 10
	var wg sync.WaitGroup
	errs := make(chan string, 2*each)
	for i, n := range []*node{a, b} {
		for j := range each {
			wg.Go(func() {
				r := n.do("POST", "/api/v1/tenants/acme/credentials", owner, map[string]any{"name": "payroll/a3",
					"secret": map[string]string{"password": fmt.Sprint("Zq8-node", i, "-write", j, "-5521")}})
				if r.status != 200 {
					errs <- fmt.Sprintf("node %d write %d: %d %s", i, j, r.status, r.body)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	var c struct {
		CurrentVersion int `json:"current_version"`
	}
	a.do("GET", "/api/v1/tenants/acme/credentials/payroll%2Fa3", owner, nil).json(t, &c)
	if c.CurrentVersion != 1+2*each {
		t.Fatalf("current version %d after %d writes, want %d", c.CurrentVersion, 1+2*each, 1+2*each)
	}
}

// A grant or an access request may name a credential by its name: it is
// kept as the credential's ID, so that it applies; one naming no
// credential is refused, since it would never apply.
func TestGrantNamesACredential(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		_, mel := n.join("acme", owner, "mel", "member")
		id := n.putBank(owner, "bank/santander/main", bankSecret)
		botID, bot := n.soloRobot(owner, "payroll-bot")
		fetch := func() int {
			return n.do("POST", "/api/v1/tenants/acme/credentials/bank%2Fsantander%2Fmain/fetch", bot, map[string]string{"purpose": "payroll"}).status
		}
		// A robot that may not even see the credential is not told it
		// exists; one that may see it is told it may not fetch it.
		if s := fetch(); s != 404 {
			t.Fatalf("fetch before any grant: %d, want 404", s)
		}
		if s := n.do("GET", "/v1/secret/data/bank/santander/main", bot, nil).status; s != 404 {
			t.Fatalf("/v1 read before any grant: %d, want 404", s)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": botID, "permission": "credentials.read",
			"resource": "credential:bank/santander/main", "duration": "1h", "reason": "inventory"}); r.status != 201 {
			t.Fatalf("read grant: %d %s", r.status, r.body)
		}
		if s := fetch(); s != 403 {
			t.Fatalf("fetch with a read grant only: %d, want 403", s)
		}
		r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": botID, "permission": "credentials.fetch",
			"resource": "credential:bank/santander/main", "duration": "1h", "reason": "payroll"})
		var g struct{ Resource string }
		if r.status != 201 {
			t.Fatalf("grant by name: %d %s", r.status, r.body)
		}
		if r.json(t, &g); g.Resource != "credential:"+id {
			t.Errorf("grant by name kept %s, want credential:%s", g.Resource, id)
		}
		if s := fetch(); s != 200 {
			t.Errorf("fetch under a grant that named the credential: %d", s)
		}
		for _, res := range []string{"credential:bank/santander/none", "credential:crd_nosuchcredential00"} {
			r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": botID, "permission": "credentials.fetch",
				"resource": res, "duration": "1h", "reason": "payroll"})
			if r.status != 404 || r.errCode(t) != "credential_not_found" {
				t.Errorf("grant on %s: %d %s, want 404 credential_not_found", res, r.status, r.body)
			}
			r = n.do("POST", "/api/v1/tenants/acme/requests", mel, map[string]string{"permission": "credentials.read",
				"resource": res, "duration": "1h", "reason": "filing"})
			if r.status != 404 || r.errCode(t) != "credential_not_found" {
				t.Errorf("request on %s: %d %s, want 404 credential_not_found", res, r.status, r.body)
			}
		}
		r = n.do("POST", "/api/v1/tenants/acme/requests", mel, map[string]string{"permission": "credentials.read",
			"resource": "credential:bank/santander/main", "duration": "1h", "reason": "filing"})
		if r.status != 201 || !strings.Contains(string(r.body), id) {
			t.Errorf("request by name: %d %s, want 201 naming %s", r.status, r.body, id)
		}
	})
}

// Erasing for good (a credential with every version, or a version's
// secret through /v1 destroy) is for the credential's owner, admins, and
// whoever holds a write grant on it: a member's role lets them write any
// credential, not destroy the others'.
func TestOnlyOwnersAndAdminsErase(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		melID, mel := n.join("acme", owner, "mel", "member")
		mel = n.pat(mel)
		_, ada := n.join("acme", owner, "ada", "admin")
		ada = n.pat(ada)
		n.putBank(owner, "bank/payroll", bankSecret)
		n.putBank(owner, "bank/taxes", bankSecret+"-t")
		n.putBank(mel, "bank/mels", bankSecret+"-m")
		refused := func(what string, r resp) {
			t.Helper()
			code := r.header.Get("X-Custodia-Error") // /v1 answers in Vault's shape
			if code == "" {
				code = r.errCode(t)
			}
			if r.status != 403 || code != "erase_not_allowed" {
				t.Errorf("%s: %d %s, want 403 erase_not_allowed", what, r.status, r.body)
			}
		}
		refused("member deletes the owner's credential", n.do("DELETE", "/api/v1/tenants/acme/credentials/bank%2Fpayroll", mel, nil))
		refused("member deletes it through /v1", n.do("DELETE", "/v1/secret/metadata/bank/payroll", mel, nil))
		refused("member destroys its version", n.do("POST", "/v1/secret/destroy/bank/payroll", mel, map[string]any{"versions": []int{1}}))
		// Keeping fewer versions erases the older ones: the same rule.
		n.putBank(owner, "bank/payroll", bankSecret+"-2")
		refused("member keeps fewer versions through /v1", n.do("POST", "/v1/secret/metadata/bank/payroll", mel, map[string]any{"max_versions": 1}))
		refused("member keeps fewer versions", n.do("POST", "/api/v1/tenants/acme/credentials", mel, map[string]any{"name": "bank/payroll", "max_versions": 1}))
		if r := n.do("GET", "/api/v1/tenants/acme/credentials/bank%2Fpayroll/versions", owner, nil); !strings.Contains(string(r.body), `"version":1`) &&
			!strings.Contains(string(r.body), `"version": 1`) {
			t.Errorf("version 1 after refused prunes: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/v1/secret/metadata/bank/payroll", mel, map[string]any{"max_versions": 20}); r.status != 204 {
			t.Errorf("member keeps more versions: %d %s", r.status, r.body)
		}
		// Moving a credential to another group changes which grants reach
		// it (a robot's fetch grant on group:ops, say): owners and admins
		// only, and audited with the group it left.
		r := n.do("POST", "/api/v1/tenants/acme/credentials", mel, map[string]any{"name": "bank/payroll", "group": "ops"})
		if r.status != 403 || r.errCode(t) != "regroup_not_allowed" {
			t.Errorf("member moves a credential to another group: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/credentials", ada, map[string]any{"name": "bank/payroll", "group": "ops"}); r.status != 200 {
			t.Errorf("admin moves a credential to another group: %d %s", r.status, r.body)
		}
		if acts := n.auditDetails(n.tenantID("acme"), "credential.update"); !slices.ContainsFunc(acts, func(d map[string]any) bool {
			return d["group"] == "ops" && d["group_was"] == "bank"
		}) {
			t.Errorf("the group change is not audited with both groups: %v", acts)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/credentials", owner, map[string]any{"name": "bank/payroll", "max_versions": 1}); r.status != 200 {
			t.Errorf("owner keeps fewer versions: %d %s", r.status, r.body)
		}
		if acts := n.auditDetails(n.tenantID("acme"), "credential.update"); !slices.ContainsFunc(acts, func(d map[string]any) bool {
			p, ok := d["pruned"].([]any)
			return ok && len(p) == 1 && p[0] == float64(1)
		}) {
			t.Errorf("the pruned version is not audited: %v", acts)
		}
		// A soft delete can be undone: any writer may.
		if r := n.do("POST", "/v1/secret/delete/bank/payroll", mel, map[string]any{"versions": []int{1}}); r.status != 204 {
			t.Errorf("member soft-deletes a version: %d %s", r.status, r.body)
		}
		if r := n.do("DELETE", "/api/v1/tenants/acme/credentials/bank%2Fmels", mel, nil); r.status != 204 {
			t.Errorf("member deletes her own credential: %d %s", r.status, r.body)
		}
		if r := n.do("DELETE", "/api/v1/tenants/acme/credentials/bank%2Fpayroll", ada, nil); r.status != 204 {
			t.Errorf("admin deletes a credential: %d %s", r.status, r.body)
		}
		// A write grant on the credential lets a member erase it.
		if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": melID, "permission": "credentials.write",
			"resource": "credential:bank/taxes", "duration": "1h", "reason": "cleanup"}); r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		if r := n.do("DELETE", "/api/v1/tenants/acme/credentials/bank%2Ftaxes", mel, nil); r.status != 204 {
			t.Errorf("member with a write grant deletes the credential: %d %s", r.status, r.body)
		}
	})
}

// A robot lists its own live leases (it holds no grants.read); whoever
// may read the tenant's grants sees every holder's, and a member who may
// not is refused.
func TestRobotListsItsOwnLeases(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		ownerSession := n.owner("acme")
		owner := n.pat(ownerSession)
		_, member := n.join("acme", ownerSession, "mel", "member")
		id := n.putBank(owner, "payroll/a3", bankSecret)
		lease := map[string]string{}
		for _, name := range []string{"bot-a", "bot-b"} {
			botID, bot := n.soloRobot(owner, name)
			if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": botID, "permission": "credentials.fetch",
				"resource": "group:payroll", "duration": "24h", "reason": "monthly payroll"}); r.status != 201 {
				t.Fatalf("grant: %d %s", r.status, r.body)
			}
			var s struct {
				LeaseID string `json:"lease_id"`
			}
			n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", bot, map[string]string{"purpose": "payroll"}).json(t, &s)
			lease[name], lease[name+"-token"] = s.LeaseID, bot
		}
		_, idle := n.soloRobot(owner, "bot-idle")
		list := func(tok, query string) (int, []string) {
			t.Helper()
			r := n.do("GET", "/api/v1/tenants/acme/leases"+query, tok, nil)
			var out struct {
				Leases []struct{ ID string }
			}
			r.json(t, &out)
			var ids []string
			for _, l := range out.Leases {
				ids = append(ids, l.ID)
			}
			slices.Sort(ids)
			return r.status, ids
		}
		if st, ids := list(lease["bot-a-token"], ""); st != 200 || !slices.Equal(ids, []string{lease["bot-a"]}) {
			t.Errorf("bot-a lists %d %v, want only its lease %s", st, ids, lease["bot-a"])
		}
		if st, ids := list(lease["bot-b-token"], "?credential="+id); st != 200 || !slices.Equal(ids, []string{lease["bot-b"]}) {
			t.Errorf("bot-b lists the credential's leases: %d %v, want only %s", st, ids, lease["bot-b"])
		}
		if st, ids := list(idle, ""); st != 200 || len(ids) != 0 {
			t.Errorf("a robot without leases lists %d %v", st, ids)
		}
		// A robot that may not see the credential is told it does not exist.
		if st, _ := list(idle, "?credential="+id); st != 404 {
			t.Errorf("a robot without a grant lists a credential's leases: %d, want 404", st)
		}
		want := []string{lease["bot-a"], lease["bot-b"]}
		slices.Sort(want)
		if st, ids := list(owner, ""); st != 200 || !slices.Equal(ids, want) {
			t.Errorf("owner lists %d %v, want %v", st, ids, want)
		}
		if st, _ := list(member, ""); st != 403 {
			t.Errorf("a member without grants.read lists leases: %d", st)
		}
	})
}
