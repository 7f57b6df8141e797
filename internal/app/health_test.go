package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/postgres"
	"github.com/custodia-project/custodia/internal/store/postgres/pgtest"
	"github.com/custodia-project/custodia/internal/store/sqlite"
	"github.com/custodia-project/custodia/internal/vault/certtest"
)

// Strong, unique passwords (zxcvbn 4, on no list).
const (
	sharedSecret  = "Wv4-health-shared-8812"
	overdueSecret = "Ht2-health-overdue-5530"
	soonSecret    = "Pm9-health-soon-2207"
	botSecret     = "Rk3-health-robot-9146"
	flagSecret    = "Lx6-health-flagged-3378"
)

type warning struct{ Code, Message string }

// putWarn writes a credential with a plaintext secret and returns the
// write's warning codes.
func (n *node) putWarn(tok string, body map[string]any) []string {
	n.t.Helper()
	r := n.do("POST", "/api/v1/tenants/acme/credentials", tok, body)
	if r.status != 201 && r.status != 200 {
		n.t.Fatalf("put %v: %d %s", body["name"], r.status, r.body)
	}
	var c struct{ Warnings []warning }
	r.json(n.t, &c)
	codes := []string{}
	for _, w := range c.Warnings {
		if w.Message == "" {
			n.t.Errorf("warning %s without a message", w.Code)
		}
		codes = append(codes, w.Code)
	}
	return codes
}

type credHealth struct {
	ID                  string
	Name                string
	Strength            int
	Weak, Breached      bool
	Reused              bool
	ReusedCount         int       `json:"reused_count"`
	ReusedWith          []string  `json:"reused_with"`
	RotationOverdue     bool      `json:"rotation_overdue"`
	RotationFlagged     bool      `json:"rotation_flagged"`
	RotationFlagReason  string    `json:"rotation_flag_reason"`
	OwnerLeft           bool      `json:"owner_left"`
	NotAfter            time.Time `json:"not_after"`
	CertificateExpiring bool      `json:"certificate_expiring"`
	CertificateExpired  bool      `json:"certificate_expired"`
	WeakKey             bool      `json:"weak_key"`
	Problems            []string
}

type healthReport struct {
	Summary     map[string]int
	Credentials []credHealth
}

func (n *node) health(tok string) (map[string]credHealth, healthReport) {
	n.t.Helper()
	r := n.do("GET", "/api/v1/tenants/acme/credentials-health", tok, nil)
	if r.status != 200 {
		n.t.Fatalf("health: %d %s", r.status, r.body)
	}
	for _, s := range []string{sharedSecret, overdueSecret, soonSecret, botSecret, flagSecret} {
		if strings.Contains(string(r.body), s) {
			n.t.Fatalf("health report carries a password")
		}
	}
	var rep healthReport
	r.json(n.t, &rep)
	by := map[string]credHealth{}
	for _, c := range rep.Credentials {
		by[c.Name] = c
	}
	return by, rep
}

type rotationList struct {
	Credentials []struct {
		Name    string
		Reasons []struct{ Code, Detail string }
	}
}

func (n *node) rotation(tok, within string) map[string][]string {
	n.t.Helper()
	path := "/api/v1/tenants/acme/credentials-rotation"
	if within != "" {
		path += "?within=" + within
	}
	r := n.do("GET", path, tok, nil)
	if r.status != 200 {
		n.t.Fatalf("rotation: %d %s", r.status, r.body)
	}
	var l rotationList
	r.json(n.t, &l)
	out := map[string][]string{}
	for _, c := range l.Credentials {
		for _, rs := range c.Reasons {
			if rs.Detail == "" {
				n.t.Errorf("%s: reason %s without detail", c.Name, rs.Code)
			}
			out[c.Name] = append(out[c.Name], rs.Code)
		}
	}
	return out
}

// Password health: weak, breached and reused passwords are flagged when
// written (without refusing them) and in the health report, with overdue
// rotate-by dates, offboarding flags and owners who left; a caller sees
// only the credentials they may read.
func TestPasswordHealth(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		adaID, _ := n.join("acme", owner, "ada", "admin")
		melID, _ := n.join("acme", owner, "mel", "member")

		if got := n.putWarn(owner, map[string]any{"name": "bank/weak", "secret": map[string]string{"password": "password1"}}); !slices.Equal(got, []string{"breached", "weak"}) {
			t.Errorf("warnings for a breached password = %v", got)
		}
		// Restoring the breached version judges it again.
		if got := n.putWarn(owner, map[string]any{"name": "bank/weak", "secret": map[string]string{"password": soonSecret + "-v2"}}); len(got) != 0 {
			t.Errorf("warnings for a strong second version = %v", got)
		}
		r := n.do("POST", "/api/v1/tenants/acme/credentials/bank%2Fweak/restore", owner, map[string]int{"version": 1})
		var rc struct{ Warnings []warning }
		r.json(t, &rc)
		if r.status != 200 || len(rc.Warnings) != 2 || rc.Warnings[0].Code != "breached" || rc.Warnings[1].Code != "weak" {
			t.Errorf("restore of a breached version: %d %s", r.status, r.body)
		}
		if got := n.putWarn(owner, map[string]any{"name": "bank/a", "secret": map[string]string{"password": sharedSecret}}); len(got) != 0 {
			t.Errorf("warnings for a strong new password = %v", got)
		}
		if got := n.putWarn(owner, map[string]any{"name": "bank/b", "secret": map[string]string{"password": sharedSecret, "pin": "1234"}}); !slices.Equal(got, []string{"reused"}) {
			t.Errorf("warnings for a reused password = %v", got)
		}
		n.putWarn(owner, map[string]any{"name": "payroll/x", "secret": map[string]string{"contraseña": sharedSecret}})
		n.putWarn(owner, map[string]any{"name": "tax/overdue", "rotate_by": "2026-11-01T00:00:00Z", "secret": map[string]string{"password": overdueSecret}})
		n.putWarn(owner, map[string]any{"name": "tax/soon", "rotate_by": "2026-11-28T00:00:00Z", "secret": map[string]string{"password": soonSecret}})
		n.putWarn(owner, map[string]any{"name": "other/apikey", "secret": map[string]string{"api_key": "k", "client_secret": "s"}})

		// A robot that wrote a credential is disabled: its credential's
		// owner is gone.
		botID, bot := n.robot(owner, "writer-bot")
		if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": botID, "permission": "credentials.write",
			"duration": "1h", "reason": "rotates the invoicing login"}); r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		n.putWarn(bot, map[string]any{"name": "invoicing/bot", "secret": map[string]string{"password": botSecret}})
		if r := n.do("POST", "/api/v1/tenants/acme/robots/"+botID+"/disable", owner, nil); r.status != 200 {
			t.Fatalf("disable robot: %d %s", r.status, r.body)
		}

		// A leaver could reveal payroll/flagged: offboarding flags it.
		n.putWarn(owner, map[string]any{"name": "payroll/flagged", "secret": map[string]string{"password": flagSecret}})
		var fc struct{ ID string }
		n.do("GET", "/api/v1/tenants/acme/credentials/payroll%2Fflagged", owner, nil).json(t, &fc)
		if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": melID, "permission": "credentials.reveal",
			"resource": "credential:" + fc.ID, "duration": "24h", "reason": "payroll run"}); r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/members/"+melID+"/offboard", owner, map[string]string{"transfer_to": adaID}); r.status != 200 {
			t.Fatalf("offboard: %d %s", r.status, r.body)
		}

		by, rep := n.health(owner)
		want := map[string][]string{
			"bank/weak":       {"breached", "weak"},
			"bank/a":          {"reused"},
			"bank/b":          {"reused"},
			"payroll/x":       {"reused"},
			"tax/overdue":     {"rotation_overdue"},
			"tax/soon":        {},
			"other/apikey":    {},
			"invoicing/bot":   {"owner_left"},
			"payroll/flagged": {"rotation_flagged"},
		}
		if len(by) != len(want) {
			t.Errorf("health lists %d credentials, want %d", len(by), len(want))
		}
		for name, problems := range want {
			if got := by[name].Problems; !slices.Equal(got, problems) {
				t.Errorf("%s problems = %v, want %v", name, got, problems)
			}
		}
		if a := by["bank/a"]; a.ReusedCount != 2 || !slices.Equal(a.ReusedWith, []string{"bank/b", "payroll/x"}) || a.Strength != 4 {
			t.Errorf("bank/a = %+v", a)
		}
		if w := by["bank/weak"]; w.Strength > 1 || !w.Weak || !w.Breached {
			t.Errorf("bank/weak = %+v", w)
		}
		if k := by["other/apikey"]; k.Strength != -1 || k.Weak {
			t.Errorf("a credential without a password field = %+v", k)
		}
		if f := by["payroll/flagged"]; !strings.Contains(f.RotationFlagReason, melID) {
			t.Errorf("flag reason = %q", f.RotationFlagReason)
		}
		if s := rep.Summary; s["credentials"] != 9 || s["healthy"] != 2 || s["weak"] != 1 || s["breached"] != 1 || s["reused"] != 3 ||
			s["rotation_overdue"] != 1 || s["rotation_flagged"] != 1 || s["owner_left"] != 1 || s["unchecked"] != 0 {
			t.Errorf("summary = %v", s)
		}

		wantRot := map[string][]string{
			"bank/weak":       {"breached"},
			"tax/overdue":     {"overdue"},
			"tax/soon":        {"due"},
			"invoicing/bot":   {"owner_left"},
			"payroll/flagged": {"flagged"},
		}
		if got := n.rotation(owner, ""); !equalLists(got, wantRot) {
			t.Errorf("rotation needed (14 days) = %v", got)
		}
		delete(wantRot, "tax/soon")
		if got := n.rotation(owner, "3d"); !equalLists(got, wantRot) {
			t.Errorf("rotation needed (3 days) = %v", got)
		}
		if r := n.do("GET", "/api/v1/tenants/acme/credentials-rotation?within=soon", owner, nil); r.status != 400 || r.errCode(t) != "invalid_within" {
			t.Errorf("bad within: %d %s", r.status, r.body)
		}

		// A new secret for an overdue (or due) credential is its rotation:
		// the date is done with. One due later is kept.
		n.putWarn(owner, map[string]any{"name": "tax/overdue", "secret": map[string]string{"password": overdueSecret + "-rotated"}})
		n.putWarn(owner, map[string]any{"name": "tax/later", "rotate_by": "2027-06-30T00:00:00Z", "secret": map[string]string{"password": overdueSecret + "-later"}})
		n.putWarn(owner, map[string]any{"name": "tax/later", "secret": map[string]string{"password": overdueSecret + "-later2"}})
		by, _ = n.health(owner)
		if o := by["tax/overdue"]; o.RotationOverdue || slices.Contains(o.Problems, "rotation_overdue") {
			t.Errorf("tax/overdue after its rotation = %+v", o)
		}
		var later struct {
			RotateBy time.Time `json:"rotate_by"`
		}
		n.do("GET", "/api/v1/tenants/acme/credentials/tax%2Flater", owner, nil).json(t, &later)
		if !later.RotateBy.Equal(time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("a rotate-by months ahead after a new version = %v, want kept", later.RotateBy)
		}
		n.do("DELETE", "/api/v1/tenants/acme/credentials/tax%2Flater", owner, nil)

		// Rotating answers the flag; a new shared password stops the reuse.
		n.clock.Add(time.Minute)
		n.putWarn(owner, map[string]any{"name": "payroll/flagged", "secret": map[string]string{"password": flagSecret + "-rotated"}})
		n.putWarn(owner, map[string]any{"name": "payroll/x", "secret": map[string]string{"password": flagSecret + "-payroll"}})
		by, _ = n.health(owner)
		if f := by["payroll/flagged"]; f.RotationFlagged || len(f.Problems) != 0 {
			t.Errorf("payroll/flagged after rotation = %+v", f)
		}
		// Restoring the version the leaver could reveal is no rotation:
		// the flag stands again until a new secret is written.
		n.clock.Add(time.Minute)
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+fc.ID+"/restore", owner, map[string]int{"version": 1}); r.status != 200 {
			t.Fatalf("restore: %d %s", r.status, r.body)
		}
		by, _ = n.health(owner)
		if f := by["payroll/flagged"]; !f.RotationFlagged {
			t.Errorf("payroll/flagged after restoring the leaver's version = %+v", f)
		}
		if d := n.auditDetails(n.tenantID("acme"), "credential.restore"); !slices.ContainsFunc(d, func(d map[string]any) bool {
			return d["name"] == "payroll/flagged" && d["rotation_flag_kept"] != nil
		}) {
			t.Errorf("restores audited as %v, want payroll/flagged's with rotation_flag_kept", d)
		}
		n.clock.Add(time.Minute)
		n.putWarn(owner, map[string]any{"name": "payroll/flagged", "secret": map[string]string{"password": flagSecret + "-rotated-again"}})
		by, _ = n.health(owner)
		if f := by["payroll/flagged"]; f.RotationFlagged {
			t.Errorf("payroll/flagged after a second rotation = %+v", f)
		}
		if a := by["bank/a"]; a.ReusedCount != 1 || !slices.Equal(a.ReusedWith, []string{"bank/b"}) {
			t.Errorf("bank/a after payroll/x changed = %+v", a)
		}

		// A robot reading only the bank group sees only it; reuse with a
		// credential it cannot read is counted, never named.
		readerID, reader := n.robot(owner, "reader-bot")
		if r := n.do("POST", "/api/v1/tenants/acme/grants", owner, map[string]string{"subject": readerID, "permission": "credentials.read",
			"resource": "group:bank", "duration": "1h", "reason": "reports"}); r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		n.putWarn(owner, map[string]any{"name": "tax/shared", "secret": map[string]string{"password": sharedSecret}})
		by, rep = n.health(reader)
		var names []string
		for name := range by {
			names = append(names, name)
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"bank/a", "bank/b", "bank/weak"}) || rep.Summary["credentials"] != 3 {
			t.Errorf("reader-bot sees %v", names)
		}
		if a := by["bank/a"]; a.ReusedCount != 2 || !slices.Equal(a.ReusedWith, []string{"bank/b"}) {
			t.Errorf("bank/a for reader-bot = %+v", a)
		}
		if got := n.rotation(reader, ""); !equalLists(got, map[string][]string{"bank/weak": {"breached"}}) {
			t.Errorf("rotation needed for reader-bot = %v", got)
		}
	})
}

// Certificates that expired or expire within 30 days are in the health
// report and rotate-needed, with the expiry as the reason, exactly when
// the sweep alerts about them.
func TestCertificateExpiryInHealth(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		ctx := t.Context()
		n.initAndUnseal()
		tid := n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		day := 24 * time.Hour
		for name, life := range map[string]time.Duration{"certs/week": 5 * day, "certs/month": 20 * day, "certs/later": 45 * day,
			"certs/year": 365 * day, "certs/expired": -day} {
			f := n.p12(life, func(o *certtest.Options) { o.NotBefore = n.clock.Now().Add(-400 * day) })
			if r := n.uploadCert(owner, name, f.PKCS12, certPassword, ""); r.status != 201 {
				t.Fatalf("upload %s: %d %s", name, r.status, r.body)
			}
		}
		check := func(when string, wantHealth, wantRotation, wantRotation60 map[string][]string) {
			t.Helper()
			by, rep := n.health(owner)
			got := map[string][]string{}
			for name, h := range by {
				if len(h.Problems) > 0 {
					got[name] = h.Problems
				}
				if h.NotAfter.IsZero() || h.CertificateExpired != slices.Contains(h.Problems, "certificate_expired") ||
					h.CertificateExpiring != slices.Contains(h.Problems, "certificate_expiring") {
					t.Errorf("%s: health of %s = %+v", when, name, h)
				}
			}
			if !equalLists(got, wantHealth) {
				t.Errorf("%s: health problems = %v, want %v", when, got, wantHealth)
			}
			var all []string
			for _, ps := range wantHealth {
				all = append(all, ps...)
			}
			expiring, expired := count(all, "certificate_expiring"), count(all, "certificate_expired")
			if rep.Summary["certificate_expiring"] != expiring || rep.Summary["certificate_expired"] != expired {
				t.Errorf("%s: summary = %v", when, rep.Summary)
			}
			if got := n.rotation(owner, ""); !equalLists(got, wantRotation) {
				t.Errorf("%s: rotate-needed = %v, want %v", when, got, wantRotation)
			}
			if got := n.rotation(owner, "60d"); !equalLists(got, wantRotation60) {
				t.Errorf("%s: rotate-needed within 60 days = %v, want %v", when, got, wantRotation60)
			}
		}
		exp, soon := []string{"certificate_expired"}, []string{"certificate_expiring"}
		check("at upload",
			map[string][]string{"certs/expired": exp, "certs/week": soon, "certs/month": soon},
			map[string][]string{"certs/expired": exp, "certs/week": soon, "certs/month": soon},
			map[string][]string{"certs/expired": exp, "certs/week": soon, "certs/month": soon, "certs/later": soon})
		r := n.do("GET", "/api/v1/tenants/acme/credentials-rotation", owner, nil)
		if !strings.Contains(string(r.body), "the certificate expires on "+n.clock.Now().Add(5*day).Format(time.DateOnly)+" (5 days left)") ||
			!strings.Contains(string(r.body), "expired on "+n.clock.Now().Add(-day).Format(time.DateOnly)) {
			t.Errorf("rotation details: %s", r.body)
		}
		// The sweep alerts about the same certificates.
		if err := n.app.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		alerted := map[string]bool{}
		for _, a := range []string{"certificate.expiring", "certificate.expired"} {
			for _, d := range n.auditDetails(tid, a) {
				alerted[d["name"].(string)] = true
			}
		}
		if len(alerted) != 3 || !alerted["certs/expired"] || !alerted["certs/week"] || !alerted["certs/month"] {
			t.Errorf("alerted about %v", alerted)
		}
		// 16 days on, certs/later has 29 days left.
		n.clock.Add(16 * day)
		check("16 days on",
			map[string][]string{"certs/expired": exp, "certs/week": exp, "certs/month": soon, "certs/later": soon},
			map[string][]string{"certs/expired": exp, "certs/week": exp, "certs/month": soon, "certs/later": soon},
			map[string][]string{"certs/expired": exp, "certs/week": exp, "certs/month": soon, "certs/later": soon})
	})
}

func equalLists(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// dumpEngine opens a store and can dump everything it holds at rest.
type dumpEngine struct {
	name string
	open func(t *testing.T) (store.Store, func() []byte)
}

func dumpEngines() []dumpEngine {
	return []dumpEngine{
		{"sqlite", func(t *testing.T) (store.Store, func() []byte) {
			dir := t.TempDir()
			s, err := sqlite.Open(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			return s, func() []byte {
				var all []byte
				files, _ := filepath.Glob(filepath.Join(dir, "*"))
				for _, f := range files {
					b, _ := os.ReadFile(f)
					all = append(all, b...)
				}
				return all
			}
		}},
		{"postgres", func(t *testing.T) (store.Store, func() []byte) {
			u := pgtest.URL(t)
			s, err := postgres.Open(context.Background(), u, postgres.Options{MaxConns: 8})
			if err != nil {
				t.Fatal(err)
			}
			return s, func() []byte {
				db, err := sql.Open("pgx", u)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
				if err != nil {
					t.Fatal(err)
				}
				var tables []string
				for rows.Next() {
					var name string
					if err := rows.Scan(&name); err != nil {
						t.Fatal(err)
					}
					tables = append(tables, name)
				}
				rows.Close()
				var all []byte
				for _, tb := range tables {
					var text sql.NullString
					// Every row as text; bytea shows as \x and hex.
					if err := db.QueryRow(`SELECT string_agg(t::text, E'\n') FROM "` + tb + `" t`).Scan(&text); err != nil {
						t.Fatal(err)
					}
					all = append(all, text.String...)
				}
				if len(tables) < 5 || !bytes.Contains(all, []byte("bank/a")) {
					t.Fatalf("dump of %d tables lacks the credential names: the dump is broken", len(tables))
				}
				return all
			}
		}},
	}
}

// The database holds no password, only keyed fingerprints: the same
// password in two tenants gives two different fingerprints, in one tenant
// the same one.
func TestPasswordHealthNoPlaintext(t *testing.T) {
	for _, e := range dumpEngines() {
		t.Run(e.name, func(t *testing.T) {
			s, dump := e.open(t)
			n := newNode(t, s)
			n.initAndUnseal()
			n.createTenant("acme")
			n.createTenant("beta")
			acme := n.pat(n.owner("acme"))
			beta := n.pat(n.owner("beta"))
			n.putWarn(acme, map[string]any{"name": "bank/a", "secret": map[string]string{"password": sharedSecret}})
			n.putWarn(acme, map[string]any{"name": "bank/b", "secret": map[string]string{"password": sharedSecret}})
			if r := n.do("POST", "/api/v1/tenants/beta/credentials", beta, map[string]any{"name": "bank/a",
				"secret": map[string]string{"password": sharedSecret}}); r.status != 201 || strings.Contains(string(r.body), "reused") {
				t.Fatalf("beta put: %d %s", r.status, r.body)
			}
			prints := func(slug string) map[string][]byte {
				out := map[string][]byte{}
				tid := n.tenantID(slug)
				err := n.app.Store.View(context.Background(), func(tx store.Tx) error {
					vs, err := tx.ListCurrentCredentialVersions(context.Background(), tid)
					for _, v := range vs {
						c, err := tx.GetCredential(context.Background(), tid, v.CredentialID)
						if err != nil {
							return err
						}
						out[c.Name] = v.Fingerprint
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			a, b := prints("acme"), prints("beta")
			if len(a["bank/a"]) != 32 || !bytes.Equal(a["bank/a"], a["bank/b"]) {
				t.Errorf("acme's fingerprints of one password differ: %x %x", a["bank/a"], a["bank/b"])
			}
			if bytes.Equal(a["bank/a"], b["bank/a"]) {
				t.Error("two tenants' fingerprints of one password are equal: the key is not per tenant")
			}
			all := dump()
			for _, needle := range [][]byte{[]byte(sharedSecret), []byte(hex.EncodeToString([]byte(sharedSecret)))} {
				if bytes.Contains(all, needle) {
					t.Errorf("the database holds the password (%.8s...)", needle)
				}
			}
		})
	}
}
