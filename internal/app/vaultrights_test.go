package app_test

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
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
		botID, bot := n.soloRobot(owner, "payroll-bot")
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

// Refusals the vault makes on one credential (past the route's own check)
// are audited as the route's are: an authz.deny entry in the tenant's log
// with the permission and tenant, plus the refusal's code and the
// credential's name, even though the refused request's transaction rolls
// back.
func TestCredentialRefusalsAreAudited(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		ownerSession := n.owner("acme")
		owner := n.pat(ownerSession)
		melID, mel := n.join("acme", owner, "mel", "member")
		mel = n.pat(mel)
		id := n.putBank(owner, "bank/main", bankSecret)
		botID, bot := n.soloRobot(owner, "payroll-bot")
		grant := func(subject, perm string) {
			t.Helper()
			if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": subject, "permission": perm,
				"resource": "credential:" + id, "duration": "1h", "reason": "testing"}); r.status != 201 {
				t.Fatalf("grant %s: %d %s", perm, r.status, r.body)
			}
		}
		tid := n.tenantID("acme")
		seen := 0
		denied := func(what, perm, code string, r resp, status int) {
			t.Helper()
			if r.status != status {
				t.Errorf("%s: %d %s, want %d", what, r.status, r.body, status)
			}
			var ours []map[string]any
			for _, d := range n.auditDetails(tid, "authz.deny") {
				if d["code"] != nil {
					ours = append(ours, d)
				}
			}
			if len(ours) != seen+1 {
				t.Fatalf("%s: %d credential denials audited, want %d: %v", what, len(ours), seen+1, ours)
			}
			seen++
			d := ours[len(ours)-1]
			if d["permission"] != perm || d["code"] != code || d["tenant"] != tid || d["name"] != "bank/main" && d["name"] != id {
				t.Errorf("%s audited as %v, want permission %s, code %s", what, d, perm, code)
			}
			if strings.Contains(fmt.Sprint(ours), bankSecret) {
				t.Errorf("a denial carries the secret: %v", ours)
			}
		}
		fetch := "/api/v1/tenants/acme/credentials/" + id + "/fetch"
		reveal := "/api/v1/tenants/acme/credentials/" + id + "/reveal"
		denied("robot fetches without a grant", "credentials.fetch", "not_found",
			n.do("POST", fetch, bot, map[string]string{"purpose": "payroll"}), 404)
		denied("robot reads through /v1 without a grant", "credentials.fetch", "not_found", n.do("GET", "/v1/secret/data/bank/main", bot, nil), 404)
		grant(botID, "credentials.read")
		denied("robot fetches with a read grant", "credentials.fetch", "forbidden",
			n.do("POST", fetch, bot, map[string]string{"purpose": "payroll"}), 403)
		denied("member fetches", "credentials.fetch", "robots_only", n.do("POST", fetch, mel, map[string]string{"purpose": "payroll"}), 403)
		denied("member reveals a write-only credential", "credentials.reveal", "write_only",
			n.do("POST", reveal, mel, map[string]string{"reason": "filing"}), 403)
		if r := n.do("PUT", "/api/v1/tenants/acme/credentials/"+id+"/revealable", owner, map[string]any{"members": []string{melID}}); r.status != 200 {
			t.Fatalf("revealable: %d %s", r.status, r.body)
		}
		denied("member reveals without a grant", "credentials.reveal", "forbidden",
			n.do("POST", reveal, mel, map[string]string{"reason": "filing"}), 403)
		grant(melID, "credentials.reveal")
		for range 10 {
			if r := n.do("POST", reveal, mel, map[string]string{"reason": "filing"}); r.status != 200 {
				t.Fatalf("reveal: %d %s", r.status, r.body)
			}
		}
		denied("11th reveal in an hour", "credentials.reveal", "too_many_reveals",
			n.do("POST", reveal, mel, map[string]string{"reason": "filing"}), 429)
		denied("member deletes the owner's credential", "credentials.write", "erase_not_allowed",
			n.do("DELETE", "/api/v1/tenants/acme/credentials/"+id, mel, nil), 403)
		denied("member destroys a version", "credentials.write", "erase_not_allowed",
			n.do("POST", "/v1/secret/destroy/bank/main", mel, map[string]any{"versions": []int{1}}), 403)
		denied("member moves it to another group", "credentials.write", "regroup_not_allowed",
			n.do("POST", "/api/v1/tenants/acme/credentials", mel, map[string]any{"name": "bank/main", "group": "ops"}), 403)
		if r := n.do("GET", "/api/v1/tenants/acme/credentials/"+id, owner, nil); !strings.Contains(string(r.body), `"group":"bank"`) {
			t.Errorf("a refused regroup moved the credential: %s", r.body)
		}
	})
}

// A writer who may not read a credential (a token scoped to
// credentials.write alone) is answered a receipt of its write: ID, name,
// version, times and warnings; never the metadata a read would show, not
// even through a metadata-only write, a restore or /v1.
func TestWriteReceiptForWritersWhoMayNotRead(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner, _, _ := n.kvSetup()
		n.join("acme", owner, "mel", "member")
		r := n.do("POST", "/api/v1/tenants/acme/credentials", owner, map[string]any{"name": "tax/aeat", "kind": "tax_portal", "institution": "AEAT",
			"login_id": "B12345678", "notes": "filing desk", "labels": map[string]string{"team": "payroll"},
			"secret": map[string]string{"password": bankSecret}})
		var full map[string]any
		if r.json(t, &full); r.status != 201 || full["login_id"] != "B12345678" || full["owner_id"] == nil || full["revealable_to"] == nil ||
			full["max_versions"] == nil || full["group"] != "tax" {
			t.Fatalf("owner's write is not answered the full view: %d %s", r.status, r.body)
		}
		if r := n.do("PUT", "/api/v1/tenants/acme/credentials/tax%2Faeat/revealable", owner, map[string]any{"members": []string{"mel@acme.example"}}); r.status != 200 {
			t.Fatalf("revealable: %d %s", r.status, r.body)
		}
		r = n.do("POST", "/api/v1/me/tokens", owner, map[string]any{"name": "web tier", "scopes": []string{"credentials.write"}})
		var wt struct{ Token string }
		if r.status != 201 {
			t.Fatalf("scoped token: %d %s", r.status, r.body)
		}
		r.json(t, &wt)
		receipt := func(what string, r resp, version float64) {
			t.Helper()
			var got map[string]any
			if r.json(t, &got); r.status/100 != 2 {
				t.Fatalf("%s: %d %s", what, r.status, r.body)
			}
			keys := slices.Sorted(maps.Keys(got))
			want := []string{"cas_required", "created_at", "current_version", "id", "name", "updated_at"}
			if got["warnings"] != nil {
				want = append(want, "warnings")
				slices.Sort(want)
			}
			if !slices.Equal(keys, want) || got["name"] != "tax/aeat" || got["current_version"] != version {
				t.Errorf("%s answered %s, want only %v", what, r.body, want)
			}
		}
		receipt("metadata-only write", n.do("POST", "/api/v1/tenants/acme/credentials", wt.Token, map[string]any{"name": "tax/aeat", "notes": "desk 2"}), 1)
		receipt("secret write", n.do("POST", "/api/v1/tenants/acme/credentials", wt.Token, map[string]any{"name": "tax/aeat",
			"secret": map[string]string{"password": bankSecret + "-2"}}), 2)
		receipt("restore", n.do("POST", "/api/v1/tenants/acme/credentials/tax%2Faeat/restore", wt.Token, map[string]any{"version": 1}), 3)
		r = n.do("PUT", "/v1/secret/data/tax/aeat", wt.Token, map[string]any{"data": map[string]string{"password": bankSecret + "-4"}})
		var v1 struct {
			Data map[string]any `json:"data"`
		}
		if r.json(t, &v1); r.status != 200 || v1.Data["version"] != float64(4) || v1.Data["custom_metadata"] != nil {
			t.Errorf("/v1 write answered %d %s, want version 4 without custom_metadata", r.status, r.body)
		}
	})
}

var requestID = regexp.MustCompile(`"request_id":"[a-z0-9]*"`)

// Whoever may neither read nor write a credential gets the answer a name
// that holds nothing gets, whatever they try (a write, a check-and-set, a
// delete, a restore, settings), natively and through /v1; whoever may
// read it but not write it is refused 403.
func TestNoExistenceLeakToCallersWithoutRights(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner, _, _ := n.kvSetup() // bank/main exists, at version 2
		botID, bot := n.soloRobot(owner, "nosy-bot")
		type try struct {
			name, method, path string
			body               any
		}
		tries := func(cred string) []try {
			esc := url.PathEscape(cred)
			return []try{
				{"v1 soft delete", "DELETE", "/v1/secret/data/" + cred, nil},
				{"v1 write with cas 0", "PUT", "/v1/secret/data/" + cred, map[string]any{"data": map[string]string{"password": "x-Zq8-1"}, "options": map[string]int{"cas": 0}}},
				{"v1 write", "PUT", "/v1/secret/data/" + cred, map[string]any{"data": map[string]string{"password": "x-Zq8-1"}}},
				{"v1 destroy", "POST", "/v1/secret/destroy/" + cred, map[string]any{"versions": []int{1}}},
				{"v1 undelete", "POST", "/v1/secret/undelete/" + cred, map[string]any{"versions": []int{1}}},
				{"v1 settings", "POST", "/v1/secret/metadata/" + cred, map[string]any{"max_versions": 5}},
				{"v1 delete all", "DELETE", "/v1/secret/metadata/" + cred, nil},
				{"write with cas 7", "POST", "/api/v1/tenants/acme/credentials", map[string]any{"name": cred, "cas": 7, "secret": map[string]string{"password": "x-Zq8-1"}}},
				{"write with cas 0", "POST", "/api/v1/tenants/acme/credentials", map[string]any{"name": cred, "cas": 0, "secret": map[string]string{"password": "x-Zq8-1"}}},
				{"metadata-only write", "POST", "/api/v1/tenants/acme/credentials", map[string]any{"name": cred, "notes": "x"}},
				{"restore", "POST", "/api/v1/tenants/acme/credentials/" + esc + "/restore", map[string]any{"version": 1}},
				{"delete", "DELETE", "/api/v1/tenants/acme/credentials/" + esc, nil},
			}
		}
		answer := func(tok string, tr try, cred string) string {
			t.Helper()
			r := n.do(tr.method, tr.path, tok, tr.body)
			body := requestID.ReplaceAllString(strings.ReplaceAll(string(r.body), cred, "NAME"), "")
			return fmt.Sprint(r.status, " ", r.header.Get("X-Custodia-Error"), " ", body)
		}
		unknown := tries("bank/none")
		for i, tr := range tries("bank/main") {
			got, want := answer(bot, tr, "bank/main"), answer(bot, unknown[i], "bank/none")
			// The native routes refuse a robot without a tenant-wide
			// write grant before the vault sees the credential.
			if got != want || strings.HasPrefix(tr.path, "/v1/") && !strings.HasPrefix(got, "404") || strings.Contains(got, "version") {
				t.Errorf("%s by a robot without rights: on bank/main %s, on a name holding nothing %s", tr.name, got, want)
			}
		}
		if m, err := n.baoClient(owner).KVv2("secret").GetMetadata(t.Context(), "bank/main"); err != nil || m.CurrentVersion != 2 || len(m.Versions) != 2 {
			t.Fatalf("bank/main after the refused tries: %+v, %v", m, err)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": botID, "permission": "credentials.read",
			"resource": "credential:bank/main", "duration": "1h", "reason": "inventory"}); r.status != 201 {
			t.Fatalf("read grant: %d %s", r.status, r.body)
		}
		for _, tr := range tries("bank/main") {
			if got := answer(bot, tr, "bank/main"); !strings.HasPrefix(got, "403") {
				t.Errorf("%s by a robot that may read it: %s, want 403", tr.name, got)
			}
		}
	})
}

// A write's metadata is held to limits (labels as for /v1 settings; a
// group is one name segment; notes, login ID and institution are bounded
// text without control characters), and a credential is revealable to at
// most 100 members; what was stored before the limits keeps working.
func TestCredentialMetadataLimits(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		id := n.putBank(owner, "bank/main", bankSecret)
		put := func(extra map[string]any) resp {
			t.Helper()
			body := map[string]any{"name": "bank/main"}
			maps.Copy(body, extra)
			return n.do("POST", "/api/v1/tenants/acme/credentials", owner, body)
		}
		manyLabels := map[string]string{}
		for i := range 65 {
			manyLabels[fmt.Sprint("k", i)] = "v"
		}
		for _, c := range []struct {
			name string
			body map[string]any
			code string
		}{
			{"fail/too many labels", map[string]any{"labels": manyLabels}, "invalid_labels"},
			{"fail/group with a colon", map[string]any{"group": "ops:prod"}, "invalid_group"},
			{"fail/group with a slash", map[string]any{"group": "ops/prod"}, "invalid_group"},
			{"fail/notes too long", map[string]any{"notes": strings.Repeat("n", 4097)}, "invalid_notes"},
			{"fail/notes with an escape", map[string]any{"notes": "ok\x1b]0;pwned\a"}, "invalid_notes"},
			{"fail/login ID on two lines", map[string]any{"login_id": "B1\nforged"}, "invalid_login_id"},
			{"fail/institution too long", map[string]any{"institution": strings.Repeat("i", 257)}, "invalid_institution"},
			{"fail/new credential in a bad group", map[string]any{"name": "bank/new", "group": "a:b", "secret": map[string]string{"password": bankSecret}},
				"invalid_group"},
		} {
			if r := put(c.body); r.status != 400 || r.errCode(t) != c.code {
				t.Errorf("%s: %d %s, want 400 %s", c.name, r.status, r.body, c.code)
			}
		}
		if r := put(map[string]any{"notes": "first line\n\tsecond line", "login_id": "B12345678-ñ", "labels": map[string]string{"team": "pay"}}); r.status/100 != 2 {
			t.Errorf("notes on two lines, a login ID and a label: %d %s", r.status, r.body)
		}
		// Stored before the limits: sent back unchanged, it is kept.
		long := strings.Repeat("n", 5000)
		err := n.app.Store.Update(t.Context(), func(tx store.Tx) error {
			c, err := tx.GetCredential(t.Context(), n.tenantID("acme"), id)
			if err != nil {
				return err
			}
			c.Notes, c.Group = long, "legacy:group"
			return tx.UpdateCredential(t.Context(), c)
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := put(map[string]any{"notes": long, "group": "legacy:group", "secret": map[string]string{"password": bankSecret + "-2"}}); r.status != 200 {
			t.Errorf("a write sending back what was stored before the limits: %d %s", r.status, r.body)
		}
		members := make([]string, 101)
		for i := range members {
			members[i] = fmt.Sprintf("m%d@acme.example", i)
		}
		if r := n.do("PUT", "/api/v1/tenants/acme/credentials/"+id+"/revealable", owner, map[string]any{"members": members}); r.status != 400 ||
			r.errCode(t) != "too_many_members" {
			t.Errorf("revealable to 101 members: %d %s", r.status, r.body)
		}
	})
}

// Nobody makes a credential revealable to themselves (with a reveal grant
// they may give themselves, one admin would read a write-only secret
// alone): another owner or admin must; staying on a list one is already
// on while changing the others is fine.
func TestNobodyMakesThemselvesRevealable(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		adaID, ada := n.join("acme", owner, "ada", "admin")
		ada = n.pat(ada)
		melID, _ := n.join("acme", owner, "mel", "member")
		id := n.putBank(owner, "bank/main", bankSecret)
		set := func(tok string, members ...string) resp {
			t.Helper()
			return n.do("PUT", "/api/v1/tenants/acme/credentials/"+id+"/revealable", tok, map[string]any{"members": members})
		}
		revealable := func() []string {
			t.Helper()
			var c struct {
				Revealable []string `json:"revealable_to"`
			}
			n.do("GET", "/api/v1/tenants/acme/credentials/"+id, owner, nil).json(t, &c)
			slices.Sort(c.Revealable)
			return c.Revealable
		}
		for _, c := range []struct {
			name    string
			members []string
		}{
			{"fail/herself by ID", []string{adaID}},
			{"fail/herself by email, among others", []string{melID, "ada@acme.example"}},
		} {
			if r := set(ada, c.members...); r.status != 403 || r.errCode(t) != "self_revealable" || !strings.Contains(string(r.body), "another owner or admin") {
				t.Errorf("%s: %d %s, want 403 self_revealable", c.name, r.status, r.body)
			}
		}
		if got := revealable(); len(got) != 0 {
			t.Fatalf("refused changes made it revealable to %v", got)
		}
		if acts := n.auditDetails(n.tenantID("acme"), "authz.deny"); !slices.ContainsFunc(acts, func(d map[string]any) bool {
			return d["code"] == "self_revealable"
		}) {
			t.Errorf("self_revealable refusals are not audited: %v", acts)
		}
		// The owner names her; she may then change the others, staying on.
		if r := set(owner, adaID); r.status != 200 {
			t.Fatalf("owner makes it revealable to the admin: %d %s", r.status, r.body)
		}
		if r := set(ada, adaID, melID); r.status != 200 {
			t.Errorf("admin adds mel, staying on: %d %s", r.status, r.body)
		}
		if r := set(ada, melID); r.status != 200 {
			t.Errorf("admin takes herself off: %d %s", r.status, r.body)
		}
		if r := set(ada, melID, adaID); r.status != 403 || r.errCode(t) != "self_revealable" {
			t.Errorf("admin puts herself back on: %d %s, want 403 self_revealable", r.status, r.body)
		}
		if got, want := revealable(), []string{melID}; !slices.Equal(got, want) {
			t.Errorf("revealable to %v, want %v", got, want)
		}
	})
}
