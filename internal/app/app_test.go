package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/app"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/postgres"
	"github.com/custodia-project/custodia/internal/store/postgres/pgtest"
	"github.com/custodia-project/custodia/internal/store/sqlite"
)

// clock is a movable clock shared by the node and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type node struct {
	t     testing.TB
	app   *app.App
	srv   *httptest.Server
	clock *clock
	token string
}

type engine struct {
	name string
	open func(t testing.TB) store.Store
}

func engines() []engine {
	return []engine{
		{"sqlite", func(t testing.TB) store.Store {
			s, err := sqlite.Open(context.Background(), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"postgres", func(t testing.TB) store.Store {
			s, err := postgres.Open(context.Background(), pgtest.URL(t), postgres.Options{MaxConns: 8})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
}

// forEngine runs fn against a fresh node on every storage engine.
func forEngine(t *testing.T, fn func(t *testing.T, n *node)) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			fn(t, newNode(t, e.open(t)))
		})
	}
}

// newNode starts a node on s; tune, when given, changes its options.
func newNode(t testing.TB, s store.Store, tune ...func(*app.Options)) *node {
	t.Helper()
	t.Cleanup(func() { s.Close() }) // after the node's own cleanup
	return startNode(t, s, &clock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}, tune...)
}

// startNode starts a node on s with clock c, leaving s open.
func startNode(t testing.TB, s store.Store, c *clock, tune ...func(*app.Options)) *node {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	o := app.Options{Store: s, Log: log, Now: c.Now, Version: "test", Server: app.DefaultServerOptions()}
	for _, f := range tune {
		f(&o)
	}
	a, err := app.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return &node{t: t, app: a, srv: srv, clock: c}
}

// newNodeSharing starts another node on n's store and clock (a second
// node of the installation, or n restarted) and unseals it with shares.
func newNodeSharing(t testing.TB, n *node, shares []string) *node {
	return newNodeOn(t, n, n.app.Store, shares)
}

// newNodeOn starts another node of n's installation on s (n's database,
// opened again, or n's store itself), with n's clock, and unseals it with
// shares. It leaves s open.
func newNodeOn(t testing.TB, n *node, s store.Store, shares []string) *node {
	t.Helper()
	n2 := startNode(t, s, n.clock)
	n2.token = n.token
	for _, sh := range shares[:2] {
		if r := n2.do("POST", "/api/v1/sys/unseal", "", map[string]string{"share": sh}); r.status != 200 {
			t.Fatalf("unseal the second node: %d %s", r.status, r.body)
		}
	}
	return n2
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errCode returns the error code of an error response, failing the test if
// the body is not the one error shape.
func (r resp) errCode(t testing.TB) string {
	t.Helper()
	var eb struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	if err := dec.Decode(&eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("status %d body %q is not the error shape", r.status, r.body)
	}
	return eb.Error.Code
}

func (n *node) do(method, path, token string, body any) resp {
	n.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, n.srv.URL+path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := n.srv.Client().Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

// initAndUnseal initializes with 3 shares (threshold 2) and unseals.
func (n *node) initAndUnseal() []string {
	n.t.Helper()
	r := n.do("POST", "/api/v1/sys/init", "", map[string]int{"shares": 3, "threshold": 2})
	if r.status != 200 {
		n.t.Fatalf("init: %d %s", r.status, r.body)
	}
	var ir struct {
		Shares        []string `json:"shares"`
		OperatorToken string   `json:"operator_token"`
	}
	r.json(n.t, &ir)
	n.token = ir.OperatorToken
	for _, s := range ir.Shares[:2] {
		if r := n.do("POST", "/api/v1/sys/unseal", "", map[string]string{"share": s}); r.status != 200 {
			n.t.Fatalf("unseal: %d %s", r.status, r.body)
		}
	}
	return ir.Shares
}

func (n *node) createTenant(slug string) string {
	n.t.Helper()
	r := n.do("POST", "/api/v1/tenants", n.token, map[string]string{"slug": slug, "name": "Tenant " + slug})
	if r.status != 201 {
		n.t.Fatalf("create tenant: %d %s", r.status, r.body)
	}
	var tv struct{ ID string }
	r.json(n.t, &tv)
	return tv.ID
}

// auditActions lists a log's actions: the operator log over the API, a
// tenant's log from the store (operators may not read tenant entries, and a
// shredded tenant has no members left to read them).
// auditDetails returns the details of a tenant log's entries of action.
func (n *node) auditDetails(log, action string) []map[string]any {
	n.t.Helper()
	var out []map[string]any
	err := n.app.Store.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.ListAudit(context.Background(), store.AuditFilter{LogID: log, AfterSeq: -1, Action: action, Limit: 1000})
		for _, e := range evs {
			var d map[string]any
			if err := json.Unmarshal(e.Details, &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return err
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

func (n *node) auditActions(log string) []string {
	n.t.Helper()
	var out []string
	if log != store.OperatorLog {
		err := n.app.Store.View(context.Background(), func(tx store.Tx) error {
			evs, err := tx.ListAudit(context.Background(), store.AuditFilter{LogID: log, AfterSeq: -1, Limit: 1000})
			for _, e := range evs {
				out = append(out, e.Action+":"+e.Result)
			}
			return err
		})
		if err != nil {
			n.t.Fatal(err)
		}
		return out
	}
	r := n.do("GET", "/api/v1/audit/operator/events?limit=1000", n.token, nil)
	if r.status != 200 {
		n.t.Fatalf("audit: %d %s", r.status, r.body)
	}
	var al struct {
		Events []struct{ Action, Result string } `json:"events"`
	}
	r.json(n.t, &al)
	for _, e := range al.Events {
		out = append(out, e.Action+":"+e.Result)
	}
	return out
}

// concrete fills path wildcards with harmless values.
func concrete(pattern string) string {
	return strings.NewReplacer("{tenant}", "tnt_nosuchtenant000000", "{id}", "nosuch").Replace(pattern)
}

func TestSealedRefusesDataRoutes(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		if r := n.do("GET", "/healthz", "", nil); r.status != 200 {
			t.Fatalf("healthz while sealed: %d", r.status)
		}
		if r := n.do("GET", "/readyz", "", nil); r.status != 503 {
			t.Fatalf("readyz while uninitialized: %d", r.status)
		}
		check := func(when string) {
			for _, rt := range n.app.Routes {
				if !rt.Unsealed {
					continue
				}
				r := n.do(rt.Method, concrete(rt.Pattern), n.token, "{}")
				code := r.header.Get("X-Custodia-Error") // Vault's dialect has no code in its body
				if !rt.Vault {
					code = r.errCode(t)
				}
				if r.status != 503 || code != "sealed" || r.header.Get("Retry-After") == "" {
					t.Errorf("%s: %s %s = %d %s, want 503 sealed", when, rt.Method, rt.Pattern, r.status, r.body)
				}
			}
		}
		check("before init")
		n.initAndUnseal()
		n.createTenant("acme")
		if r := n.do("POST", "/api/v1/sys/seal", n.token, nil); r.status != 200 {
			t.Fatalf("seal: %d %s", r.status, r.body)
		}
		check("after seal")
		if r := n.do("GET", "/readyz", "", nil); r.status != 503 {
			t.Fatalf("readyz while sealed: %d", r.status)
		}
	})
}

func TestUnsealWrongShare(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		r := n.do("POST", "/api/v1/sys/init", "", map[string]int{"shares": 5, "threshold": 3})
		var ir struct{ Shares []string }
		r.json(t, &ir)
		if r := n.do("POST", "/api/v1/sys/init", "", map[string]int{"shares": 5, "threshold": 3}); r.status != 409 || r.errCode(t) != "already_initialized" {
			t.Fatalf("second init: %d %s", r.status, r.body)
		}
		n.do("POST", "/api/v1/sys/unseal", "", map[string]string{"share": ir.Shares[0]})
		// Flip one character of a real share.
		bad := []byte(ir.Shares[1])
		bad[3] ^= 0x01
		for _, share := range []string{string(bad), "garbage", ir.Shares[0]} {
			r := n.do("POST", "/api/v1/sys/unseal", "", map[string]string{"share": share})
			if r.status != 400 || r.errCode(t) != "bad_share" {
				t.Fatalf("bad share %q: %d %s", share, r.status, r.body)
			}
		}
		var st struct {
			Sealed   bool
			Progress int
		}
		n.do("GET", "/api/v1/sys/seal-status", "", nil).json(t, &st)
		if !st.Sealed || st.Progress != 1 {
			t.Fatalf("after bad shares: %+v, want sealed with progress 1", st)
		}
		for _, s := range ir.Shares[3:] {
			n.do("POST", "/api/v1/sys/unseal", "", map[string]string{"share": s})
		}
		n.do("GET", "/api/v1/sys/seal-status", "", nil).json(t, &st)
		if st.Sealed {
			t.Fatal("still sealed after three good shares")
		}
	})
}

func TestTokens(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		for name, tok := range map[string]string{"fail/no token": "", "fail/unknown token": "cust_op_nope", "fail/not a custodia token": "abc"} {
			t.Run(name, func(t *testing.T) {
				r := n.do("GET", "/api/v1/tenants", tok, nil)
				if r.status != 401 || r.errCode(t) != "unauthenticated" || r.header.Get("WWW-Authenticate") == "" {
					t.Fatalf("%d %s", r.status, r.body)
				}
			})
		}
		// Invariant 4: a token is refused at the instant it expires.
		r := n.do("POST", "/api/v1/sys/tokens", n.token, map[string]string{"name": "short", "ttl": "1h"})
		var ct struct {
			Token string
			Info  struct{ ID string }
		}
		r.json(t, &ct)
		if r := n.do("GET", "/api/v1/tenants", ct.Token, nil); r.status != 200 {
			t.Fatalf("fresh token: %d", r.status)
		}
		n.clock.Add(time.Hour - time.Microsecond)
		if r := n.do("GET", "/api/v1/tenants", ct.Token, nil); r.status != 200 {
			t.Fatalf("token just before expiry: %d", r.status)
		}
		n.clock.Add(time.Microsecond)
		if r := n.do("GET", "/api/v1/tenants", ct.Token, nil); r.status != 401 {
			t.Fatalf("token at expiry: %d, want 401", r.status)
		}
		// Invariant 5 (operators): a revoked token stops at once.
		r = n.do("POST", "/api/v1/sys/tokens", n.token, map[string]string{"name": "revoke me"})
		r.json(t, &ct)
		if r := n.do("DELETE", "/api/v1/sys/tokens/"+ct.Info.ID, n.token, nil); r.status != 204 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/api/v1/tenants", ct.Token, nil); r.status != 401 {
			t.Fatalf("revoked token: %d, want 401", r.status)
		}
		// Public routes ignore a bad token: a stale one must not block unsealing.
		if r := n.do("GET", "/api/v1/sys/seal-status", "cust_op_stale", nil); r.status != 200 {
			t.Fatalf("seal status with a stale token: %d", r.status)
		}
		if r := n.do("GET", "/metrics", "", nil); r.status != 401 {
			t.Fatalf("metrics without token: %d", r.status)
		}
		if r := n.do("GET", "/metrics", n.token, nil); r.status != 200 || !bytes.Contains(r.body, []byte("custodia_http_requests_total")) {
			t.Fatalf("metrics: %d", r.status)
		}
	})
}

// Invariant 7: hostile input gets a 4xx with the error shape and changes
// nothing.
func TestHostileRequests(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		before := n.auditActions(store.OperatorLog)
		huge := `{"slug":"big","name":"` + strings.Repeat("a", 2<<20) + `"}`
		cases := map[string]struct {
			body   string
			ctype  string
			status int
		}{
			"fail/unknown field":  {`{"slug":"x1","name":"n","admin":true}`, "application/json", 400},
			"fail/trailing data":  {`{"slug":"x2","name":"n"} {"slug":"x3"}`, "application/json", 400},
			"fail/trailing junk":  {`{"slug":"x2","name":"n"}]`, "application/json", 400},
			"fail/wrong type":     {`{"slug":7,"name":"n"}`, "application/json", 400},
			"fail/truncated":      {`{"slug":"x4","na`, "application/json", 400},
			"fail/empty":          {``, "application/json", 400},
			"fail/array":          {`[1,2]`, "application/json", 400},
			"fail/not json":       {`slug=x5`, "application/x-www-form-urlencoded", 400},
			"fail/oversized":      {huge, "application/json", 413},
			"fail/bad slug":       {`{"slug":"Bad Slug!","name":"n"}`, "application/json", 400},
			"fail/control chars":  {`{"slug":"x6","name":"a\u0000b"}`, "application/json", 400},
			"fail/duplicate slug": {`{"slug":"acme","name":"again"}`, "application/json", 409},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				req, _ := http.NewRequest("POST", n.srv.URL+"/api/v1/tenants", strings.NewReader(c.body))
				req.Header.Set("Content-Type", c.ctype)
				req.Header.Set("Authorization", "Bearer "+n.token)
				res, err := n.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				r := resp{res.StatusCode, res.Header, b}
				if r.status != c.status {
					t.Fatalf("status %d, want %d: %s", r.status, c.status, b)
				}
				r.errCode(t)
				if bytes.Contains(b, []byte("sql")) || bytes.Contains(b, []byte("SQL")) {
					t.Fatalf("error leaks internals: %s", b)
				}
			})
		}
		var tl struct{ Tenants []any }
		n.do("GET", "/api/v1/tenants", n.token, nil).json(t, &tl)
		if len(tl.Tenants) != 1 {
			t.Fatalf("%d tenants after hostile requests, want 1", len(tl.Tenants))
		}
		if after := n.auditActions(store.OperatorLog); len(after) != len(before) {
			t.Fatalf("audit grew from %d to %d entries on refused requests: %v", len(before), len(after), after[len(before):])
		}
		for _, p := range []string{"/nope", "/api/v1/tenants/x/y/z"} {
			if r := n.do("GET", p, "", nil); r.status != 404 || r.errCode(t) != "not_found" {
				t.Fatalf("GET %s = %d %s", p, r.status, r.body)
			}
		}
		if r := n.do("PUT", "/healthz", "", nil); r.status != 405 || r.errCode(t) != "method_not_allowed" || r.header.Get("Allow") != "GET" {
			t.Fatalf("PUT /healthz = %d %s", r.status, r.body)
		}
	})
}

func TestSecurityHeaders(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	for _, p := range []string{"/healthz", "/nope", "/api/v1/tenants"} {
		r := n.do("GET", p, "", nil)
		for h, want := range map[string]string{
			"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
			"X-Content-Type-Options":    "nosniff",
			"X-Frame-Options":           "DENY",
			"Referrer-Policy":           "no-referrer",
		} {
			if got := r.header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", p, h, got, want)
			}
		}
		if r.header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no request ID", p)
		}
	}
}

// Every state change appends its audit event in the same transaction; a
// refused change appends nothing.
func TestAuditTrail(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		id := n.createTenant("acme")
		n.do("POST", "/api/v1/tenants/acme/suspend", n.token, map[string]string{"reason": "non-payment"})
		n.do("POST", "/api/v1/tenants/acme/resume", n.token, nil)
		r := n.do("POST", "/api/v1/tenants/acme/keys/rotate", n.token, nil)
		if r.status != 202 {
			t.Fatalf("rotate: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/shred", n.token, map[string]string{"confirm": "wrong"}); r.status != 400 {
			t.Fatalf("shred with wrong confirmation: %d", r.status)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/shred", n.token, map[string]string{"confirm": "acme"}); r.status != 200 {
			t.Fatalf("shred: %d %s", r.status, r.body)
		}
		want := []string{
			"operator_token.create:ok", "sys.init:ok", "sys.unseal:ok", "tenant.create:ok", "tenant.suspend:ok",
			"tenant.resume:ok", "tenant.key.rotate:ok", "tenant.shred:ok",
		}
		if got := n.auditActions(store.OperatorLog); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("operator log:\n got %v\nwant %v", got, want)
		}
		got := strings.Join(n.auditActions(id), " ")
		for _, a := range []string{"tenant.create:ok", "tenant.suspend:ok", "tenant.key.rotate:ok", "tenant.shred:ok"} {
			if !strings.Contains(got, a) {
				t.Errorf("tenant log lacks %s: %s", a, got)
			}
		}
		if r := n.do("GET", "/api/v1/tenants/acme/public-key", n.token, nil); r.status != 409 {
			t.Fatalf("public key of a shredded tenant: %d", r.status)
		}
	})
}

func TestRotateRewrapProgress(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		id := n.createTenant("acme")
		ctx := context.Background()
		const records = 450
		err := n.app.Store.Update(ctx, func(tx store.Tx) error {
			for i := range records {
				rid := fmt.Sprint(i)
				v, ct, err := n.app.Keyring.Seal(ctx, tx, id, "test", rid, []byte("secret "+rid))
				if err != nil {
					return err
				}
				if err := tx.PutRecord(ctx, &store.Record{TenantID: id, Kind: "test", ID: rid, KeyVersion: v, Ciphertext: ct}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var rr struct {
			Version int
			Job     struct {
				ID    string
				Total int64
			}
		}
		n.do("POST", "/api/v1/tenants/"+id+"/keys/rotate", n.token, nil).json(t, &rr)
		if rr.Version != 2 || rr.Job.Total != records {
			t.Fatalf("rotate: %+v", rr)
		}
		var job struct {
			State string
			Done  int64
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			n.do("GET", "/api/v1/jobs/"+rr.Job.ID, n.token, nil).json(t, &job)
			if job.State != "running" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if job.State != "done" || job.Done != records {
			t.Fatalf("job: %+v", job)
		}
		var kl struct {
			Keys []struct {
				Version int
				State   string
				Records int64
			}
		}
		n.do("GET", "/api/v1/tenants/"+id+"/keys", n.token, nil).json(t, &kl)
		if len(kl.Keys) != 2 || kl.Keys[0].Records != 0 || kl.Keys[1].Records != records || kl.Keys[1].State != "active" {
			t.Fatalf("keys after rewrap: %+v", kl)
		}
	})
}

func TestRotateRootOverAPI(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		old := n.initAndUnseal()
		id := n.createTenant("acme")
		var rr struct {
			Generation int
			Shares     []string
		}
		r := n.do("POST", "/api/v1/sys/rotate-root", n.token, map[string]int{"shares": 4, "threshold": 3})
		if r.status != 200 {
			t.Fatalf("rotate-root: %d %s", r.status, r.body)
		}
		r.json(t, &rr)
		if rr.Generation != 2 || len(rr.Shares) != 4 {
			t.Fatalf("rotate-root: %+v", rr)
		}
		n.do("POST", "/api/v1/sys/seal", n.token, nil)
		if r := n.do("POST", "/api/v1/sys/unseal", "", map[string]string{"share": old[0]}); r.status != 400 {
			t.Fatalf("old share after rotation: %d", r.status)
		}
		for _, s := range rr.Shares[:3] {
			n.do("POST", "/api/v1/sys/unseal", "", map[string]string{"share": s})
		}
		if r := n.do("GET", "/api/v1/tenants/"+id+"/public-key", n.token, nil); r.status != 200 {
			t.Fatalf("tenant keys after root rotation: %d %s", r.status, r.body)
		}
	})
}

// Invariant 1 at the foundation: routes that address a tenant resolve it
// from the path only, and an unknown tenant is a 404, never another's data.
func TestUnknownTenant(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	n.initAndUnseal()
	n.createTenant("acme")
	for _, rt := range n.app.Routes {
		if rt.TenantParam == "" || rt.Method != "GET" || !n.operatorMay(rt) {
			continue
		}
		r := n.do("GET", concrete(rt.Pattern), n.token, nil)
		if r.status != 404 || r.errCode(t) != "tenant_not_found" {
			t.Errorf("%s with an unknown tenant = %d %s", rt.Pattern, r.status, r.body)
		}
	}
}
