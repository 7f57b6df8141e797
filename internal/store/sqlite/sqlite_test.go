package sqlite_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/sqlite"
	"github.com/custodia-project/custodia/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFileIsPrivateAndReopens(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := os.Stat(filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("database file mode %v is readable by others", fi.Mode().Perm())
	}
	// Migrations are idempotent.
	s, err = sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer().Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := sqlite.Open(context.Background(), dir); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("opening a database migrated by a newer binary: %v, want ErrSchemaTooNew", err)
	}
}

// TestReadersDoNotDeadlockPreparing holds every reader connection in a read
// transaction at once, then has each run a query never run before. Readers
// keep their statements prepared; preparing one must not wait for a free
// connection, or this test (and a busy server) hangs.
func TestReadersDoNotDeadlockPreparing(t *testing.T) {
	s, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := max(4, runtime.GOMAXPROCS(0)*2) // the reader pool's size (sqlite.Open)
	var inside sync.WaitGroup
	inside.Add(n)
	errs := make(chan error, n)
	for range n {
		go func() {
			errs <- s.View(t.Context(), func(tx store.Tx) error {
				inside.Done()
				inside.Wait() // every connection is now held
				if _, err := tx.GetTenant(t.Context(), "t_none"); !errors.Is(err, store.ErrNotFound) {
					return err
				}
				_, err := tx.ListTenantKeys(t.Context(), "t_none")
				return err
			})
		}()
	}
	timeout := time.After(30 * time.Second)
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatal("readers deadlocked preparing statements")
		}
	}
}

// TestGroupLeaderIsNotHeld: the caller whose Update leads a group commit
// returns once its own batch commits, not after the batches of callers
// that arrived meanwhile. B's call waits for A's Update to return; if A
// led on into B's batch, each would wait for the other.
func TestGroupLeaderIsNotHeld(t *testing.T) {
	s, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	var inA sync.Once
	aRunning, aRelease, aDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.Update(ctx, func(tx store.Tx) error {
			inA.Do(func() { close(aRunning) })
			<-aRelease
			return nil
		})
		close(aDone)
	}()
	<-aRunning // A leads and runs its batch
	bErr := make(chan error, 1)
	go func() {
		bErr <- s.Update(ctx, func(tx store.Tx) error {
			select {
			case <-aDone:
				return nil
			case <-time.After(30 * time.Second):
				return errors.New("A's Update did not return while B's batch ran: the leader was held by later callers")
			}
		})
	}()
	time.Sleep(100 * time.Millisecond) // let B queue behind A's batch
	close(aRelease)
	if err := <-bErr; err != nil {
		t.Fatal(err)
	}
}

// TestOneProcessPerDirectory: a second open of a data directory in use
// fails (flock is per open file, so this holds within one process too), and
// the directory is free again once the first closes.
func TestOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := sqlite.Open(context.Background(), dir); !errors.Is(err, sqlite.ErrLocked) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("second open of a directory in use: %v, want ErrLocked", err)
	}
	s.Close()
	s, err = sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	s.Close()
}

// TestStamp: the change stamp moves when a commit changes anything but the
// audit and lease tables, before Update returns, and only then.
func TestStamp(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stamp := func() uint64 {
		v, ok := s.Stamp()
		if !ok {
			t.Fatal("SQLite gives no stamp")
		}
		return v
	}
	at := stamp()
	now := time.Now()
	if err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.AppendAudit(ctx, &store.AuditEvent{LogID: "L", Time: now, Action: "credential.fetch", Result: "ok"}, nil); err != nil {
			return err
		}
		return tx.InsertLease(ctx, &store.Lease{ID: "l1", TenantID: "t", CredentialID: "c", Version: 1, SubjectType: store.SubjectRobot,
			SubjectID: "r", Purpose: "p", CreatedAt: now, ExpiresAt: now.Add(time.Minute)})
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.View(ctx, func(tx store.Tx) error { _, err := tx.GetTenant(ctx, "t"); return ignoreNotFound(err) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error {
		_, err := tx.DeleteExpiredChallenges(ctx, now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := stamp(); got != at {
		t.Fatalf("stamp moved from %d to %d for a fetch's writes (audit, lease), a delete of nothing and a read", at, got)
	}
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.CreateTenant(ctx, &store.Tenant{ID: "t", Slug: "t", Name: "t", Status: store.TenantActive})
	}); err != nil {
		t.Fatal(err)
	}
	if got := stamp(); got == at {
		t.Fatal("stamp did not move for a committed change")
	}
	// A credential write moves the whole stamp, not the access stamp
	// (store.AccessStamper); a change outside the vault's tables moves
	// both.
	access := func() uint64 {
		v, ok := s.AccessStamp()
		if !ok {
			t.Fatal("SQLite gives no access stamp")
		}
		return v
	}
	at, atAccess := stamp(), access()
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.InsertCredential(ctx, &store.Credential{ID: "c", TenantID: "t", Name: "bank/a", Kind: store.KindBank, Group: "bank",
			OwnerID: "m", CreatedAt: now, UpdatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	if got, gotAccess := stamp(), access(); got == at || gotAccess != atAccess {
		t.Fatalf("a credential write moved the stamp %d to %d and the access stamp %d to %d", at, got, atAccess, gotAccess)
	}
	at = stamp()
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.SetTenantStatus(ctx, "t", store.TenantActive, now)
	}); err != nil {
		t.Fatal(err)
	}
	if got, gotAccess := stamp(), access(); got == at || gotAccess == atAccess {
		t.Fatalf("a tenant's status change moved the stamp %d to %d and the access stamp %d to %d", at, got, atAccess, gotAccess)
	}
}

func ignoreNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// TestCheckpointsInBackground: committed pages reach the database file
// without any commit checkpointing (the writer's own threshold is far
// above what this writes), so commits never wait for a checkpoint.
func TestCheckpointsInBackground(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, sqlite.FileName))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.CreateTenant(ctx, &store.Tenant{ID: "t", Slug: "t", Name: "t", Status: store.TenantActive})
	}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		before := size()
		if time.Now().After(deadline) {
			t.Fatal("the database file never stopped growing")
		}
		time.Sleep(50 * time.Millisecond)
		if size() == before {
			break // settled
		}
	}
	before := size()
	blob := make([]byte, 4096)
	for i := range 64 {
		if err := s.Update(ctx, func(tx store.Tx) error {
			return tx.PutRecord(ctx, &store.Record{TenantID: "t", Kind: "test", ID: fmt.Sprint(i), KeyVersion: 1, Ciphertext: blob,
				CreatedAt: time.Now(), UpdatedAt: time.Now()})
		}); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); size() < before+64*4096; {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes, was %d: 256 KiB committed never checkpointed", size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkListLeases lists one credential's live leases among a day's
// leases of a busy tenant (100,000 over 1,000 credentials, most expired).
func BenchmarkListLeases(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.Unix(1_800_000_000, 0)
	for batch := range 100 {
		err := s.Update(ctx, func(tx store.Tx) error {
			for i := range 1000 {
				n := batch*1000 + i
				at := t0.Add(time.Duration(n) * 800 * time.Millisecond) // a day
				l := &store.Lease{ID: fmt.Sprintf("lse_%06d", n), TenantID: "t1", CredentialID: fmt.Sprintf("crd_%03d", n%1000),
					Version: 1, SubjectType: store.SubjectRobot, SubjectID: "rbt_1", Purpose: "bench", CreatedAt: at, ExpiresAt: at.Add(5 * time.Minute)}
				if err := tx.InsertLease(ctx, l); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	live := t0.Add(80_000 * time.Second) // the last 5 minutes of leases are live
	b.ResetTimer()
	for b.Loop() {
		err := s.View(ctx, func(tx store.Tx) error {
			ls, err := tx.ListLeases(ctx, "t1", "crd_900", "", live)
			if err == nil && len(ls) == 0 {
				err = errors.New("no live lease")
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetchWrites: what the writer does for each robot fetch, a lease
// and its audit entry in one Update, from 64 concurrent callers over
// 10,000 credentials, every commit fsynced. It is the storage side of
// bench/vault.sh's reads, without HTTP. Reports fetches/s.
func BenchmarkFetchWrites(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const callers = 64
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				err := s.Update(store.Appending(ctx), func(tx store.Tx) error {
					now := time.Now()
					cred := fmt.Sprintf("crd_%05d", i%10_000)
					l := &store.Lease{ID: store.NewTimeID("lse_", now), TenantID: "t1", CredentialID: cred, Version: 1,
						SubjectType: store.SubjectRobot, SubjectID: "rbt_1", Purpose: "monthly payroll run", CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
					if err := tx.InsertLease(ctx, l); err != nil {
						return err
					}
					return audit.Append(ctx, tx, now, audit.Entry{Log: "t1", Action: "credential.fetch", Target: cred,
						Details: map[string]any{"name": "bank/santander", "version": 1, "lease": l.ID, "purpose": l.Purpose,
							"grant": "grt_abcdefghijklmnopqrst", "lease_expires_at": l.ExpiresAt}})
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fetches/s")
}

// TestDeletedRecordsAreOverwritten: a sealed record deleted (a destroyed
// or pruned version, an erased credential) leaves no copy of its bytes in
// the database file's free space once the log is checkpointed
// (secure_delete). Without it the deleted cells stay readable in freed
// pages, and anyone with the file and the root key could open them.
func TestDeletedRecordsAreOverwritten(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.CreateTenant(ctx, &store.Tenant{ID: "t", Slug: "t", Name: "t", Status: store.TenantActive})
	}); err != nil {
		t.Fatal(err)
	}
	// Two records on their own pages and one beside them: deleting one
	// frees whole pages, and a small one leaves a freeblock in a page
	// that stays in use.
	secrets := map[string][]byte{}
	for _, id := range []string{"big1", "big2", "small", "kept"} {
		n := 6000
		if id == "small" || id == "kept" {
			n = 200
		}
		b := make([]byte, n)
		rand.Read(b)
		secrets[id] = b
		if err := s.Update(ctx, func(tx store.Tx) error {
			return tx.PutRecord(ctx, &store.Record{TenantID: "t", Kind: "test", ID: id, KeyVersion: 1, Ciphertext: b,
				CreatedAt: time.Now(), UpdatedAt: time.Now()})
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"big1", "small"} {
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.DeleteRecord(ctx, "t", "test", id) }); err != nil {
			t.Fatal(err)
		}
	}
	s.Close() // the last connection checkpoints the whole log into the file
	b, err := os.ReadFile(filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	// 64-byte windows: any long run of a deleted record's bytes.
	for id, secret := range secrets {
		found := false
		for i := 0; i+64 <= len(secret) && !found; i += 64 {
			found = bytes.Contains(b, secret[i:i+64])
		}
		if deleted := id == "big1" || id == "small"; found == deleted {
			t.Errorf("record %s (deleted: %v) in the database file: %v", id, deleted, found)
		}
	}
}
