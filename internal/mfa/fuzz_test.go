package mfa_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/custodia-project/custodia/internal/mfa"
)

// Stored credentials come back from the database: anything must be refused
// cleanly or decoded to something that encodes back to the same credential.
func FuzzUnmarshalCredential(f *testing.F) {
	e := newEnv(f)
	good, err := mfa.MarshalCredential(&e.user.Credentials[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"v":1,"credential":{}}`))
	f.Add([]byte(`{"v":1,"credential":{"id":"AA==","publicKey":"oQE="}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := mfa.UnmarshalCredential(b)
		if err != nil {
			return
		}
		again, err := mfa.MarshalCredential(c)
		if err != nil {
			t.Fatalf("decoded credential does not encode: %v", err)
		}
		c2, err := mfa.UnmarshalCredential(again)
		if err != nil || !bytes.Equal(c2.ID, c.ID) || !bytes.Equal(c2.PublicKey, c.PublicKey) || c2.Flags != c.Flags {
			t.Fatalf("round trip changed the credential: %v", err)
		}
	})
}

// The assertion is the browser's, so the attacker's: it must never panic,
// and never be accepted unless it names the member's credential.
func FuzzFinishLoginResponse(f *testing.F) {
	e := newEnv(f)
	opts, sess, err := e.pk.BeginLogin(e.user)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(e.auth.Login(f, opts))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`))
	f.Fuzz(func(t *testing.T, resp []byte) {
		cred, err := e.pk.FinishLogin(e.user, sess, resp)
		if err == nil && !bytes.Equal(cred.ID, e.auth.CredID) {
			t.Fatalf("accepted an assertion for credential %x", cred.ID)
		}
	})
}

func FuzzFinishRegistrationResponse(f *testing.F) {
	e := newBareEnv(f)
	opts, sess, err := e.pk.BeginRegistration(e.user)
	if err != nil {
		f.Fatal(err)
	}
	resp, err := e.auth.Register(f, opts)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(resp)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`))
	f.Fuzz(func(t *testing.T, resp []byte) {
		_, _ = e.pk.FinishRegistration(e.user, sess, resp)
	})
}

// Session blobs come back from server-side storage; a corrupted one must be
// refused, never panic.
func FuzzSession(f *testing.F) {
	e := newEnv(f)
	opts, sess, err := e.pk.BeginLogin(e.user)
	if err != nil {
		f.Fatal(err)
	}
	resp := e.auth.Login(f, opts)
	_, regSess, _ := e.pk.BeginRegistration(e.user)
	_, discSess, _ := e.pk.BeginDiscoverableLogin()
	f.Add(sess)
	f.Add(regSess)
	f.Add(discSess)
	f.Add([]byte(`{"v":1,"kind":"login","data":{"challenge":"","rpId":"vault.example.com"}}`))
	f.Fuzz(func(t *testing.T, s []byte) {
		_, _ = e.pk.FinishLogin(e.user, s, resp)
		_, _ = e.pk.FinishRegistration(e.user, s, resp)
		_, _, _ = e.pk.FinishDiscoverableLogin(e.lookup, s, resp)
	})
}

// Typed codes are outside input too.
func FuzzVerifyTOTP(f *testing.F) {
	s := newSecret(f)
	good := codeAt(f, s, t0)
	f.Add(good)
	f.Add("123 456")
	f.Add("")
	f.Add("１２３４５６")
	f.Fuzz(func(t *testing.T, code string) {
		st, err := mfa.VerifyTOTP(s, code, t0, 0)
		switch {
		case err == nil && st != step(t0) && st != step(t0)-1 && st != step(t0)+1:
			t.Fatalf("accepted %q for step %d", code, st)
		case err != nil && !errors.Is(err, mfa.ErrInvalidCode):
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func FuzzMatchRecoveryCode(f *testing.F) {
	codes, hashes := mfa.NewRecoveryCodes(0)
	for _, c := range codes[:3] {
		f.Add(c)
	}
	f.Add("OOOOO-IIIII")
	f.Fuzz(func(t *testing.T, code string) {
		if i, ok := mfa.MatchRecoveryCode(code, hashes); ok != (i >= 0) || i >= len(hashes) {
			t.Fatalf("MatchRecoveryCode(%q) = %d, %v", code, i, ok)
		}
	})
}
