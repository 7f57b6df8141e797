package keys_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/sqlite"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func newStore(t testing.TB) (store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func shares(r *keys.InitResult) []string {
	out := make([]string, len(r.Shares))
	for i, s := range r.Shares {
		out[i] = string(s)
	}
	return out
}

func initShamir(t *testing.T, s store.Store, c *clock, n, k int) (*keys.Root, []string) {
	t.Helper()
	root := keys.NewRoot(s, c.Now)
	res, err := root.Init(context.Background(), keys.InitOptions{Type: keys.SealShamir, Shares: n, Threshold: k}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return root, shares(res)
}

func TestShamirUnseal(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c := &clock{time.Now()}
	root, sh := initShamir(t, s, c, 5, 3)
	if len(sh) != 5 {
		t.Fatalf("got %d shares", len(sh))
	}
	st, _ := root.Status(ctx)
	if !st.Initialized || !st.Sealed || st.Threshold != 3 {
		t.Fatalf("after init: %+v", st)
	}

	t.Run("fail/garbage share", func(t *testing.T) {
		st, err := root.Unseal(ctx, "not-a-share")
		if !errors.Is(err, keys.ErrBadShare) || st.Progress != 0 {
			t.Fatalf("Unseal(garbage) = %+v, %v", st, err)
		}
	})
	t.Run("fail/share of another installation", func(t *testing.T) {
		s2, _ := newStore(t)
		_, other := initShamir(t, s2, c, 5, 3)
		st, err := root.Unseal(ctx, other[0])
		if !errors.Is(err, keys.ErrBadShare) || st.Progress != 0 {
			t.Fatalf("Unseal(foreign) = %+v, %v", st, err)
		}
	})
	t.Run("fail/same share twice", func(t *testing.T) {
		if _, err := root.Unseal(ctx, sh[0]); err != nil {
			t.Fatal(err)
		}
		st, err := root.Unseal(ctx, sh[0])
		if !errors.Is(err, keys.ErrBadShare) || st.Progress != 1 {
			t.Fatalf("repeat share = %+v, %v", st, err)
		}
		root.ResetUnseal()
	})
	t.Run("ok/any three shares", func(t *testing.T) {
		for _, i := range []int{4, 1, 2} {
			st, err := root.Unseal(ctx, sh[i])
			if err != nil {
				t.Fatal(err)
			}
			_ = st
		}
		if root.Sealed() {
			t.Fatal("still sealed after threshold")
		}
	})
	t.Run("ok/seal drops the key", func(t *testing.T) {
		root.Seal()
		if !root.Sealed() {
			t.Fatal("not sealed")
		}
		kr := keys.NewKeyring(root, c.Now)
		err := s.Update(ctx, func(tx store.Tx) error { return kr.CreateTenantKeys(ctx, tx, "t") })
		if !errors.Is(err, keys.ErrSealed) {
			t.Fatalf("CreateTenantKeys while sealed = %v", err)
		}
	})
	t.Run("fail/init twice", func(t *testing.T) {
		_, err := root.Init(ctx, keys.InitOptions{Type: keys.SealShamir, Shares: 1, Threshold: 1}, nil)
		if !errors.Is(err, keys.ErrAlreadyInitialized) {
			t.Fatalf("second init = %v", err)
		}
	})
}

func TestInitValidation(t *testing.T) {
	for name, o := range map[string]keys.InitOptions{
		"fail/threshold above shares": {Type: keys.SealShamir, Shares: 3, Threshold: 4},
		"fail/threshold one of many":  {Type: keys.SealShamir, Shares: 5, Threshold: 1},
		"fail/zero shares":            {Type: keys.SealShamir},
		"fail/short key file":         {Type: keys.SealKeyFile, Key: keys.Secret("short")},
		"fail/unknown type":           {Type: "kms"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := o.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func newKey() keys.Secret {
	k, _ := keys.GenerateKey()
	return k
}

func unsealed(t testing.TB) (store.Store, *keys.Root, *keys.Keyring, *clock, string) {
	t.Helper()
	s, dir := newStore(t)
	c := &clock{time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	root := keys.NewRoot(s, c.Now)
	if _, err := root.Init(context.Background(), keys.InitOptions{Type: keys.SealKeyFile, Key: newKey()}, nil); err != nil {
		t.Fatal(err)
	}
	return s, root, keys.NewKeyring(root, c.Now), c, dir
}

func mkTenant(t testing.TB, s store.Store, kr *keys.Keyring, id string) {
	t.Helper()
	ctx := context.Background()
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateTenant(ctx, &store.Tenant{ID: id, Slug: id, Name: id, Status: store.TenantActive}); err != nil {
			return err
		}
		return kr.CreateTenantKeys(ctx, tx, id)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, s store.Store, kr *keys.Keyring, tenant, kind, id string, pt []byte) {
	t.Helper()
	ctx := context.Background()
	err := s.Update(ctx, func(tx store.Tx) error {
		v, ct, err := kr.Seal(ctx, tx, tenant, kind, id, pt)
		if err != nil {
			return err
		}
		return tx.PutRecord(ctx, &store.Record{TenantID: tenant, Kind: kind, ID: id, KeyVersion: v, Ciphertext: ct})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func get(s store.Store, kr *keys.Keyring, tenant, kind, id string) ([]byte, error) {
	ctx := context.Background()
	var out []byte
	err := s.View(ctx, func(tx store.Tx) error {
		r, err := tx.GetRecord(ctx, tenant, kind, id)
		if err != nil {
			return err
		}
		out, err = kr.Open(ctx, tx, tenant, kind, id, r.Ciphertext)
		return err
	})
	return out, err
}

func TestSealOpenBinding(t *testing.T) {
	ctx := context.Background()
	s, _, kr, _, _ := unsealed(t)
	mkTenant(t, s, kr, "a")
	mkTenant(t, s, kr, "b")
	put(t, s, kr, "a", "cred", "1", []byte("hunter2-bank-password"))
	got, err := get(s, kr, "a", "cred", "1")
	if err != nil || string(got) != "hunter2-bank-password" {
		t.Fatalf("open = %q, %v", got, err)
	}
	var ct []byte
	_ = s.View(ctx, func(tx store.Tx) error {
		r, _ := tx.GetRecord(ctx, "a", "cred", "1")
		ct = r.Ciphertext
		return nil
	})
	for name, c := range map[string][3]string{
		"fail/other record":      {"a", "cred", "2"},
		"fail/other kind":        {"a", "device", "1"},
		"fail/other tenant":      {"b", "cred", "1"},
		"fail/other tenant+id=0": {"b", "cred", ""},
	} {
		t.Run(name, func(t *testing.T) {
			err := s.View(ctx, func(tx store.Tx) error {
				_, err := kr.Open(ctx, tx, c[0], c[1], c[2], ct)
				return err
			})
			if !errors.Is(err, keys.ErrBadCiphertext) {
				t.Fatalf("moved ciphertext opened: %v", err)
			}
		})
	}
	t.Run("fail/flipped bit", func(t *testing.T) {
		bad := bytes.Clone(ct)
		bad[len(bad)-1] ^= 1
		err := s.View(ctx, func(tx store.Tx) error {
			_, err := kr.Open(ctx, tx, "a", "cred", "1", bad)
			return err
		})
		if !errors.Is(err, keys.ErrBadCiphertext) {
			t.Fatalf("tampered ciphertext: %v", err)
		}
	})
}

// Invariant 2: nothing stored is readable without the root key.
func TestNoPlaintextAtRest(t *testing.T) {
	s, root, kr, _, dir := unsealed(t)
	mkTenant(t, s, kr, "a")
	secret := []byte("PLAINTEXT-MARKER-7f3a9c")
	put(t, s, kr, "a", "cred", "1", secret)
	s.Close()
	_ = root
	for _, name := range []string{sqlite.FileName, sqlite.FileName + "-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, secret) {
			t.Fatalf("%s holds the plaintext", name)
		}
	}
}

func TestWrongKeyFile(t *testing.T) {
	ctx := context.Background()
	s, _, _, c, _ := unsealed(t)
	r2 := keys.NewRoot(s, c.Now)
	if err := r2.UnsealWithKey(ctx, newKey()); !errors.Is(err, keys.ErrWrongKey) {
		t.Fatalf("wrong key = %v", err)
	}
	if !r2.Sealed() {
		t.Fatal("unsealed with a wrong key")
	}
	if _, err := r2.Unseal(ctx, "AAAA"); !errors.Is(err, keys.ErrWrongSealType) {
		t.Fatalf("share on key-file install = %v", err)
	}
}

func TestRotateAndRewrap(t *testing.T) {
	ctx := context.Background()
	s, _, kr, _, _ := unsealed(t)
	mkTenant(t, s, kr, "a")
	for i := range 25 {
		put(t, s, kr, "a", "cred", fmt.Sprint(i), []byte(fmt.Sprint("secret-", i)))
	}
	var v int
	err := s.Update(ctx, func(tx store.Tx) error {
		var err error
		v, err = kr.Rotate(ctx, tx, "a")
		return err
	})
	if err != nil || v != 2 {
		t.Fatalf("Rotate = %d, %v", v, err)
	}
	// Old records still open before the re-wrap.
	if got, err := get(s, kr, "a", "cred", "3"); err != nil || string(got) != "secret-3" {
		t.Fatalf("open v1 after rotate = %q, %v", got, err)
	}
	put(t, s, kr, "a", "cred", "new", []byte("x"))
	total := 0
	for {
		n, err := kr.Rewrap(ctx, s, "a", 10)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 25 {
		t.Fatalf("rewrapped %d, want 25", total)
	}
	_ = s.View(ctx, func(tx store.Tx) error {
		infos, err := kr.Versions(ctx, tx, "a")
		if err != nil || len(infos) != 2 || infos[0].Records != 0 || infos[1].Records != 26 || infos[0].State != store.KeyRetired {
			t.Errorf("Versions = %+v, %v", infos, err)
		}
		return nil
	})
	for i := range 25 {
		if got, err := get(s, kr, "a", "cred", fmt.Sprint(i)); err != nil || string(got) != fmt.Sprint("secret-", i) {
			t.Fatalf("record %d after rewrap = %q, %v", i, got, err)
		}
	}
}

func TestShred(t *testing.T) {
	ctx := context.Background()
	s, root, kr, c, _ := unsealed(t)
	mkTenant(t, s, kr, "a")
	mkTenant(t, s, kr, "b")
	put(t, s, kr, "a", "cred", "1", []byte("gone"))
	put(t, s, kr, "b", "cred", "1", []byte("stays"))
	if err := s.Update(ctx, func(tx store.Tx) error { return kr.Shred(ctx, tx, "a") }); err != nil {
		t.Fatal(err)
	}
	if _, err := get(s, kr, "a", "cred", "1"); !errors.Is(err, keys.ErrKeyDestroyed) {
		t.Fatalf("open after shred = %v, want ErrKeyDestroyed", err)
	}
	// A fresh keyring with the same root key cannot open it either.
	fresh := keys.NewKeyring(root, c.Now)
	if _, err := get(s, fresh, "a", "cred", "1"); !errors.Is(err, keys.ErrKeyDestroyed) {
		t.Fatalf("fresh keyring after shred = %v", err)
	}
	if got, err := get(s, fresh, "b", "cred", "1"); err != nil || string(got) != "stays" {
		t.Fatalf("other tenant after shred = %q, %v", got, err)
	}
	err := s.View(ctx, func(tx store.Tx) error {
		ks, _ := tx.ListTenantKeys(ctx, "a")
		for _, k := range ks {
			if k.Wrapped != nil || k.HPKEPrivate != nil {
				t.Errorf("key %d material still stored", k.Version)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { _, err := kr.Rotate(ctx, tx, "a"); return err }); !errors.Is(err, keys.ErrKeyDestroyed) {
		t.Fatalf("rotate after shred = %v", err)
	}
}

func TestRotateRootShamir(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c := &clock{time.Now()}
	root, old := initShamir(t, s, c, 3, 2)
	for _, sh := range old[:2] {
		if _, err := root.Unseal(ctx, sh); err != nil {
			t.Fatal(err)
		}
	}
	kr := keys.NewKeyring(root, c.Now)
	mkTenant(t, s, kr, "a")
	put(t, s, kr, "a", "cred", "1", []byte("kept"))
	res, err := root.RotateRoot(ctx, keys.RotateOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Shares) != 3 || res.Threshold != 2 {
		t.Fatalf("rotate result: %d shares, threshold %d", len(res.Shares), res.Threshold)
	}
	// A restart: a new Root over the same store.
	r2 := keys.NewRoot(s, c.Now)
	if _, err := r2.Unseal(ctx, old[0]); !errors.Is(err, keys.ErrBadShare) {
		t.Fatalf("old share after rotation = %v", err)
	}
	for _, sh := range shares(res)[1:] {
		if _, err := r2.Unseal(ctx, sh); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := r2.Status(ctx)
	if st.Sealed || st.Generation != 2 {
		t.Fatalf("after unseal with new shares: %+v", st)
	}
	if got, err := get(s, keys.NewKeyring(r2, c.Now), "a", "cred", "1"); err != nil || string(got) != "kept" {
		t.Fatalf("record after root rotation = %q, %v", got, err)
	}
}

func TestSubmission(t *testing.T) {
	ctx := context.Background()
	s, _, kr, _, _ := unsealed(t)
	mkTenant(t, s, kr, "a")
	mkTenant(t, s, kr, "b")
	var v int
	var pub []byte
	_ = s.View(ctx, func(tx store.Tx) error {
		var err error
		v, pub, err = kr.PublicKey(ctx, tx, "a")
		return err
	})
	sealed, err := keys.SealSubmission("a", v, pub, []byte("payroll-password"))
	if err != nil {
		t.Fatal(err)
	}
	open := func(tenant string, b []byte) ([]byte, error) {
		var pt []byte
		err := s.View(ctx, func(tx store.Tx) error {
			var err error
			pt, err = kr.OpenSubmission(ctx, tx, tenant, b)
			return err
		})
		return pt, err
	}
	if pt, err := open("a", sealed); err != nil || string(pt) != "payroll-password" {
		t.Fatalf("OpenSubmission = %q, %v", pt, err)
	}
	if _, err := open("b", sealed); !errors.Is(err, keys.ErrBadCiphertext) {
		t.Fatalf("other tenant opened the submission: %v", err)
	}
	// Sealed for tenant a's key but claiming to be for b: info binds tenant.
	forged, _ := keys.SealSubmission("b", v, pub, []byte("x"))
	if _, err := open("a", forged); !errors.Is(err, keys.ErrBadCiphertext) {
		t.Fatalf("submission bound to another tenant opened: %v", err)
	}
}

func TestSecretRedacted(t *testing.T) {
	s := keys.Secret("top-secret-value")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "k", s)
	out := buf.String() + fmt.Sprint(s) + fmt.Sprintf("%v %s %#v", s, s, s)
	if strings.Contains(out, "top-secret") {
		t.Fatalf("secret leaked: %s", out)
	}
}
