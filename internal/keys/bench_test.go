package keys_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/custodia-project/custodia/internal/store"
)

func BenchmarkSeal1KiB(b *testing.B) {
	s, _, kr, _, _ := unsealed(b)
	ctx := context.Background()
	mkTenant(b, s, kr, "a")
	pt := make([]byte, 1024)
	_ = s.View(ctx, func(tx store.Tx) error {
		b.SetBytes(1024)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := kr.Seal(ctx, tx, "a", "cred", "1", pt); err != nil {
				b.Fatal(err)
			}
		}
		return nil
	})
}

func BenchmarkOpen1KiB(b *testing.B) {
	s, _, kr, _, _ := unsealed(b)
	ctx := context.Background()
	mkTenant(b, s, kr, "a")
	_ = s.View(ctx, func(tx store.Tx) error {
		_, ct, _ := kr.Seal(ctx, tx, "a", "cred", "1", make([]byte, 1024))
		b.SetBytes(1024)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := kr.Open(ctx, tx, "a", "cred", "1", ct); err != nil {
				b.Fatal(err)
			}
		}
		return nil
	})
}

// BenchmarkKeyringLookup measures finding a tenant's active key among many
// cached tenants: the cost every seal and open pays before the cipher.
func BenchmarkKeyringLookup(b *testing.B) {
	s, _, kr, _, _ := unsealed(b)
	ctx := context.Background()
	const tenants = 1000
	_ = s.Update(ctx, func(tx store.Tx) error {
		for i := range tenants {
			id := fmt.Sprint("t", i)
			if err := tx.CreateTenant(ctx, &store.Tenant{ID: id, Slug: id, Name: id, Status: store.TenantActive}); err != nil {
				return err
			}
			if err := kr.CreateTenantKeys(ctx, tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	_ = s.View(ctx, func(tx store.Tx) error {
		for i := range tenants {
			_, _, _ = kr.PublicKey(ctx, tx, fmt.Sprint("t", i))
		}
		ids := make([]string, tenants)
		for i := range ids {
			ids[i] = fmt.Sprint("t", i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, _, err := kr.PublicKey(ctx, tx, ids[i%tenants]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		return nil
	})
}
