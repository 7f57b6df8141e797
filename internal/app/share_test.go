package app_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/share"
	"github.com/custodia-project/custodia/internal/sharelinks"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/sqlite"
)

const shareSecret = "Zq8-share-secret-4410\nuser: ana"

// sent is a share made by a client: the link (key included) and what the
// client sent the server.
type sent struct {
	link     *share.Link
	prepared *share.Prepared
	expires  time.Time
}

// shareOpts tune a share made by makeShare.
type shareOpts struct {
	pass      string
	views     int
	expiresIn string
	label     string
}

// makeShare encrypts secret as a client does and stores it as tok.
func (n *node) makeShare(tok, secret string, o shareOpts) sent {
	n.t.Helper()
	p, err := share.Prepare([]byte(secret), o.pass, share.MinIterations)
	if err != nil {
		n.t.Fatal(err)
	}
	r := n.do("POST", "/api/v1/tenants/acme/shares", tok, map[string]any{"ciphertext": p.Envelope, "verifier": p.Verifier,
		"kdf": p.KDF, "max_views": o.views, "expires_in": o.expiresIn, "label": o.label})
	if r.status != 201 {
		n.t.Fatalf("create share: %d %s", r.status, r.body)
	}
	var info struct {
		ID        string
		ExpiresAt time.Time `json:"expires_at"`
	}
	r.json(n.t, &info)
	return sent{link: &share.Link{Base: n.srv.URL, ID: info.ID, Key: p.LinkKey}, prepared: p, expires: info.ExpiresAt}
}

// openShare opens a link as the browser page does: peek for the KDF,
// derive, send the auth key, decrypt. It returns the open response and the
// plaintext (when it opened).
func (n *node) openShare(l *share.Link, pass string) (resp, string) {
	n.t.Helper()
	r := n.do("GET", "/api/v1/shares/"+l.ID, "", nil)
	if r.status != 200 {
		return r, ""
	}
	var pub struct {
		KDF *share.KDF `json:"kdf"`
	}
	r.json(n.t, &pub)
	k, err := share.Derive(l.Key, pass, pub.KDF)
	if errors.Is(err, share.ErrPassphrase) {
		k, _ = share.Derive(l.Key, "", nil) // a missing passphrase: a wrong key
	} else if err != nil {
		n.t.Fatal(err)
	}
	r = n.do("POST", "/api/v1/shares/"+l.ID+"/open", "", map[string]any{"auth": k.Auth()})
	if r.status != 200 {
		return r, ""
	}
	var o struct {
		Ciphertext []byte `json:"ciphertext"`
	}
	r.json(n.t, &o)
	pt, err := k.Open(o.Ciphertext)
	if err != nil {
		n.t.Fatalf("the envelope the server gave back does not open: %v", err)
	}
	return r, string(pt)
}

// shareSetup makes a tenant with an owner and returns the owner's token.
func shareSetup(n *node) string {
	n.initAndUnseal()
	n.createTenant("acme")
	return n.pat(n.owner("acme"))
}

// auditDump is every entry of a tenant's log as one string.
func (n *node) auditDump(tenantID string) string {
	n.t.Helper()
	var b strings.Builder
	err := n.app.Store.View(n.t.Context(), func(tx store.Tx) error {
		evs, err := tx.ListAudit(n.t.Context(), store.AuditFilter{LogID: tenantID, AfterSeq: -1, Limit: 10000})
		for _, e := range evs {
			// Details as the JSON it is, not base64.
			j, _ := json.Marshal(struct {
				store.AuditEvent
				Details json.RawMessage
			}{e, e.Details})
			b.Write(j)
			b.WriteByte('\n')
		}
		return err
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return b.String()
}

// A link opens once and never again; its envelope, not its plaintext, is
// what the server hands out; the log has create, open and burn, never the
// content or a key.
func TestShareOpensOnceAndNeverAgain(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner := shareSetup(n)
		s := n.makeShare(owner, shareSecret, shareOpts{label: "wifi for Ana"})
		if !s.expires.Equal(n.clock.Now().Add(24 * time.Hour)) {
			t.Errorf("default expiry %s, want 24h from now", s.expires)
		}
		if strings.Contains(s.link.String(), n.srv.URL+"/s/shr_") == false {
			t.Errorf("link = %s", s.link)
		}
		var pub struct {
			PassphraseRequired bool `json:"passphrase_required"`
			ViewsLeft          int  `json:"views_left"`
			KDF                any  `json:"kdf"`
		}
		// Peeking spends nothing, however often.
		for range 3 {
			n.do("GET", "/api/v1/shares/"+s.link.ID, "", nil).json(t, &pub)
		}
		if pub.PassphraseRequired || pub.ViewsLeft != 1 || pub.KDF != nil {
			t.Errorf("peek = %+v", pub)
		}
		r, got := n.openShare(s.link, "")
		if r.status != 200 || got != shareSecret {
			t.Fatalf("open: %d %s -> %q", r.status, r.body, got)
		}
		if strings.Contains(string(r.body), "Zq8-share") || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("open answered the plaintext or may be cached: %s %q", r.body, r.header.Get("Cache-Control"))
		}
		gone := func(what string, r resp) {
			t.Helper()
			if r.status != 404 || r.errCode(t) != "share_gone" {
				t.Errorf("%s: %d %s, want 404 share_gone", what, r.status, r.body)
			}
		}
		r, _ = n.openShare(s.link, "")
		gone("second open", r)
		k, _ := share.Derive(s.link.Key, "", nil)
		gone("second open, straight", n.do("POST", "/api/v1/shares/"+s.link.ID+"/open", "", map[string]any{"auth": k.Auth()}))
		gone("unknown share", n.do("GET", "/api/v1/shares/shr_aaaaaaaaaaaaaaaaaaaa", "", nil))
		gone("not an ID", n.do("POST", "/api/v1/shares/x/open", "", map[string]any{"auth": k.Auth()}))
		var sl struct{ Shares []any }
		n.do("GET", "/api/v1/tenants/acme/shares", owner, nil).json(t, &sl)
		if len(sl.Shares) != 0 {
			t.Errorf("burned share still listed: %+v", sl.Shares)
		}
		tid := n.tenantID("acme")
		err := n.app.Store.View(t.Context(), func(tx store.Tx) error {
			if _, err := tx.GetRecord(t.Context(), tid, store.RecordShare, s.link.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the envelope outlived the last view: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got = strings.Join(n.auditActions(tid), " ")
		if !strings.Contains(got, "share.create:ok share.open:ok share.burn:ok") {
			t.Errorf("tenant log: %s", got)
		}
		dump := n.auditDump(tid)
		if !strings.Contains(dump, `"reason":"read"`) || !strings.Contains(dump, "wifi for Ana") {
			t.Errorf("burn reason or label missing from the log:\n%s", dump)
		}
		for what, v := range map[string]string{
			"plaintext": "Zq8-share", "link key": base64.RawURLEncoding.EncodeToString(s.link.Key),
			"link key (std)": base64.StdEncoding.EncodeToString(s.link.Key), "auth key": base64.StdEncoding.EncodeToString(k.Auth()),
			"verifier": base64.StdEncoding.EncodeToString(s.prepared.Verifier), "envelope": base64.StdEncoding.EncodeToString(s.prepared.Envelope)[:40],
		} {
			if strings.Contains(dump, v) {
				t.Errorf("the audit log holds the %s", what)
			}
		}
	})
}

// A link for several views opens that many times, each spending one.
func TestShareSeveralViews(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	owner := shareSetup(n)
	s := n.makeShare(owner, shareSecret, shareOpts{views: 3})
	for want := 2; want >= 0; want-- {
		r, got := n.openShare(s.link, "")
		var o struct {
			ViewsLeft int `json:"views_left"`
		}
		r.json(t, &o)
		if r.status != 200 || got != shareSecret || o.ViewsLeft != want {
			t.Fatalf("open with %d left: %d %s", want+1, r.status, r.body)
		}
	}
	if r, _ := n.openShare(s.link, ""); r.status != 404 {
		t.Fatalf("fourth open of a three-view link: %d", r.status)
	}
}

// A wrong passphrase is refused and counted; it burns the link only at the
// fifth wrong attempt, so a passphrase cannot be guessed online.
func TestShareWrongPassphraseBurnsAfterFive(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner := shareSetup(n)
		const pass = "contraseña de Ana"
		s := n.makeShare(owner, shareSecret, shareOpts{pass: pass, views: 2})
		var pub struct {
			PassphraseRequired bool `json:"passphrase_required"`
			KDF                struct {
				Salt       []byte
				Iterations int
			}
		}
		n.do("GET", "/api/v1/shares/"+s.link.ID, "", nil).json(t, &pub)
		if !pub.PassphraseRequired || len(pub.KDF.Salt) != share.SaltSize || pub.KDF.Iterations != share.MinIterations {
			t.Fatalf("peek = %+v", pub)
		}
		wrong := func(attempt int, pass string) {
			t.Helper()
			r, _ := n.openShare(s.link, pass)
			if r.status != 403 || r.errCode(t) != "share_wrong_key" {
				t.Fatalf("wrong attempt %d: %d %s", attempt, r.status, r.body)
			}
		}
		// A malformed auth key is refused without counting.
		if r := n.do("POST", "/api/v1/shares/"+s.link.ID+"/open", "", map[string]any{"auth": []byte("short")}); r.status != 400 {
			t.Fatalf("short auth: %d %s", r.status, r.body)
		}
		wrong(1, "")
		for i := 2; i <= 4; i++ {
			wrong(i, pass+"!")
		}
		// Four wrong attempts: the right passphrase still opens it.
		if r, got := n.openShare(s.link, pass); r.status != 200 || got != shareSecret {
			t.Fatalf("right passphrase after four wrong ones: %d %s", r.status, r.body)
		}
		// The fifth wrong attempt (counted since creation) burns it.
		r, _ := n.openShare(s.link, "Contraseña de Ana")
		if r.status != 403 || !strings.Contains(string(r.body), "burned") {
			t.Fatalf("fifth wrong attempt: %d %s", r.status, r.body)
		}
		if r, _ := n.openShare(s.link, pass); r.status != 404 || r.errCode(t) != "share_gone" {
			t.Fatalf("right passphrase after the burn: %d %s", r.status, r.body)
		}
		dump := n.auditDump(n.tenantID("acme"))
		if strings.Count(dump, `"Action":"share.open","Target":"`+s.link.ID+`","Result":"failed"`) != 5 ||
			!strings.Contains(dump, `"reason":"too_many_attempts"`) {
			t.Errorf("log of the attempts:\n%s", dump)
		}
		if strings.Contains(dump, "contraseña") || strings.Contains(dump, "Contraseña") {
			t.Error("the log holds the passphrase")
		}
	})
}

// Wrong keys sent at the same moment are each counted: the link burns at
// the fifth however many openers race, and none of them is told to try
// again uncounted (each such answer was a free guess).
func TestShareWrongKeysUnderRaceAllCount(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner := shareSetup(n)
		s := n.makeShare(owner, shareSecret, shareOpts{pass: "contraseña de Ana", views: 2})
		const racers = 64
		var wg sync.WaitGroup
		var mu sync.Mutex
		answers := map[string]int{}
		burned := 0
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				auth := make([]byte, share.KeySize)
				auth[0], auth[1] = byte(i), 0xa5 // wrong, and different for each
				<-start
				r := n.do("POST", "/api/v1/shares/"+s.link.ID+"/open", "", map[string]any{"auth": auth})
				var eb struct{ Error struct{ Code string } }
				_ = json.Unmarshal(r.body, &eb) // t.Fatal is for the test's goroutine
				a := fmt.Sprintf("%d %s", r.status, eb.Error.Code)
				mu.Lock()
				defer mu.Unlock()
				answers[a]++
				if strings.Contains(string(r.body), "burned") {
					burned++
				}
			})
		}
		close(start)
		wg.Wait()
		want := map[string]int{"403 share_wrong_key": sharelinks.MaxFailedAttempts, "404 share_gone": racers - sharelinks.MaxFailedAttempts}
		if !maps.Equal(answers, want) || burned != 1 {
			t.Errorf("answers to %d racing wrong keys: %v (%d told the link burned), want %v and one burn", racers, answers, burned, want)
		}
		if r, _ := n.openShare(s.link, "contraseña de Ana"); r.status != 404 || r.errCode(t) != "share_gone" {
			t.Errorf("the right passphrase after the race: %d %s", r.status, r.body)
		}
		dump := n.auditDump(n.tenantID("acme"))
		if got := strings.Count(dump, `"Action":"share.open","Target":"`+s.link.ID+`","Result":"failed"`); got != sharelinks.MaxFailedAttempts ||
			strings.Count(dump, `"reason":"too_many_attempts"`) != 1 {
			t.Errorf("the log counts %d failed opens, want %d, and one burn:\n%s", got, sharelinks.MaxFailedAttempts, dump)
		}
	})
}

// Invariant 4: a share link is refused at the instant it expires, before
// any sweep; the sweep then burns it and says so.
func TestInvariantShareExpiryIsInstant(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner := shareSetup(n)
		s := n.makeShare(owner, shareSecret, shareOpts{expiresIn: "1h", views: 2})
		n.clock.Add(time.Hour - time.Microsecond)
		if r := n.do("GET", "/api/v1/shares/"+s.link.ID, "", nil); r.status != 200 {
			t.Fatalf("a microsecond before expiry: %d", r.status)
		}
		if r, got := n.openShare(s.link, ""); r.status != 200 || got != shareSecret {
			t.Fatalf("open a microsecond before expiry: %d", r.status)
		}
		n.clock.Add(time.Microsecond)
		k, _ := share.Derive(s.link.Key, "", nil)
		for what, r := range map[string]resp{
			"peek": n.do("GET", "/api/v1/shares/"+s.link.ID, "", nil),
			"open": n.do("POST", "/api/v1/shares/"+s.link.ID+"/open", "", map[string]any{"auth": k.Auth()}),
		} {
			if r.status != 404 || r.errCode(t) != "share_gone" {
				t.Errorf("%s at expiry: %d %s", what, r.status, r.body)
			}
		}
		var sl struct{ Shares []any }
		n.do("GET", "/api/v1/tenants/acme/shares", owner, nil).json(t, &sl)
		if len(sl.Shares) != 0 {
			t.Errorf("an expired share is listed as live: %+v", sl.Shares)
		}
		if err := n.app.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		tid := n.tenantID("acme")
		err := n.app.Store.View(t.Context(), func(tx store.Tx) error {
			if _, err := tx.GetShare(t.Context(), s.link.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("share after the sweep: %v", err)
			}
			if _, err := tx.GetRecord(t.Context(), tid, store.RecordShare, s.link.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("envelope after the sweep: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if dump := n.auditDump(tid); !strings.Contains(dump, `"reason":"expired"`) || !strings.Contains(dump, `"ActorType":"system"`) {
			t.Errorf("no expired burn by the system in the log:\n%s", dump)
		}
	})
}

// Bad requests are refused with the error shape and store nothing.
func TestShareLimits(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	owner := shareSetup(n)
	_, aud := n.join("acme", owner, "aud", "auditor")
	p, _ := share.Prepare([]byte("x"), "pw", share.MinIterations)
	body := func(change func(m map[string]any)) map[string]any {
		m := map[string]any{"ciphertext": p.Envelope, "verifier": p.Verifier, "kdf": p.KDF}
		change(m)
		return m
	}
	badEnvelope := append([]byte{2}, p.Envelope[1:]...)
	for name, c := range map[string]struct {
		body   any
		status int
		code   string
	}{
		"fail/8 days":           {body(func(m map[string]any) { m["expires_in"] = "192h" }), 400, "invalid_expires_in"},
		"fail/7 days and 1s":    {body(func(m map[string]any) { m["expires_in"] = "168h0m1s" }), 400, "invalid_expires_in"},
		"fail/not a duration":   {body(func(m map[string]any) { m["expires_in"] = "tomorrow" }), 400, "invalid_expires_in"},
		"fail/11 views":         {body(func(m map[string]any) { m["max_views"] = 11 }), 400, "invalid_max_views"},
		"fail/negative views":   {body(func(m map[string]any) { m["max_views"] = -1 }), 400, "invalid_max_views"},
		"fail/envelope v2":      {body(func(m map[string]any) { m["ciphertext"] = badEnvelope }), 400, "invalid_ciphertext"},
		"fail/no ciphertext":    {body(func(m map[string]any) { delete(m, "ciphertext") }), 400, "invalid_ciphertext"},
		"fail/short verifier":   {body(func(m map[string]any) { m["verifier"] = p.Verifier[:31] }), 400, "invalid_verifier"},
		"fail/weak kdf":         {body(func(m map[string]any) { m["kdf"] = share.KDF{Salt: p.KDF.Salt, Iterations: 1000} }), 400, "invalid_kdf"},
		"fail/short salt":       {body(func(m map[string]any) { m["kdf"] = share.KDF{Salt: p.KDF.Salt[:8], Iterations: 600000} }), 400, "invalid_kdf"},
		"fail/label newline":    {body(func(m map[string]any) { m["label"] = "a\nb" }), 400, "invalid_label"},
		"fail/the key itself":   {body(func(m map[string]any) { m["key"] = p.LinkKey }), 400, "malformed_json"},
		"fail/oversized":        {body(func(m map[string]any) { m["ciphertext"] = make([]byte, 200<<10) }), 413, "body_too_large"},
		"fail/not base64":       {`{"ciphertext":"!!!","verifier":"AA=="}`, 400, "malformed_json"},
		"fail/ciphertext array": {`{"ciphertext":[1,2,3]}`, 400, "invalid_ciphertext"},
	} {
		t.Run(name, func(t *testing.T) {
			r := n.do("POST", "/api/v1/tenants/acme/shares", owner, c.body)
			if r.status != c.status || r.errCode(t) != c.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, c.status, c.code)
			}
		})
	}
	// Seven days exactly is allowed.
	s := n.makeShare(owner, "x", shareOpts{expiresIn: "168h", views: 10})
	if !s.expires.Equal(n.clock.Now().Add(7 * 24 * time.Hour)) {
		t.Errorf("expires_at = %s", s.expires)
	}
	var sl struct {
		Shares []struct {
			ID       string
			MaxViews int `json:"max_views"`
		}
	}
	n.do("GET", "/api/v1/tenants/acme/shares", owner, nil).json(t, &sl)
	if len(sl.Shares) != 1 || sl.Shares[0].MaxViews != 10 {
		t.Errorf("after refused requests, shares = %+v", sl.Shares)
	}
	if r := n.do("POST", "/api/v1/tenants/acme/shares", n.pat(aud), body(func(map[string]any) {})); r.status != 403 {
		t.Errorf("an auditor creates a share: %d", r.status)
	}
	// The public open route takes a small body only.
	if r := n.do("POST", "/api/v1/shares/"+s.link.ID+"/open", "", `{"auth":"`+strings.Repeat("A", 4000)+`"}`); r.status != 413 {
		t.Errorf("large open body: %d %s", r.status, r.body)
	}
	if r := n.do("POST", "/api/v1/shares/"+s.link.ID+"/open", "", `{"auth":"AA==","extra":1}`); r.status != 400 {
		t.Errorf("unknown field in open: %d", r.status)
	}
}

// Members see and burn their own links; admins see and burn everyone's.
func TestShareListAndBurn(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner := shareSetup(n)
		_, mel := n.join("acme", owner, "mel", "member")
		_, max := n.join("acme", owner, "max", "member")
		mel, max = n.pat(mel), n.pat(max)
		a := n.makeShare(mel, "mel's secret", shareOpts{label: "for the accountant"})
		b := n.makeShare(max, "max's secret", shareOpts{})
		ids := func(tok string) []string {
			var sl struct{ Shares []struct{ ID, Label string } }
			r := n.do("GET", "/api/v1/tenants/acme/shares", tok, nil)
			r.json(t, &sl)
			if strings.Contains(string(r.body), "secret\"") || strings.Contains(string(r.body), "verifier") {
				t.Errorf("list carries more than metadata: %s", r.body)
			}
			var out []string
			for _, s := range sl.Shares {
				out = append(out, s.ID)
			}
			return out
		}
		if got := ids(mel); len(got) != 1 || got[0] != a.link.ID {
			t.Errorf("mel sees %v", got)
		}
		if got := ids(owner); len(got) != 2 {
			t.Errorf("the owner sees %v", got)
		}
		if r := n.do("DELETE", "/api/v1/tenants/acme/shares/"+b.link.ID, mel, nil); r.status != 404 {
			t.Errorf("mel burns max's link: %d", r.status)
		}
		if r := n.do("DELETE", "/api/v1/tenants/acme/shares/"+a.link.ID, mel, nil); r.status != 204 {
			t.Errorf("mel burns her link: %d %s", r.status, r.body)
		}
		if r := n.do("DELETE", "/api/v1/tenants/acme/shares/"+b.link.ID, owner, nil); r.status != 204 {
			t.Errorf("the owner burns max's link: %d %s", r.status, r.body)
		}
		for _, s := range []sent{a, b} {
			if r, _ := n.openShare(s.link, ""); r.status != 404 {
				t.Errorf("a burned link opens: %d", r.status)
			}
		}
		if dump := n.auditDump(n.tenantID("acme")); strings.Count(dump, `"reason":"revoked"`) != 2 {
			t.Errorf("revocations in the log:\n%s", dump)
		}
	})
}

// A suspended tenant's links do not open until it resumes; a shredded
// tenant's never again.
func TestShareFollowsTenantState(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	owner := shareSetup(n)
	s := n.makeShare(owner, shareSecret, shareOpts{views: 2})
	n.do("POST", "/api/v1/tenants/acme/suspend", n.token, map[string]string{"reason": "test"})
	if r, _ := n.openShare(s.link, ""); r.status != 404 {
		t.Errorf("open while suspended: %d", r.status)
	}
	n.do("POST", "/api/v1/tenants/acme/resume", n.token, nil)
	if r, got := n.openShare(s.link, ""); r.status != 200 || got != shareSecret {
		t.Errorf("open after resuming: %d", r.status)
	}
	if r := n.do("POST", "/api/v1/tenants/acme/shred", n.token, map[string]string{"confirm": "acme"}); r.status != 200 {
		t.Fatalf("shred: %d", r.status)
	}
	if r, _ := n.openShare(s.link, ""); r.status != 404 {
		t.Errorf("open after the shred: %d", r.status)
	}
}

// Openers racing for the one view: exactly one gets it.
func TestShareOneViewUnderRace(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		owner := shareSetup(n)
		s := n.makeShare(owner, shareSecret, shareOpts{})
		k, _ := share.Derive(s.link.Key, "", nil)
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		for range 8 {
			wg.Go(func() {
				r := n.do("POST", "/api/v1/shares/"+s.link.ID+"/open", "", map[string]any{"auth": k.Auth()})
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		// Openers take turns on the link's row: the rest find it gone,
		// none is told to try again.
		if statuses[200] != 1 || statuses[404] != 7 {
			t.Errorf("statuses of 8 racing opens: %v, want exactly one 200 and seven 404", statuses)
		}
	})
}

// The browser page: served for any link, self-contained, never cached,
// and its CSP admits only its own script.
func TestSharePage(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	r := n.do("GET", "/s/shr_aaaaaaaaaaaaaaaaaaaa", "", nil)
	_, csp := share.Page()
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "deriveKeys") {
		t.Fatalf("page: %d %s", r.status, r.header.Get("Content-Type"))
	}
	for h, want := range map[string]string{
		"Content-Security-Policy": csp, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if !strings.Contains(csp, "script-src 'sha256-") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP = %s", csp)
	}
}

// Invariant 2 for share links: neither the secret, nor the link key, nor
// the auth key, nor the envelope as the client made it is in the database
// files; the server could not decrypt even with the root key.
func TestShareNotInDatabase(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, st)
	owner := shareSetup(n)
	s := n.makeShare(owner, shareSecret, shareOpts{pass: "a long passphrase", views: 3})
	if r, got := n.openShare(s.link, "a long passphrase"); r.status != 200 || got != shareSecret {
		t.Fatalf("open: %d", r.status)
	}
	k, _ := share.Derive(s.link.Key, "a long passphrase", s.prepared.KDF)
	for _, secret := range []string{
		"Zq8-share-secret", "a long passphrase", string(s.link.Key), base64.RawURLEncoding.EncodeToString(s.link.Key),
		string(k.Auth()), base64.StdEncoding.EncodeToString(k.Auth()), string(s.prepared.Envelope[13:45]),
	} {
		assertNotOnDisk(t, dir, secret)
	}
}
