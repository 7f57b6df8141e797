package secretcheck

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, MinFingerprintKey) }

func TestFingerprint(t *testing.T) {
	key := testKey(0x0b)
	t.Run("ok/equal passwords, equal fingerprints", func(t *testing.T) {
		if !hmac.Equal(Fingerprint(key, "Hunter2!x"), Fingerprint(key, "Hunter2!x")) {
			t.Fatal("same password and key differ")
		}
	})
	t.Run("ok/different passwords differ", func(t *testing.T) {
		if hmac.Equal(Fingerprint(key, "Hunter2!x"), Fingerprint(key, "hunter2!x")) {
			t.Fatal("different passwords collide")
		}
	})
	t.Run("ok/tenant keys separate", func(t *testing.T) {
		if hmac.Equal(Fingerprint(testKey(1), "Hunter2!x"), Fingerprint(testKey(2), "Hunter2!x")) {
			t.Fatal("same password under two tenants' keys is equal")
		}
	})
	for _, n := range []int{0, 16, MinFingerprintKey - 1} {
		t.Run("fail/short key panics", func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("key of %d bytes accepted", n)
				}
			}()
			Fingerprint(make([]byte, n), "x")
		})
	}
}

// TestFingerprintKnownAnswer pins the construction: HMAC-SHA-256 over the
// password's UTF-8 bytes, nothing prepended, no normalisation. Changing it
// would silently split every stored reuse group. The expected values come
// from Python's hmac module, not from Go.
func TestFingerprintKnownAnswer(t *testing.T) {
	tests := []struct{ password, want string }{
		{"what do ya want for nothing?", "c3f2649c34ea24e4d62a2c7e868bbea0233c9d4c2cc300794db76aa18d6822d8"},
		{"contraseña", "a80244689c6a2d6a4edf98fdd93a8ed9232ccfaa6bbdbe28175d6a6d5b48d5f8"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(Fingerprint(testKey(0x0b), tt.password)); got != tt.want {
			t.Errorf("Fingerprint(0x0b*32, %q) = %s, want %s", tt.password, got, tt.want)
		}
	}
}

func TestStrength(t *testing.T) {
	tests := []struct {
		name     string
		password string
		inputs   []string
		min, max int
	}{
		{"weak/common", "password", nil, 0, 0},
		{"weak/short", "abc12", nil, 0, 1},
		{"weak/built from the login", "acme.es2024", []string{"ana.garcia@acme.es"}, 0, 2},
		{"strong/same without the login", "acme.es2024", nil, 3, 4},
		{"strong/passphrase", "ladle quantum fjord zebra", nil, 4, 4},
		{"strong/generated", "t7Vq#9mK!xP2rW$e", nil, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s := Strength(tt.password, tt.inputs...); s < tt.min || s > tt.max {
				t.Fatalf("Strength(%q) = %d, want %d..%d", tt.password, s, tt.min, tt.max)
			}
		})
	}
}

func TestBreached(t *testing.T) {
	for _, p := range []string{"123456", "password", "PASSWORD", "qwerty", "trustno1", "1qaz2wsx3edc"} {
		if !Breached(p) {
			t.Errorf("Breached(%q) = false", p)
		}
	}
	for _, p := range []string{"", "ladle quantum fjord zebra", "t7Vq#9mK!xP2rW$e", "\xff\xfe"} {
		if Breached(p) {
			t.Errorf("Breached(%q) = true", p)
		}
	}
}

func TestHealth(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	key := testKey(7)
	const strong = "ladle quantum fjord zebra"
	creds := []Credential{
		{ID: "c-bank", Password: strong, OwnerActive: true, RotateBy: now.Add(time.Hour)},
		{ID: "a-tax", Password: strong, OwnerActive: true, RotateBy: now.Add(-time.Hour)},
		{ID: "b-payroll", Password: "password", OwnerActive: false},
		{ID: "d-cert", Password: "", OwnerActive: true},
		{ID: "e-invoice", Password: "t7Vq#9mK!xP2rW$e", OwnerActive: true, RotateBy: now},
		{ID: "f-robot", Password: strong, OwnerActive: true},
		{ID: "g-login", Password: "acme.es2024", UserInputs: []string{"ana.garcia@acme.es"}, OwnerActive: true},
	}
	group := []string{"a-tax", "c-bank", "f-robot"}
	want := []Finding{
		{ID: "a-tax", Problem: Reused, Group: group},
		{ID: "a-tax", Problem: Overdue, RotateBy: now.Add(-time.Hour)},
		{ID: "b-payroll", Problem: Breach},
		{ID: "b-payroll", Problem: Weak, Score: 0},
		{ID: "b-payroll", Problem: Orphaned},
		{ID: "c-bank", Problem: Reused, Group: group},
		{ID: "f-robot", Problem: Reused, Group: group},
		{ID: "g-login", Problem: Weak, Score: Strength("acme.es2024", "ana.garcia@acme.es")},
	}
	got := Health(key, now, creds)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Health:\n got %+v\nwant %+v", got, want)
	}

	t.Run("ok/order does not matter", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for range 10 {
			shuffled := slices.Clone(creds)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if got := Health(key, now, shuffled); !reflect.DeepEqual(got, want) {
				t.Fatalf("shuffled input gave\n%+v", got)
			}
		}
	})
	t.Run("ok/exactly at rotate-by is not overdue", func(t *testing.T) {
		for _, f := range got {
			if f.ID == "e-invoice" {
				t.Fatalf("unexpected finding %+v", f)
			}
		}
	})
	t.Run("ok/clean tenant", func(t *testing.T) {
		if got := Health(key, now, []Credential{{ID: "x", Password: strong, OwnerActive: true}}); len(got) != 0 {
			t.Fatalf("findings %+v", got)
		}
		if got := Health(key, now, nil); got != nil {
			t.Fatalf("findings %+v", got)
		}
	})
	t.Run("ok/groups do not alias", func(t *testing.T) {
		got := Health(key, now, creds)
		got[0].Group[0] = "mutated"
		for _, f := range got[1:] {
			if f.Problem == Reused && f.Group[0] == "mutated" {
				t.Fatal("findings share a Group slice")
			}
		}
	})
}
