package app_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	bao "github.com/openbao/openbao/api/v2"

	"github.com/custodia-project/custodia/internal/identity"
)

// baoClient is the stock OpenBao (Vault-compatible) Go client, pointed at
// the node with token.
func (n *node) baoClient(token string) *bao.Client {
	n.t.Helper()
	cfg := bao.DefaultConfig()
	cfg.Address = n.srv.URL
	cfg.HttpClient = n.srv.Client()
	cfg.MaxRetries = 0
	c, err := bao.NewClient(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// grantFetch gives a robot a fetch grant on the whole tenant.
func (n *node) grantFetch(by, robotID string) {
	n.t.Helper()
	r := n.do("POST", "/api/v1/tenants/acme/grants", by, map[string]string{"subject": robotID, "permission": "credentials.fetch",
		"resource": "tenant", "duration": "24h", "reason": "payroll robot"})
	if r.status != 201 {
		n.t.Fatalf("grant: %d %s", r.status, r.body)
	}
}

func respCode(err error) int {
	var re *bao.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// The stock OpenBao Go client drives the KV v2 mount end to end: a person
// writes a bank login they can never read back, a robot that logged in
// through AppRole reads it (under a lease, audited with its purpose),
// versions are deleted, undeleted and destroyed, and metadata and lists
// answer in Vault's shapes.
func TestVaultCompatibleAPI(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		tid := n.createTenant("acme")
		session := n.owner("acme")
		owner := n.pat(session)
		ctx := t.Context()
		// A path no route serves says so (a secret that does not exist is
		// a bare 404: the client's ErrSecretNotFound below).
		if r := n.do("GET", "/v1/kv/data/x", owner, nil); r.status != 404 || !strings.Contains(string(r.body), "no handler for /v1/kv/data/x") {
			t.Errorf("unknown mount: %d %s", r.status, r.body)
		}
		// A sign-in session is no Vault token: refused as Vault refuses.
		if r := n.do("GET", "/v1/auth/token/lookup-self", session, nil); r.status != 403 || r.header.Get("X-Custodia-Error") != "not_a_token" {
			t.Errorf("lookup-self with a session: %d %s", r.status, r.body)
		}

		// A person writes through the Vault client...
		people := n.baoClient(owner)
		kv := people.KVv2("secret")
		s, err := kv.Put(ctx, "bank/santander/main", map[string]any{"password": bankSecret, "user": "B12345678"})
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		if s.VersionMetadata == nil || s.VersionMetadata.Version != 1 {
			t.Fatalf("put metadata = %+v", s.VersionMetadata)
		}
		if _, err := kv.Put(ctx, "bank/santander/main", map[string]any{"password": bankSecret + "-2"}, bao.WithCheckAndSet(1)); err != nil {
			t.Fatalf("put cas 1: %v", err)
		}
		if _, err := kv.Put(ctx, "bank/santander/main", map[string]any{"password": "x"}, bao.WithCheckAndSet(1)); respCode(err) != 400 ||
			!strings.Contains(err.Error(), "check-and-set") {
			t.Errorf("stale check-and-set: %v", err)
		}
		if _, err := kv.Put(ctx, "payroll/a3", map[string]any{"password": "n0t-a-real-pass-991"}); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "bank/bbva", map[string]any{"pin": 1234}); respCode(err) != 400 {
			t.Errorf("non-string value: %v", err)
		}
		// ...and can never read it back (invariant 3 on /v1).
		if _, err := kv.Get(ctx, "bank/santander/main"); respCode(err) != 403 {
			t.Errorf("owner reads a write-only secret through /v1: %v", err)
		}
		if _, err := kv.GetVersion(ctx, "bank/santander/main", 1); respCode(err) != 403 {
			t.Errorf("owner reads version 1 through /v1: %v", err)
		}
		r := n.do("GET", "/v1/secret/data/bank/santander/main", owner, nil)
		if r.status != 403 || strings.Contains(string(r.body), bankSecret) || !strings.Contains(string(r.body), `"errors"`) {
			t.Errorf("raw /v1 read as owner: %d %s", r.status, r.body)
		}
		// Metadata is readable.
		m, err := kv.GetMetadata(ctx, "bank/santander/main")
		if err != nil {
			t.Fatalf("metadata: %v", err)
		}
		if m.CurrentVersion != 2 || len(m.Versions) != 2 || m.MaxVersions != 10 {
			t.Errorf("metadata = %+v", m)
		}
		keys, err := people.Logical().List("secret/metadata/bank")
		if err != nil || keys == nil {
			t.Fatalf("list: %v %v", keys, err)
		}
		if got := keys.Data["keys"].([]any); len(got) != 1 || got[0] != "santander/" {
			t.Errorf("list bank/ = %v", got)
		}
		if root, _ := people.Logical().List("secret/metadata/"); root == nil || len(root.Data["keys"].([]any)) != 2 {
			t.Errorf("list root = %v", root)
		}

		// A robot logs in through AppRole: role ID = robot ID, secret ID =
		// a token scoped to approle.login.
		rid, _ := n.soloRobot(owner, "payroll-bot")
		r = n.do("POST", "/api/v1/tenants/acme/robots/"+rid+"/tokens", owner, map[string]any{"name": "approle", "scopes": []string{"approle.login"}})
		if r.status != 201 {
			t.Fatalf("secret id: %d %s", r.status, r.body)
		}
		var sid struct{ Token string }
		r.json(t, &sid)
		anon := n.baoClient("")
		login, err := anon.Logical().Write("auth/approle/login", map[string]any{"role_id": rid, "secret_id": sid.Token})
		if err != nil || login.Auth == nil || login.Auth.ClientToken == "" || login.Auth.LeaseDuration != 3600 {
			t.Fatalf("approle login: %+v %v", login, err)
		}
		if _, err := anon.Logical().Write("auth/approle/login", map[string]any{"role_id": "rbt_other", "secret_id": sid.Token}); respCode(err) != 400 {
			t.Errorf("approle with another role ID: %v", err)
		}
		// The secret ID itself reaches nothing else.
		if _, err := n.baoClient(sid.Token).KVv2("secret").GetMetadata(ctx, "bank/santander/main"); respCode(err) != 403 {
			t.Errorf("secret ID used as a token: %v", err)
		}
		robot := n.baoClient(login.Auth.ClientToken)
		self, err := robot.Auth().Token().LookupSelf()
		if err != nil || self.Data["display_name"] != "approle login" || self.Data["id"] != "" {
			t.Errorf("lookup-self: %+v %v", self, err)
		}
		// Without a grant the robot reads nothing, and is not told the
		// secret exists.
		if _, err := robot.KVv2("secret").Get(ctx, "bank/santander/main"); !errors.Is(err, bao.ErrSecretNotFound) {
			t.Errorf("robot without a grant: %v", err)
		}
		n.grantFetch(owner, rid)
		robot.AddHeader("X-Custodia-Purpose", "monthly payroll run")
		got, err := robot.KVv2("secret").Get(ctx, "bank/santander/main")
		if err != nil {
			t.Fatalf("robot read: %v", err)
		}
		if got.Data["password"] != bankSecret+"-2" || got.VersionMetadata.Version != 2 || got.Raw.LeaseID == "" || got.Raw.LeaseDuration != 300 {
			t.Errorf("robot read = %+v %+v", got.Data, got.Raw)
		}
		old, err := robot.KVv2("secret").GetVersion(ctx, "bank/santander/main", 1)
		if err != nil || old.Data["password"] != bankSecret || old.Data["user"] != "B12345678" {
			t.Errorf("version 1: %+v %v", old, err)
		}
		acts := n.auditActions(tid)
		// The refusal with another role ID above is in the tenant's log.
		if !slices.Contains(acts, "credential.fetch:ok") || !slices.Contains(acts, "robot.approle_login:ok") ||
			!slices.Contains(acts, "robot.approle_login:failed") {
			t.Errorf("audit = %v", acts)
		}
		// The lease renews and revokes through sys/leases.
		ren, err := robot.Sys().Renew(got.Raw.LeaseID, 600)
		if err != nil || ren.LeaseDuration != 600 {
			t.Errorf("renew: %+v %v", ren, err)
		}
		// A bad increment is refused with its own reason.
		r = n.do("PUT", "/v1/sys/leases/renew", login.Auth.ClientToken, map[string]any{"lease_id": got.Raw.LeaseID, "increment": "soon"})
		if r.status != 400 || r.header.Get("X-Custodia-Error") != "invalid_increment" || !strings.Contains(string(r.body), "whole number of seconds") {
			t.Errorf("renew with a bad increment: %d %s", r.status, r.body)
		}
		// Past the longest lease, the increment is capped with a
		// warning, as Vault does.
		ren, err = robot.Sys().Renew(got.Raw.LeaseID, 7200)
		if err != nil || ren.LeaseDuration != 3600 || len(ren.Warnings) != 1 || !strings.Contains(ren.Warnings[0], "capped") {
			t.Errorf("renew past the longest lease: %+v %v", ren, err)
		}
		if err := robot.Sys().Revoke(got.Raw.LeaseID); err != nil {
			t.Errorf("revoke: %v", err)
		}
		if r := n.do("GET", "/api/v1/tenants/acme/leases/"+got.Raw.LeaseID, login.Auth.ClientToken, nil); r.status != 404 {
			t.Errorf("revoked lease still reads: %d", r.status)
		}

		// Soft delete, undelete, destroy.
		if err := kv.Delete(ctx, "bank/santander/main"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		// As in Vault, a deleted version reads as its metadata with no
		// data (TestVaultDeletedVersionRead has the details).
		if g, err := robot.KVv2("secret").Get(ctx, "bank/santander/main"); err != nil || g.Data != nil || g.VersionMetadata.DeletionTime.IsZero() {
			t.Errorf("read of a deleted version: %+v %v", g, err)
		}
		if err := kv.Undelete(ctx, "bank/santander/main", []int{2}); err != nil {
			t.Fatalf("undelete: %v", err)
		}
		if g, err := robot.KVv2("secret").Get(ctx, "bank/santander/main"); err != nil || g.Data["password"] != bankSecret+"-2" {
			t.Errorf("after undelete: %v", err)
		}
		if err := kv.Destroy(ctx, "bank/santander/main", []int{1}); err != nil {
			t.Fatalf("destroy: %v", err)
		}
		if g, err := robot.KVv2("secret").GetVersion(ctx, "bank/santander/main", 1); err != nil || g.Data != nil || !g.VersionMetadata.Destroyed {
			t.Errorf("read of a destroyed version: %+v %v", g, err)
		}
		if m, _ := kv.GetMetadata(ctx, "bank/santander/main"); m == nil || !m.Versions["1"].Destroyed {
			t.Errorf("metadata after destroy = %+v", m)
		}
		// Settings, then the whole path goes.
		if err := kv.PutMetadata(ctx, "bank/santander/main", bao.KVMetadataPutInput{MaxVersions: 3, CASRequired: true,
			CustomMetadata: map[string]any{"team": "payroll"}}); err != nil {
			t.Fatalf("put metadata: %v", err)
		}
		if _, err := kv.Put(ctx, "bank/santander/main", map[string]any{"password": "v3-no-cas-77"}); respCode(err) != 400 {
			t.Errorf("write without cas when required: %v", err)
		}
		// custom_metadata is null when there is none, set or cleared, as
		// in Vault.
		metaOf := func() string {
			t.Helper()
			r := n.do("GET", "/v1/secret/metadata/bank/santander/main", owner, nil)
			var m struct {
				Data struct {
					Custom json.RawMessage `json:"custom_metadata"`
				}
			}
			r.json(t, &m)
			return string(m.Data.Custom)
		}
		if got := metaOf(); got != `{"team":"payroll"}` {
			t.Errorf("custom_metadata = %s", got)
		}
		if r := n.do("POST", "/v1/secret/metadata/bank/santander/main", owner, map[string]any{"max_versions": 3, "cas_required": true,
			"custom_metadata": map[string]string{}}); r.status != 204 {
			t.Fatalf("clear custom_metadata: %d %s", r.status, r.body)
		}
		if got := metaOf(); got != "null" {
			t.Errorf("cleared custom_metadata = %s, want null", got)
		}
		if err := kv.DeleteMetadata(ctx, "bank/santander/main"); err != nil {
			t.Fatalf("delete metadata: %v", err)
		}
		if _, err := kv.GetMetadata(ctx, "bank/santander/main"); !errors.Is(err, bao.ErrSecretNotFound) && respCode(err) != 404 {
			t.Errorf("metadata after delete: %v", err)
		}

		// Discovery and health.
		mounts, err := robot.Sys().ListMounts()
		if err != nil || mounts["secret/"] == nil || mounts["secret/"].Type != "kv" || mounts["secret/"].Options["version"] != "2" {
			t.Errorf("mounts: %+v %v", mounts, err)
		}
		h, err := anon.Sys().Health()
		if err != nil || !h.Initialized || h.Sealed {
			t.Errorf("health: %+v %v", h, err)
		}
		// An operator token has no secret mount.
		if _, err := n.baoClient(n.token).KVv2("secret").GetMetadata(ctx, "payroll/a3"); respCode(err) != 403 {
			t.Errorf("operator on /v1: %v", err)
		}
		// A bad token is refused as Vault refuses it.
		if _, err := n.baoClient("cust_rbt_nonsense").KVv2("secret").GetMetadata(ctx, "payroll/a3"); respCode(err) != 403 {
			t.Errorf("bad token: %v", err)
		}
		// An AppRole token lives an hour.
		n.clock.Add(time.Hour)
		if _, err := robot.KVv2("secret").Get(ctx, "payroll/a3"); respCode(err) != 403 {
			t.Errorf("expired approle token: %v", err)
		}
	})
}

// Sealed, the Vault health endpoint answers 503 as Vault does.
func TestVaultHealthSealed(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	if r := n.do("GET", "/v1/sys/health", "", nil); r.status != http.StatusNotImplemented {
		t.Errorf("uninitialized: %d %s", r.status, r.body)
	}
	n.initAndUnseal()
	n.do("POST", "/api/v1/sys/seal", n.token, nil)
	if r := n.do("GET", "/v1/sys/health", "", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("sealed: %d %s", r.status, r.body)
	}
	if r := n.do("GET", "/v1/sys/health?sealedcode=200", "", nil); r.status != http.StatusOK {
		t.Errorf("sealedcode=200: %d", r.status)
	}
	if r := n.do("GET", "/v1/nothing/here", "", nil); r.status != 404 || !strings.Contains(string(r.body), "no handler for /v1/nothing/here") {
		t.Errorf("unknown /v1 path: %d %s", r.status, r.body)
	}
}

// AppRole logins that fail are limited per source address (successful ones
// cost nothing): after identity.AppRoleFailuresPerMinute refusals the
// address gets 429 until its bucket refills.
func TestAppRoleFailuresAreLimited(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		body := map[string]any{"role_id": "rbt_x", "secret_id": "cust_rbt_not-a-real-secret-id"}
		for i := range identity.AppRoleFailuresPerMinute {
			if r := n.do("POST", "/v1/auth/approle/login", "", body); r.status != 400 {
				t.Fatalf("refusal %d: %d %s", i+1, r.status, r.body)
			}
		}
		if r := n.do("POST", "/v1/auth/approle/login", "", body); r.status != 429 {
			t.Fatalf("after %d refusals: %d %s", identity.AppRoleFailuresPerMinute, r.status, r.body)
		}
	})
}

// kvSetup makes tenant acme with its owner's token, writes bank/main
// twice through /v1, and returns the owner's token and client and the
// token of a robot that may fetch every credential of the tenant.
func (n *node) kvSetup() (owner string, people *bao.Client, robotToken string) {
	n.t.Helper()
	n.initAndUnseal()
	n.createTenant("acme")
	owner = n.pat(n.owner("acme"))
	people = n.baoClient(owner)
	for _, pw := range []string{bankSecret, bankSecret + "-2"} {
		if _, err := people.KVv2("secret").Put(n.t.Context(), "bank/main", map[string]any{"password": pw}); err != nil {
			n.t.Fatalf("put: %v", err)
		}
	}
	robotID, robotToken := n.soloRobot(owner, "payroll-bot")
	n.grantFetch(owner, robotID)
	return owner, people, robotToken
}

// vaultErrors decodes a /v1 error body, failing on any other shape.
func vaultErrors(t *testing.T, r resp) []string {
	t.Helper()
	var e struct{ Errors []string }
	if err := json.Unmarshal(r.body, &e); err != nil || e.Errors == nil {
		t.Fatalf("status %d body %q is not Vault's error shape", r.status, r.body)
	}
	return e.Errors
}

// sys/leases answers as Vault does: renewing a lease the caller does not
// hold is 400 "lease not found"; revoking one that does not exist
// succeeds, and so does revoking another holder's or another tenant's,
// which stays live: the answer never says whether a lease exists. Both
// take POST as well as PUT, as every Vault write does.
func TestVaultLeasesUnknownAndOthers(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner, _, robotToken := n.kvSetup()
		ctx := t.Context()
		robot := n.baoClient(robotToken)
		got, err := robot.KVv2("secret").Get(ctx, "bank/main")
		if err != nil || got.Raw.LeaseID == "" {
			t.Fatalf("robot read: %+v %v", got, err)
		}
		lease := got.Raw.LeaseID

		// Renewing what is not the caller's live lease.
		if _, err := robot.Sys().Renew("lse_never", 60); respCode(err) != 400 || !strings.Contains(err.Error(), "lease not found") {
			t.Errorf("renew an unknown lease: %v", err)
		}
		r := n.do("PUT", "/v1/sys/leases/renew", robotToken, map[string]any{"lease_id": "lse_never"})
		if msgs := vaultErrors(t, r); r.status != 400 || len(msgs) != 1 || msgs[0] != "lease not found" {
			t.Errorf("renew an unknown lease, raw: %d %s", r.status, r.body)
		}
		for _, method := range []string{"PUT", "POST"} {
			for _, path := range []string{"/v1/sys/leases/renew", "/v1/sys/leases/revoke"} {
				r := n.do(method, path, robotToken, map[string]any{"increment": 60})
				if msgs := vaultErrors(t, r); r.status != 400 || len(msgs) != 1 || msgs[0] != "lease_id must be specified" {
					t.Errorf("%s %s without lease_id: %d %s", method, path, r.status, r.body)
				}
			}
		}

		// Another robot of the tenant, and a robot of another tenant,
		// neither of which holds the lease nor may manage grants.
		_, otherToken := n.soloRobot(owner, "other-bot")
		n.createTenant("beta")
		beta := n.pat(n.owner("beta"))
		r = n.do("POST", "/api/v1/tenants/beta/robots", beta, map[string]string{"name": "beta-bot"})
		var br struct{ Token string }
		r.json(t, &br)
		if r.status != 201 || br.Token == "" {
			t.Fatalf("beta robot: %d %s", r.status, r.body)
		}
		for who, tok := range map[string]string{"another holder": otherToken, "another tenant": br.Token} {
			if _, err := n.baoClient(tok).Sys().Renew(lease, 60); respCode(err) != 400 || !strings.Contains(err.Error(), "lease not found") {
				t.Errorf("renew by %s: %v", who, err)
			}
			if err := n.baoClient(tok).Sys().Revoke(lease); err != nil {
				t.Errorf("revoke by %s: %v, want the answer for any lease", who, err)
			}
			if err := n.baoClient(tok).Sys().Revoke("lse_never"); err != nil {
				t.Errorf("revoke of no lease by %s: %v", who, err)
			}
		}
		if r := n.do("GET", "/api/v1/tenants/acme/leases/"+lease, robotToken, nil); r.status != 200 {
			t.Fatalf("the lease after others revoked it: %d %s, want still live", r.status, r.body)
		}
		if slices.Contains(n.auditActions(n.tenantID("acme")), "lease.revoke:ok") {
			t.Errorf("a refused revoke was audited as done")
		}

		// The holder renews and revokes with POST too.
		r = n.do("POST", "/v1/sys/leases/renew", robotToken, map[string]any{"lease_id": lease, "increment": "10m"})
		var ren struct {
			LeaseID       string `json:"lease_id"`
			LeaseDuration int    `json:"lease_duration"`
		}
		r.json(t, &ren)
		if r.status != 200 || ren.LeaseID != lease || ren.LeaseDuration != 600 {
			t.Errorf("POST renew: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/v1/sys/leases/revoke", robotToken, map[string]any{"lease_id": lease}); r.status != 204 {
			t.Errorf("POST revoke: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/api/v1/tenants/acme/leases/"+lease, robotToken, nil); r.status != 404 {
			t.Errorf("the lease after its holder revoked it: %d %s", r.status, r.body)
		}
		// Revoked, it is not found to renew; revoking it again succeeds.
		if _, err := robot.Sys().Renew(lease, 60); respCode(err) != 400 || !strings.Contains(err.Error(), "lease not found") {
			t.Errorf("renew a revoked lease: %v", err)
		}
		if err := robot.Sys().Revoke(lease); err != nil {
			t.Errorf("revoke twice: %v", err)
		}
	})
}

// leaseReply is a renewal's answer.
type leaseReply struct {
	LeaseID       string   `json:"lease_id"`
	Renewable     bool     `json:"renewable"`
	LeaseDuration int      `json:"lease_duration"`
	Warnings      []string `json:"warnings"`
}

// Vault's other spellings of renewal and revocation, which stock tools
// send, answer as the body forms do: sys/leases/renew/:lease_id and
// sys/leases/revoke/:lease_id, and the deprecated sys/renew[/:lease_id]
// and sys/revoke[/:lease_id], each with PUT or POST. Renewing what is not
// the caller's live lease is 400 "lease not found"; revoking succeeds
// whoever asks, and only the holder's revocation ends the lease. A lease
// named both in the path and in the body must be the same one.
func TestVaultLeasePathSpellings(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner, _, robotToken := n.kvSetup()
		ctx := t.Context()
		robot := n.baoClient(robotToken)
		_, otherToken := n.soloRobot(owner, "other-bot")
		read := func() string {
			t.Helper()
			got, err := robot.KVv2("secret").Get(ctx, "bank/main")
			if err != nil || got.Raw.LeaseID == "" {
				t.Fatalf("robot read: %+v %v", got, err)
			}
			return got.Raw.LeaseID
		}
		live := func(lease string) bool {
			t.Helper()
			return n.do("GET", "/api/v1/tenants/acme/leases/"+lease, robotToken, nil).status == 200
		}
		notFound := func(r resp) bool {
			msgs := vaultErrors(t, r)
			return r.status == 400 && len(msgs) == 1 && msgs[0] == "lease not found"
		}

		// Each spelling: the path and body that name lease id.
		renews := map[string]func(id string) (string, any){
			"sys/leases/renew/:lease_id": func(id string) (string, any) {
				return "/v1/sys/leases/renew/" + id, map[string]any{"increment": 600}
			},
			"sys/renew/:lease_id": func(id string) (string, any) { return "/v1/sys/renew/" + id, map[string]any{"increment": "10m"} },
			"sys/renew": func(id string) (string, any) {
				return "/v1/sys/renew", map[string]any{"lease_id": id, "increment": 600}
			},
		}
		for name, spell := range renews {
			for _, method := range []string{"PUT", "POST"} {
				lease := read()
				path, body := spell(lease)
				if r := n.do(method, path, otherToken, body); !notFound(r) {
					t.Errorf("%s %s by another holder: %d %s", method, name, r.status, r.body)
				}
				r := n.do(method, path, robotToken, body)
				var ren leaseReply
				r.json(t, &ren)
				if r.status != 200 || ren.LeaseID != lease || !ren.Renewable || ren.LeaseDuration != 600 {
					t.Errorf("%s %s: %d %s, want the lease renewed for 600s", method, name, r.status, r.body)
				}
				path, body = spell("lse_never")
				if r := n.do(method, path, robotToken, body); !notFound(r) {
					t.Errorf("%s %s of no lease: %d %s", method, name, r.status, r.body)
				}
			}
		}

		revokes := map[string]func(id string) (string, any){
			"sys/leases/revoke/:lease_id": func(id string) (string, any) { return "/v1/sys/leases/revoke/" + id, nil },
			"sys/revoke/:lease_id":        func(id string) (string, any) { return "/v1/sys/revoke/" + id, nil },
			"sys/revoke":                  func(id string) (string, any) { return "/v1/sys/revoke", map[string]any{"lease_id": id} },
		}
		for name, spell := range revokes {
			for _, method := range []string{"PUT", "POST"} {
				lease := read()
				path, body := spell(lease)
				if r := n.do(method, path, otherToken, body); r.status != 204 || !live(lease) {
					t.Errorf("%s %s by another holder: %d %s, want 204 and the lease still live", method, name, r.status, r.body)
				}
				if r := n.do(method, path, robotToken, body); r.status != 204 || live(lease) {
					t.Errorf("%s %s: %d %s, want 204 and the lease ended", method, name, r.status, r.body)
				}
				if r := n.do(method, path, robotToken, body); r.status != 204 {
					t.Errorf("%s %s again: %d %s", method, name, r.status, r.body)
				}
				path, body = spell("lse_never")
				if r := n.do(method, path, robotToken, body); r.status != 204 {
					t.Errorf("%s %s of no lease: %d %s", method, name, r.status, r.body)
				}
			}
		}

		// Named in the path and the body: the same lease is that lease;
		// two leases are refused, and nothing changes.
		lease, other := read(), read()
		for _, prefix := range []string{"/v1/sys/leases/renew/", "/v1/sys/renew/", "/v1/sys/leases/revoke/", "/v1/sys/revoke/"} {
			for _, method := range []string{"PUT", "POST"} {
				r := n.do(method, prefix+lease, robotToken, map[string]any{"lease_id": other})
				if r.status != 400 || r.header.Get("X-Custodia-Error") != "lease_id_mismatch" || len(vaultErrors(t, r)) != 1 {
					t.Errorf("%s %s with another lease_id in the body: %d %s", method, prefix, r.status, r.body)
				}
			}
		}
		if !live(lease) || !live(other) {
			t.Fatalf("a refused call changed a lease")
		}
		r := n.do("PUT", "/v1/sys/leases/renew/"+lease, robotToken, map[string]any{"lease_id": lease, "increment": 900})
		var ren leaseReply
		r.json(t, &ren)
		if r.status != 200 || ren.LeaseID != lease || ren.LeaseDuration != 900 {
			t.Errorf("renew naming the lease in both: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/v1/sys/revoke/"+other, robotToken, map[string]any{"lease_id": other}); r.status != 204 || live(other) {
			t.Errorf("revoke naming the lease in both: %d %s", r.status, r.body)
		}

		// Named nowhere.
		for _, path := range []string{"/v1/sys/renew", "/v1/sys/revoke", "/v1/sys/leases/renew/", "/v1/sys/revoke/"} {
			r := n.do("PUT", path, robotToken, map[string]any{"increment": 60})
			if msgs := vaultErrors(t, r); r.status != 400 || len(msgs) != 1 || msgs[0] != "lease_id must be specified" {
				t.Errorf("PUT %s without a lease: %d %s", path, r.status, r.body)
			}
		}
	})
}

// sys/leases/lookup (the stock client's Sys().Lookup) describes the
// caller's own live lease in Vault's shape; any other lease (unknown,
// another holder's, expired, revoked) is 400 "invalid lease", as Vault
// answers for a lease it does not hold.
func TestVaultLeaseLookup(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner, people, robotToken := n.kvSetup()
		ctx := t.Context()
		robot := n.baoClient(robotToken)
		got, err := robot.KVv2("secret").Get(ctx, "bank/main")
		if err != nil || got.Raw.LeaseID == "" {
			t.Fatalf("robot read: %+v %v", got, err)
		}
		lease, issued := got.Raw.LeaseID, n.clock.Now()
		n.clock.Add(time.Minute)

		sec, err := robot.Sys().Lookup(lease)
		if err != nil || sec == nil {
			t.Fatalf("lookup: %+v %v", sec, err)
		}
		want := map[string]string{"id": lease, "issue_time": issued.UTC().Format(time.RFC3339Nano),
			"expire_time": issued.Add(5 * time.Minute).UTC().Format(time.RFC3339Nano), "last_renewal": "<nil>", "renewable": "true", "ttl": "240"}
		if len(sec.Data) != len(want) {
			t.Errorf("lookup data %v, want the keys of %v", sec.Data, want)
		}
		for k, v := range want {
			if got := fmt.Sprint(sec.Data[k]); got != v {
				t.Errorf("lookup %s = %s, want %s", k, got, v)
			}
		}

		// POST too; after a renewal the expiry and ttl are the new ones,
		// and last_renewal is when it was.
		if _, err := robot.Sys().Renew(lease, 600); err != nil {
			t.Fatal(err)
		}
		r := n.do("POST", "/v1/sys/leases/lookup", robotToken, map[string]any{"lease_id": lease})
		var lk struct {
			Data struct {
				ID          string  `json:"id"`
				ExpireTime  string  `json:"expire_time"`
				LastRenewal *string `json:"last_renewal"`
				TTL         int     `json:"ttl"`
			} `json:"data"`
		}
		r.json(t, &lk)
		now := n.clock.Now().UTC()
		if r.status != 200 || lk.Data.ID != lease || lk.Data.TTL != 600 || lk.Data.ExpireTime != now.Add(10*time.Minute).Format(time.RFC3339Nano) ||
			lk.Data.LastRenewal == nil || *lk.Data.LastRenewal != now.Format(time.RFC3339Nano) {
			t.Errorf("POST lookup after a renewal: %d %s", r.status, r.body)
		}

		invalid := func(what string, c interface {
			Lookup(string) (*bao.Secret, error)
		}, id string) {
			t.Helper()
			if _, err := c.Lookup(id); respCode(err) != 400 || !strings.Contains(err.Error(), "invalid lease") {
				t.Errorf("lookup of %s: %v, want 400 invalid lease", what, err)
			}
		}
		_, otherToken := n.soloRobot(owner, "other-bot")
		invalid("no lease", robot.Sys(), "lse_never")
		invalid("another holder's lease", n.baoClient(otherToken).Sys(), lease)
		invalid("a robot's lease, by a person", people.Sys(), lease)
		r = n.do("PUT", "/v1/sys/leases/lookup", robotToken, map[string]any{"lease_id": "lse_never"})
		if msgs := vaultErrors(t, r); r.status != 400 || len(msgs) != 1 || msgs[0] != "invalid lease" {
			t.Errorf("lookup of no lease, raw: %d %s", r.status, r.body)
		}
		r = n.do("PUT", "/v1/sys/leases/lookup", robotToken, nil)
		if msgs := vaultErrors(t, r); r.status != 400 || len(msgs) != 1 || msgs[0] != "lease_id must be specified" {
			t.Errorf("lookup without lease_id: %d %s", r.status, r.body)
		}

		n.clock.Add(10 * time.Minute)
		invalid("an expired lease", robot.Sys(), lease)
		got, err = robot.KVv2("secret").Get(ctx, "bank/main")
		if err != nil {
			t.Fatal(err)
		}
		if err := robot.Sys().Revoke(got.Raw.LeaseID); err != nil {
			t.Fatal(err)
		}
		invalid("a revoked lease", robot.Sys(), got.Raw.LeaseID)
	})
}

// A renewal that names no increment ({}, 0, "0" or "0s", as the stock
// client's Renew(id, 0) and its lifetime watcher send) extends the lease
// by the lifetime it was first granted, as Vault renews by a lease's own
// TTL: a lease fetched for 30 minutes is renewed for 30 minutes, again
// after a renewal with an increment, never reset to the 5-minute
// default; an hour-long one for an hour, no more.
func TestVaultRenewWithoutIncrement(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		_, _, robotToken := n.kvSetup()
		ctx := t.Context()
		robot := n.baoClient(robotToken)
		fetch := func(ttl string) string {
			t.Helper()
			r := n.do("POST", "/api/v1/tenants/acme/credentials/bank%2Fmain/fetch", robotToken, map[string]string{"purpose": "payroll run", "ttl": ttl})
			var s struct {
				LeaseID string `json:"lease_id"`
			}
			r.json(t, &s)
			if r.status != 200 || s.LeaseID == "" {
				t.Fatalf("fetch for %s: %d %s", ttl, r.status, r.body)
			}
			return s.LeaseID
		}
		expiry := func(lease string) time.Time {
			t.Helper()
			r := n.do("GET", "/api/v1/tenants/acme/leases/"+lease, robotToken, nil)
			var s struct {
				ExpiresAt time.Time `json:"lease_expires_at"`
			}
			r.json(t, &s)
			if r.status != 200 {
				t.Fatalf("lease %s: %d %s", lease, r.status, r.body)
			}
			return s.ExpiresAt
		}

		lease := fetch("30m")
		n.clock.Add(20 * time.Minute)
		ren, err := robot.Sys().Renew(lease, 0)
		if err != nil || ren.LeaseID != lease || ren.LeaseDuration != 1800 || len(ren.Warnings) != 0 {
			t.Errorf("Renew(lease, 0) of a 30-minute lease: %+v %v, want 1800s", ren, err)
		}
		if got, want := expiry(lease), n.clock.Now().Add(30*time.Minute); !got.Equal(want) {
			t.Errorf("after Renew(lease, 0) the lease expires at %s, want %s", got, want)
		}
		if ren, err := robot.Sys().Renew(lease, 600); err != nil || ren.LeaseDuration != 600 {
			t.Errorf("Renew(lease, 600): %+v %v", ren, err)
		}
		n.clock.Add(5 * time.Minute)
		for _, body := range []map[string]any{{"lease_id": lease}, {"lease_id": lease, "increment": 0}, {"lease_id": lease, "increment": "0"},
			{"lease_id": lease, "increment": "0s"}, {"lease_id": lease, "increment": nil}} {
			r := n.do("PUT", "/v1/sys/leases/renew", robotToken, body)
			var ren leaseReply
			r.json(t, &ren)
			if r.status != 200 || ren.LeaseID != lease || ren.LeaseDuration != 1800 {
				t.Errorf("renew %v after a renewal for 10 minutes: %d %s, want 1800s", body, r.status, r.body)
			}
		}
		r := n.do("POST", "/v1/sys/leases/renew/"+lease, robotToken, nil)
		var pr leaseReply
		r.json(t, &pr)
		if r.status != 200 || pr.LeaseDuration != 1800 {
			t.Errorf("renew in the path with no body: %d %s, want 1800s", r.status, r.body)
		}

		// An hour-long lease renews for an hour, the cap, without a
		// warning: none was asked for.
		long := fetch("1h")
		n.clock.Add(59 * time.Minute)
		if ren, err := robot.Sys().Renew(long, 0); err != nil || ren.LeaseDuration != 3600 || len(ren.Warnings) != 0 {
			t.Errorf("Renew(lease, 0) of an hour-long lease: %+v %v, want 3600s", ren, err)
		}
		if got, want := expiry(long), n.clock.Now().Add(time.Hour); !got.Equal(want) {
			t.Errorf("the hour-long lease expires at %s, want %s", got, want)
		}

		// A KV read's lease is granted for the default, and renews so.
		got, err := robot.KVv2("secret").Get(ctx, "bank/main")
		if err != nil {
			t.Fatal(err)
		}
		if ren, err := robot.Sys().Renew(got.Raw.LeaseID, 3000); err != nil || ren.LeaseDuration != 3000 {
			t.Errorf("Renew(read's lease, 3000): %+v %v", ren, err)
		}
		if ren, err := robot.Sys().Renew(got.Raw.LeaseID, 0); err != nil || ren.LeaseDuration != 300 {
			t.Errorf("Renew(read's lease, 0): %+v %v, want 300s", ren, err)
		}
	})
}

// A read of a deleted or destroyed version answers as Vault's KV v2 does:
// 404 with null data and the version's metadata, which the official
// client returns as a secret with no data and the deletion time (or
// destroyed), not as ErrSecretNotFound. A version that never was, and a
// caller who may not read the credential, still get a bare 404.
func TestVaultDeletedVersionRead(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner, people, robotToken := n.kvSetup()
		ctx := t.Context()
		kv, robot := people.KVv2("secret"), n.baoClient(robotToken).KVv2("secret")
		if err := people.KVv2("secret").PutMetadata(ctx, "bank/main", bao.KVMetadataPutInput{MaxVersions: 10,
			CustomMetadata: map[string]any{"team": "payroll"}}); err != nil {
			t.Fatal(err)
		}
		n.clock.Add(time.Minute)
		if err := kv.Delete(ctx, "bank/main"); err != nil {
			t.Fatal(err)
		}
		deletedAt := n.clock.Now()
		g, err := robot.Get(ctx, "bank/main")
		if err != nil {
			t.Fatalf("read of a deleted version: %v, want its metadata", err)
		}
		if g.Data != nil || g.VersionMetadata == nil || g.VersionMetadata.Version != 2 || !g.VersionMetadata.DeletionTime.Equal(deletedAt) ||
			g.VersionMetadata.Destroyed || g.CustomMetadata["team"] != "payroll" {
			t.Errorf("deleted version = %+v %+v", g.Data, g.VersionMetadata)
		}
		r := n.do("GET", "/v1/secret/data/bank/main", robotToken, nil)
		var body struct {
			Data struct {
				Data     json.RawMessage
				Metadata map[string]any
			}
		}
		r.json(t, &body)
		if r.status != 404 || string(body.Data.Data) != "null" || body.Data.Metadata["deletion_time"] != "2026-11-21T09:01:00Z" ||
			body.Data.Metadata["destroyed"] != false || r.header.Get("X-Custodia-Error") != "version_deleted" ||
			r.header.Get("Cache-Control") != "no-store" || strings.Contains(string(r.body), bankSecret) {
			t.Errorf("raw read of a deleted version: %d %v %s", r.status, r.header, r.body)
		}
		// No lease was taken and no fetch audited for it.
		if got := n.auditDetails(n.tenantID("acme"), "credential.fetch"); len(got) != 0 {
			t.Errorf("fetches audited: %v", got)
		}

		if err := kv.Destroy(ctx, "bank/main", []int{1}); err != nil {
			t.Fatal(err)
		}
		g, err = robot.GetVersion(ctx, "bank/main", 1)
		if err != nil || g.Data != nil || g.VersionMetadata == nil || !g.VersionMetadata.Destroyed || g.VersionMetadata.Version != 1 ||
			!g.VersionMetadata.DeletionTime.IsZero() {
			t.Errorf("read of a destroyed version: %+v %v", g, err)
		}
		if _, err := robot.GetVersion(ctx, "bank/main", 9); !errors.Is(err, bao.ErrSecretNotFound) {
			t.Errorf("read of a version that never was: %v", err)
		}
		// A robot without a grant is not told the secret exists, deleted
		// or not; a person still may not read it back.
		_, other := n.soloRobot(owner, "other-bot")
		r = n.do("GET", "/v1/secret/data/bank/main", other, nil)
		if r.status != 404 || len(vaultErrors(t, r)) != 0 {
			t.Errorf("deleted version read by a robot without a grant: %d %s", r.status, r.body)
		}
		if _, err := kv.Get(ctx, "bank/main"); respCode(err) != 403 {
			t.Errorf("deleted version read by the owner: %v", err)
		}
		// Undeleted, it reads again.
		if err := kv.Undelete(ctx, "bank/main", []int{2}); err != nil {
			t.Fatal(err)
		}
		if g, err := robot.Get(ctx, "bank/main"); err != nil || g.Data["password"] != bankSecret+"-2" {
			t.Errorf("after undelete: %+v %v", g, err)
		}
	})
}

// created_time is the same string in a write's answer, the version's
// reads and the metadata: times are stored to the microsecond, and shown
// so everywhere.
func TestVaultTimesAgree(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner, _, robotToken := n.kvSetup()
		n.clock.Add(123456789 * time.Nanosecond)
		r := n.do("PUT", "/v1/secret/data/bank/main", owner, map[string]any{"data": map[string]string{"password": "third-one-55-xx"}})
		var w struct {
			Data struct {
				CreatedTime string `json:"created_time"`
				Version     int
			}
		}
		r.json(t, &w)
		if r.status != 200 || w.Data.Version != 3 || w.Data.CreatedTime != "2026-11-21T09:00:00.123456Z" {
			t.Errorf("write: %d %s", r.status, r.body)
		}
		var read struct {
			Data struct {
				Metadata struct {
					CreatedTime string `json:"created_time"`
				}
			}
		}
		n.do("GET", "/v1/secret/data/bank/main", robotToken, nil).json(t, &read)
		var meta struct {
			Data struct {
				UpdatedTime string `json:"updated_time"`
				Versions    map[string]struct {
					CreatedTime string `json:"created_time"`
				}
			}
		}
		n.do("GET", "/v1/secret/metadata/bank/main", owner, nil).json(t, &meta)
		if read.Data.Metadata.CreatedTime != w.Data.CreatedTime || meta.Data.Versions["3"].CreatedTime != w.Data.CreatedTime ||
			meta.Data.UpdatedTime != w.Data.CreatedTime {
			t.Errorf("created_time: write %q, read %q, metadata %q (updated %q)", w.Data.CreatedTime, read.Data.Metadata.CreatedTime,
				meta.Data.Versions["3"].CreatedTime, meta.Data.UpdatedTime)
		}
		// The native API too: a write answers with the times a read gives.
		n.clock.Add(987654321 * time.Nanosecond)
		var put, got struct {
			UpdatedAt string `json:"updated_at"`
		}
		r = n.do("POST", "/api/v1/tenants/acme/credentials", owner, map[string]any{"name": "bank/main", "secret": map[string]string{"password": "fourth-one-66-yy"}})
		r.json(t, &put)
		n.do("GET", "/api/v1/tenants/acme/credentials/bank%2Fmain", owner, nil).json(t, &got)
		if put.UpdatedAt == "" || put.UpdatedAt != got.UpdatedAt {
			t.Errorf("native updated_at: write %q, read %q", put.UpdatedAt, got.UpdatedAt)
		}
	})
}

// Settings for a path with no secret yet are refused with a message
// saying to write the data first (Custodia keeps a path's settings with its
// credential); whoever could not write the credential is refused as the
// write would be. Nothing is created.
func TestVaultMetadataBeforeData(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner, people, _ := n.kvSetup()
		ctx := t.Context()
		err := people.KVv2("secret").PutMetadata(ctx, "payroll/new", bao.KVMetadataPutInput{CASRequired: true, MaxVersions: 5})
		if respCode(err) != 400 || !strings.Contains(err.Error(), "write its data first") {
			t.Errorf("metadata of a new path: %v", err)
		}
		r := n.do("POST", "/v1/secret/metadata/payroll/new", owner, map[string]any{"cas_required": true})
		if msgs := vaultErrors(t, r); r.status != 400 || r.header.Get("X-Custodia-Error") != "write_data_first" || len(msgs) != 1 {
			t.Errorf("raw metadata of a new path: %d %s", r.status, r.body)
		}
		_, auditor := n.join("acme", owner, "aud", "auditor")
		if r := n.do("PUT", "/v1/secret/metadata/payroll/new", n.pat(auditor), map[string]any{"cas_required": true}); r.status != 403 {
			t.Errorf("auditor's metadata of a new path: %d %s", r.status, r.body)
		}
		if _, err := people.KVv2("secret").GetMetadata(ctx, "payroll/new"); !errors.Is(err, bao.ErrSecretNotFound) && respCode(err) != 404 {
			t.Errorf("a refused metadata write created the path: %v", err)
		}
		// Written first, its settings take.
		if _, err := people.KVv2("secret").Put(ctx, "payroll/new", map[string]any{"password": "first-one-77-zz"}, bao.WithCheckAndSet(0)); err != nil {
			t.Fatal(err)
		}
		if err := people.KVv2("secret").PutMetadata(ctx, "payroll/new", bao.KVMetadataPutInput{CASRequired: true, MaxVersions: 5}); err != nil {
			t.Errorf("metadata after the first write: %v", err)
		}
	})
}

// Restoring a destroyed version says it was destroyed; a credential that
// requires check-and-set is restored only with cas, the current version.
func TestRestoreDestroyedAndCAS(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner, people, robotToken := n.kvSetup()
		ctx := t.Context()
		kv := people.KVv2("secret")
		restore := "/api/v1/tenants/acme/credentials/" + url.PathEscape("bank/main") + "/restore"
		if err := kv.Destroy(ctx, "bank/main", []int{1}); err != nil {
			t.Fatal(err)
		}
		r := n.do("POST", restore, owner, map[string]any{"version": 1})
		if r.status != 409 || r.errCode(t) != "version_destroyed" || !strings.Contains(string(r.body), "cannot be restored") {
			t.Errorf("restore a destroyed version: %d %s", r.status, r.body)
		}
		if r := n.do("POST", restore, owner, map[string]any{"version": 7}); r.status != 404 || r.errCode(t) != "no_version" {
			t.Errorf("restore a version that never was: %d %s", r.status, r.body)
		}

		if _, err := kv.Put(ctx, "bank/main", map[string]any{"password": "third-one-55-xx"}); err != nil {
			t.Fatal(err)
		}
		if err := kv.PutMetadata(ctx, "bank/main", bao.KVMetadataPutInput{CASRequired: true}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			body map[string]any
			code string
		}{
			{"fail/no cas", map[string]any{"version": 2}, "cas_required"},
			{"fail/stale cas", map[string]any{"version": 2, "cas": 2}, "cas_mismatch"},
			{"fail/destroyed, whatever the cas", map[string]any{"version": 1}, "version_destroyed"},
		} {
			if r := n.do("POST", restore, owner, c.body); r.status != 409 || r.errCode(t) != c.code {
				t.Errorf("%s: %d %s, want 409 %s", c.name, r.status, r.body, c.code)
			}
		}
		if m, _ := kv.GetMetadata(ctx, "bank/main"); m == nil || m.CurrentVersion != 3 {
			t.Fatalf("a refused restore wrote a version: %+v", m)
		}
		r = n.do("POST", restore, owner, map[string]any{"version": 2, "cas": 3})
		var c struct {
			CurrentVersion int `json:"current_version"`
		}
		r.json(t, &c)
		if r.status != 200 || c.CurrentVersion != 4 {
			t.Fatalf("ok/restore with cas: %d %s", r.status, r.body)
		}
		if g, err := n.baoClient(robotToken).KVv2("secret").Get(ctx, "bank/main"); err != nil || g.Data["password"] != bankSecret+"-2" ||
			g.VersionMetadata.Version != 4 {
			t.Errorf("restored version: %+v %v", g, err)
		}
	})
}

// A token scoped to credentials.write alone (a web tier's) writes through
// /v1 with the stock client, and reaches nothing else there: no read back,
// no metadata, no leases, no health of the tenant's credentials.
func TestWriteScopedTokenWritesThroughV1(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner, _, _ := n.kvSetup()
		r := n.do("POST", "/api/v1/me/tokens", owner, map[string]any{"name": "web tier", "scopes": []string{"credentials.write"}})
		var wt struct{ Token string }
		if r.status != 201 {
			t.Fatalf("scoped token: %d %s", r.status, r.body)
		}
		r.json(t, &wt)
		web := n.baoClient(wt.Token)
		kv := web.KVv2("secret")
		if _, err := kv.Put(t.Context(), "tax/aeat", map[string]any{"password": bankSecret + "-web"}); err != nil {
			t.Fatalf("write-scoped token puts through /v1: %v", err)
		}
		if _, err := kv.Put(t.Context(), "tax/aeat", map[string]any{"password": bankSecret + "-web2"}, bao.WithCheckAndSet(1)); err != nil {
			t.Errorf("write-scoped token puts with cas: %v", err)
		}
		// Mount discovery, as Vault's own CLI does before a kv put.
		if r := n.do("GET", "/v1/sys/internal/ui/mounts/secret/tax/aeat", wt.Token, nil); r.status != 200 {
			t.Errorf("mount discovery: %d %s", r.status, r.body)
		}
		if _, err := kv.Get(t.Context(), "tax/aeat"); respCode(err) != http.StatusForbidden {
			t.Errorf("write-scoped token reads back: %v, want 403", err)
		}
		for _, path := range []string{"/v1/secret/metadata/tax/aeat", "/api/v1/tenants/acme/credentials-health", "/api/v1/tenants/acme/leases"} {
			if r := n.do("GET", path, wt.Token, nil); r.status != 403 {
				t.Errorf("write-scoped token GET %s: %d %s, want 403", path, r.status, r.body)
			}
		}
	})
}
