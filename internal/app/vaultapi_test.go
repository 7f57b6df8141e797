package app_test

import (
	"encoding/json"
	"errors"
	"net/http"
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
		rid, _ := n.robot(owner, "payroll-bot")
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
		if _, err := robot.KVv2("secret").Get(ctx, "bank/santander/main"); !errors.Is(err, bao.ErrSecretNotFound) {
			t.Errorf("read of a deleted version: %v", err)
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
		if _, err := robot.KVv2("secret").GetVersion(ctx, "bank/santander/main", 1); !errors.Is(err, bao.ErrSecretNotFound) {
			t.Errorf("read of a destroyed version: %v", err)
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
