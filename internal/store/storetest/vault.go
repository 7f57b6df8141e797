package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

func testCredentials(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	mkTenant(t, s, "t2")
	mk := func(tenant, id, name string) *store.Credential {
		return &store.Credential{TenantID: tenant, ID: id, Name: name, Group: "bank", Kind: store.KindBank, Institution: "Santander",
			LoginID: "B12345678", OwnerID: "m1", Labels: map[string]string{"office": "madrid"}, RotateBy: t0.Add(90 * 24 * time.Hour),
			Revealable: []string{"m2"}, MaxVersions: 10, CreatedBy: "m1", CreatedAt: t0, UpdatedAt: t0}
	}
	c := mk("t1", "crd_1", "bank/santander/main")
	update(t, s, func(tx store.Tx) error { return tx.InsertCredential(ctx, c) })
	update(t, s, func(tx store.Tx) error { return tx.InsertCredential(ctx, mk("t1", "crd_2", "bank/bbva")) })
	update(t, s, func(tx store.Tx) error { return tx.InsertCredential(ctx, mk("t1", "crd_3", "tax/aeat")) })
	// The same name in another tenant is another credential.
	update(t, s, func(tx store.Tx) error { return tx.InsertCredential(ctx, mk("t2", "crd_4", "bank/santander/main")) })
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.InsertCredential(ctx, mk("t1", "crd_5", c.Name)) }); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate name = %v, want ErrConflict", err)
	}
	c.CurrentVersion, c.CASRequired, c.Notes, c.UpdatedAt = 2, true, "main account", t0.Add(time.Minute)
	update(t, s, func(tx store.Tx) error { return tx.UpdateCredential(ctx, c) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetCredentialByName(ctx, "t1", c.Name)
		if err != nil || got.ID != c.ID || got.CurrentVersion != 2 || !got.CASRequired || got.Labels["office"] != "madrid" ||
			!slices.Equal(got.Revealable, []string{"m2"}) || !got.RotateBy.Equal(c.RotateBy) || got.Notes != "main account" {
			t.Errorf("GetCredentialByName = %+v, %v", got, err)
		}
		if _, err := tx.GetCredential(ctx, "t2", "crd_1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("credential of another tenant = %v", err)
		}
		names := func(f store.CredentialFilter) []string {
			cs, err := tx.ListCredentials(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			return each(cs, func(c store.Credential) string { return c.Name })
		}
		if got := names(store.CredentialFilter{TenantID: "t1"}); !slices.Equal(got, []string{"bank/bbva", "bank/santander/main", "tax/aeat"}) {
			t.Errorf("list all = %v", got)
		}
		if got := names(store.CredentialFilter{TenantID: "t1", Prefix: "bank/"}); !slices.Equal(got, []string{"bank/bbva", "bank/santander/main"}) {
			t.Errorf("list prefix = %v", got)
		}
		if got := names(store.CredentialFilter{TenantID: "t1", After: "bank/bbva", Limit: 1}); !slices.Equal(got, []string{"bank/santander/main"}) {
			t.Errorf("list page = %v", got)
		}
		if got := names(store.CredentialFilter{TenantID: "t1", Prefix: "bank/%"}); len(got) != 0 {
			t.Errorf("a prefix is not a pattern: %v", got)
		}
		return nil
	})
	for v := 1; v <= 3; v++ {
		update(t, s, func(tx store.Tx) error {
			return tx.InsertCredentialVersion(ctx, &store.CredentialVersion{TenantID: "t1", CredentialID: "crd_1", Version: v,
				Fields: []string{"password"}, Fingerprint: []byte{byte(v)}, Strength: 3, CreatedBy: "m1", CreatedAt: t0.Add(time.Duration(v) * time.Minute)})
		})
	}
	update(t, s, func(tx store.Tx) error {
		v, err := tx.GetCredentialVersion(ctx, "t1", "crd_1", 2)
		if err != nil {
			return err
		}
		v.DeletedAt = t0.Add(time.Hour)
		if err := tx.UpdateCredentialVersion(ctx, v); err != nil {
			return err
		}
		return tx.DeleteCredentialVersion(ctx, "t1", "crd_1", 1)
	})
	view(t, s, func(tx store.Tx) error {
		vs, err := tx.ListCredentialVersions(ctx, "t1", "crd_1")
		if err != nil || len(vs) != 2 || vs[0].Version != 2 || !vs[0].DeletedAt.Equal(t0.Add(time.Hour)) || vs[1].Version != 3 ||
			!slices.Equal(vs[1].Fields, []string{"password"}) || vs[1].Strength != 3 || len(vs[1].Fingerprint) != 1 {
			t.Errorf("versions = %+v, %v", vs, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error { return tx.DeleteCredential(ctx, "t1", "crd_1") })
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.GetCredential(ctx, "t1", "crd_1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted credential = %v", err)
		}
		if vs, _ := tx.ListCredentialVersions(ctx, "t1", "crd_1"); len(vs) != 0 {
			t.Errorf("versions of a deleted credential = %+v", vs)
		}
		return nil
	})
}

func testLeases(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	for i, id := range []string{"l1", "l2", "l3"} {
		update(t, s, func(tx store.Tx) error {
			return tx.InsertLease(ctx, &store.Lease{ID: id, TenantID: "t1", CredentialID: "crd_1", Version: 1, SubjectType: store.SubjectRobot,
				SubjectID: "rbt_" + id, Purpose: "payroll run", CreatedAt: t0.Add(time.Duration(i) * time.Second), ExpiresAt: t0.Add(5 * time.Minute)})
		})
	}
	update(t, s, func(tx store.Tx) error {
		l, err := tx.GetLease(ctx, "t1", "l2")
		if err != nil {
			return err
		}
		l.RevokedAt = t0.Add(time.Minute)
		return tx.UpdateLease(ctx, l)
	})
	// What a renewal reads and writes (a tenant of its own, so the counts
	// below stay): the lifetime first granted, kept
	// through the insert (plain, and deferred to a group commit's flush),
	// and the last renewal, kept by UpdateLease.
	mkTenant(t, s, "t3")
	for _, c := range []struct {
		id  string
		ctx context.Context
	}{{"g1", ctx}, {"g2", store.Appending(ctx)}} {
		if err := s.Update(c.ctx, func(tx store.Tx) error {
			return tx.InsertLease(ctx, &store.Lease{ID: c.id, TenantID: "t3", CredentialID: "crd_9", Version: 1, SubjectType: store.SubjectRobot,
				SubjectID: "rbt_g", Purpose: "payroll run", CreatedAt: t0, ExpiresAt: t0.Add(30 * time.Minute), Granted: 30 * time.Minute})
		}); err != nil {
			t.Fatal(err)
		}
	}
	update(t, s, func(tx store.Tx) error {
		l, err := tx.GetLease(ctx, "t3", "g1")
		if err != nil {
			return err
		}
		if l.Granted != 30*time.Minute || !l.RenewedAt.IsZero() {
			t.Errorf("new lease: granted %s, renewed at %v", l.Granted, l.RenewedAt)
		}
		l.ExpiresAt, l.RenewedAt = t0.Add(45*time.Minute), t0.Add(15*time.Minute)
		return tx.UpdateLease(ctx, l)
	})
	view(t, s, func(tx store.Tx) error {
		for id, renewed := range map[string]time.Time{"g1": t0.Add(15 * time.Minute), "g2": {}} {
			l, err := tx.GetLease(ctx, "t3", id)
			if err != nil {
				return err
			}
			if l.Granted != 30*time.Minute || !l.RenewedAt.Equal(renewed) {
				t.Errorf("lease %s: granted %s, renewed at %v; want 30m0s, %v", id, l.Granted, l.RenewedAt, renewed)
			}
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		live, err := tx.ListLeases(ctx, "t1", "crd_1", "", t0.Add(2*time.Minute))
		if err != nil || len(live) != 2 || live[0].ID != "l3" || live[1].ID != "l1" {
			t.Errorf("live leases = %+v, %v", live, err)
		}
		if all, _ := tx.ListLeases(ctx, "t1", "", "", time.Time{}); len(all) != 3 {
			t.Errorf("all leases = %d", len(all))
		}
		if mine, _ := tx.ListLeases(ctx, "t1", "", "rbt_l1", t0); len(mine) != 1 || mine[0].Purpose != "payroll run" {
			t.Errorf("a subject's leases = %+v", mine)
		}
		if gone, _ := tx.ListLeases(ctx, "t1", "crd_1", "", t0.Add(5*time.Minute)); len(gone) != 0 {
			t.Errorf("leases at their expiry = %+v", gone)
		}
		if _, err := tx.GetLease(ctx, "t2", "l1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("lease of another tenant = %v", err)
		}
		return nil
	})
	// Many leases in one transaction (engines may hold them back and write
	// them together): the transaction reads its own, and all persist.
	const many = 70
	update(t, s, func(tx store.Tx) error {
		for i := range many {
			if err := tx.InsertLease(ctx, &store.Lease{ID: fmt.Sprint("m", i), TenantID: "t1", CredentialID: "crd_2", Version: 1,
				SubjectType: store.SubjectRobot, SubjectID: "rbt_m", Purpose: "batch", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}); err != nil {
				return err
			}
		}
		if l, err := tx.GetLease(ctx, "t1", "m69"); err != nil || l.Purpose != "batch" {
			t.Errorf("lease written in this transaction = %+v, %v", l, err)
		}
		if err := tx.InsertLease(ctx, &store.Lease{ID: "m-last", TenantID: "t1", CredentialID: "crd_2", Version: 1,
			SubjectType: store.SubjectRobot, SubjectID: "rbt_m", Purpose: "batch", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}); err != nil {
			return err
		}
		mine, err := tx.ListLeases(ctx, "t1", "crd_2", "", time.Time{})
		if err != nil || len(mine) != many+1 {
			t.Errorf("leases listed in the transaction that wrote them = %d, %v", len(mine), err)
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		if mine, err := tx.ListLeases(ctx, "t1", "crd_2", "", time.Time{}); err != nil || len(mine) != many+1 {
			t.Errorf("leases after commit = %d, %v", len(mine), err)
		}
		return nil
	})
	// Expired leases are purged oldest first, at most limit at a time; live
	// ones stay.
	purge := func(before time.Time, limit int) int64 {
		var n int64
		update(t, s, func(tx store.Tx) error {
			var err error
			n, err = tx.DeleteExpiredLeases(ctx, before, limit)
			return err
		})
		return n
	}
	if n := purge(t0.Add(time.Minute), 10); n != 0 {
		t.Errorf("purged %d leases before any expired", n)
	}
	if n := purge(t0.Add(2*time.Minute), 50); n != 50 {
		t.Errorf("purge with limit 50 = %d", n)
	}
	if n := purge(t0.Add(2*time.Minute), 1000); n != many+1-50 {
		t.Errorf("purge of the rest = %d", n)
	}
	view(t, s, func(tx store.Tx) error {
		if left, err := tx.ListLeases(ctx, "t1", "", "", time.Time{}); err != nil || len(left) != 3 {
			t.Errorf("leases after the purge = %d, %v", len(left), err)
		}
		return nil
	})
}
