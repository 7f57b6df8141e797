package password

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/custodia-project/custodia/internal/fault"
)

func TestPolicyCheck(t *testing.T) {
	user := []string{"alice.smith@example.com", "Alice Smith", "Acme Corp"}
	tests := []struct {
		name     string
		policy   Policy
		password string
		inputs   []string
		code     string // "" for accepted
	}{
		{"ok/random-passphrase", DefaultPolicy(), "zebra quantum ladle fjord", user, ""},
		{"ok/long-passphrase-with-name", DefaultPolicy(), "alice likes purple monkey dishwashers", user, ""},
		{"ok/random-string", DefaultPolicy(), "7hQ!mZ2#kP9vXe", nil, ""},
		{"ok/unicode-passphrase", DefaultPolicy(), "ünïcödé fjörd ståvanger kümmel", nil, ""},
		{"ok/exactly-max-runes", Policy{MinLength: 12, MaxLength: 16, MinScore: 3}, "ö7hQ!mZ2#kP9vXeå", nil, ""},
		{"ok/no-composition-rules-all-lowercase", DefaultPolicy(), "correcthorsebatterystaple", nil, ""},
		{"ok/score-floor-zero", Policy{MinLength: 12, MaxLength: 256, MinScore: 0}, "aaaaaaaaaaab", nil, ""},

		{"fail/empty", DefaultPolicy(), "", nil, "password_too_short"},
		{"fail/11-chars", DefaultPolicy(), "7hQ!mZ2#kP9", nil, "password_too_short"},
		// 12 bytes but 6 runes: length counts characters.
		{"fail/short-in-runes", DefaultPolicy(), "éééééé", nil, "password_too_short"},
		{"fail/257-runes", DefaultPolicy(), strings.Repeat("ö", 257), nil, "password_too_long"},
		{"fail/invalid-utf8", DefaultPolicy(), "7hQ!mZ2#kP9vXe\xff", nil, "password_invalid"},
		{"fail/common-password1234", DefaultPolicy(), "password1234", nil, "password_common"},
		{"fail/common-qwertyuiop123", DefaultPolicy(), "qwertyuiop123", nil, "password_common"},
		{"fail/common-ignores-case", DefaultPolicy(), "PassWord1234", nil, "password_common"},
		{"fail/common-1qaz2wsx3edc", DefaultPolicy(), "1qaz2wsx3edc", nil, "password_common"},
		// Only in the list's long tail (rank > 100,000 in the source).
		{"fail/common-long-tail", DefaultPolicy(), "polniypizdec0211", nil, "password_common"},
		{"fail/weak-repeat", DefaultPolicy(), "abababababababab", nil, "password_weak"},
		{"fail/weak-repeated-word", DefaultPolicy(), "summersummersummer", nil, "password_weak"},
		{"fail/weak-name-and-years", DefaultPolicy(), "jessica19851985", nil, "password_weak"},
		{"fail/user-input-email", DefaultPolicy(), "alice.smith@example.com", user, "password_weak"},
		{"fail/user-input-email-local-part", DefaultPolicy(), "alice.smith2015", user, "password_weak"},
		{"fail/user-input-joined-name", DefaultPolicy(), "AliceSmith1987", user, "password_weak"},
		{"fail/user-input-tenant", DefaultPolicy(), "acmecorp2015!", user, "password_weak"},
		{"fail/score-4-required", Policy{MinLength: 12, MaxLength: 256, MinScore: 4}, "correct horse", nil, "password_weak"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.password, tt.inputs...)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			fe, ok := fault.As(err)
			if !ok || fe.Code != tt.code || fe.Kind != fault.Invalid {
				t.Fatalf("Check = %v, want code %s", err, tt.code)
			}
			if tt.password != "" && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.password)) {
				t.Fatal("message echoes the password")
			}
			for _, in := range tt.inputs {
				if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(in)) {
					t.Fatal("message echoes a user input")
				}
			}
		})
	}
}

// The same password is refused only because of what we know about the user.
func TestPolicyUserInputsMatter(t *testing.T) {
	const pw = "AliceSmith1987"
	if err := DefaultPolicy().Check(pw); err != nil {
		t.Fatalf("without user inputs: %v", err)
	}
	err := DefaultPolicy().Check(pw, "Alice Smith")
	if fe, ok := fault.As(err); !ok || fe.Code != "password_weak" || !strings.Contains(fe.Message, "your name") {
		t.Fatalf("with user inputs: %v", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		ok   bool
	}{
		{"ok/default", DefaultPolicy(), true},
		{"ok/stricter", Policy{MinLength: 16, MaxLength: 128, MinScore: 4}, true},
		{"fail/zero", Policy{}, false},
		{"fail/min-length-8", Policy{MinLength: 8, MaxLength: 256, MinScore: 3}, false},
		{"fail/max-below-min", Policy{MinLength: 20, MaxLength: 19, MinScore: 3}, false},
		{"fail/max-absurd", Policy{MinLength: 12, MaxLength: 1 << 20, MinScore: 3}, false},
		{"fail/score-5", Policy{MinLength: 12, MaxLength: 256, MinScore: 5}, false},
		{"fail/score-negative", Policy{MinLength: 12, MaxLength: 256, MinScore: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestStrength(t *testing.T) {
	tests := []struct {
		name     string
		password string
		inputs   []string
		minScore int
		maxScore int
		minLog10 float64
		maxLog10 float64
	}{
		{"ok/very-common", "password", nil, 0, 0, 0, 3},
		{"ok/passphrase", "zebra quantum ladle fjord", nil, 4, 4, 10, 100},
		{"ok/invalid-utf8", "\xff\xfe", nil, 0, 0, 0, 0},
		{"ok/user-input", "alice.smith@example.com", []string{"alice.smith@example.com"}, 0, 0, 0, 1},
		// Only the first 100 characters are estimated: a long repetition
		// stays weak, and the call stays cheap.
		{"ok/truncated", strings.Repeat("ab", 5000), nil, 0, 0, 0, 4},
		// A weak start is estimated in full: the quick prefix does not
		// decide for it (a whole weak password over 12 runes stays weak).
		{"ok/weak-long", "passwordpassword123", nil, 0, 2, 0, 9},
		{"ok/name-then-year", "alicesmith1984!", []string{"Alice Smith"}, 0, 2, 0, 9},
		// A random start earns the top score from its prefix alone.
		{"ok/random-long", "q7Vd-Mx2p-RkT9-w4Lz-Hc8N" + strings.Repeat("x", 2000), nil, 4, 4, 10, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			score, lg := Strength(tt.password, tt.inputs...)
			if score < tt.minScore || score > tt.maxScore || lg < tt.minLog10 || lg > tt.maxLog10 {
				t.Fatalf("Strength = %d, %.2f; want score %d..%d, log10 %.0f..%.0f",
					score, lg, tt.minScore, tt.maxScore, tt.minLog10, tt.maxLog10)
			}
		})
	}
}

func TestCommonList(t *testing.T) {
	list := commonList()
	if len(list) != 139974 {
		t.Fatalf("%d entries, want 139974 (see data/NOTICE.md)", len(list))
	}
	if !slices.IsSorted(list) {
		t.Fatal("list is not sorted")
	}
	for i, w := range list {
		if w == "" || w != strings.ToLower(w) || !utf8.ValidString(w) || strings.ContainsAny(w, "\r\n") {
			t.Fatalf("entry %d = %q: want non-empty lowercase UTF-8", i, w)
		}
		if i > 0 && list[i-1] == w {
			t.Fatalf("duplicate entry %q", w)
		}
	}
	for _, w := range []string{"123456", "password", "qwerty", "dragon", "trustno1", "password1234", "1qaz2wsx3edc"} {
		if !Common(w) {
			t.Errorf("%q not found", w)
		}
	}
	for _, w := range []string{"zebra quantum ladle fjord", "", "password12345678901234567890x"} {
		if Common(w) {
			t.Errorf("%q found", w)
		}
	}
}

func TestGenerate(t *testing.T) {
	seen := make(map[string]bool)
	for range 50 {
		p := Generate()
		if len(p) != generateLen {
			t.Fatalf("len = %d, want %d", len(p), generateLen)
		}
		for _, c := range p {
			if !strings.ContainsRune(generateAlphabet, rune(c)) || strings.ContainsRune("0O1lIo", rune(c)) {
				t.Fatalf("character %q outside the alphabet", c)
			}
		}
		if err := DefaultPolicy().Check(string(p)); err != nil {
			t.Fatalf("generated password refused: %v", err)
		}
		if seen[string(p)] {
			t.Fatal("repeated password")
		}
		seen[string(p)] = true
	}
}

// Every symbol of the alphabet must be reachable; a modulo bias or an
// off-by-one in the alphabet would show up as a missing symbol long before
// it shows up statistically.
func TestGenerateCoversAlphabet(t *testing.T) {
	counts := make(map[byte]int)
	for _, c := range randomString(20000) {
		counts[c]++
	}
	if len(counts) != len(generateAlphabet) {
		t.Fatalf("%d distinct symbols, want %d", len(counts), len(generateAlphabet))
	}
	for c, n := range counts {
		// Expected 20000/56 ≈ 357; a fair source is never this far off.
		if n < 200 || n > 550 {
			t.Fatalf("symbol %q seen %d times in 20000", c, n)
		}
	}
}
