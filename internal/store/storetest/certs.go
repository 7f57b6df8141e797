package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

func testCertificates(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	mkTenant(t, s, "t2")
	day := 24 * time.Hour
	mkCred := func(tenant, id, name string) {
		update(t, s, func(tx store.Tx) error {
			if err := tx.InsertCredential(ctx, &store.Credential{TenantID: tenant, ID: id, Name: name, Group: "certs", Kind: store.KindCertificate,
				OwnerID: "m1", MaxVersions: 10, CurrentVersion: 1, CreatedBy: "m1", CreatedAt: t0, UpdatedAt: t0}); err != nil {
				return err
			}
			return tx.InsertCredentialVersion(ctx, &store.CredentialVersion{TenantID: tenant, CredentialID: id, Version: 1,
				Fields: []string{"certificate", "private_key"}, Strength: -1, CreatedBy: "m1", CreatedAt: t0})
		})
	}
	mkCert := func(tenant, id, holder string, notAfter time.Time) *store.Certificate {
		return &store.Certificate{TenantID: tenant, CredentialID: id, Version: 1, Subject: "CN=ACME SL,O=ACME", Issuer: "CN=AC FNMT Usuarios",
			Serial: "4f2a", NotBefore: t0.Add(-day), NotAfter: notAfter, Fingerprint: bytes.Repeat([]byte{7}, 32), KeyAlgorithm: "RSA-2048",
			HolderID: holder, CreatedAt: t0, UpdatedAt: t0}
	}
	for _, c := range []struct{ tenant, id, holder string }{{"t1", "crd_a", "mem_1"}, {"t1", "crd_b", ""}, {"t1", "crd_c", "mem_1"}, {"t2", "crd_d", "mem_9"}} {
		mkCred(c.tenant, c.id, "certs/"+c.id)
	}
	// Metadata needs its credential.
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.PutCertificate(ctx, mkCert("t1", "crd_none", "", t0)) }); err == nil {
		t.Error("certificate without a credential was stored")
	}
	update(t, s, func(tx store.Tx) error {
		for _, c := range []*store.Certificate{
			mkCert("t1", "crd_a", "mem_1", t0.Add(20*day)),
			mkCert("t1", "crd_b", "", t0.Add(5*day)),
			mkCert("t1", "crd_c", "mem_1", t0.Add(400*day)),
			mkCert("t2", "crd_d", "mem_9", t0.Add(-day)),
		} {
			if err := tx.PutCertificate(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetCertificate(ctx, "t1", "crd_a")
		if err != nil || got.Subject != "CN=ACME SL,O=ACME" || got.Issuer != "CN=AC FNMT Usuarios" || got.Serial != "4f2a" ||
			!got.NotAfter.Equal(t0.Add(20*day)) || !got.NotBefore.Equal(t0.Add(-day)) || len(got.Fingerprint) != 32 ||
			got.KeyAlgorithm != "RSA-2048" || got.HolderID != "mem_1" || got.Version != 1 || !got.Alerted30Days.IsZero() {
			t.Errorf("GetCertificate = %+v, %v", got, err)
		}
		if _, err := tx.GetCertificate(ctx, "t2", "crd_a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("certificate of another tenant = %v", err)
		}
		return nil
	})
	ids := func(f store.CertificateFilter) []string {
		t.Helper()
		var out []string
		view(t, s, func(tx store.Tx) error {
			cs, err := tx.ListCertificates(ctx, f)
			out = each(cs, func(c store.Certificate) string { return c.CredentialID })
			return err
		})
		return out
	}
	if got := ids(store.CertificateFilter{TenantID: "t1"}); !slices.Equal(got, []string{"crd_b", "crd_a", "crd_c"}) {
		t.Errorf("list by expiry = %v", got)
	}
	if got := ids(store.CertificateFilter{TenantID: "t1", ExpiresBy: t0.Add(30 * day)}); !slices.Equal(got, []string{"crd_b", "crd_a"}) {
		t.Errorf("expiring within 30 days = %v", got)
	}
	if got := ids(store.CertificateFilter{ExpiresBy: t0.Add(30 * day)}); !slices.Equal(got, []string{"crd_d", "crd_b", "crd_a"}) {
		t.Errorf("every tenant's, expiring within 30 days = %v", got)
	}
	if got := ids(store.CertificateFilter{TenantID: "t1", HolderID: "mem_1"}); !slices.Equal(got, []string{"crd_a", "crd_c"}) {
		t.Errorf("by holder = %v", got)
	}
	if got := ids(store.CertificateFilter{TenantID: "t1", Limit: 1}); !slices.Equal(got, []string{"crd_b"}) {
		t.Errorf("limit = %v", got)
	}

	// Only live certificates are listed: the facts of a current version
	// that is deleted or destroyed, or of a version that is no longer the
	// current one, are not (GetCertificate still reads them).
	setVersion := func(id string, change func(*store.CredentialVersion)) {
		t.Helper()
		update(t, s, func(tx store.Tx) error {
			v, err := tx.GetCredentialVersion(ctx, "t1", id, 1)
			if err != nil {
				return err
			}
			change(v)
			return tx.UpdateCredentialVersion(ctx, v)
		})
	}
	setVersion("crd_a", func(v *store.CredentialVersion) { v.DeletedAt = t0.Add(time.Hour) })
	setVersion("crd_c", func(v *store.CredentialVersion) { v.DestroyedAt = t0.Add(time.Hour) })
	if got := ids(store.CertificateFilter{TenantID: "t1"}); !slices.Equal(got, []string{"crd_b"}) {
		t.Errorf("with crd_a's version deleted and crd_c's destroyed = %v", got)
	}
	if got := ids(store.CertificateFilter{TenantID: "t1", HolderID: "mem_1"}); len(got) != 0 {
		t.Errorf("by holder, none live = %v", got)
	}
	// IncludeDeleted adds the restorable ones, never the destroyed.
	if got := ids(store.CertificateFilter{TenantID: "t1", IncludeDeleted: true}); !slices.Equal(got, []string{"crd_b", "crd_a"}) {
		t.Errorf("live and deleted = %v", got)
	}
	if got := ids(store.CertificateFilter{TenantID: "t1", HolderID: "mem_1", IncludeDeleted: true}); !slices.Equal(got, []string{"crd_a"}) {
		t.Errorf("by holder, live and deleted = %v", got)
	}
	view(t, s, func(tx store.Tx) error {
		if got, err := tx.GetCertificate(ctx, "t1", "crd_a"); err != nil || got.Serial != "4f2a" {
			t.Errorf("GetCertificate of a deleted version = %+v, %v", got, err)
		}
		return nil
	})
	setVersion("crd_a", func(v *store.CredentialVersion) { v.DeletedAt = time.Time{} })
	update(t, s, func(tx store.Tx) error {
		c, err := tx.GetCredential(ctx, "t2", "crd_d")
		if err != nil {
			return err
		}
		c.CurrentVersion = 2 // a version the facts do not describe
		return tx.UpdateCredential(ctx, c)
	})
	if got := ids(store.CertificateFilter{ExpiresBy: t0.Add(30 * day)}); !slices.Equal(got, []string{"crd_b", "crd_a"}) {
		t.Errorf("undeleted crd_a, crd_d's facts of an older version = %v", got)
	}

	// Alerts are marked once: the second mark reports false and keeps the
	// first time.
	update(t, s, func(tx store.Tx) error {
		ok, err := tx.MarkCertificateAlert(ctx, "t1", "crd_a", store.CertAlert30Days, t0.Add(time.Hour))
		if err != nil || !ok {
			t.Errorf("first mark = %v, %v", ok, err)
		}
		ok, err = tx.MarkCertificateAlert(ctx, "t1", "crd_a", store.CertAlert30Days, t0.Add(2*time.Hour))
		if err != nil || ok {
			t.Errorf("second mark = %v, %v", ok, err)
		}
		if ok, err := tx.MarkCertificateAlert(ctx, "t1", "crd_zz", store.CertAlert7Days, t0); err != nil || ok {
			t.Errorf("mark of a missing certificate = %v, %v", ok, err)
		}
		if _, err := tx.MarkCertificateAlert(ctx, "t1", "crd_a", "1d; DROP TABLE certificates", t0); err == nil {
			t.Error("unknown alert name accepted")
		}
		return nil
	})
	if got := ids(store.CertificateFilter{TenantID: "t1", ExpiresBy: t0.Add(30 * day), Unalerted: store.CertAlert30Days}); !slices.Equal(got, []string{"crd_b"}) {
		t.Errorf("not yet alerted at 30 days = %v", got)
	}
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetCertificate(ctx, "t1", "crd_a")
		if err != nil || !got.Alerted30Days.Equal(t0.Add(time.Hour)) || !got.Alerted7Days.IsZero() {
			t.Errorf("after mark = %+v, %v", got, err)
		}
		if _, err := tx.ListCertificates(ctx, store.CertificateFilter{Unalerted: "nope"}); err == nil {
			t.Error("unknown alert filter accepted")
		}
		return nil
	})

	// Racing marks: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 4 {
		wg.Go(func() {
			err := s.Update(ctx, func(tx store.Tx) error {
				ok, err := tx.MarkCertificateAlert(ctx, "t1", "crd_b", store.CertAlert7Days, t0.Add(time.Hour))
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
				return err
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d racing marks won, want 1", wins)
	}

	// Put replaces, bookkeeping included.
	repl := mkCert("t1", "crd_a", "mem_2", t0.Add(700*day))
	repl.Version, repl.Serial, repl.UpdatedAt = 2, "77", t0.Add(day)
	update(t, s, func(tx store.Tx) error { return tx.PutCertificate(ctx, repl) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetCertificate(ctx, "t1", "crd_a")
		if err != nil || got.Version != 2 || got.Serial != "77" || got.HolderID != "mem_2" || !got.Alerted30Days.IsZero() ||
			!got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0.Add(day)) {
			t.Errorf("replaced = %+v, %v", got, err)
		}
		return nil
	})

	// Deleting the credential deletes its certificate.
	update(t, s, func(tx store.Tx) error { return tx.DeleteCredential(ctx, "t1", "crd_a") })
	update(t, s, func(tx store.Tx) error { return tx.DeleteCertificate(ctx, "t1", "crd_b") })
	view(t, s, func(tx store.Tx) error {
		for _, id := range []string{"crd_a", "crd_b"} {
			if _, err := tx.GetCertificate(ctx, "t1", id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("deleted certificate %s = %v", id, err)
			}
		}
		return nil
	})
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.DeleteCertificate(ctx, "t1", "crd_b") }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice = %v", err)
	}

	// Pages follow one another by cursor, ties on not_after across
	// tenants included, and together are the list read at once.
	mkTenant(t, s, "t3")
	mkTenant(t, s, "t4")
	for i := range 9 {
		tenant, id := []string{"t3", "t4"}[i%2], fmt.Sprintf("crd_p%d", i)
		mkCred(tenant, id, "certs/"+id)
		update(t, s, func(tx store.Tx) error {
			return tx.PutCertificate(ctx, mkCert(tenant, id, "mem_p", t0.Add(time.Duration(i%3)*day)))
		})
	}
	for _, f := range []store.CertificateFilter{{}, {TenantID: "t3"}, {HolderID: "mem_p", ExpiresBy: t0.Add(day)}} {
		all := ids(f)
		var paged []string
		g := f
		g.Limit = 2
		for range 20 {
			var page []store.Certificate
			view(t, s, func(tx store.Tx) error {
				var err error
				page, err = tx.ListCertificates(ctx, g)
				return err
			})
			paged = append(paged, each(page, func(c store.Certificate) string { return c.CredentialID })...)
			if len(page) < g.Limit {
				break
			}
			g.After = page[len(page)-1].Cursor()
		}
		if len(all) < 3 || !slices.Equal(paged, all) {
			t.Errorf("%+v: by pages of 2 = %v, at once = %v", f, paged, all)
		}
	}
}
