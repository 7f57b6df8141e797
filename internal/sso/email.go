package sso

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/custodia-project/custodia/internal/fault"
)

// maxEmailLen is RFC 5321's limit on a forward path, less the angle brackets.
const maxEmailLen = 254

// NormalizeEmail returns the form of an email address that members are
// matched by. Whoever stores member emails must store them through this
// function too, or a verified sign-in will not find its member.
//
// The rule: surrounding white space is trimmed; the address must have exactly
// one "@" with something on both sides, be valid UTF-8 of at most 254 bytes,
// and contain no white space or control characters; the domain is lowercased
// (domains are case-insensitive) and the local part is kept as sent, because
// RFC 5321 lets a mail server tell "Alice" from "alice". Display names
// ("Alice <a@example.com>"), quoted local parts containing "@", and punycode
// conversion of international domains are not supported.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok || local == "" || domain == "" || strings.Contains(domain, "@"):
		return "", fault.New(fault.Invalid, "invalid_email", "an email address needs one @ with text on both sides")
	case len(s) > maxEmailLen || !utf8.ValidString(s):
		return "", fault.New(fault.Invalid, "invalid_email", "an email address must be valid UTF-8 of at most %d bytes", maxEmailLen)
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "", fault.New(fault.Invalid, "invalid_email", "an email address may not contain spaces or control characters")
	}
	out := local + "@" + strings.ToLower(domain)
	if len(out) > maxEmailLen {
		// Lowercasing a few letters outside ASCII lengthens them.
		return "", fault.New(fault.Invalid, "invalid_email", "an email address must be valid UTF-8 of at most %d bytes", maxEmailLen)
	}
	return out, nil
}
