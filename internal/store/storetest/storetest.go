// Package storetest is the conformance suite every storage engine must pass.
// An engine's test calls Run with a function that opens a fresh, empty store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

// Opener returns a new empty store; the suite closes it.
type Opener func(t *testing.T) store.Store

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// Run runs the whole suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Meta", testMeta},
		{"Tenants", testTenants},
		{"TenantKeys", testTenantKeys},
		{"Records", testRecords},
		{"OperatorTokens", testOperatorTokens},
		{"Audit", testAudit},
		{"AuditConcurrentAppend", testAuditConcurrent},
		{"RollbackIsAtomic", testRollback},
		{"ConcurrentUpdatesFailAlone", testConcurrentFailAlone},
		{"Jobs", testJobs},
		{"CancelledContext", testCancelled},
		{"Members", testMembers},
		{"TokensAndSessions", testTokensAndSessions},
		{"Challenges", testChallenges},
		{"Grants", testGrants},
		{"AccessRequests", testAccessRequests},
		{"Reviews", testReviews},
		{"NotificationsEvidenceFlags", testNotificationsEvidenceFlags},
		{"Credentials", testCredentials},
		{"Leases", testLeases},
		{"BreakGlass", testBreakGlass},
		{"Shares", testShares},
		{"Certificates", testCertificates},
		{"InsertRecord", testInsertRecord},
		{"CurrentCredentialVersions", testCurrentCredentialVersions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

func update(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// each maps xs to one string apiece, to compare a listing with a fixed
// order.
func each[T any](xs []T, key func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, key(x))
	}
	return out
}

func mkTenant(t *testing.T, s store.Store, id string) {
	t.Helper()
	update(t, s, func(tx store.Tx) error {
		return tx.CreateTenant(context.Background(), &store.Tenant{
			ID: id, Slug: "slug-" + id, Name: "Tenant " + id, Status: store.TenantActive, CreatedAt: t0, UpdatedAt: t0})
	})
}

func testMeta(t *testing.T, s store.Store) {
	ctx := context.Background()
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.GetMeta(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetMeta(missing) = %v, want ErrNotFound", err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error { return tx.InsertMeta(ctx, "k", []byte{0, 1, 2}) })
	err := s.Update(ctx, func(tx store.Tx) error { return tx.InsertMeta(ctx, "k", []byte("x")) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("InsertMeta twice = %v, want ErrConflict", err)
	}
	update(t, s, func(tx store.Tx) error { return tx.PutMeta(ctx, "k", []byte("new")) })
	view(t, s, func(tx store.Tx) error {
		v, err := tx.GetMeta(ctx, "k")
		if err != nil || string(v) != "new" {
			t.Errorf("GetMeta = %q, %v; want new", v, err)
		}
		return nil
	})
}

func testTenants(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range 5 {
		mkTenant(t, s, fmt.Sprintf("t%d", i))
	}
	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.CreateTenant(ctx, &store.Tenant{ID: "other", Slug: "slug-t1", Name: "dup", Status: store.TenantActive})
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate slug = %v, want ErrConflict", err)
	}
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetTenantBySlug(ctx, "slug-t3")
		if err != nil || got.ID != "t3" || !got.CreatedAt.Equal(t0) {
			t.Errorf("GetTenantBySlug = %+v, %v", got, err)
		}
		if _, err := tx.GetTenant(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetTenant(missing) = %v", err)
		}
		p1, err := tx.ListTenants(ctx, store.Page{Limit: 2})
		if err != nil || len(p1) != 2 || p1[0].ID != "t0" {
			t.Fatalf("page 1 = %+v, %v", p1, err)
		}
		p2, err := tx.ListTenants(ctx, store.Page{After: p1[1].ID, Limit: 10})
		if err != nil || len(p2) != 3 || p2[0].ID != "t2" {
			t.Errorf("page 2 = %+v, %v", p2, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error {
		return tx.SetTenantStatus(ctx, "t2", store.TenantSuspended, t0.Add(time.Hour))
	})
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.SetTenantStatus(ctx, "missing", store.TenantSuspended, t0)
	}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetTenantStatus(missing) = %v", err)
	}
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetTenant(ctx, "t2")
		if err != nil || got.Status != store.TenantSuspended || !got.UpdatedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("after suspend = %+v, %v", got, err)
		}
		return nil
	})
}

func testTenantKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "a")
	mkTenant(t, s, "b")
	update(t, s, func(tx store.Tx) error {
		for _, k := range []store.TenantKey{
			{TenantID: "a", Version: 1, State: store.KeyRetired, Wrapped: []byte("w1"), RootGeneration: 1, HPKEPublic: []byte("p1"), HPKEPrivate: []byte("s1"), CreatedAt: t0},
			{TenantID: "a", Version: 2, State: store.KeyActive, Wrapped: []byte("w2"), RootGeneration: 1, HPKEPublic: []byte("p2"), HPKEPrivate: []byte("s2"), CreatedAt: t0},
			{TenantID: "b", Version: 1, State: store.KeyActive, Wrapped: []byte("wb"), RootGeneration: 1, HPKEPublic: []byte("pb"), HPKEPrivate: []byte("sb"), CreatedAt: t0},
		} {
			if err := tx.InsertTenantKey(ctx, &k); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.InsertTenantKey(ctx, &store.TenantKey{TenantID: "a", Version: 2, State: store.KeyActive, HPKEPublic: []byte("x")})
	}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate key version = %v, want ErrConflict", err)
	}
	update(t, s, func(tx store.Tx) error { return tx.RewrapTenantKey(ctx, "a", 1, []byte("w1'"), 2) })
	view(t, s, func(tx store.Tx) error {
		ks, err := tx.ListTenantKeys(ctx, "a")
		if err != nil || len(ks) != 2 || ks[0].Version != 1 || string(ks[0].Wrapped) != "w1'" || ks[0].RootGeneration != 2 {
			t.Errorf("ListTenantKeys = %+v, %v", ks, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error { return tx.DestroyTenantKeys(ctx, "a", t0.Add(time.Minute)) })
	view(t, s, func(tx store.Tx) error {
		ks, _ := tx.ListTenantKeys(ctx, "a")
		for _, k := range ks {
			if k.Wrapped != nil || k.HPKEPrivate != nil || k.State != store.KeyDestroyed || !k.DestroyedAt.Equal(t0.Add(time.Minute)) {
				t.Errorf("after destroy: %+v", k)
			}
		}
		live, err := tx.ListLiveTenantKeys(ctx)
		if err != nil || len(live) != 1 || live[0].TenantID != "b" {
			t.Errorf("ListLiveTenantKeys = %+v, %v", live, err)
		}
		return nil
	})
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.RewrapTenantKey(ctx, "a", 1, []byte("z"), 3) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rewrap destroyed key = %v, want ErrNotFound", err)
	}
}

func testRecords(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "a")
	update(t, s, func(tx store.Tx) error {
		for i := range 5 {
			if err := tx.PutRecord(ctx, &store.Record{TenantID: "a", Kind: "k", ID: fmt.Sprint(i), KeyVersion: 1 + i%2,
				Ciphertext: []byte{byte(i)}, CreatedAt: t0, UpdatedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	// Replacing keeps created_at.
	update(t, s, func(tx store.Tx) error {
		return tx.PutRecord(ctx, &store.Record{TenantID: "a", Kind: "k", ID: "0", KeyVersion: 1, Ciphertext: []byte("new"),
			CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)})
	})
	view(t, s, func(tx store.Tx) error {
		r, err := tx.GetRecord(ctx, "a", "k", "0")
		if err != nil || string(r.Ciphertext) != "new" || !r.CreatedAt.Equal(t0) || !r.UpdatedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("GetRecord = %+v, %v", r, err)
		}
		counts, err := tx.CountRecordsByVersion(ctx, "a")
		if err != nil || counts[1] != 3 || counts[2] != 2 {
			t.Errorf("CountRecordsByVersion = %v, %v", counts, err)
		}
		below, err := tx.ListRecordsBelowVersion(ctx, "a", 2, 2)
		if err != nil || len(below) != 2 || below[0].KeyVersion != 1 {
			t.Errorf("ListRecordsBelowVersion = %+v, %v", below, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error {
		ok, err := tx.UpdateRecordCiphertext(ctx, &store.Record{TenantID: "a", Kind: "k", ID: "0", KeyVersion: 2, Ciphertext: []byte("v2")}, 1)
		if err != nil || !ok {
			t.Errorf("UpdateRecordCiphertext = %v, %v", ok, err)
		}
		// A second update from the old version must not apply.
		ok, err = tx.UpdateRecordCiphertext(ctx, &store.Record{TenantID: "a", Kind: "k", ID: "0", KeyVersion: 3, Ciphertext: []byte("v3")}, 1)
		if err != nil || ok {
			t.Errorf("stale UpdateRecordCiphertext = %v, %v; want false", ok, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error { return tx.DeleteRecord(ctx, "a", "k", "4") })
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.DeleteRecord(ctx, "a", "k", "4") }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice = %v", err)
	}
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.GetRecord(ctx, "a", "k", "4"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get deleted = %v", err)
		}
		return nil
	})
}

func testOperatorTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	h := bytes.Repeat([]byte{7}, 32)
	update(t, s, func(tx store.Tx) error {
		return tx.InsertOperatorToken(ctx, &store.OperatorToken{ID: "op1", Name: "init", Hash: h, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	})
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.InsertOperatorToken(ctx, &store.OperatorToken{ID: "op2", Name: "dup", Hash: h, CreatedAt: t0, ExpiresAt: t0})
	}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate hash = %v", err)
	}
	update(t, s, func(tx store.Tx) error { return tx.RevokeOperatorToken(ctx, "op1", t0.Add(time.Minute)) })
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.RevokeOperatorToken(ctx, "op1", t0) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke twice = %v, want ErrNotFound", err)
	}
	view(t, s, func(tx store.Tx) error {
		tok, err := tx.GetOperatorTokenByHash(ctx, h)
		if err != nil || tok.ID != "op1" || !tok.RevokedAt.Equal(t0.Add(time.Minute)) || !tok.ExpiresAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("GetOperatorTokenByHash = %+v, %v", tok, err)
		}
		list, err := tx.ListOperatorTokens(ctx)
		if err != nil || len(list) != 1 {
			t.Errorf("ListOperatorTokens = %+v, %v", list, err)
		}
		return nil
	})
}

func audit(log, action string, at time.Time) *store.AuditEvent {
	return &store.AuditEvent{LogID: log, Time: at, ActorType: "operator", ActorID: "op1", Action: action,
		Target: "tenant/x", Result: "ok", SourceIP: "127.0.0.1", UserAgent: "test", RequestID: "r1", Details: []byte(`{"a":1}`)}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	// An entry is numbered, and then called, by commit (engines may do
	// either at once or at commit), in append order.
	var evs []*store.AuditEvent
	var called []int64
	update(t, s, func(tx store.Tx) error {
		evs, called = nil, nil
		for i := range 4 {
			e := audit("L", []string{"a.create", "a.delete"}[i%2], t0.Add(time.Duration(i)*time.Second))
			if err := tx.AppendAudit(ctx, e, func(e *store.AuditEvent) error { called = append(called, e.Seq); return nil }); err != nil {
				return err
			}
			evs = append(evs, e)
		}
		return tx.AppendAudit(ctx, audit("M", "x", t0), nil)
	})
	for i, e := range evs {
		if e.Seq != int64(i) {
			t.Errorf("seq = %d, want %d", e.Seq, i)
		}
	}
	if fmt.Sprint(called) != "[0 1 2 3]" {
		t.Errorf("then called with seqs %v, want [0 1 2 3]", called)
	}
	view(t, s, func(tx store.Tx) error {
		n, err := tx.AuditSize(ctx, "L")
		if err != nil || n != 4 {
			t.Errorf("AuditSize = %d, %v", n, err)
		}
		if n, _ := tx.AuditSize(ctx, "none"); n != 0 {
			t.Errorf("AuditSize(empty) = %d", n)
		}
		all, err := tx.ListAudit(ctx, store.AuditFilter{LogID: "L", AfterSeq: -1})
		if err != nil || len(all) != 4 || string(all[0].Details) != `{"a":1}` || !all[2].Time.Equal(t0.Add(2*time.Second)) {
			t.Errorf("ListAudit = %+v, %v", all, err)
		}
		del, err := tx.ListAudit(ctx, store.AuditFilter{LogID: "L", AfterSeq: -1, Action: "a.delete"})
		if err != nil || len(del) != 2 || del[0].Seq != 1 {
			t.Errorf("by action = %+v, %v", del, err)
		}
		win, err := tx.ListAudit(ctx, store.AuditFilter{LogID: "L", AfterSeq: 0, Since: t0.Add(time.Second), Until: t0.Add(3 * time.Second), Limit: 1})
		if err != nil || len(win) != 1 || win[0].Seq != 1 {
			t.Errorf("window = %+v, %v", win, err)
		}
		return nil
	})
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range each {
				if err := s.Update(ctx, func(tx store.Tx) error { return tx.AppendAudit(ctx, audit("C", "x", t0), nil) }); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	view(t, s, func(tx store.Tx) error {
		all, err := tx.ListAudit(ctx, store.AuditFilter{LogID: "C", AfterSeq: -1, Limit: 10000})
		if err != nil || len(all) != writers*each {
			t.Fatalf("got %d entries, %v", len(all), err)
		}
		for i, e := range all {
			if e.Seq != int64(i) {
				t.Fatalf("entry %d has seq %d: sequence has gaps or duplicates", i, e.Seq)
			}
		}
		return nil
	})
}

func testRollback(t *testing.T, s store.Store) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateTenant(ctx, &store.Tenant{ID: "r", Slug: "r", Name: "r", Status: store.TenantActive}); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, audit("r", "tenant.create", t0), nil); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the callback's error", err)
	}
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.GetTenant(ctx, "r"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("tenant survived rollback: %v", err)
		}
		if n, _ := tx.AuditSize(ctx, "r"); n != 0 {
			t.Errorf("audit size after rollback = %d", n)
		}
		return nil
	})
}

func testJobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	update(t, s, func(tx store.Tx) error {
		for i := range 3 {
			j := &store.Job{ID: fmt.Sprint("j", i), Kind: "rewrap", TenantID: []string{"a", "b", "a"}[i], State: store.JobRunning,
				Total: 10, CreatedAt: t0.Add(time.Duration(i) * time.Second), UpdatedAt: t0}
			if err := tx.InsertJob(ctx, j); err != nil {
				return err
			}
		}
		return tx.UpdateJob(ctx, &store.Job{ID: "j0", State: store.JobDone, Total: 10, Done: 10, UpdatedAt: t0.Add(time.Hour)})
	})
	view(t, s, func(tx store.Tx) error {
		j, err := tx.GetJob(ctx, "j0")
		if err != nil || j.State != store.JobDone || j.Done != 10 || j.Kind != "rewrap" {
			t.Errorf("GetJob = %+v, %v", j, err)
		}
		a, err := tx.ListJobs(ctx, "a", 10)
		if err != nil || len(a) != 2 || a[0].ID != "j2" {
			t.Errorf("ListJobs(a) = %+v, %v", a, err)
		}
		all, _ := tx.ListJobs(ctx, "", 10)
		if len(all) != 3 {
			t.Errorf("ListJobs() = %d jobs", len(all))
		}
		return nil
	})
}

func testCancelled(t *testing.T, s store.Store) {
	mkTenant(t, s, "c")
	ctx, cancel := context.WithCancel(context.Background())
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.SetTenantStatus(ctx, "c", store.TenantSuspended, t0); err != nil {
			return err
		}
		cancel()
		_, err := tx.ListTenants(ctx, store.Page{})
		return err
	})
	if err == nil {
		t.Fatal("Update with a context cancelled mid-transaction succeeded")
	}
	// The half-done change is gone and the store still works.
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetTenant(context.Background(), "c")
		if err != nil || got.Status != store.TenantActive {
			t.Errorf("after cancelled update: %+v, %v", got, err)
		}
		return nil
	})
	mkTenant(t, s, "d")
}

// Concurrent updates (which an engine may commit as a group) succeed or
// fail one by one: a failing update leaves no trace, the others persist.
func testConcurrentFailAlone(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 40
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(ctx, func(tx store.Tx) error {
				id := fmt.Sprint("g", i)
				if err := tx.CreateTenant(ctx, &store.Tenant{ID: id, Slug: id, Name: id, Status: store.TenantActive}); err != nil {
					return err
				}
				if err := tx.AppendAudit(ctx, audit("G", "tenant.create", t0), nil); err != nil {
					return err
				}
				if err := tx.InsertLease(ctx, &store.Lease{ID: "lse_" + id, TenantID: "G", CredentialID: "crd_g", Version: 1,
					SubjectType: store.SubjectRobot, SubjectID: "rbt_g", Purpose: "p", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
					return err
				}
				if i%2 == 1 {
					return boom
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (i%2 == 1) != errors.Is(err, boom) {
			t.Fatalf("update %d returned %v", i, err)
		}
	}
	view(t, s, func(tx store.Tx) error {
		ts, err := tx.ListTenants(ctx, store.Page{Limit: 1000})
		if err != nil || len(ts) != n/2 {
			t.Fatalf("%d tenants persisted, want %d (%v)", len(ts), n/2, err)
		}
		evs, _ := tx.ListAudit(ctx, store.AuditFilter{LogID: "G", AfterSeq: -1, Limit: 1000})
		if len(evs) != n/2 {
			t.Fatalf("%d audit events persisted, want %d", len(evs), n/2)
		}
		for i, e := range evs {
			if e.Seq != int64(i) {
				t.Fatalf("audit seq %d at position %d: a failed update left a gap", e.Seq, i)
			}
		}
		ls, err := tx.ListLeases(ctx, "G", "crd_g", "", time.Time{})
		if err != nil || len(ls) != n/2 {
			t.Fatalf("%d leases persisted, want %d (%v)", len(ls), n/2, err)
		}
		for _, l := range ls {
			if i, _ := strconv.Atoi(strings.TrimPrefix(l.ID, "lse_g")); i%2 == 1 {
				t.Fatalf("lease %s of a failed update persisted", l.ID)
			}
		}
		return nil
	})
}
