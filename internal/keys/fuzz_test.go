package keys_test

import (
	"context"
	"testing"

	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
)

// Sealed submissions come from clients: any byte string must be refused
// cleanly or opened, never panic.
func FuzzOpenSubmission(f *testing.F) {
	s, _, kr, _, _ := unsealed(f)
	ctx := context.Background()
	mkTenant(f, s, kr, "a")
	var v int
	var pub []byte
	_ = s.View(ctx, func(tx store.Tx) error { v, pub, _ = kr.PublicKey(ctx, tx, "a"); return nil })
	good, _ := keys.SealSubmission("a", v, pub, []byte("x"))
	f.Add(good)
	f.Add([]byte{1, 0, 0, 0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = s.View(ctx, func(tx store.Tx) error {
			pt, err := kr.OpenSubmission(ctx, tx, "a", b)
			if err == nil && string(pt) != "x" {
				t.Fatalf("opened forged submission: %q", pt)
			}
			return nil
		})
	})
}

func FuzzOpenRecord(f *testing.F) {
	s, _, kr, _, _ := unsealed(f)
	ctx := context.Background()
	mkTenant(f, s, kr, "a")
	var ct []byte
	_ = s.Update(ctx, func(tx store.Tx) error { _, ct, _ = kr.Seal(ctx, tx, "a", "k", "1", []byte("x")); return nil })
	f.Add(ct)
	f.Add([]byte{1, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = s.View(ctx, func(tx store.Tx) error {
			pt, err := kr.Open(ctx, tx, "a", "k", "1", b)
			if err == nil && string(pt) != "x" {
				t.Fatalf("opened forged record: %q", pt)
			}
			return nil
		})
	})
}

func FuzzDecodeShare(f *testing.F) {
	f.Add("AAAA")
	f.Add("  dGVzdA==\n")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := keys.DecodeShare(s)
		if err == nil && (len(b) < keys.RootKeySize || len(b) > keys.RootKeySize+1) {
			t.Fatalf("accepted a share of %d bytes", len(b))
		}
	})
}

func FuzzParseKey(f *testing.F) {
	f.Add([]byte("aGVsbG8="))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := keys.ParseKey(b)
		if err == nil && len(k) != keys.RootKeySize {
			t.Fatalf("accepted a %d-byte key", len(k))
		}
	})
}
