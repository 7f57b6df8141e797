package secretcheck

import (
	"bytes"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/custodia-project/custodia/internal/fault"
)

func TestRuleFor(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{InstitutionBank, RuleAlnum8to12},
		{"Bank", RuleAlnum8to12},
		{InstitutionTaxPortal, RuleMixed8to16},
		{"tax-portal", RuleMixed8to16},
		{InstitutionPayroll, RuleMixed8to16},
		{InstitutionInvoicing, RuleGeneric},
		{InstitutionOther, RuleGeneric},
		{RuleDigitsPin4to8, RuleDigitsPin4to8},
		{" ALNUM-8-12 ", RuleAlnum8to12},
		{"", RuleGeneric},
		{"unknown portal", RuleGeneric},
	}
	for _, tt := range tests {
		if got := RuleFor(tt.in); got.Name != tt.want {
			t.Errorf("RuleFor(%q) = %q, want %q", tt.in, got.Name, tt.want)
		}
	}
	for _, name := range RuleNames() {
		if err := RuleFor(name).Validate(); err != nil {
			t.Errorf("built-in rule %s: %v", name, err)
		}
	}
	if n := len(RuleNames()); n != 4 {
		t.Errorf("%d built-in rules, want 4", n)
	}
	// A caller changing its copy must not change the registry.
	r := RuleFor(RuleGeneric)
	r.Length = 5
	if RuleFor(RuleGeneric).Length != 20 {
		t.Error("RuleFor returned a shared rule")
	}
}

func TestRuleValidate(t *testing.T) {
	ok := func(mod func(*Rule)) Rule {
		r := Rule{Name: "t", Length: 12, Lower: true, Upper: true, Digits: true}
		mod(&r)
		return r
	}
	tests := []struct {
		name string
		rule Rule
		ok   bool
	}{
		{"ok/plain", ok(func(r *Rule) {}), true},
		{"ok/length from max", ok(func(r *Rule) { r.Length = 0; r.MaxLength = 10 }), true},
		{"ok/custom symbols", ok(func(r *Rule) { r.Symbols = true; r.Allowed = "!@#" }), true},
		{"ok/four of four classes", Rule{Length: 4, Lower: true, Upper: true, Digits: true, Symbols: true, Allowed: "!", MustStartWithLetter: true}, true},
		{"fail/zero rule", Rule{}, false},
		{"fail/no length", ok(func(r *Rule) { r.Length = 0 }), false},
		{"fail/negative", ok(func(r *Rule) { r.MinLength = -1 }), false},
		{"fail/too short", ok(func(r *Rule) { r.Length = 3 }), false},
		{"fail/too long", ok(func(r *Rule) { r.Length = 257 }), false},
		{"fail/min above max", ok(func(r *Rule) { r.Length = 0; r.MinLength = 12; r.MaxLength = 8 }), false},
		{"fail/length above max", ok(func(r *Rule) { r.MaxLength = 10 }), false},
		{"fail/length below min", ok(func(r *Rule) { r.MinLength = 16 }), false},
		{"fail/no classes", Rule{Length: 8}, false},
		{"fail/letter start without letters", Rule{Length: 6, Digits: true, MustStartWithLetter: true}, false},
		{"fail/allowed without symbols", ok(func(r *Rule) { r.Allowed = "!" }), false},
		{"fail/letter in symbols", ok(func(r *Rule) { r.Symbols = true; r.Allowed = "!a" }), false},
		{"fail/space in symbols", ok(func(r *Rule) { r.Symbols = true; r.Allowed = "! " }), false},
		{"fail/non-ASCII symbol", ok(func(r *Rule) { r.Symbols = true; r.Allowed = "!€" }), false},
		{"fail/repeated symbol", ok(func(r *Rule) { r.Symbols = true; r.Allowed = "!!" }), false},
		{"fail/no repeats from one character", Rule{Length: 4, Symbols: true, Allowed: "!", NoRepeats: true}, false},
		{"ok/one character, repeats allowed", Rule{Length: 4, Symbols: true, Allowed: "!"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rule.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if fe, isFault := fault.As(err); !isFault || fe.Code != "password_rule_invalid" || fe.Kind != fault.Invalid {
					t.Fatalf("error %v is not a password_rule_invalid fault", err)
				}
				if _, gerr := Generate(tt.rule); gerr == nil {
					t.Fatal("Generate accepted an invalid rule")
				}
			}
		})
	}
}

func (r Rule) with(mod func(*Rule)) Rule { mod(&r); return r }

func TestRuleAllows(t *testing.T) {
	alnum := RuleFor(RuleAlnum8to12)
	pin := RuleFor(RuleDigitsPin4to8)
	mixed := RuleFor(RuleMixed8to16)
	tests := []struct {
		name string
		rule Rule
		pw   string
		want bool
	}{
		{"ok/alnum", alnum, "aB3dE5gH9k", true},
		{"fail/alnum too short", alnum, "aB3dE5g", false},
		{"fail/alnum too long", alnum, "aB3dE5gH9kLm7", false},
		{"fail/alnum symbol", alnum, "aB3dE5gH9k!", false},
		{"fail/alnum missing digit", alnum, "aBcdEfgHik", false},
		{"fail/alnum repeat", alnum, "aB3dd5gH9k", false},
		{"ok/pin", pin, "48291305", true},
		{"ok/pin short", pin, "4829", true},
		{"fail/pin letter", pin, "4829a305", false},
		{"fail/pin sequence up", pin, "48123905", false},
		{"fail/pin sequence down", pin, "48321905", false},
		{"fail/pin repeat", pin, "48291135", false},
		{"ok/mixed", mixed, "Ab3$dE5gH9k=mN2p", true},
		{"fail/mixed starts with digit", mixed, "3b3$dE5gH9k=mN2p", false},
		{"fail/mixed symbol outside set", mixed, "Ab3&dE5gH9k=mN2p", false},
		{"fail/mixed no symbol", mixed, "Ab3xdE5gH9kwmN2p", false},
		{"fail/non-ASCII", RuleFor(RuleGeneric), "Ab3$dE5gH9k=mN2pñññññ", false},
		{"fail/invalid rule", Rule{}, "anything", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rule.Allows(tt.pw); got != tt.want {
				t.Fatalf("%s.Allows(%q) = %v, want %v", tt.rule.Name, tt.pw, got, tt.want)
			}
		})
	}
}

// TestGenerateProperties draws many passwords from every built-in rule and
// some hand-made ones and checks each against the rule by its own code
// below, not by Allows, so a bug shared by both would still show.
func TestGenerateProperties(t *testing.T) {
	rules := []Rule{
		RuleFor(RuleGeneric),
		RuleFor(RuleAlnum8to12),
		RuleFor(RuleMixed8to16),
		RuleFor(RuleDigitsPin4to8),
		RuleFor(RuleDigitsPin4to8).with(func(r *Rule) { r.Length = 4 }),
		RuleFor(RuleAlnum8to12).with(func(r *Rule) { r.Length = 8; r.MustStartWithLetter = true }),
		{Name: "tight", Length: 4, Lower: true, Upper: true, Digits: true, Symbols: true, Allowed: "!", MustStartWithLetter: true, NoRepeats: true, NoSequences: true},
		{Name: "upper-only", Length: 64, Upper: true, NoRepeats: true, NoSequences: true},
	}
	n := 2000
	if testing.Short() {
		n = 200
	}
	for _, r := range rules {
		t.Run(r.Name, func(t *testing.T) {
			seen := make(map[string]bool)
			for range n {
				pw, err := Generate(r)
				if err != nil {
					t.Fatal(err)
				}
				if msg := independentCheck(r, pw); msg != "" {
					t.Fatalf("%q: %s", pw, msg)
				}
				seen[pw] = true
			}
			// Repeats are expected where the space is small (a PIN: 8
			// digits give a 5% chance of one in 2000 draws); above 2^40
			// passwords, one would mean a broken source.
			if bits := math.Log2(float64(len(r.alphabet()))) * float64(r.length()); bits >= 40 && len(seen) != n {
				t.Fatalf("%d distinct passwords in %d draws", len(seen), n)
			}
		})
	}
}

func independentCheck(r Rule, pw string) string {
	want := r.Length
	if want == 0 {
		want = r.MaxLength
	}
	if len(pw) != want {
		return "wrong length"
	}
	classes := map[string]bool{}
	for i, c := range pw {
		var class string
		switch {
		case strings.ContainsRune(lowerSet, c):
			class = "lower"
		case strings.ContainsRune(upperSet, c):
			class = "upper"
		case strings.ContainsRune(digitSet, c):
			class = "digit"
		case strings.ContainsRune(r.symbols(), c):
			class = "symbol"
		default:
			return "character outside every set"
		}
		classes[class] = true
		if i > 0 && r.NoRepeats && pw[i-1] == byte(c) {
			return "repeat"
		}
		if i > 1 && r.NoSequences {
			a, b := int(pw[i-2]), int(pw[i-1])
			if class != "symbol" && (b-a == 1 && int(c)-b == 1 || b-a == -1 && int(c)-b == -1) {
				return "sequence"
			}
		}
	}
	for class, on := range map[string]bool{"lower": r.Lower, "upper": r.Upper, "digit": r.Digits, "symbol": r.Symbols} {
		if classes[class] != on {
			return "class " + class + " present/absent wrongly"
		}
	}
	if r.MustStartWithLetter && !strings.ContainsRune(lowerSet+upperSet, rune(pw[0])) {
		return "does not start with a letter"
	}
	return ""
}

// TestGenerateUniform draws from a rule small enough to list every password
// it allows, with constraints that force rejections (no repeats, no
// sequences), and checks with a chi-squared test that every allowed password
// is equally likely and no other ever appears. A patched-up generator (say,
// one that bumps a repeated digit) fails this.
func TestGenerateUniform(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short outside CI: skips the statistical test")
	}
	rule := Rule{Name: "pin4", Length: 4, Digits: true, NoRepeats: true, NoSequences: true}
	var valid []string
	for i := range 10000 {
		s := string([]byte{byte('0' + i/1000), byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)})
		if independentCheck(rule, s) == "" {
			valid = append(valid, s)
		}
	}
	// 10*9*9*9 = 7290 strings without repeats, less the sequences.
	if len(valid) < 6000 || len(valid) > 7290 {
		t.Fatalf("%d valid PINs", len(valid))
	}
	const perCell = 20
	draws := perCell * len(valid)
	counts := make(map[string]int, len(valid))
	for range draws {
		pw, err := Generate(rule)
		if err != nil {
			t.Fatal(err)
		}
		counts[pw]++
	}
	chi2 := 0.0
	for _, s := range valid {
		d := float64(counts[s] - perCell)
		chi2 += d * d / perCell
		delete(counts, s)
	}
	if len(counts) != 0 {
		t.Fatalf("generated passwords the rule forbids: %v", counts)
	}
	// For k-1 degrees of freedom chi2 has mean k-1 and standard deviation
	// sqrt(2(k-1)); six deviations either way fails about once in 10^9 runs.
	df := float64(len(valid) - 1)
	if dev := (chi2 - df) / math.Sqrt(2*df); math.Abs(dev) > 6 {
		t.Fatalf("chi2 = %.0f for %.0f degrees of freedom: %.1f deviations from uniform", chi2, df, dev)
	}
}

// TestFillRejectsBias feeds fill bytes at and above the largest multiple of
// the alphabet size: they must be skipped, not folded onto the first
// characters by a modulo.
func TestFillRejectsBias(t *testing.T) {
	alphabet := digitSet // 256 % 10 = 6, so 250..255 must be rejected
	src := make([]byte, 64)
	for i := range src {
		src[i] = byte(250 + i%6)
	}
	src[10], src[20], src[30] = 3, 249, 0
	out := make([]byte, 3)
	if err := fill(&byteSource{r: bytes.NewReader(src)}, out, alphabet, false); err != nil {
		t.Fatal(err)
	}
	if string(out) != "390" {
		t.Fatalf("fill = %q, want %q", out, "390")
	}
	// One pass over 0..255 reaches every symbol of a 62-symbol alphabet
	// exactly 4 times (256 - 256%62 = 248 bytes used).
	alnum := lowerSet + upperSet + digitSet
	var all [256]byte
	for i := range all {
		all[i] = byte(i)
	}
	got := make([]byte, 248)
	if err := fill(&byteSource{r: bytes.NewReader(all[:])}, got, alnum, false); err != nil {
		t.Fatal(err)
	}
	for _, c := range alnum {
		if n := strings.Count(string(got), string(c)); n != 4 {
			t.Fatalf("%q drawn %d times from one pass over 0..255, want 4", c, n)
		}
	}
}

// TestFillNoRepeats checks the step over the previous character: with
// alphabet "0123456789" and every byte 5, the first draw is '5', and each
// later draw picks index 5 among the nine others, which alternates '6', '5'.
func TestFillNoRepeats(t *testing.T) {
	src := bytes.Repeat([]byte{5}, 64)
	out := make([]byte, 5)
	if err := fill(&byteSource{r: bytes.NewReader(src)}, out, digitSet, true); err != nil {
		t.Fatal(err)
	}
	if string(out) != "56565" {
		t.Fatalf("fill = %q, want %q", out, "56565")
	}
	if err := fill(&byteSource{r: bytes.NewReader(src)}, out, "x", true); err == nil {
		t.Fatal("no repeats from a one-character alphabet accepted")
	}
}

// TestGenerateLongRules: rules whose constraints almost never hold for a
// long uniform draw must still generate quickly, because NoRepeats is built
// in rather than rejected.
func TestGenerateLongRules(t *testing.T) {
	for _, r := range []Rule{
		{Name: "long-pin", Length: 256, Digits: true, NoRepeats: true, NoSequences: true},
		{Name: "two-symbols", Length: 256, Symbols: true, Allowed: "!#", NoRepeats: true},
	} {
		for range 20 {
			pw, err := Generate(r)
			if err != nil {
				t.Fatalf("%s: %v", r.Name, err)
			}
			if msg := independentCheck(r, pw); msg != "" {
				t.Fatalf("%s: %q: %s", r.Name, pw, msg)
			}
		}
	}
}

func TestGenerateReaderError(t *testing.T) {
	boom := errors.New("boom")
	_, err := generate(iotest.ErrReader(boom), RuleFor(RuleGeneric))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap the reader's error", err)
	}
}
