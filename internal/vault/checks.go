package vault

import (
	"maps"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/custodia-project/custodia/internal/secretcheck"
	"github.com/custodia-project/custodia/internal/store"
)

// refuseSecondFactors refuses coordinate cards, one-time codes and token
// serials in a credential's fields or notes: a stolen vault must not be
// enough to move money.
func refuseSecondFactors(f Fields, notes string) error {
	return secretcheck.SecondFactors(f, notes)
}

// Limits on what people read back of a credential's metadata: in lists,
// on terminals, in the console and in grants.
const (
	maxNotesBytes = 4 << 10
	// maxLineBytes bounds a login ID and an institution.
	maxLineBytes = 256
	// maxRevealable bounds the members a credential is revealable to.
	maxRevealable = 100
)

// checkMetadata refuses what a write would newly store in c's metadata
// past its limits: an institution or login ID that is not one line of at
// most maxLineBytes, notes past maxNotesBytes or holding control
// characters other than line breaks and tabs, a group that is not one
// name segment (checkGroup), labels past checkLabels. A value equal to the
// one stored passes, so a credential stored before these limits keeps
// working when a client sends its metadata back unchanged; on a new
// credential (created) every value given is judged.
func checkMetadata(c *store.Credential, created bool, in PutInput) error {
	if in.Institution != "" && in.Institution != c.Institution && (len(in.Institution) > maxLineBytes || !oneLine(in.Institution)) {
		return invalid("invalid_institution", "institution must be one line of at most %d bytes, without control characters", maxLineBytes)
	}
	if in.LoginID != "" && in.LoginID != c.LoginID && (len(in.LoginID) > maxLineBytes || !oneLine(in.LoginID)) {
		return invalid("invalid_login_id", "login_id must be one line of at most %d bytes, without control characters", maxLineBytes)
	}
	if in.Notes != "" && in.Notes != c.Notes && (len(in.Notes) > maxNotesBytes || !textBlock(in.Notes)) {
		return invalid("invalid_notes", "notes must be text of at most %d bytes, without control characters other than line breaks and tabs",
			maxNotesBytes)
	}
	if in.Group != "" && (created || in.Group != c.Group) {
		if err := checkGroup(in.Group); err != nil {
			return err
		}
	}
	if in.Labels != nil && !maps.Equal(in.Labels, c.Labels) {
		return checkLabels(in.Labels)
	}
	return nil
}

// textBlock reports whether s, text of several lines shown to people, is
// plain text (see plainText) but for line breaks and tabs.
func textBlock(s string) bool { return plainText(s, "\n\r\t") }

// plainText reports whether s is valid UTF-8 without control or
// bidirectional-format characters other than those in allowed: such
// characters could disguise what a reason, a note or a name says on a
// terminal, in the console or in the audit log.
func plainText(s, allowed string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool {
		return !strings.ContainsRune(allowed, r) && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r))
	}) < 0
}
