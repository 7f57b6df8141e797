package keys_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
)

func macKey(t *testing.T, s store.Store, kr *keys.Keyring, tenant, purpose string) ([]byte, error) {
	t.Helper()
	var out []byte
	err := s.Update(context.Background(), func(tx store.Tx) error {
		k, err := kr.MACKey(context.Background(), tx, tenant, purpose)
		out = bytes.Clone(k)
		return err
	})
	return out, err
}

// A tenant's MAC key is random, stable, its own, sealed at rest, kept
// through key rotation and gone with shredding.
func TestMACKey(t *testing.T) {
	ctx := context.Background()
	s, _, kr, _, _ := unsealed(t)
	mkTenant(t, s, kr, "a")
	mkTenant(t, s, kr, "b")
	a1, err := macKey(t, s, kr, "a", "password-fingerprint")
	if err != nil || len(a1) != keys.MACKeySize || bytes.Equal(a1, make([]byte, keys.MACKeySize)) {
		t.Fatalf("MACKey = %x, %v", a1, err)
	}
	if a2, err := macKey(t, s, kr, "a", "password-fingerprint"); err != nil || !bytes.Equal(a1, a2) {
		t.Errorf("second MACKey = %x, %v; want the first key", a2, err)
	}
	if b, _ := macKey(t, s, kr, "b", "password-fingerprint"); bytes.Equal(a1, b) {
		t.Error("two tenants share a MAC key")
	}
	if other, _ := macKey(t, s, kr, "a", "other-purpose"); bytes.Equal(a1, other) {
		t.Error("two purposes share a MAC key")
	}
	if _, err := macKey(t, s, kr, "a", ""); err == nil {
		t.Error("MACKey without a purpose succeeded")
	}
	rec, err := getRecord(s, "a", keys.KindMACKey, "password-fingerprint")
	if err != nil || bytes.Contains(rec.Ciphertext, a1) {
		t.Fatalf("stored MAC key record = %v (holds the key in clear: %v)", err, err == nil)
	}

	// Rotation re-wraps the record; the key stays the same.
	if err := s.Update(ctx, func(tx store.Tx) error { _, err := kr.Rotate(ctx, tx, "a"); return err }); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := kr.Rewrap(ctx, s, "a", 10)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if rec, _ := getRecord(s, "a", keys.KindMACKey, "password-fingerprint"); rec.KeyVersion != 2 {
		t.Errorf("MAC key record at key version %d after rewrap, want 2", rec.KeyVersion)
	}
	if a3, err := macKey(t, s, kr, "a", "password-fingerprint"); err != nil || !bytes.Equal(a1, a3) {
		t.Errorf("MACKey after rotation = %x, %v; want the first key", a3, err)
	}

	if err := s.Update(ctx, func(tx store.Tx) error { return kr.Shred(ctx, tx, "a") }); err != nil {
		t.Fatal(err)
	}
	if _, err := macKey(t, s, kr, "a", "password-fingerprint"); !errors.Is(err, keys.ErrKeyDestroyed) {
		t.Errorf("MACKey after shredding = %v, want ErrKeyDestroyed", err)
	}
}

// Concurrent first uses agree on one key.
func TestMACKeyConcurrentFirstUse(t *testing.T) {
	s, _, kr, _, _ := unsealed(t)
	mkTenant(t, s, kr, "a")
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Go(func() {
			k, err := macKey(t, s, kr, "a", "p")
			if err != nil {
				t.Error(err)
			}
			got[i] = k
		})
	}
	wg.Wait()
	for i := range got {
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("concurrent first uses got different keys: %x and %x", got[0], got[i])
		}
	}
}

func getRecord(s store.Store, tenant, kind, id string) (*store.Record, error) {
	var r *store.Record
	err := s.View(context.Background(), func(tx store.Tx) error {
		var err error
		r, err = tx.GetRecord(context.Background(), tenant, kind, id)
		return err
	})
	return r, err
}
