package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

func testShares(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	mkTenant(t, s, "t2")
	mk := func(tenant, id, by string, created, expires time.Duration) *store.Share {
		return &store.Share{ID: id, TenantID: tenant, Label: "wifi for " + id, Verifier: bytes.Repeat([]byte{7}, 32), Size: 120,
			MaxViews: 1, CreatedBy: by, CreatedAt: t0.Add(created), ExpiresAt: t0.Add(expires)}
	}
	withPass := mk("t1", "shr_2", "m2", time.Minute, 2*time.Hour)
	withPass.KDFSalt, withPass.KDFIterations, withPass.MaxViews = bytes.Repeat([]byte{9}, 16), 600000, 3
	for _, x := range []*store.Share{
		mk("t1", "shr_1", "m1", 0, time.Hour), withPass, mk("t1", "shr_3", "m1", 2*time.Minute, time.Hour),
		mk("t2", "shr_4", "m9", 0, 30*time.Minute),
	} {
		update(t, s, func(tx store.Tx) error { return tx.InsertShare(ctx, x) })
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.InsertShare(ctx, mk("t2", "shr_1", "m9", 0, time.Hour)) }); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate share ID = %v, want ErrConflict", err)
	}
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetShare(ctx, "shr_2")
		if err != nil || got.TenantID != "t1" || got.Label != "wifi for shr_2" || !bytes.Equal(got.Verifier, withPass.Verifier) ||
			!bytes.Equal(got.KDFSalt, withPass.KDFSalt) || got.KDFIterations != 600000 || got.Size != 120 || got.MaxViews != 3 ||
			got.Views != 0 || got.CreatedBy != "m2" || !got.CreatedAt.Equal(t0.Add(time.Minute)) || !got.ExpiresAt.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("GetShare = %+v, %v", got, err)
		}
		if got, _ := tx.GetShare(ctx, "shr_1"); got == nil || got.KDFSalt != nil || got.KDFIterations != 0 {
			t.Errorf("a share without passphrase = %+v", got)
		}
		if _, err := tx.GetShare(ctx, "shr_nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown share = %v", err)
		}
		ids := func(f store.ShareFilter) []string {
			ss, err := tx.ListShares(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			return each(ss, func(x store.Share) string { return x.ID })
		}
		if got := ids(store.ShareFilter{TenantID: "t1"}); !slices.Equal(got, []string{"shr_3", "shr_2", "shr_1"}) {
			t.Errorf("t1 shares, newest first = %v", got)
		}
		if got := ids(store.ShareFilter{TenantID: "t1", CreatedBy: "m1"}); !slices.Equal(got, []string{"shr_3", "shr_1"}) {
			t.Errorf("m1's shares = %v", got)
		}
		if got := ids(store.ShareFilter{TenantID: "t1", Limit: 1}); !slices.Equal(got, []string{"shr_3"}) {
			t.Errorf("one share = %v", got)
		}
		return nil
	})
	// Counters change only from the values read: a racing opener loses.
	update(t, s, func(tx store.Tx) error {
		ok, err := tx.UpdateShareCounts(ctx, "shr_2", store.ShareCounts{}, store.ShareCounts{Views: 1, FailedAttempts: 2})
		if err != nil || !ok {
			t.Errorf("first update = %v, %v", ok, err)
		}
		ok, err = tx.UpdateShareCounts(ctx, "shr_2", store.ShareCounts{}, store.ShareCounts{Views: 1})
		if err != nil || ok {
			t.Errorf("update from stale counters = %v, %v; want false", ok, err)
		}
		ok, err = tx.UpdateShareCounts(ctx, "shr_gone", store.ShareCounts{}, store.ShareCounts{Views: 1})
		if err != nil || ok {
			t.Errorf("update of a missing share = %v, %v; want false", ok, err)
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		if got, _ := tx.GetShare(ctx, "shr_2"); got == nil || got.Views != 1 || got.FailedAttempts != 2 {
			t.Errorf("counters = %+v", got)
		}
		// Expired at or before the time, across tenants, soonest first.
		ex, err := tx.ListExpiredShares(ctx, t0.Add(time.Hour), 10)
		var got []string
		for _, x := range ex {
			got = append(got, x.ID)
		}
		if err != nil || !slices.Equal(got, []string{"shr_4", "shr_1", "shr_3"}) {
			t.Errorf("expired by t0+1h = %v, %v", got, err)
		}
		if ex, _ := tx.ListExpiredShares(ctx, t0.Add(time.Hour-time.Microsecond), 10); len(ex) != 1 || ex[0].ID != "shr_4" {
			t.Errorf("expired a microsecond earlier = %+v", ex)
		}
		if ex, _ := tx.ListExpiredShares(ctx, t0.Add(time.Hour), 1); len(ex) != 1 {
			t.Errorf("limit 1 = %d shares", len(ex))
		}
		return nil
	})
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.DeleteShare(ctx, "t2", "shr_1") }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete through another tenant = %v, want ErrNotFound", err)
	}
	update(t, s, func(tx store.Tx) error { return tx.DeleteShare(ctx, "t1", "shr_1") })
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.DeleteShare(ctx, "t1", "shr_1") }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.GetShare(ctx, "shr_1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted share = %v", err)
		}
		return nil
	})
}
