package secretcheck

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"slices"
	"time"

	passwd "github.com/custodia-project/custodia/internal/password"
)

// MinFingerprintKey is the shortest key Fingerprint accepts, in bytes.
const MinFingerprintKey = 32

// Fingerprint returns HMAC-SHA-256(key, password): equal passwords under the
// same key give equal fingerprints, so the vault can find a password reused
// across a tenant's credentials by comparing fingerprints, without keeping or
// decrypting plaintext.
//
// key must be a secret of the tenant, at least 32 bytes, kept as carefully as
// its data keys (for example derived from the tenant's data key). A shared or
// public key would let anyone holding the fingerprints test guesses offline
// at the speed of SHA-256 and see which tenants share a password; a
// per-tenant key confines both to someone who already holds that tenant's
// keys. Rotating the key changes every fingerprint, so the vault must
// recompute them together. Compare fingerprints with hmac.Equal.
//
// Fingerprint panics if key is shorter than MinFingerprintKey: an empty or
// short key is a programming error that would silently weaken every
// fingerprint.
func Fingerprint(key []byte, password string) []byte {
	if len(key) < MinFingerprintKey {
		panic("secretcheck: fingerprint key shorter than 32 bytes")
	}
	m := hmac.New(sha256.New, key)
	io.WriteString(m, password)
	return m.Sum(nil)
}

// Strength returns zxcvbn's score for password: 0 (too guessable) to 4 (very
// unguessable); 3 is the least Custodia calls strong. userInputs are words an
// attacker would try first (the institution, the login, the tenant's name).
// It is internal/password's estimate, which bounds zxcvbn's work to the first
// 100 characters, so an attacker-sized input cannot make it slow.
func Strength(password string, userInputs ...string) int {
	score, _ := passwd.Strength(password, userInputs...)
	return score
}

// StrongScore is the least Strength score that is not reported as weak.
const StrongScore = 3

// Breached reports whether password, ignoring case, is in the list of common
// leaked passwords that internal/password ships (see its data/NOTICE.md). The
// list is loaded on first use. Invalid UTF-8 is never reported as breached.
func Breached(password string) bool { return passwd.Common(password) }

// Credential is what Health needs to know about one stored credential.
type Credential struct {
	ID          string
	Password    string    // plaintext; used only during the call, never kept or returned
	RotateBy    time.Time // zero: no rotate-by date
	OwnerActive bool      // false: the owner has left the tenant
	UserInputs  []string  // words the password should not be built from, for Strength
}

// Problem is one thing wrong with a credential.
type Problem string

// Problems, in the order Health reports them for one credential.
const (
	Breach   Problem = "breached" // on the common leaked password list
	Weak     Problem = "weak"     // Strength below StrongScore
	Reused   Problem = "reused"   // same password as another credential of the tenant
	Overdue  Problem = "overdue"  // past its rotate-by date
	Orphaned Problem = "orphaned" // its owner left
)

var problemOrder = map[Problem]int{Breach: 0, Weak: 1, Reused: 2, Overdue: 3, Orphaned: 4}

// Finding is one Problem of one credential. It never holds a password or a
// fingerprint.
type Finding struct {
	ID       string
	Problem  Problem
	Score    int       // Weak: the Strength score
	Group    []string  // Reused: the IDs of every credential sharing the password, this one included, sorted
	RotateBy time.Time // Overdue: the date that passed
}

// Health reports the problems of a tenant's credentials at time now, sorted
// by credential ID and then in the order of the Problem constants, so the
// same credentials give the same report in whatever order they come. IDs are
// expected to be unique.
//
// key is the tenant's fingerprint key (see Fingerprint; a short key panics
// as it does there). A credential with an
// empty password (a certificate, a credential not yet filled in) gets no
// password findings. A credential is overdue once now is after RotateBy.
//
// Health estimates every password with zxcvbn, a few milliseconds each; the
// vault should run it in the background, not on a request.
func Health(key []byte, now time.Time, creds []Credential) []Finding {
	var out []Finding
	fps := make([]string, len(creds))
	groups := make(map[string][]string)
	for i, c := range creds {
		if c.Password == "" {
			continue
		}
		fps[i] = string(Fingerprint(key, c.Password))
		groups[fps[i]] = append(groups[fps[i]], c.ID)
	}
	for i, c := range creds {
		if c.Password != "" {
			if Breached(c.Password) {
				out = append(out, Finding{ID: c.ID, Problem: Breach})
			}
			if s := Strength(c.Password, c.UserInputs...); s < StrongScore {
				out = append(out, Finding{ID: c.ID, Problem: Weak, Score: s})
			}
			if g := groups[fps[i]]; len(g) > 1 {
				out = append(out, Finding{ID: c.ID, Problem: Reused, Group: slices.Sorted(slices.Values(g))})
			}
		}
		if !c.RotateBy.IsZero() && now.After(c.RotateBy) {
			out = append(out, Finding{ID: c.ID, Problem: Overdue, RotateBy: c.RotateBy})
		}
		if !c.OwnerActive {
			out = append(out, Finding{ID: c.ID, Problem: Orphaned})
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(problemOrder[a.Problem], problemOrder[b.Problem]))
	})
	return out
}
