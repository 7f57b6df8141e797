package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/secretcheck"
	"github.com/custodia-project/custodia/internal/store"
)

// Password health: when a version is written its password field is judged
// (zxcvbn strength, the shipped breached list) and fingerprinted with the
// tenant's MAC key, and only those results are stored beside the version.
// Reuse is then found by equal fingerprints among the tenant's current
// versions, and the health report is built from metadata alone: nothing
// here opens a sealed secret.

// fingerprintPurpose names the tenant MAC key of password fingerprints.
const fingerprintPurpose = "password-fingerprint"

// passwordNames are the field names taken as a credential's password, in
// order of preference, after lowercasing (English, Spanish, Polish,
// Portuguese, German, French).
var passwordNames = []string{"password", "passwd", "pass", "pwd", "passphrase", "contraseña", "contrasena", "clave", "hasło", "haslo",
	"senha", "passwort", "kennwort", "mot de passe", "motdepasse"}

// passwordField returns the field taken as the password: the first with a
// password-like name, or the only field there is.
func passwordField(f Fields) (string, bool) {
	for _, want := range passwordNames {
		for k, v := range f {
			if strings.ToLower(strings.TrimSpace(k)) == want && v != "" {
				return v, true
			}
		}
	}
	if len(f) == 1 {
		for _, v := range f {
			return v, v != ""
		}
	}
	return "", false
}

// judgement is what is kept of a password: never the password itself once
// the version is written.
type judgement struct {
	password string // used for the fingerprint inside the write, then dropped
	strength int    // zxcvbn 0-4; -1: no password field
	breached bool
}

// judge rates f's password field. userInputs are words an attacker tries
// first (the institution, the login, the name's segments).
func judge(f Fields, userInputs ...string) judgement {
	pw, ok := passwordField(f)
	if !ok {
		return judgement{strength: -1}
	}
	var inputs []string
	for _, in := range userInputs {
		for w := range strings.FieldsFuncSeq(in, func(r rune) bool { return r == '/' || r == ' ' || r == '-' || r == '_' || r == '.' }) {
			inputs = append(inputs, w)
		}
		if in != "" {
			inputs = append(inputs, in)
		}
	}
	return judgement{password: pw, strength: secretcheck.Strength(pw, inputs...), breached: secretcheck.Breached(pw)}
}

// judgeInputs are the words a put's password should not be built from:
// its name, institution and login, the stored ones when the put keeps them.
// The stored ones are read only for a caller who may write the credential,
// checked first as Put checks it (need): they judge the password, and so
// shape its warnings, and whoever may not write it must get the refusal
// Put would give them, never a judgement of their guess.
func (s *Service) judgeInputs(ctx context.Context, tenantID string, in PutInput) ([]string, error) {
	inputs := []string{in.Name, in.Institution, in.LoginID}
	if in.Institution != "" && in.LoginID != "" {
		return inputs, nil
	}
	err := s.store.View(ctx, func(tx store.Tx) error {
		c, err := tx.GetCredentialByName(ctx, tenantID, in.Name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := s.need(ctx, authz.CredentialsWrite, tenantID, c); err != nil {
			return err
		}
		inputs = append(inputs, c.Institution, c.LoginID)
		return nil
	})
	return inputs, err
}

func judgeFor(c *store.Credential, f Fields) judgement {
	if c.Kind == store.KindCertificate {
		// A certificate's password only opens its file: it is not a
		// login, so it is not judged for strength or reuse (as at upload).
		return judgement{strength: -1}
	}
	return judge(f, c.Name, c.Institution, c.LoginID)
}

// fingerprint is the keyed fingerprint of a judged password, nil when there
// is none. The key is the tenant's own (keys.Keyring.MACKey), so equal
// passwords of two tenants never match and a stolen database is no
// offline oracle without the root key.
func (s *Service) fingerprint(ctx context.Context, tx store.Tx, tenantID string, j judgement) ([]byte, error) {
	if j.strength < 0 {
		return nil, nil
	}
	key, err := s.keyring.MACKey(ctx, tx, tenantID, fingerprintPurpose)
	if err != nil {
		return nil, err
	}
	defer key.Wipe()
	return secretcheck.Fingerprint(key, j.password), nil
}

// Warning is a non-blocking finding about a secret just written.
type Warning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// warnings says what is wrong with the password just written to c, and
// fills the audit details with the same findings (never the password).
func (s *Service) warnings(ctx context.Context, tx store.Tx, c *store.Credential, j judgement, fp []byte, details map[string]any) ([]Warning, error) {
	if j.strength < 0 {
		return nil, nil
	}
	var out []Warning
	if j.breached {
		out = append(out, Warning{"breached", "this password is on the list of passwords known from breaches: attackers try it first; " +
			"change it at the institution (custodia cred put --generate makes one) and store the new one"})
		details["breached"] = true
	}
	if j.strength < secretcheck.StrongScore {
		out = append(out, Warning{"weak", fmt.Sprintf("this password is easy to guess (strength %d of 4); change it at the institution "+
			"(custodia cred put --generate makes one) and store the new one", j.strength)})
		details["weak"] = true
	}
	others, err := tx.CountReuse(ctx, c.TenantID, fp, c.ID)
	if err != nil {
		return nil, err
	}
	if others > 0 {
		count := strconv.Itoa(others)
		if others >= store.MaxReuseCount {
			count = "at least " + count
		}
		out = append(out, Warning{"reused", fmt.Sprintf("the same password is the current one of %s other credential(s) of this organization: "+
			"one leak opens them all; give each its own (custodia cred health lists them)", count)})
		details["reused"] = others
	}
	return out, nil
}

// Health problems, in report order.
const (
	ProblemBreached        = "breached"
	ProblemWeak            = "weak"
	ProblemReused          = "reused"
	ProblemRotationOverdue = "rotation_overdue"
	ProblemRotationFlagged = "rotation_flagged"
	ProblemOwnerLeft       = "owner_left"
	// ProblemCertificateExpired: the certificate's not_after has passed
	// (its expired alert is due).
	ProblemCertificateExpired = "certificate_expired"
	// ProblemCertificateExpiring: the certificate ends within
	// CertAlertAt30 (its 30- or 7-day alert is due).
	ProblemCertificateExpiring = "certificate_expiring"
	// ProblemWeakKey: the certificate's key is RSA shorter than
	// StrongRSABits.
	ProblemWeakKey = "weak_key"
	// ProblemUnchecked: the current version was written before health was
	// recorded; writing the secret again checks it.
	ProblemUnchecked = "unchecked"
)

// CredentialHealth is one credential's health: metadata and findings,
// never a secret or a fingerprint.
type CredentialHealth struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	OwnerID  string    `json:"owner_id"`
	RotateBy time.Time `json:"rotate_by,omitzero"`
	// Version is the current version the password findings are about.
	Version int `json:"version"`
	// Strength is zxcvbn's 0-4 score of the current password; -1 when it
	// has no password field or was not checked.
	Strength int  `json:"strength"`
	Weak     bool `json:"weak"`
	Breached bool `json:"breached"`
	Reused   bool `json:"reused"`
	// ReusedCount is how many other credentials of the tenant have the
	// same current password; ReusedWith names those the caller may read.
	ReusedCount     int      `json:"reused_count"`
	ReusedWith      []string `json:"reused_with,omitempty"`
	RotationOverdue bool     `json:"rotation_overdue"`
	// RotationFlagged: an offboarding marked it for rotation and no new
	// version was written since.
	RotationFlagged    bool      `json:"rotation_flagged"`
	RotationFlagReason string    `json:"rotation_flag_reason,omitempty"`
	RotationFlaggedAt  time.Time `json:"rotation_flagged_at,omitzero"`
	// OwnerLeft: the owner is no longer an active member or robot.
	OwnerLeft bool `json:"owner_left"`
	// NotAfter is when a certificate's current, live version expires, and
	// KeyAlgorithm its key (certificates only). CertificateExpiring and
	// CertificateExpired decide as the expiry alerts do: within
	// CertAlertAt30 of NotAfter, and past it.
	NotAfter            time.Time `json:"not_after,omitzero"`
	KeyAlgorithm        string    `json:"key_algorithm,omitempty"`
	CertificateExpiring bool      `json:"certificate_expiring"`
	CertificateExpired  bool      `json:"certificate_expired"`
	// WeakKey: the certificate's key is RSA shorter than StrongRSABits.
	WeakKey  bool     `json:"weak_key"`
	Problems []string `json:"problems"`
}

// HealthSummary counts credentials with each problem.
type HealthSummary struct {
	Credentials     int `json:"credentials"`
	Healthy         int `json:"healthy"`
	Weak            int `json:"weak"`
	Breached        int `json:"breached"`
	Reused          int `json:"reused"`
	RotationOverdue int `json:"rotation_overdue"`
	RotationFlagged int `json:"rotation_flagged"`
	OwnerLeft       int `json:"owner_left"`
	// Certificates whose current version expired, expires within
	// CertAlertAt30, or has a weak key.
	CertificateExpired  int `json:"certificate_expired"`
	CertificateExpiring int `json:"certificate_expiring"`
	WeakKey             int `json:"weak_key"`
	Unchecked           int `json:"unchecked"`
}

// HealthReport is the health of the credentials the caller may read.
type HealthReport struct {
	CheckedAt   time.Time          `json:"checked_at"`
	Summary     HealthSummary      `json:"summary"`
	Credentials []CredentialHealth `json:"credentials"`
}

// Health reports the password health of every credential of the tenant the
// caller may read, by name. Reuse is counted across the whole tenant (a
// password shared with a credential the caller cannot see is still a
// risk), but only readable credentials are named.
func (s *Service) Health(ctx context.Context, tenantID string) (*HealthReport, error) {
	p := authz.From(ctx)
	if p == nil {
		return nil, fault.ErrUnauthenticated
	}
	now := s.now().UTC()
	rep := &HealthReport{CheckedAt: now, Credentials: []CredentialHealth{}}
	err := s.store.View(ctx, func(tx store.Tx) error {
		creds, err := allCredentials(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		current, err := tx.ListCurrentCredentialVersions(ctx, tenantID)
		if err != nil {
			return err
		}
		versions := make(map[string]*store.CredentialVersion, len(current))
		byPrint := map[string][]string{} // fingerprint to credential IDs
		for i := range current {
			v := &current[i]
			versions[v.CredentialID] = v
			if v.Fingerprint != nil {
				byPrint[string(v.Fingerprint)] = append(byPrint[string(v.Fingerprint)], v.CredentialID)
			}
		}
		active, err := activeSubjects(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		flags, err := tx.ListRotationFlags(ctx, tenantID)
		if err != nil {
			return err
		}
		flagged := map[string]store.RotationFlag{}
		for _, f := range flags {
			if f.ResourceType == "credential" {
				flagged[f.ResourceID] = f
			}
		}
		// The facts of each certificate's current, live version: a
		// deleted or destroyed one is not listed.
		certs := map[string]*store.Certificate{}
		err = eachCertificate(ctx, tx, store.CertificateFilter{TenantID: tenantID}, func(row *store.Certificate) error {
			certs[row.CredentialID] = row
			return nil
		})
		if err != nil {
			return err
		}
		readable := map[string]string{} // ID to name
		for i := range creds {
			if _, ok := authz.Check(p, authz.CredentialsRead, tenantID, resourceOf(&creds[i]), now); ok {
				readable[creds[i].ID] = creds[i].Name
			}
		}
		for i := range creds {
			c := &creds[i]
			if _, ok := readable[c.ID]; !ok {
				continue
			}
			h := CredentialHealth{ID: c.ID, Name: c.Name, Kind: c.Kind, OwnerID: c.OwnerID, RotateBy: c.RotateBy, Version: c.CurrentVersion,
				Strength: -1, Problems: []string{}}
			v := versions[c.ID]
			if v != nil {
				h.Strength, h.Breached = v.Strength, v.Breached
				h.Weak = v.Strength >= 0 && v.Strength < secretcheck.StrongScore
				if v.Fingerprint != nil {
					for _, id := range byPrint[string(v.Fingerprint)] {
						if id == c.ID {
							continue
						}
						h.ReusedCount++
						if name, ok := readable[id]; ok {
							h.ReusedWith = append(h.ReusedWith, name)
						}
					}
					slices.Sort(h.ReusedWith)
					h.Reused = h.ReusedCount > 0
				}
			}
			h.RotationOverdue = !c.RotateBy.IsZero() && now.After(c.RotateBy)
			// A flag stands until a new version is written after it.
			f, ok := flagged[c.ID]
			if !ok {
				f, ok = flagged[c.Name]
			}
			if ok && (v == nil || !v.CreatedAt.After(f.FlaggedAt)) {
				h.RotationFlagged, h.RotationFlagReason, h.RotationFlaggedAt = true, f.Reason, f.FlaggedAt
			}
			h.OwnerLeft = !active[c.OwnerID]
			if row := certs[c.ID]; row != nil && c.Kind == store.KindCertificate {
				h.NotAfter, h.KeyAlgorithm, h.WeakKey = row.NotAfter, row.KeyAlgorithm, weakKey(row.KeyAlgorithm)
				switch certAlertDue(row.NotAfter, now) {
				case store.CertAlertExpired:
					h.CertificateExpired = true
				case store.CertAlert7Days, store.CertAlert30Days:
					h.CertificateExpiring = true
				}
			}
			// A certificate's password only opens its PKCS#12 file: it is never
			// judged.
			unchecked := v != nil && c.Kind != store.KindCertificate && v.Strength < 0 && uncheckedFields(v.Fields)
			for _, pr := range []struct {
				on   bool
				name string
				n    *int
			}{
				{h.Breached, ProblemBreached, &rep.Summary.Breached},
				{h.Weak, ProblemWeak, &rep.Summary.Weak},
				{h.Reused, ProblemReused, &rep.Summary.Reused},
				{h.RotationOverdue, ProblemRotationOverdue, &rep.Summary.RotationOverdue},
				{h.RotationFlagged, ProblemRotationFlagged, &rep.Summary.RotationFlagged},
				{h.OwnerLeft, ProblemOwnerLeft, &rep.Summary.OwnerLeft},
				{h.CertificateExpired, ProblemCertificateExpired, &rep.Summary.CertificateExpired},
				{h.CertificateExpiring, ProblemCertificateExpiring, &rep.Summary.CertificateExpiring},
				{h.WeakKey, ProblemWeakKey, &rep.Summary.WeakKey},
				{unchecked, ProblemUnchecked, &rep.Summary.Unchecked},
			} {
				if pr.on {
					h.Problems = append(h.Problems, pr.name)
					*pr.n++
				}
			}
			if len(h.Problems) == 0 {
				rep.Summary.Healthy++
			}
			rep.Summary.Credentials++
			rep.Credentials = append(rep.Credentials, h)
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr("health", err)
	}
	return rep, nil
}

// uncheckedFields reports whether a version with these field names would
// have been judged had it been written with health checks: it has a
// password field.
func uncheckedFields(names []string) bool {
	f := make(Fields, len(names))
	for _, n := range names {
		f[n] = "x"
	}
	_, ok := passwordField(f)
	return ok
}

// allCredentials lists every credential of the tenant, by name.
func allCredentials(ctx context.Context, tx store.Tx, tenantID string) ([]store.Credential, error) {
	const page = 1000
	var out []store.Credential
	after := ""
	for {
		cs, err := tx.ListCredentials(ctx, store.CredentialFilter{TenantID: tenantID, After: after, Limit: page})
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
		if len(cs) < page {
			return out, nil
		}
		after = cs[len(cs)-1].Name
	}
}

// activeSubjects are the tenant's active members and robots: anyone else
// owning a credential has left.
func activeSubjects(ctx context.Context, tx store.Tx, tenantID string) (map[string]bool, error) {
	ms, err := tx.ListMembers(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	rs, err := tx.ListRobots(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, m := range ms {
		if m.Status == store.MemberActive {
			out[m.ID] = true
		}
	}
	for _, r := range rs {
		if r.Status == store.RobotActive {
			out[r.ID] = true
		}
	}
	return out, nil
}

// DefaultRotationWindow is how far ahead RotationNeeded looks for
// rotate-by dates by default.
const DefaultRotationWindow = 14 * 24 * time.Hour

// MaxRotationWindow bounds the look-ahead.
const MaxRotationWindow = 3650 * 24 * time.Hour

// RotationReason says why a credential needs rotating.
type RotationReason struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// Rotation reason codes.
const (
	ReasonOverdue   = "overdue"
	ReasonDue       = "due"
	ReasonFlagged   = "flagged"
	ReasonBreached  = "breached"
	ReasonOwnerLeft = "owner_left"
	// ReasonCertificateExpired and ReasonCertificateExpiring: a
	// certificate to renew, past its end or within CertAlertAt30 of it
	// (or within the window, when that is longer).
	ReasonCertificateExpired  = "certificate_expired"
	ReasonCertificateExpiring = "certificate_expiring"
)

// RotationItem is a credential to rotate and why.
type RotationItem struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	OwnerID  string    `json:"owner_id"`
	RotateBy time.Time `json:"rotate_by,omitzero"`
	// NotAfter is when a certificate expires (certificates only).
	NotAfter time.Time        `json:"not_after,omitzero"`
	Reasons  []RotationReason `json:"reasons"`
}

// RotationList is what needs rotating, by name.
type RotationList struct {
	CheckedAt   time.Time      `json:"checked_at"`
	Within      string         `json:"within"`
	Credentials []RotationItem `json:"credentials"`
}

// RotationNeeded lists the credentials the caller may read that should be
// rotated: rotate-by passed or within the window, flagged by an
// offboarding, breached, owned by someone who left, or a certificate
// that expired or ends within CertAlertAt30 (as its alerts decide) or
// within the window, whichever is longer.
func (s *Service) RotationNeeded(ctx context.Context, tenantID string, within time.Duration) (*RotationList, error) {
	if within < 0 || within > MaxRotationWindow {
		return nil, invalid("invalid_within", "within must be between 0 and %d days", int(MaxRotationWindow/(24*time.Hour)))
	}
	rep, err := s.Health(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	now := rep.CheckedAt
	out := &RotationList{CheckedAt: now, Within: fmtDays(within), Credentials: []RotationItem{}}
	for _, h := range rep.Credentials {
		var rs []RotationReason
		switch {
		case h.RotationOverdue:
			rs = append(rs, RotationReason{ReasonOverdue, "rotate-by date " + h.RotateBy.Format(time.DateOnly) + " has passed"})
		case !h.RotateBy.IsZero() && !h.RotateBy.After(now.Add(within)):
			rs = append(rs, RotationReason{ReasonDue, "rotate by " + h.RotateBy.Format(time.DateOnly) + " (in " + fmtDays(h.RotateBy.Sub(now)) + ")"})
		}
		if h.RotationFlagged {
			rs = append(rs, RotationReason{ReasonFlagged, "flagged on " + h.RotationFlaggedAt.Format(time.DateOnly) + ": " + h.RotationFlagReason})
		}
		if h.Breached {
			rs = append(rs, RotationReason{ReasonBreached, "the password is on the list of passwords known from breaches"})
		}
		if h.OwnerLeft {
			rs = append(rs, RotationReason{ReasonOwnerLeft, "its owner " + h.OwnerID + " is no longer an active member: give it an owner and rotate it"})
		}
		switch {
		case h.NotAfter.IsZero():
		case h.CertificateExpired:
			rs = append(rs, RotationReason{ReasonCertificateExpired, "the certificate expired on " + h.NotAfter.Format(time.DateOnly) +
				": it can no longer sign; renew it with its issuer and upload the new one"})
		case h.CertificateExpiring || !h.NotAfter.After(now.Add(within)):
			rs = append(rs, RotationReason{ReasonCertificateExpiring, fmt.Sprintf("the certificate expires on %s (%d days left): "+
				"renew it with its issuer and upload the new one", h.NotAfter.Format(time.DateOnly), daysLeft(h.NotAfter, now))})
		}
		if len(rs) > 0 {
			out.Credentials = append(out.Credentials, RotationItem{ID: h.ID, Name: h.Name, Kind: h.Kind, OwnerID: h.OwnerID, RotateBy: h.RotateBy,
				NotAfter: h.NotAfter, Reasons: rs})
		}
	}
	return out, nil
}

// fmtDays prints a duration in whole days, rounded up ("0d" for none).
func fmtDays(d time.Duration) string {
	day := 24 * time.Hour
	return fmt.Sprintf("%dd", (d+day-1)/day)
}
