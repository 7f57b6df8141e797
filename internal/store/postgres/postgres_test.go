package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/postgres"
	"github.com/custodia-project/custodia/internal/store/postgres/pgtest"
	"github.com/custodia-project/custodia/internal/store/sqldb"
	"github.com/custodia-project/custodia/internal/store/storetest"
)

// openNodes opens n stores on the database at u, as n nodes of one
// installation would; they are closed when t ends.
func openNodes(t *testing.T, u string, n int, o postgres.Options) []*sqldb.DB {
	t.Helper()
	nodes := make([]*sqldb.DB, n)
	for i := range nodes {
		s, err := postgres.Open(context.Background(), u, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		nodes[i] = s
	}
	return nodes
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(context.Background(), pgtest.URL(t), postgres.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Two nodes starting at once on an empty database both come up.
func TestConcurrentMigration(t *testing.T) {
	u := pgtest.URL(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), u, postgres.Options{MaxConns: 2})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
}

func TestReplicaReads(t *testing.T) {
	u := pgtest.URL(t)
	// The primary doubles as its own replica here: reads must still see
	// committed writes through the reader pool.
	s, err := postgres.Open(context.Background(), u, postgres.Options{ReplicaURLs: []string{u, u}, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.PutMeta(ctx, "x", []byte("y")) }); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.View(ctx, func(tx store.Tx) error { _, err := tx.GetMeta(ctx, "x"); return err }); err != nil {
			t.Fatal(err)
		}
	}
}

// TestChangeStamp: a transaction that changes anything but the audit and
// lease tables moves the database's change stamp, and another node's
// confirmation of a value cached under the old stamp then fails. Reads
// from replicas, which may lag behind the stamp, cache nothing.
func TestChangeStamp(t *testing.T) {
	u := pgtest.URL(t)
	ctx := context.Background()
	nodes := openNodes(t, u, 2, postgres.Options{MaxConns: 4})
	a, b := nodes[0], nodes[1]
	var cf store.Confirmer = a
	if !cf.StampLags() {
		t.Fatal("a node of a shared database does not say its stamp lags")
	}
	// a learns the database's stamp from a confirmation.
	_ = a.ConfirmStamp(ctx, 0)
	before, ok := a.Stamp()
	if !ok {
		t.Fatal("no stamp")
	}
	if err := a.ConfirmStamp(ctx, before); err != nil {
		t.Fatalf("confirm the current stamp: %v", err)
	}
	// Appends (a lease, an audit entry) leave it.
	err := b.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertLease(ctx, &store.Lease{ID: "lse_1", TenantID: "t1", CredentialID: "crd_1", Version: 1,
			SubjectType: store.SubjectRobot, SubjectID: "rbt_1", Purpose: "test", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
			return err
		}
		return audit.Append(ctx, tx, time.Now(), audit.Entry{Log: "t1", Action: "credential.fetch", Target: "crd_1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ConfirmStamp(ctx, before); err != nil {
		t.Fatalf("an append moved the stamp: %v", err)
	}
	// A change moves it, for every node.
	if err := b.Update(ctx, func(tx store.Tx) error { return tx.PutMeta(ctx, "x", []byte("y")) }); err != nil {
		t.Fatal(err)
	}
	if now, _ := b.Stamp(); now <= before {
		t.Fatalf("the changing node's stamp = %d, want past %d", now, before)
	}
	if err := a.ConfirmStamp(ctx, before); !errors.Is(err, store.ErrStale) {
		t.Fatalf("confirm after another node's change = %v", err)
	}
	after, _ := a.Stamp()
	if after <= before || a.ConfirmStamp(ctx, after) != nil {
		t.Fatalf("the confirmation did not teach the new stamp: %d after %d", after, before)
	}
	// A write that changed no row moves nothing.
	if err := b.Update(ctx, func(tx store.Tx) error {
		err := tx.UpdateLease(ctx, &store.Lease{ID: "lse_none", TenantID: "t1"})
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("update of no lease: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.ConfirmStamp(ctx, after); err != nil {
		t.Fatalf("a write of nothing moved the stamp: %v", err)
	}
	// Concurrent confirmations share reads.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := a.ConfirmStamp(ctx, after); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	r := openNodes(t, u, 1, postgres.Options{MaxConns: 2, ReplicaURLs: []string{u}})[0]
	if _, ok := r.Stamp(); ok || r.StampLags() {
		t.Fatal("a node reading from replicas offers a stamp")
	}
}

func TestUnreachable(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://nobody:secretpw@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", postgres.Options{})
	if err == nil {
		t.Fatal("opened an unreachable database")
	}
	if got := err.Error(); strings.Contains(got, "secretpw") {
		t.Errorf("error leaks the password: %s", got)
	}
}

// Two nodes appending to one audit log at once, each in group-committed
// batches with deferred, multi-row audit writes: the log's row lock must
// keep the numbering dense and the tree whole, or an inclusion proof of
// some entry fails.
func TestTwoNodesAppendOneLog(t *testing.T) {
	ctx := context.Background()
	nodes := openNodes(t, pgtest.URL(t), 2, postgres.Options{MaxConns: 4})
	const workers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*each)
	for n, s := range nodes {
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					errs <- audit.Record(ctx, s, time.Now(), audit.Entry{Log: "t_shared", Action: "test.append",
						Target: fmt.Sprintf("node%d/w%d/%d", n, w, i)})
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	const total = 2 * workers * each
	checkLog(t, nodes[0], "t_shared", total)
}

// checkLog checks that log holds size entries numbered 0 to size-1, each
// proved included in the tree its stored hashes make.
func checkLog(t *testing.T, s store.Store, log string, size int64) {
	t.Helper()
	ctx := context.Background()
	err := s.View(ctx, func(tx store.Tx) error {
		n, err := tx.AuditSize(ctx, log)
		if err != nil || n != size {
			return fmt.Errorf("log size %d, %v; want %d", n, err, size)
		}
		evs, err := tx.ListAudit(ctx, store.AuditFilter{LogID: log, AfterSeq: -1, Limit: int(size)})
		if err != nil {
			return err
		}
		root, err := audit.TreeHash(ctx, tx, log, size)
		if err != nil {
			return err
		}
		for i := range evs {
			if evs[i].Seq != int64(i) {
				return fmt.Errorf("entry %d has seq %d", i, evs[i].Seq)
			}
			leaf, err := audit.LeafOf(&evs[i]).Hash()
			if err != nil {
				return err
			}
			proof, err := audit.InclusionProof(ctx, tx, log, int64(i), size)
			if err != nil {
				return err
			}
			if err := tlog.CheckRecord(proof, size, root, int64(i), leaf); err != nil {
				return fmt.Errorf("entry %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Reads run statement by statement, outside a transaction (they are READ
// COMMITTED either way); a View that tries to write is refused as the
// read-only transaction refused it, and writes nothing.
func TestViewRefusesWrites(t *testing.T) {
	s, err := postgres.Open(context.Background(), pgtest.URL(t), postgres.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a write in a View was not refused")
			}
		}()
		_ = s.View(ctx, func(tx store.Tx) error { return tx.PutMeta(ctx, "k", []byte("v")) })
	}()
	err = s.View(ctx, func(tx store.Tx) error {
		if _, err := tx.GetMeta(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("meta after the refused write: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDeadlockedWriteRunsAgain: two nodes each lock one credential, then
// the other's, so PostgreSQL must abort one of them to break the deadlock.
// The aborted call runs again and both succeed, instead of one failing.
func TestDeadlockedWriteRunsAgain(t *testing.T) {
	ctx := context.Background()
	nodes := openNodes(t, pgtest.URL(t), 2, postgres.Options{MaxConns: 4})
	now := time.Now()
	if err := nodes[0].Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateTenant(ctx, &store.Tenant{ID: "t1", Slug: "t1", Name: "t1", Status: store.TenantActive, CreatedAt: now}); err != nil {
			return err
		}
		for _, id := range []string{"crd_x", "crd_y"} {
			if err := tx.InsertCredential(ctx, &store.Credential{TenantID: "t1", ID: id, Name: id, Kind: store.KindOther, OwnerID: "m",
				MaxVersions: 10, CreatedBy: "m", CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Each call locks its first credential, waits (on its first run only)
	// until the other has locked its own, then locks the other one.
	var locked sync.WaitGroup
	locked.Add(2)
	var runs [2]atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, order := range [][]string{{"crd_x", "crd_y"}, {"crd_y", "crd_x"}} {
		wg.Go(func() {
			errs[i] = nodes[i].Update(ctx, func(tx store.Tx) error {
				c, err := tx.GetCredential(ctx, "t1", order[0])
				if err != nil {
					return err
				}
				if runs[i].Add(1) == 1 {
					locked.Done()
					locked.Wait()
				}
				if _, err := tx.GetCredential(ctx, "t1", order[1]); err != nil {
					return err
				}
				c.Notes = fmt.Sprint("written by node ", i)
				return tx.UpdateCredential(ctx, c)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	if runs[0].Load()+runs[1].Load() < 3 {
		t.Errorf("no call ran twice (runs %d and %d): there was no deadlock to break", runs[0].Load(), runs[1].Load())
	}
}

// TestWritersRunSideBySide: with a node's first writer held up by a long
// transaction and more calls queued behind it than it takes before
// spilling, the next call goes to another writer and commits at once,
// audit entry included (numbered at commit, so the held transaction does
// not hold the log).
func TestWritersRunSideBySide(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.URL(t), postgres.Options{MaxConns: 8, Writers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entry := func(target string) audit.Entry {
		return audit.Entry{Log: "t_side", Action: "test.append", Target: target}
	}
	release := make(chan struct{})
	held := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var once sync.Once
		if err := s.Update(ctx, func(tx store.Tx) error {
			if err := audit.Append(ctx, tx, time.Now(), entry("held")); err != nil {
				return err
			}
			once.Do(func() { close(held) })
			<-release
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
	<-held
	// Queue calls behind the held one until the first writer spills.
	for i := range 20 {
		wg.Go(func() {
			if err := audit.Record(ctx, s, time.Now(), entry(fmt.Sprint("queued", i))); err != nil {
				t.Error(err)
			}
		})
	}
	done := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond) // let the queue fill
		done <- audit.Record(ctx, s, time.Now(), entry("spilled"))
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("a call waited for the held transaction although another writer was free")
	}
	close(release)
	wg.Wait()
	checkLog(t, s, "t_side", 22)
}
