package vault

import (
	"context"
	"crypto/hpke"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/client"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/sqlite"
)

const testTenant = "tnt_sealedtest"

// newService returns a vault over a fresh SQLite store with one tenant
// and its keys, and the tenant's public key as clients get it.
func newService(tb testing.TB) (*Service, client.PublicKey) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	now := func() time.Time { return time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC) }
	root := keys.NewRoot(st, now)
	key, _ := keys.GenerateKey()
	if _, err := root.Init(ctx, keys.InitOptions{Type: keys.SealKeyFile, Key: key}, nil); err != nil {
		tb.Fatal(err)
	}
	kr := keys.NewKeyring(root, now)
	var pub client.PublicKey
	err = st.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateTenant(ctx, &store.Tenant{ID: testTenant, Slug: "acme", Name: "ACME", Status: store.TenantActive}); err != nil {
			return err
		}
		if err := kr.CreateTenantKeys(ctx, tx, testTenant); err != nil {
			return err
		}
		v, pk, err := kr.PublicKey(ctx, tx, testTenant)
		pub = client.PublicKey{TenantID: testTenant, Version: v, Suite: keys.SubmissionSuite, PublicKey: base64.StdEncoding.EncodeToString(pk)}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return New(st, kr, now, slog.New(slog.NewTextHandler(io.Discard, nil))), pub
}

func TestOpenSealed(t *testing.T) {
	s, pub := newService(t)
	ctx := context.Background()
	fields := map[string]string{"password": "Zq8-sealed-7731", "pin": "4821"}
	two := 2
	good, err := client.SealSecret(pub, "bank/santander/main", fields, &two)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ok/opens with its fields and cas", func(t *testing.T) {
		f, cas, err := s.openSealed(ctx, testTenant, "bank/santander/main", good)
		if err != nil || !maps.Equal(f, Fields(fields)) || cas == nil || *cas != 2 {
			t.Fatalf("openSealed = %v, %v, %v", len(f), cas, err)
		}
	})
	wrongTenant := pub
	wrongTenant.TenantID = "tnt_other"
	forged, _ := client.SealSecret(wrongTenant, "bank/santander/main", fields, nil)
	for name, c := range map[string]struct {
		sealed, credential, code string
	}{
		"fail/other name":          {good, "bank/bbva", "sealed_name_mismatch"},
		"fail/not base64":          {"!!!" + good, "bank/santander/main", "invalid_sealed_secret"},
		"fail/truncated":           {good[:len(good)-8], "bank/santander/main", "invalid_sealed_secret"},
		"fail/bound to a tenant":   {forged, "bank/santander/main", "invalid_sealed_secret"},
		"fail/empty blob":          {"", "bank/santander/main", "invalid_sealed_secret"},
		"fail/too large":           {strings.Repeat("A", maxSealedLen+4), "bank/santander/main", "invalid_sealed_secret"},
		"fail/unknown key version": {reversion(t, good, 9), "bank/santander/main", "invalid_sealed_secret"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := s.openSealed(ctx, testTenant, c.credential, c.sealed)
			fe, ok := fault.As(err)
			if !ok || fe.Kind != fault.Invalid || fe.Code != c.code {
				t.Fatalf("openSealed = %v, want %s", err, c.code)
			}
			if strings.Contains(fe.Message, "Zq8") {
				t.Fatalf("error carries the secret: %s", fe.Message)
			}
		})
	}
}

// reversion rewrites the key version in a sealed blob's header.
func reversion(t *testing.T, b64 string, v byte) string {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	b[4] = v
	return base64.StdEncoding.EncodeToString(b)
}

func TestParseSubmission(t *testing.T) {
	for name, c := range map[string]struct {
		doc, code string
	}{
		"ok/minimal":          {`{"v":1,"tenant":"t","name":"bank/x","secret":{"password":"p"}}`, ""},
		"ok/with cas":         {`{"v":1,"tenant":"t","name":"bank/x","cas":0,"secret":{}}`, ""},
		"fail/other name":     {`{"v":1,"tenant":"t","name":"bank/y","secret":{"password":"p"}}`, "sealed_name_mismatch"},
		"fail/other tenant":   {`{"v":1,"tenant":"u","name":"bank/x","secret":{"password":"p"}}`, "sealed_tenant_mismatch"},
		"fail/version 2":      {`{"v":2,"tenant":"t","name":"bank/x","secret":{"password":"p"}}`, "invalid_sealed_secret"},
		"fail/no version":     {`{"tenant":"t","name":"bank/x","secret":{"password":"p"}}`, "invalid_sealed_secret"},
		"fail/no secret":      {`{"v":1,"tenant":"t","name":"bank/x"}`, "invalid_sealed_secret"},
		"fail/unknown field":  {`{"v":1,"tenant":"t","name":"bank/x","secret":{},"extra":1}`, "invalid_sealed_secret"},
		"fail/trailing data":  {`{"v":1,"tenant":"t","name":"bank/x","secret":{}} {}`, "invalid_sealed_secret"},
		"fail/not json":       {`password=p`, "invalid_sealed_secret"},
		"fail/number field":   {`{"v":1,"tenant":"t","name":"bank/x","secret":{"pin":1234}}`, "invalid_sealed_secret"},
		"fail/negative cas":   {`{"v":1,"tenant":"t","name":"bank/x","cas":-1,"secret":{}}`, "invalid_sealed_secret"},
		"fail/name case only": {`{"v":1,"tenant":"t","name":"Bank/x","secret":{}}`, "sealed_name_mismatch"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseSubmission([]byte(c.doc), "t", "bank/x")
			if c.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if fe, ok := fault.As(err); !ok || fe.Code != c.code {
				t.Fatalf("parseSubmission = %v, want %s", err, c.code)
			}
		})
	}
}

// The sealed secret is outside input all the way down: base64, HPKE, then
// JSON. Anything either opens to the seeded fields (the only thing sealed
// to the key) or is refused as invalid input, never a panic or a 5xx.
func FuzzOpenSealedSecret(f *testing.F) {
	s, pub := newService(f)
	fields := map[string]string{"password": "Zq8-fuzz-seed"}
	good, err := client.SealSecret(pub, "bank/x", fields, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add("AQAAAAE=")
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, sealed string) {
		got, _, err := s.openSealed(context.Background(), testTenant, "bank/x", sealed)
		if err != nil {
			if fe, ok := fault.As(err); !ok || fe.Kind != fault.Invalid {
				t.Fatalf("openSealed error = %v, want invalid input", err)
			}
			return
		}
		if !maps.Equal(got, Fields(fields)) {
			t.Fatalf("opened something never sealed: %d fields", len(got))
		}
	})
}

// The inner document decoder on its own, past the HPKE layer a fuzzer
// cannot get through.
func FuzzParseSubmission(f *testing.F) {
	f.Add([]byte(`{"v":1,"tenant":"t","name":"bank/x","secret":{"password":"p"}}`))
	f.Add([]byte(`{"v":1,"tenant":"t","name":"bank/x","cas":3,"secret":{}}`))
	f.Add([]byte(`{"v":1,"tenant":"t","name":"bank/x","secret":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		sub, err := parseSubmission(doc, "t", "bank/x")
		if err != nil {
			if fe, ok := fault.As(err); !ok || fe.Kind != fault.Invalid {
				t.Fatalf("parseSubmission error = %v", err)
			}
			return
		}
		if sub.V != SubmissionVersion || sub.Tenant != "t" || sub.Name != "bank/x" || sub.Secret == nil || sub.CAS != nil && *sub.CAS < 0 {
			t.Fatalf("accepted %+v", sub)
		}
	})
}

func TestPasswordField(t *testing.T) {
	for name, c := range map[string]struct {
		f    Fields
		want string
		ok   bool
	}{
		"ok/password":            {Fields{"password": "a", "pin": "1"}, "a", true},
		"ok/spanish":             {Fields{"Contraseña": "b", "usuario": "x"}, "b", true},
		"ok/preferred over pass": {Fields{"pass": "c", "password": "d"}, "d", true},
		"ok/the only field":      {Fields{"api_key": "e"}, "e", true},
		"fail/none of several":   {Fields{"api_key": "e", "secret": "f"}, "", false},
		"fail/empty password":    {Fields{"password": ""}, "", false},
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := passwordField(c.f)
			if got != c.want || ok != c.ok {
				t.Fatalf("passwordField = %q, %v", got, ok)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	if j := judge(Fields{"password": "password1"}); j.strength >= 3 || !j.breached {
		t.Errorf("a breached password judged %+v", j)
	}
	if j := judge(Fields{"password": "Zq8-vault-test-secret-7731"}); j.strength < 3 || j.breached {
		t.Errorf("a strong password judged %+v", j)
	}
	// The institution is among the words tried first.
	plain, inst := judge(Fields{"password": "Santander2026!"}), judge(Fields{"password": "Santander2026!"}, "bank/santander", "Santander")
	if inst.strength > plain.strength {
		t.Errorf("institution as input raised the strength: %d > %d", inst.strength, plain.strength)
	}
	if j := judge(Fields{"api_key": "k", "secret": "s"}); j.strength != -1 || j.password != "" {
		t.Errorf("no password field judged %+v", j)
	}
}

// docSeal is the standard-library example of docs/sealed-submission.md,
// written from the document rather than from internal/keys: it pins the
// documented layout, suite and info string.
func docSeal(tenantID string, version int, pubB64, name string, fields map[string]string) (string, error) {
	pub, err := base64.StdEncoding.DecodeString(pubB64)
	if err != nil {
		return "", err
	}
	pk, err := hpke.MLKEM768X25519().NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	doc, err := json.Marshal(map[string]any{"v": 1, "tenant": tenantID, "name": name, "secret": fields})
	if err != nil {
		return "", err
	}
	info := []byte("custodia/record/v1")
	for _, s := range []string{tenantID, "submission", ""} {
		info = binary.BigEndian.AppendUint32(info, uint32(len(s)))
		info = append(info, s...)
	}
	info = binary.BigEndian.AppendUint32(info, uint32(version))
	ct, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), info, doc)
	if err != nil {
		return "", err
	}
	blob := binary.BigEndian.AppendUint32([]byte{0x01}, uint32(version))
	return base64.StdEncoding.EncodeToString(append(blob, ct...)), nil
}

func TestDocumentedFormat(t *testing.T) {
	s, pub := newService(t)
	b, err := docSeal(pub.TenantID, pub.Version, pub.PublicKey, "bank/x", map[string]string{"password": "Zq8-doc-example"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(b)
	pk, _ := base64.StdEncoding.DecodeString(pub.PublicKey)
	if len(pk) != 1216 || raw[0] != 1 || binary.BigEndian.Uint32(raw[1:5]) != uint32(pub.Version) || len(raw) != 5+1120+len(`{"name":"bank/x","secret":{"password":"Zq8-doc-example"},"tenant":"`+testTenant+`","v":1}`)+16 {
		t.Fatalf("layout: public key %d bytes, blob %d bytes", len(pk), len(raw))
	}
	f, _, err := s.openSealed(context.Background(), testTenant, "bank/x", b)
	if err != nil || f["password"] != "Zq8-doc-example" {
		t.Fatalf("the documented format does not open: %v", err)
	}
}
