package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

// testInsertRecord: InsertRecord never replaces, and of concurrent
// inserters of one record exactly one wins.
func testInsertRecord(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "a")
	rec := func(body string) *store.Record {
		return &store.Record{TenantID: "a", Kind: "keys.mac", ID: "p", KeyVersion: 1, Ciphertext: []byte(body), CreatedAt: t0, UpdatedAt: t0}
	}
	update(t, s, func(tx store.Tx) error {
		ok, err := tx.InsertRecord(ctx, rec("first"))
		if err != nil || !ok {
			t.Errorf("first InsertRecord = %v, %v", ok, err)
		}
		ok, err = tx.InsertRecord(ctx, rec("second"))
		if err != nil || ok {
			t.Errorf("InsertRecord over an existing record = %v, %v; want false", ok, err)
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		if r, err := tx.GetRecord(ctx, "a", "keys.mac", "p"); err != nil || string(r.Ciphertext) != "first" {
			t.Errorf("record after a losing insert = %+v, %v", r, err)
		}
		return nil
	})
	// Concurrent first inserts of another record: each reads what won in
	// its own transaction, and every one read the same body.
	const n = 8
	var wg sync.WaitGroup
	wins := make(chan string, n)
	seen := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprint("body-", i)
			err := s.Update(ctx, func(tx store.Tx) error {
				r := rec(body)
				r.ID = "race"
				ok, err := tx.InsertRecord(ctx, r)
				if err != nil {
					return err
				}
				got, err := tx.GetRecord(ctx, "a", "keys.mac", "race")
				if err != nil {
					return err
				}
				if ok {
					wins <- body
				}
				seen <- string(got.Ciphertext)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(wins)
	close(seen)
	var won []string
	for w := range wins {
		won = append(won, w)
	}
	if len(won) != 1 {
		t.Fatalf("%d concurrent inserts won, want 1: %v", len(won), won)
	}
	for b := range seen {
		if b != won[0] {
			t.Errorf("an inserter read %q, but %q won", b, won[0])
		}
	}
}

// testCurrentCredentialVersions: the current live version of each
// credential, filtered by fingerprint, with its health fields.
func testCurrentCredentialVersions(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	mkTenant(t, s, "t2")
	fpA, fpB := []byte("fingerprint-a"), []byte("fingerprint-b")
	mk := func(tenant, id string, current int, fps ...[]byte) {
		update(t, s, func(tx store.Tx) error {
			if err := tx.InsertCredential(ctx, &store.Credential{TenantID: tenant, ID: id, Name: "bank/" + id, Group: "bank", Kind: store.KindBank,
				OwnerID: "m1", CurrentVersion: current, MaxVersions: 10, CreatedBy: "m1", CreatedAt: t0, UpdatedAt: t0}); err != nil {
				return err
			}
			for i, fp := range fps {
				if err := tx.InsertCredentialVersion(ctx, &store.CredentialVersion{TenantID: tenant, CredentialID: id, Version: i + 1,
					Fields: []string{"password"}, Fingerprint: fp, Strength: i, Breached: i == 1, CreatedBy: "m1",
					CreatedAt: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	mk("t1", "c1", 2, fpB, fpA) // current: fpA, breached, strength 1
	mk("t1", "c2", 1, fpA)      // current: fpA
	mk("t1", "c3", 2, fpA, fpB) // current: fpB; its old version had fpA
	mk("t1", "c4", 1, nil)      // no password
	mk("t1", "c5", 1, fpA)      // its current version gets deleted
	mk("t2", "c6", 1, fpA)      // another tenant
	update(t, s, func(tx store.Tx) error {
		v, err := tx.GetCredentialVersion(ctx, "t1", "c5", 1)
		if err != nil {
			return err
		}
		v.DeletedAt = t0.Add(time.Hour)
		return tx.UpdateCredentialVersion(ctx, v)
	})
	// A credential's secret is read with its version and sealed record at
	// once; any of the three missing is ErrNotFound.
	update(t, s, func(tx store.Tx) error {
		for v := 1; v <= 2; v++ {
			if err := tx.PutRecord(ctx, &store.Record{TenantID: "t1", Kind: store.RecordCredential, ID: store.CredentialRecordID("c1", v),
				KeyVersion: 1, Ciphertext: []byte(fmt.Sprint("sealed-", v)), CreatedAt: t0, UpdatedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		for _, c := range []struct{ ask, want int }{{0, 2}, {1, 1}, {2, 2}} {
			cs, err := tx.GetCredentialSecret(ctx, "t1", "bank/c1", c.ask)
			if err != nil || cs.Credential.ID != "c1" || cs.Version.Version != c.want || string(cs.Record.Ciphertext) != fmt.Sprint("sealed-", c.want) ||
				cs.Record.ID != store.CredentialRecordID("c1", c.want) || cs.Version.Fields[0] != "password" {
				t.Errorf("GetCredentialSecret(version %d) = %+v, %v", c.ask, cs, err)
			}
			byID, err := tx.GetCredentialSecretByID(ctx, "t1", "c1", c.ask)
			if err != nil || !reflect.DeepEqual(byID, cs) {
				t.Errorf("GetCredentialSecretByID(version %d) = %+v, %v; by name %+v", c.ask, byID, err, cs)
			}
		}
		byName, byID := tx.GetCredentialSecret, tx.GetCredentialSecretByID
		for _, c := range []struct {
			get          func(context.Context, string, string, int) (*store.CredentialSecret, error)
			tenant, name string
			version      int
		}{{byName, "t1", "bank/c1", 3}, {byName, "t1", "bank/c2", 0}, {byName, "t2", "bank/c1", 0}, {byName, "t1", "bank/none", 0},
			{byID, "t1", "c1", 3}, {byID, "t1", "c2", 0}, {byID, "t2", "c1", 0}, {byID, "t1", "bank/c1", 0}} {
			if _, err := c.get(ctx, c.tenant, c.name, c.version); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetCredentialSecret(ByID)(%s, %s, %d) = %v, want ErrNotFound", c.tenant, c.name, c.version, err)
			}
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		ids := func(vs []store.CredentialVersion) []string {
			return each(vs, func(v store.CredentialVersion) string { return fmt.Sprint(v.CredentialID, "/", v.Version) })
		}
		all, err := tx.ListCurrentCredentialVersions(ctx, "t1")
		if err != nil || !slices.Equal(ids(all), []string{"c1/2", "c2/1", "c3/2", "c4/1"}) {
			t.Errorf("current versions = %v, %v", ids(all), err)
		}
		if len(all) == 4 && (!all[0].Breached || all[0].Strength != 1 || string(all[0].Fingerprint) != "fingerprint-a" || all[1].Breached ||
			all[3].Fingerprint != nil) {
			t.Errorf("current versions' health = %+v", all)
		}
		// Reuse counts the other credentials whose current version shares
		// the fingerprint.
		for _, c := range []struct {
			fp     []byte
			except string
			want   int
		}{{fpA, "c1", 1}, {fpA, "c9", 2}, {[]byte("no such fingerprint"), "c1", 0}} {
			if n, err := tx.CountReuse(ctx, "t1", c.fp, c.except); err != nil || n != c.want {
				t.Errorf("CountReuse(%q, except %s) = %d, %v; want %d", c.fp, c.except, n, err, c.want)
			}
		}
		return nil
	})
}
