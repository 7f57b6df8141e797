package secretcheck

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/custodia-project/custodia/internal/fault"
)

const (
	lowerSet = "abcdefghijklmnopqrstuvwxyz"
	upperSet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digitSet = "0123456789"

	// DefaultSymbols is the symbol set when a Rule allows symbols and names
	// none: printable ASCII punctuation without the characters that most
	// often break a portal's form, a shell, a CSV file or XML (quotes,
	// backslash, backtick, <, > and &) or vanish when copied (space).
	DefaultSymbols = "!#$%()*+,-./:;=?@[]^_{|}~"

	// PortalSymbols is a smaller set that old banking and government
	// portals tend to accept.
	PortalSymbols = "!#$%*+-.=?@_"
)

// Limits on any Rule: below 4 characters nothing is a password, and 256 is
// more than any portal takes.
const (
	minRuleLength = 4
	maxRuleLength = 256
)

// Rule describes the passwords an institution's portal accepts. The zero Rule
// is invalid; start from RuleFor. A tenant may pass its own Rule for a portal
// the built-in ones do not fit.
type Rule struct {
	Name string // for messages; RuleFor's names are listed in RuleNames

	// Length is the length to generate. Zero means MaxLength: the longest
	// password the portal accepts is the hardest to guess.
	Length int
	// MinLength and MaxLength are the portal's limits; zero means no limit
	// (but never outside 4..256). Length must fall inside them.
	MinLength, MaxLength int

	// Character classes to draw from. Every enabled class appears at least
	// once in a generated password, because portals that accept a class
	// often require it.
	Lower, Upper, Digits, Symbols bool
	// Allowed is the symbol set when Symbols is set: printable ASCII
	// punctuation, no repeats. Empty means DefaultSymbols.
	Allowed string

	// MustStartWithLetter: the first character is a letter.
	MustStartWithLetter bool
	// NoRepeats: no character twice in a row ("aa", "11").
	NoRepeats bool
	// NoSequences: no three letters or digits in a row, up or down ("abc",
	// "321"), as PIN rules often demand.
	NoSequences bool
}

// length is the length Generate produces.
func (r Rule) length() int {
	if r.Length != 0 {
		return r.Length
	}
	return r.MaxLength
}

func (r Rule) symbols() string {
	if r.Allowed == "" {
		return DefaultSymbols
	}
	return r.Allowed
}

func (r Rule) alphabet() string {
	var b strings.Builder
	if r.Lower {
		b.WriteString(lowerSet)
	}
	if r.Upper {
		b.WriteString(upperSet)
	}
	if r.Digits {
		b.WriteString(digitSet)
	}
	if r.Symbols {
		b.WriteString(r.symbols())
	}
	return b.String()
}

// Validate returns a *fault.Error (fault.Invalid, code
// "password_rule_invalid") saying what is wrong with a rule, or nil.
func (r Rule) Validate() error {
	invalid := func(format string, args ...any) error {
		return fault.New(fault.Invalid, "password_rule_invalid", "password rule: "+format, args...)
	}
	n := r.length()
	switch {
	case r.Length < 0 || r.MinLength < 0 || r.MaxLength < 0:
		return invalid("lengths must not be negative")
	case n == 0:
		return invalid("set a length or a maximum length")
	case n < minRuleLength || n > maxRuleLength:
		return invalid("length %d is outside %d..%d", n, minRuleLength, maxRuleLength)
	case r.MaxLength != 0 && r.MinLength > r.MaxLength:
		return invalid("minimum length %d is above maximum length %d", r.MinLength, r.MaxLength)
	case n < r.MinLength:
		return invalid("length %d is below the minimum length %d", n, r.MinLength)
	case r.MaxLength != 0 && n > r.MaxLength:
		return invalid("length %d is above the maximum length %d", n, r.MaxLength)
	case !r.Lower && !r.Upper && !r.Digits && !r.Symbols:
		// With at least one class and a length of at least 4, one of each
		// enabled class always fits.
		return invalid("allow at least one of lowercase, uppercase, digits or symbols")
	case r.MustStartWithLetter && !r.Lower && !r.Upper:
		return invalid("must start with a letter but allows no letters")
	case r.Allowed != "" && !r.Symbols:
		return invalid("allowed symbols are given but symbols are off")
	}
	if r.Symbols {
		seen := make(map[rune]bool)
		for _, c := range r.symbols() {
			if c < '!' || c > '~' || isAlnum(byte(c)) {
				return invalid("allowed symbols must be printable ASCII punctuation")
			}
			if seen[c] {
				return invalid("allowed symbols repeat %q", c)
			}
			seen[c] = true
		}
	}
	if r.NoRepeats && len(r.alphabet()) < 2 {
		return invalid("no repeats needs at least two characters to choose from")
	}
	return nil
}

// Allows reports whether password satisfies r: its length, character set,
// and every constraint Generate honours. Generate returns only passwords
// that r allows.
func (r Rule) Allows(password string) bool {
	return r.Validate() == nil && r.allows(password)
}

// allows is Allows for a rule already validated.
func (r Rule) allows(password string) bool {
	n := len(password)
	if n < max(r.MinLength, minRuleLength) || n > maxRuleLength || r.MaxLength != 0 && n > r.MaxLength {
		return false
	}
	syms := ""
	if r.Symbols {
		syms = r.symbols()
	}
	var lower, upper, digit, symbol bool
	for i := 0; i < n; i++ {
		c := password[i]
		switch {
		case 'a' <= c && c <= 'z' && r.Lower:
			lower = true
		case 'A' <= c && c <= 'Z' && r.Upper:
			upper = true
		case isDigit(c) && r.Digits:
			digit = true
		case c < 0x80 && !isAlnum(c) && strings.IndexByte(syms, c) >= 0:
			symbol = true
		default:
			return false
		}
		if r.NoRepeats && i > 0 && c == password[i-1] {
			return false
		}
		if r.NoSequences && i > 1 && sequence(password[i-2], password[i-1], c) {
			return false
		}
	}
	if r.MustStartWithLetter && !isLetter(password[0]) {
		return false
	}
	return lower == r.Lower && upper == r.Upper && digit == r.Digits && symbol == r.Symbols
}

// sequence: three letters or digits of one class, each one up or each one
// down from the last.
func sequence(a, b, c byte) bool {
	same := func(x, y byte) bool {
		return isDigit(x) && isDigit(y) || 'a' <= x && x <= 'z' && 'a' <= y && y <= 'z' || 'A' <= x && x <= 'Z' && 'A' <= y && y <= 'Z'
	}
	if !same(a, b) || !same(b, c) {
		return false
	}
	d1, d2 := int(b)-int(a), int(c)-int(b)
	return d1 == d2 && (d1 == 1 || d1 == -1)
}

// maxAttempts bounds rejection sampling. The hardest rules Validate accepts
// are satisfied about once in 300 draws (256 digits with no repeats and no
// sequences; 4 characters of four classes with a single symbol, starting
// with a letter), so running out means a bug, not bad luck.
const maxAttempts = 100_000

// Generate returns a new password that rule allows, drawn from crypto/rand.
// Every password the rule allows is equally likely:
//
//   - each character is drawn uniformly by rejection sampling, never by a
//     bare modulo, which would favour the first characters of the alphabet;
//   - with NoRepeats, each character after the first is drawn uniformly from
//     the alphabet without the previous one. Every string without repeats
//     then has the same probability, 1/(a·(a-1)^(n-1)), and long rules stay
//     cheap;
//   - a draw that breaks any other constraint (a missing class, a sequence,
//     a first character that is not a letter) is thrown away whole rather
//     than patched, since patching would favour some passwords. Rejecting
//     from a uniform draw leaves a uniform draw over what remains.
//
// An invalid rule gives Validate's error. The caller should not keep the
// password longer than it needs to.
func Generate(rule Rule) (string, error) {
	return generate(rand.Reader, rule)
}

func generate(rng io.Reader, rule Rule) (string, error) {
	if err := rule.Validate(); err != nil {
		return "", err
	}
	alphabet := rule.alphabet()
	buf := make([]byte, rule.length())
	defer clear(buf)
	src := &byteSource{r: rng}
	defer clear(src.buf[:])
	for range maxAttempts {
		if err := fill(src, buf, alphabet, rule.NoRepeats); err != nil {
			return "", fmt.Errorf("secretcheck: generate: %w", err)
		}
		if rule.allows(string(buf)) {
			return string(buf), nil
		}
	}
	return "", fmt.Errorf("secretcheck: generate: rule %q satisfied by none of %d draws", rule.Name, maxAttempts)
}

// byteSource hands out random bytes from r, 64 at a time.
type byteSource struct {
	r   io.Reader
	buf [64]byte
	n   int // bytes of buf not yet used, at its end
}

func (s *byteSource) next() (byte, error) {
	if s.n == 0 {
		if _, err := io.ReadFull(s.r, s.buf[:]); err != nil {
			return 0, err
		}
		s.n = len(s.buf)
	}
	s.n--
	return s.buf[len(s.buf)-1-s.n], nil
}

// intn returns a uniform integer in [0, m) for 1 <= m <= 256. A random byte b
// is used only if it is below the largest multiple of m that fits in a byte,
// so that b % m is uniform.
func (s *byteSource) intn(m int) (int, error) {
	limit := 256 - 256%m
	for {
		b, err := s.next()
		if err != nil {
			return 0, err
		}
		if int(b) < limit {
			return int(b) % m, nil
		}
	}
}

// fill sets every byte of out to a uniformly chosen character of alphabet,
// or with noRepeats, of alphabet without the character before it.
func fill(src *byteSource, out []byte, alphabet string, noRepeats bool) error {
	a := len(alphabet)
	if a == 0 || a > 256 || noRepeats && a < 2 {
		return errors.New("alphabet size out of range")
	}
	prev := -1
	for i := range out {
		m := a
		if noRepeats && prev >= 0 {
			m = a - 1 // draw among the others, then step over prev
		}
		k, err := src.intn(m)
		if err != nil {
			return err
		}
		if m < a && k >= prev {
			k++
		}
		out[i] = alphabet[k]
		prev = k
	}
	return nil
}
