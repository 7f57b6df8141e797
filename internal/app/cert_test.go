package app_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/vault/certtest"
)

const certPassword = "Kx-p12-pass-5508"

// p12 makes a real PKCS#12 file valid from an hour ago (node clock) for
// life.
func (n *node) p12(life time.Duration, tune func(*certtest.Options)) *certtest.Result {
	n.t.Helper()
	o := certtest.Options{CommonName: "ACME SL sello", SerialNumber: "B12345678", Password: certPassword,
		NotBefore: n.clock.Now().Add(-time.Hour), NotAfter: n.clock.Now().Add(life)}
	if tune != nil {
		tune(&o)
	}
	r, err := certtest.New(o)
	if err != nil {
		n.t.Fatal(err)
	}
	return r
}

func (n *node) uploadCert(by, name string, file []byte, password, holder string) resp {
	n.t.Helper()
	body := map[string]any{"name": name, "pkcs12": base64.StdEncoding.EncodeToString(file), "password": password}
	if holder != "" {
		body["holder"] = holder
	}
	return n.do("POST", "/api/v1/tenants/acme/certificates", by, body)
}

type certView struct {
	Subject      string    `json:"subject"`
	Issuer       string    `json:"issuer"`
	Serial       string    `json:"serial"`
	NotAfter     time.Time `json:"not_after"`
	DaysLeft     int       `json:"days_left"`
	Expired      bool      `json:"expired"`
	Fingerprint  string    `json:"fingerprint_sha256"`
	KeyAlgorithm string    `json:"key_algorithm"`
	HolderID     string    `json:"holder_id"`
	Version      int       `json:"version"`
	Warning      string    `json:"warning"`
	Warnings     []warning `json:"warnings"`
	Credential   struct {
		ID             string   `json:"id"`
		Kind           string   `json:"kind"`
		Fields         []string `json:"fields"`
		CurrentVersion int      `json:"current_version"`
	} `json:"credential"`
}

// notifications reads a member's notification kinds from the store (the
// tests move the clock past their sessions' lifetime).
func (n *node) notifications(tenantID, memberID string) []string {
	n.t.Helper()
	var out []string
	err := n.app.Store.View(n.t.Context(), func(tx store.Tx) error {
		ns, err := tx.ListNotifications(n.t.Context(), tenantID, memberID, 1000)
		for _, x := range ns {
			out = append(out, x.Kind)
		}
		return err
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

func count(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

// signWith signs a digest with a fetched PKCS#8 PEM key and checks it with
// the fetched leaf: what a robot does to sign an invoice.
func signWith(t *testing.T, keyPEM, certPEM string) {
	t.Helper()
	kb, _ := pem.Decode([]byte(keyPEM))
	cb, _ := pem.Decode([]byte(certPEM))
	if kb == nil || cb == nil {
		t.Fatal("fetched key or certificate is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("Factura 2026-0042: 1.210,00 EUR"))
	sig, err := key.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(leaf.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("the fetched key's signature does not verify with the fetched certificate")
	}
}

// A certificate goes in as a PKCS#12 file, shows its public facts, never
// comes back to a person, and a robot with a grant fetches it and signs.
func TestCertificateUploadAndFetch(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		adaID, ada := n.join("acme", owner, "ada", "admin")
		ada = n.pat(ada)
		file := n.p12(365*24*time.Hour, func(o *certtest.Options) { o.WithCA = true })
		const name = "certs/fnmt/seal"
		r := n.uploadCert(ada, name, file.PKCS12, certPassword, "ada@acme.example")
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		var c certView
		r.json(t, &c)
		fp := sha256.Sum256(file.Leaf.Raw)
		if !strings.Contains(c.Subject, "CN=ACME SL sello") || !strings.Contains(c.Issuer, "CN=Test Issuing CA") ||
			c.Serial != hex.EncodeToString(file.Leaf.SerialNumber.Bytes()) || c.DaysLeft != 365 || c.Expired || c.Warning != "" ||
			c.Fingerprint != hex.EncodeToString(fp[:]) || c.KeyAlgorithm != "ECDSA-P-256" || c.HolderID != adaID || c.Version != 1 ||
			c.Credential.Kind != "certificate" || strings.Join(c.Credential.Fields, ",") != "certificate,chain,password,pkcs12,private_key" {
			t.Errorf("upload answer = %s", r.body)
		}
		id := c.Credential.ID
		// Its password only opens the file: health does not call it
		// unchecked (nor weak).
		var health struct {
			Credentials []struct {
				Name     string
				Problems []string
			}
			Summary struct{ Unchecked int }
		}
		n.do("GET", "/api/v1/tenants/acme/credentials-health", ada, nil).json(t, &health)
		if len(health.Credentials) != 1 || len(health.Credentials[0].Problems) != 0 || health.Summary.Unchecked != 0 {
			t.Errorf("health of a new certificate = %+v", health)
		}
		p12b64 := base64.StdEncoding.EncodeToString(file.PKCS12)
		secretish := []string{certPassword, "PRIVATE KEY", p12b64[100:160]}

		// Invariant 3: no native route hands a person the key.
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", owner, map[string]string{"purpose": "sign"}); r.status != 403 {
			t.Errorf("owner fetches: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/certificates/"+id+"/fetch", ada, map[string]string{"purpose": "sign"}); r.status != 403 {
			t.Errorf("admin fetches the certificate: %d %s", r.status, r.body)
		}
		n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": adaID, "permission": "credentials.reveal",
			"resource": "credential:" + id, "duration": "1h", "reason": "testing"})
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/reveal", ada, map[string]string{"reason": "curious"}); r.status != 403 ||
			r.errCode(t) != "write_only" {
			t.Errorf("admin reveals a write-only certificate: %d %s", r.status, r.body)
		}
		// Nor can the secret be replaced behind the upload's checks.
		r = n.do("POST", "/api/v1/tenants/acme/credentials", ada, map[string]any{"name": name, "secret": map[string]string{"private_key": "x"}})
		if r.status != 400 || r.errCode(t) != "use_certificate_upload" {
			t.Errorf("put over a certificate: %d %s", r.status, r.body)
		}
		esc := url.PathEscape(name)
		for _, path := range []string{
			"/api/v1/tenants/acme/certificates", "/api/v1/tenants/acme/certificates/" + esc, "/api/v1/tenants/acme/certificates/" + id,
			"/api/v1/tenants/acme/credentials/" + esc, "/api/v1/tenants/acme/credentials/" + id + "/versions",
			"/api/v1/tenants/acme/audit/events?limit=1000", "/api/v1/tenants/acme/audit/export", "/api/v1/me/notifications",
		} {
			for who, tok := range map[string]string{"owner": owner, "admin": ada} {
				r := n.do("GET", path, tok, nil)
				if r.status != 200 {
					t.Errorf("GET %s as %s: %d %s", path, who, r.status, r.body)
				}
				for _, s := range secretish {
					if strings.Contains(string(r.body), s) {
						t.Errorf("GET %s as %s carries %q", path, who, s)
					}
				}
			}
		}
		var got certView
		n.do("GET", "/api/v1/tenants/acme/certificates/"+esc, ada, nil).json(t, &got)
		if got.Serial != c.Serial || got.Credential.ID != id || got.DaysLeft != 365 {
			t.Errorf("certificate by name = %+v", got)
		}
		var list struct{ Certificates []certView }
		n.do("GET", "/api/v1/tenants/acme/certificates?expiring_within=30d", ada, nil).json(t, &list)
		if len(list.Certificates) != 0 {
			t.Errorf("expiring within 30 days = %+v", list.Certificates)
		}
		n.do("GET", "/api/v1/tenants/acme/certificates?expiring_within=400d", ada, nil).json(t, &list)
		if len(list.Certificates) != 1 || list.Certificates[0].Serial != c.Serial {
			t.Errorf("expiring within 400 days = %+v", list.Certificates)
		}
		if r := n.do("GET", "/api/v1/tenants/acme/certificates?expiring_within=soon", ada, nil); r.status != 400 {
			t.Errorf("bad expiring_within: %d", r.status)
		}

		// A robot with a fetch grant gets the parts and signs: the owner
		// holds its token, so the other admin grants (dual control).
		botID, bot := n.robot(owner, "invoice-bot")
		if r := n.do("POST", "/api/v1/tenants/acme/certificates/"+esc+"/fetch", bot, map[string]string{"purpose": "sign"}); r.status != 404 {
			t.Errorf("fetch without a grant: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/grants", ada, map[string]string{"subject": botID, "permission": "credentials.fetch",
			"resource": "group:certs", "duration": "24h", "reason": "invoice signing"}); r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		r = n.do("POST", "/api/v1/tenants/acme/certificates/"+esc+"/fetch", bot, map[string]string{"purpose": "sign invoice 2026-0042"})
		var s struct {
			Version     int    `json:"version"`
			LeaseID     string `json:"lease_id"`
			Certificate string `json:"certificate"`
			Chain       string `json:"chain"`
			PrivateKey  string `json:"private_key"`
			PKCS12      string `json:"pkcs12"`
			Password    string `json:"password"`
		}
		r.json(t, &s)
		if r.status != 200 || s.Version != 1 || s.LeaseID == "" || s.PKCS12 != p12b64 || s.Password != certPassword {
			t.Fatalf("robot fetch: %d %s", r.status, r.body)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("a key response may be cached: %q", r.header.Get("Cache-Control"))
		}
		signWith(t, s.PrivateKey, s.Certificate)
		if cb, _ := pem.Decode([]byte(s.Chain)); cb == nil || !bytes.Equal(cb.Bytes, file.CA.Raw) {
			t.Error("chain is not the issuing CA")
		}
		// The generic fetch serves it too, under the same names.
		r = n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", bot, map[string]string{"purpose": "sign again"})
		var g struct{ Secret map[string]string }
		r.json(t, &g)
		signWith(t, g.Secret["private_key"], g.Secret["certificate"])
		// A name that is not a certificate is not one to this route.
		n.putBank(owner, "certs/not-a-cert", bankSecret)
		if r := n.do("POST", "/api/v1/tenants/acme/certificates/certs%2Fnot-a-cert/fetch", bot, map[string]string{"purpose": "x"}); r.status != 404 {
			t.Errorf("certificate fetch of a bank login: %d %s", r.status, r.body)
		}

		// Renewal: the next upload is version 2 with the new facts;
		// restoring version 1 brings its facts back.
		renewed := n.p12(2*365*24*time.Hour, nil)
		r = n.uploadCert(ada, name, renewed.PKCS12, certPassword, "")
		var c2 certView
		r.json(t, &c2)
		if r.status != 200 || c2.Version != 2 || c2.Serial != hex.EncodeToString(renewed.Leaf.SerialNumber.Bytes()) || c2.HolderID != adaID ||
			strings.Contains(strings.Join(c2.Credential.Fields, ","), "chain") {
			t.Errorf("renewal: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/restore", ada, map[string]int{"version": 1}); r.status != 200 {
			t.Fatalf("restore: %d %s", r.status, r.body)
		} else if strings.Contains(string(r.body), `"warnings"`) {
			// The file's password is no login: never judged (as at upload).
			t.Errorf("restoring a certificate judged its file's password: %s", r.body)
		}
		for _, d := range n.auditDetails(n.tenantID("acme"), "credential.restore") {
			if _, judged := d["weak"]; judged {
				t.Errorf("the restore's audit entry judges the file's password: %v", d)
			}
		}
		n.do("GET", "/api/v1/tenants/acme/certificates/"+id, ada, nil).json(t, &got)
		if got.Version != 3 || got.Serial != c.Serial || got.DaysLeft != 365 {
			t.Errorf("after restoring version 1 = %+v", got)
		}

		// The audit log names the certificate, not the person in it.
		var ev struct {
			Events []struct {
				Action  string
				Details map[string]any
			}
		}
		n.do("GET", "/api/v1/tenants/acme/audit/events?action=certificate.upload", owner, nil).json(t, &ev)
		if len(ev.Events) != 2 || ev.Events[0].Details["serial"] != c.Serial || ev.Events[0].Details["fingerprint_sha256"] != c.Fingerprint {
			t.Errorf("upload audit = %+v", ev.Events)
		}
		for _, e := range ev.Events {
			if b, _ := json.Marshal(e.Details); strings.Contains(string(b), "B12345678") || strings.Contains(string(b), "sello") {
				t.Errorf("upload audit holds the subject: %s", b)
			}
		}
		acts := strings.Join(n.auditActions(n.tenantID("acme")), " ")
		if count(strings.Fields(acts), "credential.fetch:ok") != 2 {
			t.Errorf("fetches audited: %s", acts)
		}

		// Delete goes through the credential; the facts go with it.
		if r := n.do("DELETE", "/api/v1/tenants/acme/credentials/"+id, ada, nil); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/api/v1/tenants/acme/certificates/"+id, ada, nil); r.status != 404 {
			t.Errorf("deleted certificate: %d", r.status)
		}
		// Restoring a certificate never judges its file's password, even one that
		// would be a weak login (as at upload). password would be a weak login.
		weak := n.p12(90*24*time.Hour, func(o *certtest.Options) { o.Password = "password1234" })
		if r := n.uploadCert(ada, "certs/weakfile", weak.PKCS12, "password1234", ""); r.status != 201 && r.status != 200 {
			t.Fatalf("upload with a weak file password: %d %s", r.status, r.body)
		}
		n.uploadCert(ada, "certs/weakfile", weak.PKCS12, "password1234", "")
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/certs%2Fweakfile/restore", ada, map[string]int{"version": 1}); r.status != 200 ||
			strings.Contains(string(r.body), `"warnings"`) {
			t.Errorf("restoring a certificate with a weak file password: %d %s", r.status, r.body)
		}
	})
}

// Invariant 7 on the upload path: a bad file gets a 4xx that says what
// is wrong, and nothing is stored or audited.
func TestCertificateUploadRefusals(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		good := n.p12(365*24*time.Hour, nil)
		trust, err := certtest.TrustStore(certPassword)
		if err != nil {
			t.Fatal(err)
		}
		n.putBank(owner, "bank/main", bankSecret)
		for _, tc := range []struct {
			name, code string
			status     int
			body       any
		}{
			{"wrong password", "wrong_password", 400, map[string]any{"name": "certs/a", "pkcs12": good.PKCS12, "password": "nope"}},
			{"key of another certificate", "key_mismatch", 400, map[string]any{"name": "certs/a",
				"pkcs12": n.p12(time.Hour, func(o *certtest.Options) { o.WrongKey = true }).PKCS12, "password": certPassword}},
			{"no private key", "no_private_key", 400, map[string]any{"name": "certs/a", "pkcs12": trust, "password": certPassword}},
			{"garbage", "invalid_pkcs12", 400, map[string]any{"name": "certs/a", "pkcs12": []byte("MIIKfgIBAzCCCjwGCSqGSIb3DQEHAaCC"), "password": certPassword}},
			{"not base64", "invalid_pkcs12", 400, map[string]any{"name": "certs/a", "pkcs12": "%%%not base64%%%", "password": certPassword}},
			{"no file", "pkcs12_required", 400, map[string]any{"name": "certs/a", "password": certPassword}},
			{"too large", "pkcs12_too_large", 413, map[string]any{"name": "certs/a", "pkcs12": make([]byte, 70<<10), "password": certPassword}},
			{"unknown holder", "not_found", 404, map[string]any{"name": "certs/a", "pkcs12": good.PKCS12, "password": certPassword,
				"holder": "nobody@acme.example"}},
			{"a bank login's name", "not_a_certificate", 409, map[string]any{"name": "bank/main", "pkcs12": good.PKCS12, "password": certPassword}},
			{"bad name", "invalid_name", 400, map[string]any{"name": "../x", "pkcs12": good.PKCS12, "password": certPassword}},
			{"unknown field", "malformed_json", 400, map[string]any{"name": "certs/a", "pkcs12": good.PKCS12, "password": certPassword, "pem": "x"}},
			// Made with OpenSSL (certtest/testdata/openssl).
			{"a DSA key", "unsupported_key", 400, map[string]any{"name": "certs/a", "pkcs12": certtest.OpenSSL("dsa.p12"),
				"password": certtest.OpenSSLPassword}},
			{"no MAC", "unsupported_pkcs12", 400, map[string]any{"name": "certs/a", "pkcs12": certtest.OpenSSL("nomac.p12"),
				"password": certtest.OpenSSLPassword}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := n.do("POST", "/api/v1/tenants/acme/certificates", owner, tc.body)
				if r.status != tc.status || r.errCode(t) != tc.code {
					t.Errorf("%d %s, want %d %s", r.status, r.body, tc.status, tc.code)
				}
				if strings.Contains(string(r.body), certPassword) {
					t.Error("the answer repeats the password")
				}
			})
		}
		var list struct{ Certificates []certView }
		n.do("GET", "/api/v1/tenants/acme/certificates", owner, nil).json(t, &list)
		if len(list.Certificates) != 0 {
			t.Errorf("refused uploads left certificates: %+v", list.Certificates)
		}
		if r := n.do("GET", "/api/v1/tenants/acme/credentials/certs%2Fa", owner, nil); r.status != 404 {
			t.Errorf("refused uploads left a credential: %d", r.status)
		}
		if acts := strings.Join(n.auditActions(n.tenantID("acme")), " "); strings.Contains(acts, "certificate.") {
			t.Errorf("refused uploads were audited as done: %s", acts)
		}
		// An expired certificate is kept, and the answer says so.
		old := n.p12(-24*time.Hour, func(o *certtest.Options) { o.NotBefore = n.clock.Now().Add(-400 * 24 * time.Hour) })
		r := n.uploadCert(owner, "certs/old", old.PKCS12, certPassword, "")
		var c certView
		r.json(t, &c)
		if r.status != 201 || !c.Expired || c.DaysLeft != -1 || !strings.Contains(c.Warning, "expired") || len(c.Warnings) != 1 ||
			c.Warnings[0].Code != "expired" {
			t.Errorf("expired upload: %d %s", r.status, r.body)
		}
	})
}

// An RSA key shorter than 2048 bits is kept, with a weak_key warning on
// the upload and whenever the certificate is shown, and health lists it.
func TestCertificateWeakRSAKey(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		tid := n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		year := 365 * 24 * time.Hour
		weak := n.p12(year, func(o *certtest.Options) { o.Key, o.RSABits = "rsa", 1024 })
		r := n.uploadCert(owner, "certs/old-rsa", weak.PKCS12, certPassword, "")
		var c certView
		r.json(t, &c)
		if r.status != 201 || c.KeyAlgorithm != "RSA-1024" || len(c.Warnings) != 1 || c.Warnings[0].Code != "weak_key" ||
			!strings.Contains(c.Warnings[0].Message, "RSA-1024") || c.Warning != c.Warnings[0].Message {
			t.Errorf("RSA-1024 upload: %d %s", r.status, r.body)
		}
		var shown certView
		n.do("GET", "/api/v1/tenants/acme/certificates/certs%2Fold-rsa", owner, nil).json(t, &shown)
		if len(shown.Warnings) != 1 || shown.Warnings[0].Code != "weak_key" {
			t.Errorf("shown RSA-1024 certificate: %+v", shown)
		}
		r = n.uploadCert(owner, "certs/rsa", n.p12(year, func(o *certtest.Options) { o.Key = "rsa" }).PKCS12, certPassword, "")
		var strong certView
		r.json(t, &strong)
		if r.status != 201 || strong.KeyAlgorithm != "RSA-2048" || len(strong.Warnings) != 0 || strong.Warning != "" {
			t.Errorf("RSA-2048 upload: %d %s", r.status, r.body)
		}
		uploads := n.auditDetails(tid, "certificate.upload")
		if len(uploads) != 2 || uploads[0]["weak_key"] != true || uploads[0]["key_algorithm"] != "RSA-1024" || uploads[1]["weak_key"] != nil {
			t.Errorf("upload audit = %v", uploads)
		}
		by, rep := n.health(owner)
		if h := by["certs/old-rsa"]; !h.WeakKey || !slices.Equal(h.Problems, []string{"weak_key"}) {
			t.Errorf("health of the RSA-1024 certificate = %+v", h)
		}
		if h := by["certs/rsa"]; h.WeakKey || len(h.Problems) != 0 {
			t.Errorf("health of the RSA-2048 certificate = %+v", h)
		}
		if rep.Summary["weak_key"] != 1 || rep.Summary["healthy"] != 1 {
			t.Errorf("summary = %v", rep.Summary)
		}
	})
}

// Only a certificate credential's current, live version counts: a
// soft-deleted current version neither alerts nor is listed until it is
// undeleted, a destroyed one loses its facts, and a deleted credential is
// gone with them.
func TestCertificateDeletedVersionsDoNotAlert(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		ctx := t.Context()
		n.initAndUnseal()
		tid := n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		var me struct{ ID string }
		n.do("GET", "/api/v1/me", owner, nil).json(t, &me)
		day := 24 * time.Hour
		ids := map[string]string{}
		for _, name := range []string{"certs/deleted", "certs/destroyed", "certs/gone"} {
			r := n.uploadCert(owner, name, n.p12(20*day, nil).PKCS12, certPassword, "")
			var c certView
			r.json(t, &c)
			if r.status != 201 {
				t.Fatalf("upload %s: %d %s", name, r.status, r.body)
			}
			ids[name] = c.Credential.ID
		}
		for _, q := range []struct {
			method, path string
			body         any
		}{
			{"DELETE", "/v1/secret/data/certs/deleted", nil},
			{"POST", "/v1/secret/destroy/certs/destroyed", map[string]any{"versions": []int{1}}},
			{"DELETE", "/api/v1/tenants/acme/credentials/certs%2Fgone", nil},
		} {
			if r := n.do(q.method, q.path, owner, q.body); r.status != 204 {
				t.Fatalf("%s %s: %d %s", q.method, q.path, r.status, r.body)
			}
		}
		listed := func() []string {
			t.Helper()
			var list struct{ Certificates []certView }
			n.do("GET", "/api/v1/tenants/acme/certificates?expiring_within=30d", owner, nil).json(t, &list)
			var out []string
			for _, c := range list.Certificates {
				out = append(out, c.Credential.ID)
			}
			return out
		}
		if got := listed(); len(got) != 0 {
			t.Errorf("listed as expiring: %v", got)
		}
		for _, name := range []string{"certs/deleted", "certs/destroyed"} {
			if r := n.do("GET", "/api/v1/tenants/acme/certificates/"+url.PathEscape(name), owner, nil); r.status != 404 || r.errCode(t) != "version_deleted" {
				t.Errorf("show %s: %d %s", name, r.status, r.body)
			}
		}
		by, _ := n.health(owner)
		for name, h := range by {
			if h.CertificateExpiring || h.CertificateExpired || !h.NotAfter.IsZero() {
				t.Errorf("health of %s = %+v", name, h)
			}
		}
		if rot := n.rotation(owner, ""); len(rot) != 0 {
			t.Errorf("rotate-needed = %v", rot)
		}
		if sent, err := n.app.Vault.CertificateAlerts(ctx); err != nil || sent != 0 {
			t.Errorf("alerts sent = %d, %v", sent, err)
		}
		if ks := n.notifications(tid, me.ID); slices.ContainsFunc(ks, func(k string) bool { return strings.HasPrefix(k, "certificate_") }) {
			t.Errorf("alerted: %v", ks)
		}
		// The destroyed version's facts are dropped; the deleted one's
		// wait for an undelete.
		err := n.app.Store.View(ctx, func(tx store.Tx) error {
			if row, err := tx.GetCertificate(ctx, tid, ids["certs/destroyed"]); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("facts of a destroyed version = %+v, %v", row, err)
			}
			_, err := tx.GetCertificate(ctx, tid, ids["certs/deleted"])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		// Undeleting brings the certificate back, alerts included.
		if r := n.do("POST", "/v1/secret/undelete/certs/deleted", owner, map[string]any{"versions": []int{1}}); r.status != 204 {
			t.Fatalf("undelete: %d %s", r.status, r.body)
		}
		if got := listed(); !slices.Equal(got, []string{ids["certs/deleted"]}) {
			t.Errorf("listed after undelete: %v", got)
		}
		if sent, err := n.app.Vault.CertificateAlerts(ctx); err != nil || sent != 1 {
			t.Errorf("alerts sent after undelete = %d, %v", sent, err)
		}
		// A new version over the destroyed one stands on its own facts,
		// and destroying an older version leaves the current one's.
		if r := n.uploadCert(owner, "certs/destroyed", n.p12(300*day, nil).PKCS12, certPassword, ""); r.status != 200 {
			t.Fatalf("upload over a destroyed version: %d %s", r.status, r.body)
		}
		if r := n.uploadCert(owner, "certs/deleted", n.p12(300*day, nil).PKCS12, certPassword, ""); r.status != 200 {
			t.Fatalf("renewal: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/v1/secret/destroy/certs/deleted", owner, map[string]any{"versions": []int{1}}); r.status != 204 {
			t.Fatalf("destroy v1: %d %s", r.status, r.body)
		}
		var c certView
		if r := n.do("GET", "/api/v1/tenants/acme/certificates/certs%2Fdeleted", owner, nil); r.status != 200 {
			t.Errorf("show after destroying an older version: %d %s", r.status, r.body)
		} else if r.json(t, &c); c.Version != 2 || c.DaysLeft != 300 {
			t.Errorf("after destroying version 1 = %+v", c)
		}
		var list struct{ Certificates []certView }
		n.do("GET", "/api/v1/tenants/acme/certificates", owner, nil).json(t, &list)
		if len(list.Certificates) != 2 {
			t.Errorf("certificates = %+v", list.Certificates)
		}
	})
}

// Destroying a certificate's current version drops its facts but not its
// holder: the store keeps the holder alone, nothing is listed or shown, and
// an earlier version restored or a renewal uploaded without naming a
// holder keeps the one the certificate had.
func TestCertificateDestroyedKeepsHolder(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		ctx := t.Context()
		n.initAndUnseal()
		tid := n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		melID, _ := n.join("acme", owner, "mel", "member")
		year := 365 * 24 * time.Hour
		var c certView
		r := n.uploadCert(owner, "certs/mel", n.p12(year, nil).PKCS12, certPassword, "mel@acme.example")
		if r.json(t, &c); r.status != 201 || c.HolderID != melID {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		if r := n.uploadCert(owner, "certs/mel", n.p12(2*year, nil).PKCS12, certPassword, ""); r.status != 200 {
			t.Fatalf("renewal: %d %s", r.status, r.body)
		}
		destroy := func(v int) {
			t.Helper()
			if r := n.do("POST", "/v1/secret/destroy/certs/mel", owner, map[string]any{"versions": []int{v}}); r.status != 204 {
				t.Fatalf("destroy v%d: %d %s", v, r.status, r.body)
			}
			err := n.app.Store.View(ctx, func(tx store.Tx) error {
				row, err := tx.GetCertificate(ctx, tid, c.Credential.ID)
				if err != nil {
					return err
				}
				if row.HolderID != melID || row.Version != v || row.Subject != "" || row.Issuer != "" || row.Serial != "" ||
					len(row.Fingerprint) != 0 || !row.NotAfter.IsZero() || row.KeyAlgorithm != "" {
					t.Errorf("after destroying v%d the store keeps %+v, want the holder alone", v, row)
				}
				return nil
			})
			if err != nil {
				t.Errorf("after destroying v%d: %v", v, err)
			}
			if r := n.do("GET", "/api/v1/tenants/acme/certificates/certs%2Fmel", owner, nil); r.status != 404 {
				t.Errorf("show after destroying v%d: %d %s", v, r.status, r.body)
			}
			var list struct{ Certificates []certView }
			if n.do("GET", "/api/v1/tenants/acme/certificates", owner, nil).json(t, &list); len(list.Certificates) != 0 {
				t.Errorf("listed after destroying v%d: %+v", v, list.Certificates)
			}
		}
		show := func() certView {
			t.Helper()
			var c certView
			if r := n.do("GET", "/api/v1/tenants/acme/certificates/certs%2Fmel", owner, nil); r.status != 200 {
				t.Fatalf("show: %d %s", r.status, r.body)
			} else {
				r.json(t, &c)
			}
			return c
		}
		destroy(2)
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/certs%2Fmel/restore", owner, map[string]any{"version": 1}); r.status != 200 {
			t.Fatalf("restore v1: %d %s", r.status, r.body)
		}
		if got := show(); got.Version != 3 || got.HolderID != melID || got.Fingerprint != c.Fingerprint {
			t.Errorf("v1 restored over the destroyed v2: %+v, want holder %s", got, melID)
		}
		destroy(3)
		if r := n.uploadCert(owner, "certs/mel", n.p12(year, nil).PKCS12, certPassword, ""); r.status != 200 {
			t.Fatalf("renewal over the destroyed v3: %d %s", r.status, r.body)
		}
		if got := show(); got.Version != 4 || got.HolderID != melID || got.Subject == "" {
			t.Errorf("renewed over the destroyed v3: %+v, want holder %s", got, melID)
		}
	})
}

// Admins hear of a certificate 30 days and 7 days before it expires and
// when it has expired, each once however often the sweep runs.
func TestCertificateExpiryAlerts(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		ctx := t.Context()
		n.initAndUnseal()
		tid := n.createTenant("acme")
		ownerSession := n.owner("acme")
		owner := n.pat(ownerSession)
		adaID, _ := n.join("acme", owner, "ada", "admin")
		melID, _ := n.join("acme", owner, "mel", "member")
		var me struct{ ID string }
		n.do("GET", "/api/v1/me", owner, nil).json(t, &me)
		day := 24 * time.Hour
		if r := n.uploadCert(owner, "certs/seal", n.p12(40*day, nil).PKCS12, certPassword, ""); r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		// A shredded tenant's certificates raise no alerts.
		betaID := n.createTenant("beta")
		beta := n.pat(n.owner("beta"))
		var betaOwner struct{ ID string }
		n.do("GET", "/api/v1/me", beta, nil).json(t, &betaOwner)
		if r := n.do("POST", "/api/v1/tenants/beta/certificates", beta, map[string]any{"name": "certs/x", "pkcs12": n.p12(3*day, nil).PKCS12,
			"password": certPassword}); r.status != 201 {
			t.Fatalf("upload to beta: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/beta/shred", n.token, map[string]string{"confirm": "beta"}); r.status != 200 {
			t.Fatalf("shred: %d %s", r.status, r.body)
		}
		// One found already within 7 days gets the 7-day alert alone.
		if r := n.uploadCert(owner, "certs/late", n.p12(5*day, nil).PKCS12, certPassword, ""); r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		sweep := func() {
			t.Helper()
			if err := n.app.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
		}
		expect := func(when string, expiring, expired int) {
			t.Helper()
			for _, m := range []string{me.ID, adaID} {
				ks := n.notifications(tid, m)
				if count(ks, "certificate_expiring") != expiring || count(ks, "certificate_expired") != expired {
					t.Errorf("%s: notifications of %s = %v, want %d expiring and %d expired", when, m, ks, expiring, expired)
				}
			}
			if ks := n.notifications(tid, melID); slices.ContainsFunc(ks, func(k string) bool { return strings.HasPrefix(k, "certificate_") }) {
				t.Errorf("%s: a member was alerted: %v", when, ks)
			}
		}
		sweep()
		sweep()
		expect("at upload", 1, 0)       // certs/late, at 7 days
		n.clock.Add(10*day + time.Hour) // certs/seal: 29 days and 23 hours left; certs/late expired
		// Two nodes sweeping at once send each alert once.
		var wg sync.WaitGroup
		sent := make([]int, 2)
		for i := range sent {
			wg.Go(func() {
				var err error
				if sent[i], err = n.app.Vault.CertificateAlerts(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if sent[0]+sent[1] != 2 {
			t.Errorf("concurrent sweeps sent %v alerts, want 2 in all", sent)
		}
		sweep()
		expect("within 30 days", 2, 1)
		n.clock.Add(22 * day) // certs/seal: 7 days and 23 hours left: not yet
		sweep()
		expect("8 days before", 2, 1)
		n.clock.Add(day)
		sweep()
		sweep()
		expect("within 7 days", 3, 1)
		n.clock.Add(7 * day)
		sweep()
		sweep()
		expect("expired", 3, 2)
		if ks := n.notifications(betaID, betaOwner.ID); slices.ContainsFunc(ks, func(k string) bool { return strings.HasPrefix(k, "certificate_") }) {
			t.Errorf("a shredded tenant's owner was alerted: %v", ks)
		}
		var expiring, expired int
		for _, a := range n.auditActions(tid) {
			switch a {
			case "certificate.expiring:ok":
				expiring++
			case "certificate.expired:ok":
				expired++
			}
		}
		if expiring != 3 || expired != 2 {
			t.Errorf("audited %d expiring and %d expired alerts, want 3 and 2", expiring, expired)
		}
	})
}

// Offboarding a certificate's holder tells the admins, lists it in the
// report and flags it for rotation; a renewal must then say who the new
// certificate's holder is.
func TestCertificateHolderOffboarded(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		tid := n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		adaID, _ := n.join("acme", owner, "ada", "admin")
		melID, _ := n.join("acme", owner, "mel", "member")
		r := n.uploadCert(owner, "certs/mel", n.p12(365*24*time.Hour, nil).PKCS12, certPassword, "mel@acme.example")
		var c certView
		r.json(t, &c)
		if r.status != 201 || c.HolderID != melID {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		n.uploadCert(owner, "certs/company", n.p12(365*24*time.Hour, nil).PKCS12, certPassword, "")
		r = n.do("POST", "/api/v1/tenants/acme/members/"+melID+"/offboard", owner, map[string]string{"reason": "left"})
		var rep struct {
			ID               string
			CertificatesHeld []string `json:"certificates_held"`
			RotationNeeded   []string `json:"rotation_needed"`
		}
		r.json(t, &rep)
		want := "credential:" + c.Credential.ID
		if r.status != 200 || !slices.Equal(rep.CertificatesHeld, []string{want}) || !slices.Contains(rep.RotationNeeded, want) {
			t.Fatalf("offboard: %d %s", r.status, r.body)
		}
		if ks := n.notifications(tid, adaID); count(ks, "certificate_holder_left") != 1 {
			t.Errorf("admin notifications = %v", ks)
		}
		if acts := n.auditActions(tid); count(acts, "certificate.holder_left:ok") != 1 {
			t.Errorf("audit = %v", acts)
		}
		r = n.do("GET", "/api/v1/tenants/acme/offboarding/"+rep.ID+"?format=text", owner, nil)
		if !strings.Contains(string(r.body), "Certificates that identify them") || !strings.Contains(string(r.body), want) {
			t.Errorf("text report: %s", r.body)
		}
		// A leaver cannot be named holder.
		if r := n.uploadCert(owner, "certs/x", n.p12(time.Hour*24, nil).PKCS12, certPassword, melID); r.status != 400 || r.errCode(t) != "invalid_holder" {
			t.Errorf("offboarded holder: %d %s", r.status, r.body)
		}
		// Nor kept by a renewal that names no holder: the uploader says
		// whom the new certificate identifies, or that it is nobody.
		r = n.uploadCert(owner, "certs/mel", n.p12(2*365*24*time.Hour, nil).PKCS12, certPassword, "")
		if r.status != 409 || r.errCode(t) != "holder_offboarded" || !strings.Contains(string(r.body), `\"none\"`) {
			t.Errorf("renewal without a holder over a leaver's certificate: %d %s", r.status, r.body)
		}
		var now certView
		n.do("GET", "/api/v1/tenants/acme/certificates/certs%2Fmel", owner, nil).json(t, &now)
		if now.Version != 1 || now.HolderID != melID {
			t.Errorf("after the refused renewal: %+v", now)
		}
		r = n.uploadCert(owner, "certs/mel", n.p12(2*365*24*time.Hour, nil).PKCS12, certPassword, "none")
		var renewed certView
		if r.json(t, &renewed); r.status != 200 || renewed.Version != 2 || renewed.HolderID != "" {
			t.Errorf("renewal with holder none: %d %s", r.status, r.body)
		}
		if d := n.auditDetails(tid, "certificate.upload"); len(d) != 3 || d[2]["previous_holder"] != melID || d[2]["holder"] != "" {
			t.Errorf("audited uploads: %v", d)
		}
	})
}

// A certificate renewed when its rotation was due is that rotation, as a
// credential's new secret is: the date is done with and audited; a date
// given with the renewal is kept.
func TestCertificateRenewalIsTheRotation(t *testing.T) {
	n := newNode(t, engines()[0].open(t))
	n.initAndUnseal()
	tid := n.createTenant("acme")
	owner := n.pat(n.owner("acme"))
	year := 365 * 24 * time.Hour
	upload := func(rotateBy string) resp {
		body := map[string]any{"name": "certs/seal", "pkcs12": base64.StdEncoding.EncodeToString(n.p12(year, nil).PKCS12), "password": certPassword}
		if rotateBy != "" {
			body["rotate_by"] = rotateBy
		}
		return n.do("POST", "/api/v1/tenants/acme/certificates", owner, body)
	}
	rotateBy := func() string {
		var c struct {
			RotateBy string `json:"rotate_by"`
		}
		n.do("GET", "/api/v1/tenants/acme/credentials/certs%2Fseal", owner, nil).json(t, &c)
		return c.RotateBy
	}
	if r := upload("2026-11-25T00:00:00Z"); r.status != 201 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	if r := upload(""); r.status != 200 {
		t.Fatalf("renewal: %d %s", r.status, r.body)
	}
	if got := rotateBy(); got != "" {
		t.Errorf("rotate_by after a renewal when due = %q, want none", got)
	}
	uploads := n.auditDetails(tid, "certificate.upload")
	if len(uploads) != 2 || uploads[1]["rotate_by_done"] != "2026-11-25T00:00:00Z" {
		t.Errorf("renewal audit = %v", uploads)
	}
	if r := upload("2027-10-01T00:00:00Z"); r.status != 200 || rotateBy() != "2027-10-01T00:00:00Z" {
		t.Errorf("renewal with the next date: %d, rotate_by %q", r.status, rotateBy())
	}
}

// A certificate upload is held to what any credential write is: its notes
// and group to the metadata limits.
func TestCertificateUploadHeldAsCredentials(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		file := n.p12(365*24*time.Hour, nil).PKCS12
		if r := n.uploadCert(owner, "certs/seal", file, certPassword, ""); r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		for body, code := range map[string]string{"notes": "invalid_notes", "group": "invalid_group"} {
			value := "renewed\x1b[2J by the gestoría"
			if body == "group" {
				value = "certs:all"
			}
			r := n.do("POST", "/api/v1/tenants/acme/certificates", owner, map[string]any{"name": "certs/other",
				"pkcs12": base64.StdEncoding.EncodeToString(file), "password": certPassword, body: value})
			if r.status != 400 || r.errCode(t) != code {
				t.Errorf("upload with a bad %s: %d %s, want 400 %s", body, r.status, r.body, code)
			}
		}
	})
}
