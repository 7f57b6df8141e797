package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/postgres"
	"github.com/custodia-project/custodia/internal/store/postgres/pgtest"
	"github.com/custodia-project/custodia/internal/store/storetest"
)

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

func TestUnreachable(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://nobody:secretpw@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", postgres.Options{})
	if err == nil {
		t.Fatal("opened an unreachable database")
	}
	if got := err.Error(); strings.Contains(got, "secretpw") {
		t.Errorf("error leaks the password: %s", got)
	}
}
