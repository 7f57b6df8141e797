package sharelinks

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/share"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/sqlite"
)

const testTenant = "tnt_sharelinkstest"

// racingStore is a store whose UpdateShareCounts finds, the first moves
// times, that another transaction changed the counts first: what an
// engine without row locks would see when openers race.
type racingStore struct {
	store.Store
	moves int
}

type racingTx struct {
	store.Tx
	s *racingStore
}

func (s *racingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error { return fn(racingTx{tx, s}) })
}

func (t racingTx) UpdateShareCounts(ctx context.Context, id string, from, to store.ShareCounts) (bool, error) {
	if t.s.moves > 0 {
		t.s.moves--
		return false, nil
	}
	return t.Tx.UpdateShareCounts(ctx, id, from, to)
}

// newService returns the service over a fresh SQLite store with one
// active tenant and its keys, and a context of one of its members.
func newService(t *testing.T) (*Service, *racingStore, context.Context) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := func() time.Time { return time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC) }
	root := keys.NewRoot(st, now)
	key, _ := keys.GenerateKey()
	if _, err := root.Init(ctx, keys.InitOptions{Type: keys.SealKeyFile, Key: key}, nil); err != nil {
		t.Fatal(err)
	}
	kr := keys.NewKeyring(root, now)
	err = st.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateTenant(ctx, &store.Tenant{ID: testTenant, Slug: "acme", Name: "ACME", Status: store.TenantActive}); err != nil {
			return err
		}
		return kr.CreateTenantKeys(ctx, tx, testTenant)
	})
	if err != nil {
		t.Fatal(err)
	}
	rs := &racingStore{Store: st}
	member := authz.WithPrincipal(ctx, &authz.Principal{Kind: authz.KindMember, ID: "mem_sharer", TenantID: testTenant, Role: "member"})
	return New(rs, kr, now, slog.New(slog.NewTextHandler(io.Discard, nil))), rs, member
}

// A wrong key whose count could not be written because the counts moved
// is tried again on the new counts, and counted; it is never answered
// "busy" uncounted, which would be a free guess at the passphrase.
func TestOpenCountsWhenCountsMove(t *testing.T) {
	for _, tc := range []struct {
		name   string
		moves  int
		code   string
		counts int
	}{
		{"ok/moved once, counted", 1, "share_wrong_key", 1},
		{"ok/moved often, counted", maxOpenRuns - 1, "share_wrong_key", 1},
		{"fail/moved every time, busy and nothing counted", maxOpenRuns, "share_busy", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rs, member := newService(t)
			p, err := share.Prepare([]byte("Zq8-share"), "a passphrase", share.MinIterations)
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Create(member, testTenant, CreateInput{Ciphertext: p.Envelope, Verifier: p.Verifier, KDF: p.KDF, MaxViews: 2})
			if err != nil {
				t.Fatal(err)
			}
			rs.moves = tc.moves
			_, err = s.Open(context.Background(), info.ID, make([]byte, share.KeySize))
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Code != tc.code {
				t.Fatalf("open with a wrong key = %v, want %s", err, tc.code)
			}
			l, err := s.List(member, testTenant)
			if err != nil || len(l) != 1 || l[0].FailedAttempts != tc.counts {
				t.Fatalf("after the open: %+v, %v; want %d failed attempt(s)", l, err, tc.counts)
			}
		})
	}
}
