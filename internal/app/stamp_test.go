package app_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/tenant"
)

// noVaultStore hands out transactions without the vault's tables: the
// credential and sealed-record methods are nil, and calling one panics.
type noVaultStore struct{ store.Store }

type noVaultTx struct {
	store.MetaTx
	store.TenantTx
	store.KeyTx
	store.TokenTx
	store.AuditTx
	store.JobTx
	store.IdentityTx
	store.AccessTx
	store.BreakGlassTx
	store.ShareTx
	store.CertTx
	store.RecordTx // nil
	store.VaultTx  // nil
}

func hideVault(tx store.Tx) store.Tx {
	return noVaultTx{MetaTx: tx, TenantTx: tx, KeyTx: tx, TokenTx: tx, AuditTx: tx, JobTx: tx, IdentityTx: tx, AccessTx: tx,
		BreakGlassTx: tx, ShareTx: tx, CertTx: tx}
}

func (s noVaultStore) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.View(ctx, func(tx store.Tx) error { return fn(hideVault(tx)) })
}

func (s noVaultStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error { return fn(hideVault(tx)) })
}

// readsOutsideVault runs fn and fails if it read a vault table.
func readsOutsideVault(t *testing.T, what string, fn func() error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("%s read the vault's tables (%v): its cache may not keep to the access stamp", what, p)
		}
	}()
	if err := fn(); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// TestAccessStampSpansAuthentication: the token and tenant caches keep to
// the access stamp (store.NewAccessCache), which a write of the vault's
// tables (credentials, versions, sealed records) does not move. That is
// sound only while authenticating a token and looking a tenant up read
// none of those tables: here they run on transactions without them.
func TestAccessStampSpansAuthentication(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		session := n.owner("acme")
		owner := n.pat(session)
		n.putBank(owner, "payroll/a3", bankSecret)
		botID, bot := n.soloRobot(owner, "payroll-bot")
		if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": botID, "permission": "credentials.fetch",
			"resource": "group:payroll", "duration": "24h", "reason": "monthly payroll"}); r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		// A second-factor rule makes authentication read the policy too.
		if r := n.do("PUT", "/api/v1/tenants/acme/policy", owner, map[string]any{"require_mfa": true, "robot_dual_control": "off"}); r.status != 200 {
			t.Fatalf("policy: %d %s", r.status, r.body)
		}
		s := noVaultStore{n.app.Store}
		a := auth.New(s, n.clock.Now)
		for who, tok := range map[string]string{"owner's token": owner, "robot's token": bot} {
			readsOutsideVault(t, "authenticating the "+who, func() error {
				p, err := a.Authenticate(t.Context(), tok)
				if err == nil && p.TenantID != n.tenantID("acme") {
					err = fmt.Errorf("principal of tenant %q", p.TenantID)
				}
				return err
			})
		}
		ts := tenant.New(t.Context(), s, nil, n.clock.Now, nil)
		for _, ref := range []string{"acme", n.tenantID("acme")} {
			readsOutsideVault(t, "looking tenant "+ref+" up", func() error {
				_, err := ts.Get(t.Context(), ref)
				return err
			})
		}
		// The wrapper does catch a read of a credential.
		caught := false
		func() {
			defer func() { caught = recover() != nil }()
			_ = s.View(t.Context(), func(tx store.Tx) error {
				_, err := tx.GetCredentialByName(t.Context(), n.tenantID("acme"), "payroll/a3")
				return err
			})
		}()
		if !caught {
			t.Error("a credential read on a transaction without the vault's tables did not panic")
		}
	})
}
