package mfa_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/custodia-project/custodia/internal/mfa"
	"github.com/custodia-project/custodia/internal/mfa/mfatest"
)

const (
	testRPID   = "vault.example.com"
	testOrigin = "https://vault.example.com"
)

// env is one relying party, one member and their authenticator, with the
// passkey already registered unless built by newBareEnv.
type env struct {
	pk   *mfa.Passkeys
	user *mfa.User
	auth *mfatest.Authenticator
}

func newBareEnv(t testing.TB) *env {
	t.Helper()
	pk, err := mfa.NewPasskeys(testRPID, "Custodia", []string{testOrigin})
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	copy(id, "opaque member handle")
	return &env{
		pk:   pk,
		user: &mfa.User{ID: id, Name: "ada@example.com", DisplayName: "Ada"},
		auth: mfatest.New(t, testRPID, testOrigin),
	}
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := newBareEnv(t)
	cred, err := e.register(t, e.auth)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	e.user.Credentials = append(e.user.Credentials, *cred)
	return e
}

func (e *env) register(t testing.TB, a *mfatest.Authenticator) (*webauthn.Credential, error) {
	t.Helper()
	opts, sess, err := e.pk.BeginRegistration(e.user)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Register(t, opts)
	if err != nil {
		return nil, err
	}
	return e.pk.FinishRegistration(e.user, sess, resp)
}

// login runs a ceremony with a and, on success, stores the updated credential.
func (e *env) login(t testing.TB, a *mfatest.Authenticator) (*webauthn.Credential, error) {
	t.Helper()
	opts, sess, err := e.pk.BeginLogin(e.user)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := e.pk.FinishLogin(e.user, sess, a.Login(t, opts))
	if err == nil {
		e.store(cred)
	}
	return cred, err
}

func (e *env) store(c *webauthn.Credential) {
	for i := range e.user.Credentials {
		if bytes.Equal(e.user.Credentials[i].ID, c.ID) {
			e.user.Credentials[i] = *c
		}
	}
}

func (e *env) lookup(rawID, userHandle []byte) (*mfa.User, error) {
	if bytes.Equal(userHandle, e.user.ID) {
		return e.user, nil
	}
	return nil, nil
}

func TestPasskeys(t *testing.T) {
	tests := []struct {
		name string
		// run drives the ceremonies and returns the last Finish error.
		run  func(t *testing.T, e *env) error
		want error
		// why, if set, must appear in the error or the library's
		// developer info, to show the case failed for its stated reason.
		why string
	}{
		{"ok/register then login", func(t *testing.T, e *env) error {
			c := e.user.Credentials[0]
			if !bytes.Equal(c.ID, e.auth.CredID) || c.Authenticator.SignCount != 0 || !c.Flags.UserVerified || c.AttestationFormat != "none" {
				t.Fatalf("registered credential = %+v", c)
			}
			for want := uint32(1); want <= 3; want++ {
				cred, err := e.login(t, e.auth)
				if err != nil {
					return err
				}
				if cred.Authenticator.SignCount != want || cred.Authenticator.CloneWarning {
					t.Fatalf("login %d: sign count %d, clone warning %v", want, cred.Authenticator.SignCount, cred.Authenticator.CloneWarning)
				}
			}
			return nil
		}, nil, ""},
		{"ok/login after storage round trip", func(t *testing.T, e *env) error {
			b, err := mfa.MarshalCredential(&e.user.Credentials[0])
			if err != nil {
				t.Fatal(err)
			}
			c, err := mfa.UnmarshalCredential(b)
			if err != nil {
				t.Fatal(err)
			}
			// The raw byte loses AT, which means nothing on a stored credential.
			got, want := c.Flags, e.user.Credentials[0].Flags
			if got.UserPresent != want.UserPresent || got.UserVerified != want.UserVerified ||
				got.BackupEligible != want.BackupEligible || got.BackupState != want.BackupState ||
				got.ProtocolValue() != protocol.FlagUserPresent|protocol.FlagUserVerified {
				t.Fatalf("flags %+v, want %+v", got, want)
			}
			e.user.Credentials[0] = *c
			_, err = e.login(t, e.auth)
			return err
		}, nil, ""},
		{"ok/synced passkey keeps a zero counter", func(t *testing.T, e *env) error {
			e.auth.NoCounter = true
			for range 2 {
				if _, err := e.login(t, e.auth); err != nil {
					return err
				}
			}
			return nil
		}, nil, ""},
		{"ok/user present but not verified (verification is preferred, not required)", func(t *testing.T, e *env) error {
			e.auth.Flags = protocol.FlagUserPresent
			_, err := e.login(t, e.auth)
			return err
		}, nil, ""},
		{"ok/discoverable login", func(t *testing.T, e *env) error {
			opts, sess, err := e.pk.BeginDiscoverableLogin()
			if err != nil {
				t.Fatal(err)
			}
			u, cred, err := e.pk.FinishDiscoverableLogin(e.lookup, sess, e.auth.Login(t, opts))
			if err == nil && (u != e.user || cred.Authenticator.SignCount != 1) {
				t.Fatalf("got user %v, sign count %d", u, cred.Authenticator.SignCount)
			}
			return err
		}, nil, ""},
		{"ok/second authenticator", func(t *testing.T, e *env) error {
			other := mfatest.New(t, testRPID, testOrigin)
			c, err := e.register(t, other)
			if err != nil {
				return err
			}
			e.user.Credentials = append(e.user.Credentials, *c)
			_, err = e.login(t, other)
			return err
		}, nil, ""},
		{"fail/registration of an excluded authenticator", func(t *testing.T, e *env) error {
			_, err := e.register(t, e.auth)
			return err
		}, mfatest.ErrExcluded, ""},
		{"fail/registration replayed for the same member", func(t *testing.T, e *env) error {
			// A client that ignores excludeCredentials.
			opts, sess, _ := e.pk.BeginRegistration(e.user)
			var o map[string]map[string]any
			_ = json.Unmarshal(opts, &o)
			delete(o["publicKey"], "excludeCredentials")
			resp, err := e.auth.Register(t, jsonOf(t, o))
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.pk.FinishRegistration(e.user, sess, resp)
			return err
		}, mfa.ErrRejected, "already registered"},
		{"fail/registration from wrong origin", func(t *testing.T, e *env) error {
			a := mfatest.New(t, testRPID, "https://vault.example.com.evil.test")
			_, err := e.register(t, a)
			return err
		}, mfa.ErrRejected, "origin"},
		{"fail/registration for another relying party", func(t *testing.T, e *env) error {
			a := mfatest.New(t, "evil.test", testOrigin)
			_, err := e.register(t, a)
			return err
		}, mfa.ErrRejected, "RP Hash mismatch"},
		{"fail/registration with another ceremony's session", func(t *testing.T, e *env) error {
			opts, _, _ := e.pk.BeginRegistration(e.user)
			_, other, _ := e.pk.BeginRegistration(e.user)
			a := mfatest.New(t, testRPID, testOrigin)
			resp, _ := a.Register(t, opts)
			_, err := e.pk.FinishRegistration(e.user, other, resp)
			return err
		}, mfa.ErrRejected, "challenge"},
		{"fail/registration with another member's session", func(t *testing.T, e *env) error {
			mallory := &mfa.User{ID: []byte("mallory"), Name: "mallory@example.com"}
			opts, sess, _ := e.pk.BeginRegistration(mallory)
			resp, _ := mfatest.New(t, testRPID, testOrigin).Register(t, opts)
			_, err := e.pk.FinishRegistration(e.user, sess, resp)
			return err
		}, mfa.ErrRejected, "ID mismatch"},
		{"fail/login session used for registration", func(t *testing.T, e *env) error {
			opts, _, _ := e.pk.BeginRegistration(e.user)
			_, sess, _ := e.pk.BeginLogin(e.user)
			resp, _ := mfatest.New(t, testRPID, testOrigin).Register(t, opts)
			_, err := e.pk.FinishRegistration(e.user, sess, resp)
			return err
		}, mfa.ErrInvalidSession, ""},
		{"fail/login from wrong origin", func(t *testing.T, e *env) error {
			e.auth.Origin = "https://evil.test"
			_, err := e.login(t, e.auth)
			return err
		}, mfa.ErrRejected, "origin"},
		{"fail/login for another relying party", func(t *testing.T, e *env) error {
			e.auth.RPID = "example.com"
			_, err := e.login(t, e.auth)
			return err
		}, mfa.ErrRejected, "RP Hash mismatch"},
		{"fail/login with another ceremony's session", func(t *testing.T, e *env) error {
			opts, _, _ := e.pk.BeginLogin(e.user)
			_, other, _ := e.pk.BeginLogin(e.user)
			_, err := e.pk.FinishLogin(e.user, other, e.auth.Login(t, opts))
			return err
		}, mfa.ErrRejected, "challenge"},
		{"fail/login with a registration session", func(t *testing.T, e *env) error {
			opts, _, _ := e.pk.BeginLogin(e.user)
			_, sess, _ := e.pk.BeginRegistration(e.user)
			_, err := e.pk.FinishLogin(e.user, sess, e.auth.Login(t, opts))
			return err
		}, mfa.ErrInvalidSession, ""},
		{"fail/login with a session from another relying party", func(t *testing.T, e *env) error {
			other, err := mfa.NewPasskeys("example.com", "Custodia", []string{testOrigin})
			if err != nil {
				t.Fatal(err)
			}
			opts, sess, _ := other.BeginLogin(e.user)
			_, err = e.pk.FinishLogin(e.user, sess, e.auth.Login(t, opts))
			return err
		}, mfa.ErrInvalidSession, ""},
		{"fail/login with a tampered session", func(t *testing.T, e *env) error {
			opts, sess, _ := e.pk.BeginLogin(e.user)
			var s map[string]any
			_ = json.Unmarshal(sess, &s)
			s["data"].(map[string]any)["challenge"] = b64.EncodeToString(bytes.Repeat([]byte{7}, 32))
			_, err := e.pk.FinishLogin(e.user, jsonOf(t, s), e.auth.Login(t, opts))
			return err
		}, mfa.ErrRejected, "challenge"},
		{"fail/login with a session carrying unknown fields", func(t *testing.T, e *env) error {
			opts, sess, _ := e.pk.BeginLogin(e.user)
			var s map[string]any
			_ = json.Unmarshal(sess, &s)
			s["extra"] = true
			_, err := e.pk.FinishLogin(e.user, jsonOf(t, s), e.auth.Login(t, opts))
			return err
		}, mfa.ErrInvalidSession, ""},
		{"fail/bad signature", func(t *testing.T, e *env) error {
			e.auth.BadSig = true
			_, err := e.login(t, e.auth)
			return err
		}, mfa.ErrRejected, "signature"},
		{"fail/user not present", func(t *testing.T, e *env) error {
			e.auth.Flags = protocol.FlagUserVerified
			_, err := e.login(t, e.auth)
			return err
		}, mfa.ErrRejected, "User presence"},
		{"fail/assertion replayed with its session", func(t *testing.T, e *env) error {
			opts, sess, _ := e.pk.BeginLogin(e.user)
			resp := e.auth.Login(t, opts)
			cred, err := e.pk.FinishLogin(e.user, sess, resp)
			if err != nil {
				t.Fatalf("first use: %v", err)
			}
			e.store(cred)
			_, err = e.pk.FinishLogin(e.user, sess, resp)
			return err
		}, mfa.ErrClonedAuthenticator, ""},
		{"fail/assertion replayed in a new ceremony", func(t *testing.T, e *env) error {
			opts, sess, _ := e.pk.BeginLogin(e.user)
			resp := e.auth.Login(t, opts)
			if _, err := e.pk.FinishLogin(e.user, sess, resp); err != nil {
				t.Fatalf("first use: %v", err)
			}
			_, sess2, _ := e.pk.BeginLogin(e.user)
			_, err := e.pk.FinishLogin(e.user, sess2, resp)
			return err
		}, mfa.ErrRejected, "challenge"},
		{"fail/cloned authenticator", func(t *testing.T, e *env) error {
			if _, err := e.login(t, e.auth); err != nil {
				t.Fatal(err)
			}
			clone := e.auth.Clone() // copied at count 1
			if _, err := e.login(t, e.auth); err != nil {
				t.Fatal(err)
			}
			cred, err := e.login(t, clone) // signs with count 2 again
			if cred == nil || !bytes.Equal(cred.ID, e.auth.CredID) || !cred.Authenticator.CloneWarning || cred.Authenticator.SignCount != 2 {
				t.Fatalf("cloned login returned credential %+v; want the flagged credential", cred)
			}
			// The warning is about this ceremony: the genuine device, still
			// ahead, is not refused because of it.
			if _, err2 := e.login(t, e.auth); err2 != nil {
				t.Fatalf("genuine device after clone: %v", err2)
			}
			return err
		}, mfa.ErrClonedAuthenticator, ""},
		{"fail/counter reset to zero", func(t *testing.T, e *env) error {
			if _, err := e.login(t, e.auth); err != nil {
				t.Fatal(err)
			}
			e.auth.Count, e.auth.NoCounter = 0, true
			_, err := e.login(t, e.auth)
			return err
		}, mfa.ErrClonedAuthenticator, ""},
		{"fail/unknown credential", func(t *testing.T, e *env) error {
			stranger := mfatest.New(t, testRPID, testOrigin)
			stranger.UserHandle = e.user.ID
			_, err := e.login(t, stranger)
			return err
		}, mfa.ErrUnknownCredential, ""},
		{"fail/discoverable login with unknown credential", func(t *testing.T, e *env) error {
			stranger := mfatest.New(t, testRPID, testOrigin)
			stranger.UserHandle = e.user.ID
			opts, sess, _ := e.pk.BeginDiscoverableLogin()
			_, _, err := e.pk.FinishDiscoverableLogin(e.lookup, sess, stranger.Login(t, opts))
			return err
		}, mfa.ErrUnknownCredential, ""},
		{"fail/discoverable login for unknown member", func(t *testing.T, e *env) error {
			e.auth.UserHandle = []byte("nobody")
			opts, sess, _ := e.pk.BeginDiscoverableLogin()
			_, _, err := e.pk.FinishDiscoverableLogin(e.lookup, sess, e.auth.Login(t, opts))
			return err
		}, mfa.ErrUnknownCredential, ""},
		{"fail/discoverable login passes lookup errors through", func(t *testing.T, e *env) error {
			opts, sess, _ := e.pk.BeginDiscoverableLogin()
			_, _, err := e.pk.FinishDiscoverableLogin(func(_, _ []byte) (*mfa.User, error) { return nil, errStoreDown }, sess, e.auth.Login(t, opts))
			return err
		}, errStoreDown, ""},
		{"fail/discoverable session used for a member's login", func(t *testing.T, e *env) error {
			opts, sess, _ := e.pk.BeginDiscoverableLogin()
			_, err := e.pk.FinishLogin(e.user, sess, e.auth.Login(t, opts))
			return err
		}, mfa.ErrInvalidSession, ""},
		{"fail/garbage response", func(t *testing.T, e *env) error {
			_, sess, _ := e.pk.BeginLogin(e.user)
			_, err := e.pk.FinishLogin(e.user, sess, []byte(`{"id":"x"}`))
			return err
		}, mfa.ErrRejected, "base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			err := tc.run(t, e)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("error = %v, want %v", err, tc.want)
			case !strings.Contains(errText(err), tc.why):
				t.Fatalf("error = %q, want it to be about %q", errText(err), tc.why)
			}
		})
	}
}

var errStoreDown = errors.New("store down")

// errText is err's message followed by the library's developer info, which
// says which check failed where the message is generic.
func errText(err error) string {
	if err == nil {
		return ""
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return err.Error() + " (" + pe.DevInfo + ")"
	}
	return err.Error()
}

func TestNewPasskeys(t *testing.T) {
	tests := []struct {
		name    string
		rpID    string
		origins []string
		ok      bool
	}{
		{"ok/same host", testRPID, []string{testOrigin}, true},
		{"ok/subdomain with port", "example.com", []string{"https://vault.example.com:8443"}, true},
		{"ok/localhost over http", "localhost", []string{"http://localhost:8080"}, true},
		{"fail/no origins", testRPID, nil, false},
		{"fail/http", testRPID, []string{"http://vault.example.com"}, false},
		{"fail/origin off the relying party", testRPID, []string{"https://example.com"}, false},
		{"fail/suffix is not a subdomain", "example.com", []string{"https://badexample.com"}, false},
		{"fail/origin with path", testRPID, []string{testOrigin + "/login"}, false},
		{"fail/origin with trailing slash", testRPID, []string{testOrigin + "/"}, false},
		{"fail/empty relying party", "", []string{testOrigin}, false},
		{"fail/relying party is a URL", testOrigin, []string{testOrigin}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mfa.NewPasskeys(tc.rpID, "Custodia", tc.origins)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestBeginRegistrationOptions(t *testing.T) {
	e := newEnv(t)
	opts, _, err := e.pk.BeginRegistration(e.user)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		PublicKey struct {
			RP struct {
				ID, Name string
			} `json:"rp"`
			User struct {
				ID   protocol.URLEncodedBase64 `json:"id"`
				Name string                    `json:"name"`
			} `json:"user"`
			Selection struct {
				ResidentKey      string `json:"residentKey"`
				UserVerification string `json:"userVerification"`
			} `json:"authenticatorSelection"`
			Attestation string `json:"attestation"`
			Exclude     []struct {
				ID protocol.URLEncodedBase64 `json:"id"`
			} `json:"excludeCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatal(err)
	}
	p := o.PublicKey
	switch {
	case p.RP.ID != testRPID || p.RP.Name != "Custodia":
		t.Errorf("rp = %+v", p.RP)
	case !bytes.Equal(p.User.ID, e.user.ID) || p.User.Name != e.user.Name:
		t.Errorf("user = %+v", p.User)
	case p.Selection.ResidentKey != "preferred" || p.Selection.UserVerification != "preferred":
		t.Errorf("authenticatorSelection = %+v", p.Selection)
	case p.Attestation != "none":
		t.Errorf("attestation = %q", p.Attestation)
	case len(p.Exclude) != 1 || !bytes.Equal(p.Exclude[0].ID, e.auth.CredID):
		t.Errorf("excludeCredentials = %+v", p.Exclude)
	}
}

func TestBeginErrors(t *testing.T) {
	e := newBareEnv(t)
	tests := []struct {
		name string
		u    *mfa.User
		f    func(*mfa.User) ([]byte, []byte, error)
	}{
		{"fail/registration of nil user", nil, e.pk.BeginRegistration},
		{"fail/registration of user without ID", &mfa.User{Name: "a"}, e.pk.BeginRegistration},
		{"fail/registration of user with long ID", &mfa.User{ID: make([]byte, 65), Name: "a"}, e.pk.BeginRegistration},
		{"fail/registration of user without name", &mfa.User{ID: []byte{1}}, e.pk.BeginRegistration},
		{"fail/login of user without passkeys", e.user, e.pk.BeginLogin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := tc.f(tc.u); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestUnmarshalCredential(t *testing.T) {
	e := newEnv(t)
	good, err := mfa.MarshalCredential(&e.user.Credentials[0])
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		return jsonOf(t, m)
	}
	cred := func(m map[string]any) map[string]any { return m["credential"].(map[string]any) }
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"ok/round trip", good, true},
		{"fail/empty", nil, false},
		{"fail/trailing data", append(bytes.Clone(good), " {}"...), false},
		{"fail/unknown top-level field", edit(func(m map[string]any) { m["x"] = 1 }), false},
		{"fail/unknown credential field", edit(func(m map[string]any) { cred(m)["x"] = 1 }), false},
		{"fail/unknown version", edit(func(m map[string]any) { m["v"] = 2 }), false},
		{"fail/no ID", edit(func(m map[string]any) { delete(cred(m), "id") }), false},
		{"fail/bad public key", edit(func(m map[string]any) { cred(m)["publicKey"] = "AAAA" }), false},
		{"fail/bad AAGUID", edit(func(m map[string]any) { cred(m)["authenticator"].(map[string]any)["AAGUID"] = "AAAA" }), false},
		{"fail/backup state without eligibility", edit(func(m map[string]any) {
			cred(m)["flags"].(map[string]any)["backupState"] = true
		}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mfa.UnmarshalCredential(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (!bytes.Equal(c.ID, e.auth.CredID) || !bytes.Equal(c.PublicKey, e.user.Credentials[0].PublicKey)) {
				t.Fatalf("round trip changed the credential: %+v", c)
			}
		})
	}
}

// One Passkeys serves every request: ceremonies for different members run
// at once (and under -race show it keeps no shared mutable state).
func TestPasskeysConcurrent(t *testing.T) {
	pk := newBareEnv(t).pk
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			e := newBareEnv(t)
			e.pk = pk
			e.user.ID = []byte{byte(i + 1)}
			cred, err := e.register(t, e.auth)
			if err != nil {
				errs <- err
				return
			}
			e.user.Credentials = []webauthn.Credential{*cred}
			if _, err := e.login(t, e.auth); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

var b64 = base64.RawURLEncoding

func jsonOf(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
