package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/app"
	"github.com/custodia-project/custodia/internal/mfa"
	"github.com/custodia-project/custodia/internal/mfa/mfatest"
	"github.com/custodia-project/custodia/internal/sso/ssotest"
	"github.com/custodia-project/custodia/internal/store"
)

// These tests drive sign-in and access flows end to end over HTTPS, the way
// a browser or the CLI does, on a real node.

type signinResp struct {
	Status     string   `json:"status"`
	Session    string   `json:"session"`
	MFAToken   string   `json:"mfa_token"`
	MFAMethods []string `json:"mfa_methods"`
	MFAEnroll  bool     `json:"mfa_enroll"`
}

func (n *node) signinStep(path string, body map[string]any) (resp, signinResp) {
	n.t.Helper()
	body["want_token"] = true
	r := n.do("POST", path, "", body)
	var sr signinResp
	if r.status == 200 {
		r.json(n.t, &sr)
	}
	return r, sr
}

func (n *node) password(tenant, email, password string) (resp, signinResp) {
	n.t.Helper()
	return n.signinStep("/api/v1/auth/signin", map[string]any{"tenant": tenant, "email": email, "password": password})
}

// enrollTOTP enrolls an authenticator app for the session's member and
// returns its secret and the recovery codes.
func (n *node) enrollTOTP(session string) (secret string, recovery []string) {
	n.t.Helper()
	r := n.do("POST", "/api/v1/me/mfa/totp", session, nil)
	if r.status != 200 {
		n.t.Fatalf("begin totp: %d %s", r.status, r.body)
	}
	var b struct {
		EnrollToken string `json:"enroll_token"`
		Secret      string `json:"secret"`
	}
	r.json(n.t, &b)
	code, err := totp.GenerateCode(b.Secret, n.clock.Now())
	if err != nil {
		n.t.Fatal(err)
	}
	r = n.do("POST", "/api/v1/me/mfa/totp/confirm", session, map[string]string{"enroll_token": b.EnrollToken, "code": code})
	if r.status != 200 {
		n.t.Fatalf("confirm totp: %d %s", r.status, r.body)
	}
	var rc struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.json(n.t, &rc)
	if len(rc.RecoveryCodes) == 0 {
		n.t.Fatalf("no recovery codes: %s", r.body)
	}
	return b.Secret, rc.RecoveryCodes
}

func TestSigninWithTOTPAndRecoveryCodes(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.owner("acme")
		email := "owner@acme.example"
		secret, recovery := n.enrollTOTP(owner)

		r, sr := n.password("acme", email, testPassword)
		if r.status != 200 || sr.Status != "mfa_required" || sr.Session != "" || !slices.Contains(sr.MFAMethods, "totp") ||
			!slices.Contains(sr.MFAMethods, "recovery_code") {
			t.Fatalf("password step with a factor: %d %s", r.status, r.body)
		}
		if c := r.header.Get("Set-Cookie"); c != "" {
			t.Errorf("a session cookie before the second factor: %s", c)
		}
		// A wrong code is refused and the pending sign-in stays usable.
		r, _ = n.signinStep("/api/v1/auth/signin/mfa", map[string]any{"mfa_token": sr.MFAToken, "code": "000000"})
		if r.status != 401 || r.errCode(t) != "invalid_second_factor" {
			t.Errorf("wrong code: %d %s", r.status, r.body)
		}
		n.clock.Add(30 * time.Second) // a fresh time step: codes are single-use
		code, _ := totp.GenerateCode(secret, n.clock.Now())
		r, done := n.signinStep("/api/v1/auth/signin/mfa", map[string]any{"mfa_token": sr.MFAToken, "code": code})
		if r.status != 200 || done.Status != "signed_in" || done.Session == "" {
			t.Fatalf("right code: %d %s", r.status, r.body)
		}
		var me struct{ MFA bool }
		n.do("GET", "/api/v1/me", done.Session, nil).json(t, &me)
		if !me.MFA {
			t.Error("session after TOTP does not record the second factor")
		}
		// The same pending token is spent; the same code cannot be replayed.
		if r, _ := n.signinStep("/api/v1/auth/signin/mfa", map[string]any{"mfa_token": sr.MFAToken, "code": code}); r.status != 401 {
			t.Errorf("spent mfa token: %d %s", r.status, r.body)
		}
		_, sr2 := n.password("acme", email, testPassword)
		if r, _ := n.signinStep("/api/v1/auth/signin/mfa", map[string]any{"mfa_token": sr2.MFAToken, "code": code}); r.status != 401 {
			t.Errorf("replayed TOTP code: %d %s", r.status, r.body)
		}
		// A recovery code works once.
		r, done = n.signinStep("/api/v1/auth/signin/mfa", map[string]any{"mfa_token": sr2.MFAToken, "recovery_code": recovery[0]})
		if r.status != 200 || done.Status != "signed_in" {
			t.Fatalf("recovery code: %d %s", r.status, r.body)
		}
		_, sr3 := n.password("acme", email, testPassword)
		if r, _ := n.signinStep("/api/v1/auth/signin/mfa", map[string]any{"mfa_token": sr3.MFAToken, "recovery_code": recovery[0]}); r.status != 401 {
			t.Errorf("recovery code used twice: %d %s", r.status, r.body)
		}
		got := strings.Join(n.auditActions(n.tenantID("acme")), " ")
		for _, want := range []string{"mfa.totp_enroll:ok", "signin.first_factor:ok", "signin.success:ok", "mfa.recovery_used:ok"} {
			if !strings.Contains(got, want) {
				t.Errorf("audit lacks %s: %s", want, got)
			}
		}
	})
}

func TestRequireMFAGivesEnrollOnlySessions(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	n.initAndUnseal()
	n.createTenant("acme")
	owner := n.owner("acme")
	_, mel := n.join("acme", owner, "mel", "member")
	melToken := n.pat(mel)
	if r := n.do("PUT", "/api/v1/tenants/acme/policy", owner, map[string]any{"require_mfa": true}); r.status != 200 {
		t.Fatalf("policy: %d %s", r.status, r.body)
	}
	r, sr := n.password("acme", "mel@acme.example", testPassword)
	if r.status != 200 || sr.Status != "signed_in" || !sr.MFAEnroll {
		t.Fatalf("sign in without a factor under require_mfa: %d %s", r.status, r.body)
	}
	if r := n.do("GET", "/api/v1/tenants/acme/requests", sr.Session, nil); r.status != 403 || r.errCode(t) != "mfa_enrollment_required" {
		t.Errorf("enroll-only session lists requests: %d %s", r.status, r.body)
	}
	if r := n.do("POST", "/api/v1/me/tokens", sr.Session, map[string]string{"name": "x"}); r.status != 403 {
		t.Errorf("enroll-only session makes a token: %d %s", r.status, r.body)
	}
	// Existing sessions and tokens without a factor are held to the rule
	// at once too.
	for name, cred := range map[string]string{"session": mel, "token": melToken} {
		if r := n.do("GET", "/api/v1/tenants/acme/requests", cred, nil); r.status != 403 {
			t.Errorf("older %s without a factor lists requests after require_mfa: %d", name, r.status)
		}
	}
	secret, _ := n.enrollTOTP(sr.Session)
	_, pending := n.password("acme", "mel@acme.example", testPassword)
	n.clock.Add(30 * time.Second)
	code, _ := totp.GenerateCode(secret, n.clock.Now())
	_, full := n.signinStep("/api/v1/auth/signin/mfa", map[string]any{"mfa_token": pending.MFAToken, "code": code})
	if r := n.do("GET", "/api/v1/tenants/acme/requests", full.Session, nil); r.status != 200 {
		t.Errorf("session with a factor reads members: %d %s", r.status, r.body)
	}
}

func TestSigninWithPasskey(t *testing.T) {
	const rpID, origin = "vault.example.com", "https://vault.example.com"
	pk, err := mfa.NewPasskeys(rpID, "Custodia", []string{origin})
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, engines()[0].open(t), func(o *app.Options) { o.Identity.Passkeys = pk })
	n.initAndUnseal()
	n.createTenant("acme")
	owner := n.owner("acme")

	r := n.do("POST", "/api/v1/me/mfa/passkeys", owner, nil)
	if r.status != 200 {
		t.Fatalf("begin passkey: %d %s", r.status, r.body)
	}
	var begin struct {
		Token   string          `json:"token"`
		Options json.RawMessage `json:"options"`
	}
	r.json(t, &begin)
	key := mfatest.New(t, rpID, origin)
	reg, err := key.Register(t, begin.Options)
	if err != nil {
		t.Fatal(err)
	}
	r = n.do("POST", "/api/v1/me/mfa/passkeys/finish", owner, map[string]any{"token": begin.Token, "name": "laptop", "response": json.RawMessage(reg)})
	if r.status != 200 {
		t.Fatalf("finish passkey: %d %s", r.status, r.body)
	}

	signin := func(a *mfatest.Authenticator) resp {
		t.Helper()
		r, sr := n.password("acme", "owner@acme.example", testPassword)
		if sr.Status != "mfa_required" || !slices.Contains(sr.MFAMethods, "passkey") {
			t.Fatalf("password step: %d %s", r.status, r.body)
		}
		r = n.do("POST", "/api/v1/auth/signin/passkey-options", "", map[string]string{"mfa_token": sr.MFAToken})
		if r.status != 200 {
			t.Fatalf("passkey options: %d %s", r.status, r.body)
		}
		assertion := a.Login(t, r.body)
		r, _ = n.signinStep("/api/v1/auth/signin/mfa", map[string]any{"mfa_token": sr.MFAToken, "passkey": json.RawMessage(assertion)})
		return r
	}
	if r := signin(key); r.status != 200 {
		t.Fatalf("passkey sign-in: %d %s", r.status, r.body)
	}
	// A phishing page's origin, and a different key, are refused.
	phished := key.Clone()
	phished.Origin = "https://vault.example.com.evil.test"
	if r := signin(phished); r.status != 401 {
		t.Errorf("assertion from another origin: %d %s", r.status, r.body)
	}
	if r := signin(mfatest.New(t, rpID, origin)); r.status != 401 {
		t.Errorf("assertion from an unregistered key: %d %s", r.status, r.body)
	}
}

func TestPasskeysOffWithoutRelyingParty(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	n.initAndUnseal()
	n.createTenant("acme")
	owner := n.owner("acme")
	r := n.do("POST", "/api/v1/me/mfa/passkeys", owner, nil)
	if r.status != 503 || r.errCode(t) != "passkeys_off" {
		t.Errorf("passkey registration without --webauthn-rp-id: %d %s", r.status, r.body)
	}
}

// errOf is an error response without its request ID.
func errOf(t *testing.T, r resp) string {
	t.Helper()
	var eb struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	r.json(t, &eb)
	return eb.Error.Code + ": " + eb.Error.Message
}

// sleeps records the sign-in delays a node asked for instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(_ context.Context, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
}

func (s *sleeps) last() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.d) == 0 {
		return 0
	}
	return s.d[len(s.d)-1]
}

func TestSigninLockoutOverHTTP(t *testing.T) {
	var sl sleeps
	n := newNode(t, engines()[0].open(t), func(o *app.Options) { o.Identity.Sleep = sl.sleep })
	n.initAndUnseal()
	n.createTenant("acme")
	owner := n.owner("acme")
	email := "owner@acme.example"

	// Unknown accounts and wrong passwords get the same answer.
	r1, _ := n.password("acme", "nobody@acme.example", "wrong password 1")
	r2, _ := n.password("acme", email, "wrong password 1")
	if r1.status != 401 || r2.status != 401 || errOf(t, r1) != errOf(t, r2) {
		t.Fatalf("unknown vs wrong: %d %s / %d %s", r1.status, r1.body, r2.status, r2.body)
	}
	for i := 2; i <= 10; i++ {
		n.password("acme", email, "wrong password")
	}
	if d := sl.last(); d <= 0 {
		t.Errorf("no progressive delay after 10 failures (last %v)", d)
	}
	// Locked: even the right password is refused, with the same answer.
	r, _ := n.password("acme", email, testPassword)
	if r.status != 401 || errOf(t, r) != errOf(t, r2) {
		t.Errorf("right password while locked: %d %s", r.status, r.body)
	}
	// The owner's existing session still works and shows the lock notice.
	var nl struct{ Notifications []struct{ Kind string } }
	n.do("GET", "/api/v1/me/notifications", owner, nil).json(t, &nl)
	if len(nl.Notifications) == 0 || nl.Notifications[0].Kind != "account_locked" {
		t.Errorf("notifications after lock = %+v", nl.Notifications)
	}
	n.clock.Add(16 * time.Minute)
	if r, sr := n.password("acme", email, testPassword); r.status != 200 || sr.Status != "signed_in" {
		t.Errorf("sign-in after the lock expired: %d %s", r.status, r.body)
	}
	if got := strings.Join(n.auditActions(n.tenantID("acme")), " "); !strings.Contains(got, "member.lock:ok") {
		t.Errorf("no member.lock audit entry: %s", got)
	}
}

func TestSigninPerSourceLimitOverHTTP(t *testing.T) {
	var sl sleeps
	n := newNode(t, engines()[0].open(t), func(o *app.Options) {
		o.Identity.Sleep = sl.sleep
		o.Identity.Limits.PerSource = 5
	})
	n.initAndUnseal()
	n.createTenant("acme")
	for i := range 5 {
		if r, _ := n.password("acme", "x@acme.example", "wrong password"); r.status != 401 {
			t.Fatalf("attempt %d: %d %s", i+1, r.status, r.body)
		}
	}
	r, _ := n.password("acme", "x@acme.example", "wrong password")
	if r.status != 429 || r.errCode(t) != "too_many_attempts" {
		t.Errorf("attempt over the per-source limit: %d %s", r.status, r.body)
	}
	n.clock.Add(time.Minute)
	if r, _ := n.password("acme", "x@acme.example", "wrong password"); r.status != 401 {
		t.Errorf("attempt a minute later: %d %s", r.status, r.body)
	}
}

func TestSingleSignOnOverHTTP(t *testing.T) {
	// The provider redirects to the server's public callback URL; the test
	// plays the browser and brings the code to the node itself.
	const callback = "https://vault.example.com/api/v1/auth/sso/callback"
	op := ssotest.Start(t, callback)
	forEngine := func(fn func(t *testing.T, n *node)) {
		for _, e := range engines() {
			t.Run(e.name, func(t *testing.T) {
				fn(t, newNode(t, e.open(t), func(o *app.Options) { o.Identity.HTTPClient = op.HTTPClient }))
			})
		}
	}
	forEngine(func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.owner("acme")
		r := n.do("PUT", "/api/v1/tenants/acme/policy", owner, map[string]any{
			"sso":               map[string]any{"issuer": op.Issuer, "client_id": op.ClientID, "redirect_url": callback, "jit": true, "default_role": "auditor"},
			"sso_client_secret": op.ClientSecret,
		})
		if r.status != 200 {
			t.Fatalf("policy: %d %s", r.status, r.body)
		}
		if strings.Contains(string(r.body), op.ClientSecret) {
			t.Error("the policy echoes the client secret")
		}

		// ssoLogin starts at the node as a browser would, signs in at the
		// provider, and returns the callback's query and the state cookie.
		ssoLogin := func(user ssotest.User) (url.Values, *http.Cookie) {
			t.Helper()
			b := op.Browser()
			start := n.srv.URL + "/api/v1/auth/sso/acme/start"
			u := op.Login(t, b, start, user.Username, user.Password)
			su, _ := url.Parse(n.srv.URL)
			for _, c := range b.Jar.Cookies(su) {
				if c.Name == api.SSOStateCookie {
					return u.Query(), c
				}
			}
			t.Fatalf("no state cookie from %s", start)
			return nil, nil
		}
		finish := func(q url.Values, c *http.Cookie) resp {
			t.Helper()
			req, _ := http.NewRequest("GET", n.srv.URL+"/api/v1/auth/sso/callback?"+q.Encode(), nil)
			if c != nil {
				req.AddCookie(c)
			}
			res, err := n.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return resp{res.StatusCode, res.Header, b}
		}

		// Alice is not a member: just-in-time creation with the default role.
		q, c := ssoLogin(ssotest.Alice)
		// A callback URL sent to someone else (no state cookie) is refused
		// before the state is spent.
		if r := finish(q, nil); r.status != 401 || r.errCode(t) != "sso_failed" {
			t.Errorf("callback without the state cookie: %d %s", r.status, r.body)
		}
		q.Set("want_token", "true")
		r = finish(q, c)
		if r.status != 200 {
			t.Fatalf("callback: %d %s", r.status, r.body)
		}
		var sr signinResp
		r.json(t, &sr)
		if cookies := strings.Join(r.header.Values("Set-Cookie"), "\n"); sr.Status != "signed_in" || !strings.Contains(cookies, api.SessionCookie+"=cust_ses_") {
			t.Fatalf("sso sign-in: %s (cookies %q)", r.body, cookies)
		}
		var me struct{ Role, Via string }
		n.do("GET", "/api/v1/me", sr.Session, nil).json(t, &me)
		if me.Role != "auditor" {
			t.Errorf("JIT member = %+v, want role auditor", me)
		}
		// The same callback cannot be used twice.
		if r := finish(q, c); r.status != 401 {
			t.Errorf("replayed callback: %d %s", r.status, r.body)
		}
		// Bob's email is not verified: no member, no creation.
		q, c = ssoLogin(ssotest.Bob)
		if r := finish(q, c); r.status != 403 || r.errCode(t) != "sso_email_not_verified" {
			t.Errorf("unverified email: %d %s", r.status, r.body)
		}
		// SSO-only: password sign-in is refused for everyone.
		r = n.do("PUT", "/api/v1/tenants/acme/policy", owner, map[string]any{
			"sso": map[string]any{"issuer": op.Issuer, "client_id": op.ClientID, "redirect_url": callback, "only": true},
		})
		if r.status != 200 {
			t.Fatalf("policy sso only: %d %s", r.status, r.body)
		}
		if r, _ := n.password("acme", "owner@acme.example", testPassword); r.status != 403 || r.errCode(t) != "sso_only" {
			t.Errorf("password sign-in under sso only: %d %s", r.status, r.body)
		}
		// Alice is a member now: matched by her verified email and linked
		// subject, without creation.
		q, c = ssoLogin(ssotest.Alice)
		if r := finish(q, c); r.status != 200 {
			t.Errorf("second sso sign-in of an existing member: %d %s", r.status, r.body)
		}
		var ml struct{ Members []struct{ Email string } }
		n.do("GET", "/api/v1/tenants/acme/members", owner, nil).json(t, &ml)
		if len(ml.Members) != 2 {
			t.Errorf("members after two sso sign-ins = %+v", ml.Members)
		}
		// Turning SSO off forgets the sealed client secret.
		if r := n.do("PUT", "/api/v1/tenants/acme/policy", owner, map[string]any{}); r.status != 200 {
			t.Fatalf("policy without sso: %d %s", r.status, r.body)
		}
		err := n.app.Store.View(t.Context(), func(tx store.Tx) error {
			_, err := tx.GetRecord(t.Context(), n.tenantID("acme"), "sso", "client_secret")
			return err
		})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("client secret after turning SSO off: %v", err)
		}
	})
}
