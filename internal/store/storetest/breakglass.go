package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

func testBreakGlass(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	mkTenant(t, s, "t2")
	b := &store.BreakGlass{ID: "brk_1", TenantID: "t1", OperatorID: "op_1", CredentialID: "crd_1", Reason: "incident 42", Minutes: 30,
		Status: store.BreakGlassPending, RequestedAt: t0}
	update(t, s, func(tx store.Tx) error { return tx.InsertBreakGlass(ctx, b) })
	update(t, s, func(tx store.Tx) error {
		return tx.InsertBreakGlass(ctx, &store.BreakGlass{ID: "brk_2", TenantID: "t1", OperatorID: "op_1", CredentialID: "crd_2",
			Reason: "later", Minutes: 10, Status: store.BreakGlassPending, RequestedAt: t0.Add(time.Minute)})
	})
	// An approval opens the window for the policy's minutes at that
	// moment (here lowered from 30 to 20), and the row keeps them.
	b.Status, b.DecidedBy, b.DecidedAt, b.ExpiresAt, b.Reveals, b.Minutes = store.BreakGlassApproved, "m1", t0.Add(time.Second), t0.Add(21*time.Minute), 1, 20
	update(t, s, func(tx store.Tx) error { return tx.UpdateBreakGlass(ctx, b) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetBreakGlass(ctx, "t1", "brk_1")
		if err != nil || got.Status != store.BreakGlassApproved || got.DecidedBy != "m1" || !got.ExpiresAt.Equal(b.ExpiresAt) ||
			got.Reveals != 1 || got.Reason != "incident 42" || got.Minutes != 20 || !got.RequestedAt.Equal(t0) {
			t.Errorf("GetBreakGlass = %+v, %v", got, err)
		}
		if _, err := tx.GetBreakGlass(ctx, "t2", "brk_1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("break-glass of another tenant = %v", err)
		}
		l, err := tx.ListBreakGlass(ctx, "t1", 10)
		if err != nil || len(l) != 2 || l[0].ID != "brk_2" {
			t.Errorf("ListBreakGlass = %+v, %v", l, err)
		}
		if l, _ := tx.ListBreakGlass(ctx, "t2", 10); len(l) != 0 {
			t.Errorf("t2 sees %d requests", len(l))
		}
		return nil
	})
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.UpdateBreakGlass(ctx, &store.BreakGlass{TenantID: "t2", ID: "brk_1", Status: store.BreakGlassDenied})
	}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update across tenants = %v", err)
	}
}
