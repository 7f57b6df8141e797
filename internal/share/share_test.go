package share

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// Known answers computed apart from this package: the keys with Python's
// hashlib and hmac, the envelope with Node's WebCrypto (see
// docs/share-links.md for the recipe).
func TestKnownAnswers(t *testing.T) {
	const (
		encNoPass    = "29e688fb7fdf6f905c123344eab209b82ca1a467263292a827e82e87173ea207"
		verNoPass    = "0c50061556033dd4646c2effcb6ca1a1fe2318efd8df1f0f92c6e03e588c7b2c"
		authNoPass   = "55b932a97faafaf5ea8feb6c85e74df148da0084d91abb17fd4ce417079b7b5c"
		encPass      = "a6ece228992fc062c11be2b8372e4f4bc6065f3794c9479bff7c23e4ba5dfe3a"
		authPass     = "8d321a29805b6867b1da8f4f5b26a7ad1f22e56e09dbc8c02e03d5082f79525a"
		verPass      = "e0928a6a66f63dc0edd7a8d4a9a1c3c417e5307b84a9c993b8074c984236d82a"
		envelopeHola = "01000102030405060708090a0bfdea4e15ec732355b7172a6c343a951f4ebb9aabba3bf6cd68a63d"
	)
	k, err := Derive(seq(32), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(k.enc) != encNoPass || hex.EncodeToString(k.Auth()) != authNoPass || hex.EncodeToString(k.Verifier()) != verNoPass {
		t.Errorf("keys without passphrase: enc %x auth %x verifier %x", k.enc, k.auth, k.Verifier())
	}
	pt, err := k.Open(unhex(t, envelopeHola))
	if err != nil || string(pt) != "hola, mundo" {
		t.Errorf("open the WebCrypto envelope: %q, %v", pt, err)
	}
	// The passphrase is NFC-normalized: a decomposed ñ derives the same keys.
	kdf := &KDF{Salt: seq(16), Iterations: MinIterations}
	for _, pass := range []string{"contrase\u00f1a segura", "contrasen\u0303a segura"} {
		k, err := Derive(seq(32), pass, kdf)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(k.enc) != encPass || hex.EncodeToString(k.Auth()) != authPass || hex.EncodeToString(k.Verifier()) != verPass {
			t.Errorf("keys with passphrase %q: enc %x auth %x", pass, k.enc, k.auth)
		}
		if _, err := k.Open(unhex(t, envelopeHola)); !errors.Is(err, ErrDecrypt) {
			t.Errorf("an envelope sealed without the passphrase opened with it: %v", err)
		}
	}
}

func TestPrepareAndOpen(t *testing.T) {
	secret := []byte("Zq8-share-test-secret\nline two")
	t.Run("ok/no passphrase", func(t *testing.T) {
		p, err := Prepare(secret, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.KDF != nil || len(p.LinkKey) != KeySize || len(p.Verifier) != 32 || len(p.Envelope) != len(secret)+Overhead {
			t.Fatalf("prepared: kdf %v key %d verifier %d envelope %d", p.KDF, len(p.LinkKey), len(p.Verifier), len(p.Envelope))
		}
		if bytes.Contains(p.Envelope, secret[:8]) {
			t.Fatal("the envelope holds the plaintext")
		}
		k, _ := Derive(p.LinkKey, "ignored without kdf", nil)
		if !bytes.Equal(k.Verifier(), p.Verifier) || !bytes.Equal(Verifier(k.Auth()), p.Verifier) {
			t.Fatal("verifier does not match the derived auth key")
		}
		got, err := k.Open(p.Envelope)
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("open: %q, %v", got, err)
		}
	})
	t.Run("ok/passphrase", func(t *testing.T) {
		p, err := Prepare(secret, "correct horse", MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		if p.KDF == nil || len(p.KDF.Salt) != SaltSize || p.KDF.Iterations != MinIterations {
			t.Fatalf("kdf = %+v", p.KDF)
		}
		k, _ := Derive(p.LinkKey, "correct horse", p.KDF)
		if got, err := k.Open(p.Envelope); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("open: %q, %v", got, err)
		}
		wrong, _ := Derive(p.LinkKey, "correct horsE", p.KDF)
		if bytes.Equal(wrong.Verifier(), p.Verifier) {
			t.Fatal("a wrong passphrase gives the same verifier")
		}
		if _, err := wrong.Open(p.Envelope); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("wrong passphrase: %v", err)
		}
		// Without the passphrase the link alone is not enough.
		bare, _ := Derive(p.LinkKey, "", nil)
		if _, err := bare.Open(p.Envelope); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("link without passphrase: %v", err)
		}
	})
	t.Run("ok/default iterations", func(t *testing.T) {
		p, err := Prepare([]byte("x"), "pass", 0)
		if err != nil || p.KDF.Iterations != DefaultIterations {
			t.Fatalf("%+v, %v", p, err)
		}
	})
	t.Run("fail/tampered envelope", func(t *testing.T) {
		p, _ := Prepare(secret, "", 0)
		k, _ := Derive(p.LinkKey, "", nil)
		for i := range p.Envelope {
			bad := bytes.Clone(p.Envelope)
			bad[i] ^= 0x20
			if _, err := k.Open(bad); err == nil {
				t.Fatalf("flipping byte %d went unnoticed", i)
			}
		}
		if _, err := k.Open(p.Envelope[:len(p.Envelope)-1]); err == nil {
			t.Fatal("a truncated envelope opened")
		}
	})
	t.Run("fail/another link", func(t *testing.T) {
		p, _ := Prepare(secret, "", 0)
		q, _ := Prepare(secret, "", 0)
		k, _ := Derive(q.LinkKey, "", nil)
		if _, err := k.Open(p.Envelope); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("another link's key: %v", err)
		}
	})
	for name, c := range map[string]struct {
		pt   []byte
		pass string
		iter int
		want error
	}{
		"fail/empty":          {nil, "", 0, ErrEmpty},
		"fail/too large":      {make([]byte, MaxPlaintext+1), "", 0, ErrTooLarge},
		"fail/few iterations": {[]byte("x"), "p", MinIterations - 1, ErrKDF},
		"fail/many":           {[]byte("x"), "p", MaxIterations + 1, ErrKDF},
		"fail/long pass":      {[]byte("x"), strings.Repeat("p", MaxPassphrase+1), MinIterations, ErrPassphrase},
		"fail/spaces only":    {[]byte("x"), "   ", MinIterations, ErrPassphraseSpaces},
		"fail/trailing space": {[]byte("x"), "plum harbour ", MinIterations, ErrPassphraseSpaces},
		"fail/leading tab":    {[]byte("x"), "\tplum harbour", MinIterations, ErrPassphraseSpaces},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Prepare(c.pt, c.pass, c.iter); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := Derive(seq(31), "", nil); !errors.Is(err, ErrLinkKey) {
		t.Errorf("short link key: %v", err)
	}
	if _, err := Derive(seq(32), "", &KDF{Salt: seq(16), Iterations: MinIterations}); !errors.Is(err, ErrPassphrase) {
		t.Errorf("empty passphrase with kdf: %v", err)
	}
	if _, err := Prepare(make([]byte, MaxPlaintext), "", 0); err != nil {
		t.Errorf("largest secret: %v", err)
	}
}

func TestKeysNeverPrint(t *testing.T) {
	k, _ := Derive(seq(32), "", nil)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(s, fmt.Sprintf("%x", k.enc[:4])) || strings.Contains(s, string(k.enc[:4])) || !strings.Contains(s, "REDACTED") {
			t.Errorf("keys print as %q", s)
		}
	}
}

func TestCheckEnvelope(t *testing.T) {
	ok := append([]byte{Version}, make([]byte, Overhead)...)
	for name, c := range map[string]struct {
		b    []byte
		good bool
	}{
		"ok/smallest":       {ok, true},
		"ok/largest":        {append([]byte{Version}, make([]byte, MaxEnvelope-1)...), true},
		"fail/empty":        {nil, false},
		"fail/no plaintext": {ok[:Overhead], false},
		"fail/version 2":    {append([]byte{2}, ok[1:]...), false},
		"fail/too large":    {append([]byte{Version}, make([]byte, MaxEnvelope)...), false},
	} {
		t.Run(name, func(t *testing.T) {
			if err := CheckEnvelope(c.b); (err == nil) != c.good {
				t.Fatalf("CheckEnvelope = %v, want good=%v", err, c.good)
			}
		})
	}
}

func TestLink(t *testing.T) {
	key := seq(32)
	l := &Link{Base: "https://vault.example.com/", ID: "shr_abcdefghijklmnopqrst", Key: key}
	s := l.String()
	if s != "https://vault.example.com/s/shr_abcdefghijklmnopqrst#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" {
		t.Fatalf("link = %s", s)
	}
	for name, c := range map[string]struct {
		in       string
		base, id string
	}{
		"ok/plain":        {s, "https://vault.example.com", "shr_abcdefghijklmnopqrst"},
		"ok/spaces":       {"  " + s + "\n", "https://vault.example.com", "shr_abcdefghijklmnopqrst"},
		"ok/port":         {"https://127.0.0.1:8443/s/shr_abcdefghijklmnopqr23#" + s[strings.Index(s, "#")+1:], "https://127.0.0.1:8443", "shr_abcdefghijklmnopqr23"},
		"ok/sub path":     {"https://example.com/custodia/s/shr_abcdefghijklmnopqrst#" + s[strings.Index(s, "#")+1:], "https://example.com/custodia", "shr_abcdefghijklmnopqrst"},
		"ok/query":        {"https://example.com/s/shr_abcdefghijklmnopqrst?utm=x#" + s[strings.Index(s, "#")+1:], "https://example.com", "shr_abcdefghijklmnopqrst"},
		"ok/padded":       {s + "=", "https://vault.example.com", "shr_abcdefghijklmnopqrst"},
		"fail/http":       {strings.Replace(s, "https", "http", 1), "", ""},
		"fail/no key":     {s[:strings.Index(s, "#")], "", ""},
		"fail/short key":  {s[:len(s)-2], "", ""},
		"fail/long key":   {s + "AA", "", ""},
		"fail/bad key":    {s[:len(s)-1] + "!", "", ""},
		"fail/std b64":    {strings.Replace(s, "#", "#+/", 1)[:len(s)], "", ""},
		"fail/bad id":     {strings.Replace(s, "shr_abcdefghijklmnopqrst", "shr_ABCDEFGHIJKLMNOPQRST", 1), "", ""},
		"fail/short id":   {strings.Replace(s, "shr_abcdefghijklmnopqrst", "shr_abc", 1), "", ""},
		"fail/other id":   {strings.Replace(s, "shr_", "crd_", 1), "", ""},
		"fail/no /s/":     {strings.Replace(s, "/s/", "/x/", 1), "", ""},
		"fail/trailing /": {strings.Replace(s, "#", "/#", 1), "", ""},
		"fail/user":       {strings.Replace(s, "https://", "https://me@", 1), "", ""},
		"fail/no host":    {"https:///s/shr_abcdefghijklmnopqrst#" + s[strings.Index(s, "#")+1:], "", ""},
		"fail/garbage":    {"not a link", "", ""},
		"fail/empty":      {"", "", ""},
		"fail/huge":       {s + strings.Repeat("A", 3000), "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseLink(c.in)
			if c.id == "" {
				if !errors.Is(err, ErrLink) {
					t.Fatalf("ParseLink(%q) = %+v, %v; want ErrLink", c.in, got, err)
				}
				return
			}
			if err != nil || got.Base != c.base || got.ID != c.id || !bytes.Equal(got.Key, key) {
				t.Fatalf("ParseLink(%q) = %+v, %v", c.in, got, err)
			}
		})
	}
	for _, id := range []string{"shr_", "shr_abcdefghijklmnopqrs1", "shr_abcdefghijklmnopqrs8", "SHR_abcdefghijklmnopqrst", "shr_abcdefghijklmnopqrstu"} {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}
