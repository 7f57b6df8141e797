package password

import (
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"

	"github.com/custodia-project/custodia/internal/fault"
)

// Policy decides whether a new password is acceptable. Start from
// DefaultPolicy; the zero Policy refuses everything.
type Policy struct {
	MinLength int // in characters (runes), not bytes
	MaxLength int // in characters (runes), not bytes
	MinScore  int // zxcvbn score, 0 (too guessable) to 4 (very unguessable)
}

// DefaultPolicy asks for 12 to 256 characters and a zxcvbn score of at least
// 3, which zxcvbn describes as "safely unguessable" against offline attacks
// on a slow hash: at least 10^8 guesses.
func DefaultPolicy() Policy {
	return Policy{MinLength: 12, MaxLength: 256, MinScore: 3}
}

const (
	floorMinLength = 12
	ceilMaxLength  = 1024
	// maxEstimateRunes bounds zxcvbn's work, which grows faster than
	// linearly with length. Estimating only a prefix can only under-rate a
	// password, never over-rate it.
	maxEstimateRunes = 100
	// quickEstimateRunes is the prefix estimated first: zxcvbn's cost grows
	// about with the cube of the length (0.2 ms at 12 runes, 3 ms at 32,
	// 35 ms at 100 on this project's benchmark machine). When the prefix
	// alone already earns the top score, so does the whole password, and
	// the rest is not estimated. Random machine secrets (API keys,
	// generated passwords) take this path; people's passphrases, whose
	// first words are guessable, are estimated up to maxEstimateRunes.
	quickEstimateRunes = 12
	topScore           = 4
)

// Validate refuses a minimum length below 12, a maximum length below the
// minimum or above 1024, and a score outside 0..4.
func (p Policy) Validate() error {
	switch {
	case p.MinLength < floorMinLength:
		return fmt.Errorf("password: policy minimum length %d is below %d", p.MinLength, floorMinLength)
	case p.MaxLength < p.MinLength || p.MaxLength > ceilMaxLength:
		return fmt.Errorf("password: policy maximum length %d is outside %d..%d", p.MaxLength, p.MinLength, ceilMaxLength)
	case p.MinScore < 0 || p.MinScore > 4:
		return fmt.Errorf("password: policy minimum score %d is outside 0..4", p.MinScore)
	}
	return nil
}

// Check returns nil if password is acceptable, or a *fault.Error of kind
// fault.Invalid whose code says why:
//
//   - password_invalid: not valid UTF-8
//   - password_too_short, password_too_long: outside MinLength..MaxLength
//   - password_common: in the shipped list of common leaked passwords,
//     ignoring case
//   - password_weak: zxcvbn scores it below MinScore
//
// userInputs are words the password should not be built from: the user's
// email address, name, the tenant's name. zxcvbn treats them, and their
// parts (the local part and domain of an email address, each word, the words
// run together), as a dictionary an attacker would try first.
//
// The message is safe to show and never contains the password or the
// user inputs. There are no composition rules.
func (p Policy) Check(password string, userInputs ...string) error {
	if !utf8.ValidString(password) {
		return fault.New(fault.Invalid, "password_invalid", "password must be valid UTF-8 text")
	}
	n := utf8.RuneCountInString(password)
	if n < p.MinLength {
		return fault.New(fault.Invalid, "password_too_short", "password must be at least %d characters long", p.MinLength)
	}
	if n > p.MaxLength {
		return fault.New(fault.Invalid, "password_too_long", "password must be at most %d characters long", p.MaxLength)
	}
	if Common(password) {
		return fault.New(fault.Invalid, "password_common",
			"password is on a list of commonly used passwords found in data breaches; choose another")
	}
	res := estimate(password, userInputs)
	if res.Score < p.MinScore {
		personal := ""
		for _, m := range res.Sequence {
			if m.DictionaryName == "user_inputs" {
				personal = "it contains your name, email address or organisation, and "
				break
			}
		}
		return fault.New(fault.Invalid, "password_weak",
			"password is too easy to guess: %sit is estimated to be guessed in fewer than 10^%d guesses; use a longer passphrase",
			personal, int(math.Floor(log10(res.Guesses)))+1)
	}
	return nil
}

// Strength returns zxcvbn's score (0 to 4) for password and the base-10
// logarithm of the number of guesses it estimates an attacker needs. Only the
// first 100 characters are estimated. Invalid UTF-8 scores 0.
func Strength(password string, userInputs ...string) (score int, guessesLog10 float64) {
	res := estimate(password, userInputs)
	return res.Score, log10(res.Guesses)
}

func estimate(password string, userInputs []string) zxcvbn.Result {
	inputs := expandInputs(userInputs)
	if utf8.RuneCountInString(password) > quickEstimateRunes {
		if res := zxcvbn.PasswordStrength(prefix(password, quickEstimateRunes), inputs); res.Score >= topScore {
			return res
		}
	}
	return zxcvbn.PasswordStrength(prefix(password, maxEstimateRunes), inputs)
}

// prefix is s's first n runes (all of s when it is shorter).
func prefix(s string, n int) string {
	i := 0
	for ; n > 0 && i < len(s); n-- {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

func log10(guesses float64) float64 {
	if guesses < 1 {
		return 0
	}
	return math.Log10(guesses)
}

// expandInputs adds the forms of each input an attacker would try on their
// own: the local part and domain of an email address, the input with spaces
// and punctuation removed ("Alice Smith" -> "alicesmith"), and each word of
// at least 3 letters or digits.
func expandInputs(in []string) []string {
	out := make([]string, 0, 4*len(in))
	for _, s := range in {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			continue
		}
		out = append(out, s)
		if local, domain, ok := strings.Cut(s, "@"); ok {
			out = append(out, local, domain)
		}
		words := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		if joined := strings.Join(words, ""); len(words) > 1 {
			out = append(out, joined)
		}
		for _, w := range words {
			if utf8.RuneCountInString(w) >= 3 && w != s {
				out = append(out, w)
			}
		}
	}
	return out
}
