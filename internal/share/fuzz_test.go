package share

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// FuzzParseLink: any string either parses into a link that prints back to
// an equivalent link, or is refused; never a panic.
func FuzzParseLink(f *testing.F) {
	key := seq(32)
	f.Add((&Link{Base: "https://vault.example.com", ID: "shr_abcdefghijklmnopqrst", Key: key}).String())
	f.Add("https://127.0.0.1:8443/custodia/s/shr_abcdefghijklmnopqrst?x=1#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	f.Add("https://h/s/shr_abcdefghijklmnopqrst#")
	f.Add("http://h/s/x#y")
	f.Add("https://%zz/s/#")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLink(s)
		if err != nil {
			return
		}
		if !ValidID(l.ID) || len(l.Key) != KeySize {
			t.Fatalf("ParseLink(%q) accepted %+v", s, l)
		}
		again, err := ParseLink(l.String())
		if err != nil || again.Base != l.Base || again.ID != l.ID || !bytes.Equal(again.Key, l.Key) {
			t.Fatalf("round trip of %q: %+v, %v", l.String(), again, err)
		}
	})
}

// FuzzOpenEnvelope: arbitrary bytes never open under a key that did not
// seal them, and the shape check agrees with Open on what is an envelope.
func FuzzOpenEnvelope(f *testing.F) {
	// Fixed, so every fuzzing process agrees on it (Seal picks a random
	// nonce): the WebCrypto envelope of TestKnownAnswers.
	k, _ := Derive(seq(32), "", nil)
	good, _ := hex.DecodeString("01000102030405060708090a0bfdea4e15ec732355b7172a6c343a951f4ebb9aabba3bf6cd68a63d")
	f.Add(good)
	f.Add(good[:Overhead])
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		shapeErr := CheckEnvelope(b)
		pt, err := k.Open(b)
		if shapeErr != nil && err == nil {
			t.Fatalf("Open accepted a malformed envelope %x", b)
		}
		if err == nil && !bytes.Equal(b, good) {
			// Only the seeded envelope (or a forgery, which GCM makes
			// infeasible) opens.
			t.Fatalf("forged envelope %x opened to %q", b, pt)
		}
	})
}
