package mfa_test

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/custodia-project/custodia/internal/mfa"
)

var recoveryFormat = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$`)

func TestNewRecoveryCodes(t *testing.T) {
	for name, n := range map[string]int{"ok/default": 0, "ok/negative means default": -3, "ok/one": 1, "ok/twenty": 20} {
		t.Run(name, func(t *testing.T) {
			codes, hashes := mfa.NewRecoveryCodes(n)
			want := n
			if n <= 0 {
				want = mfa.DefaultRecoveryCodes
			}
			if len(codes) != want || len(hashes) != want {
				t.Fatalf("got %d codes and %d hashes, want %d", len(codes), len(hashes), want)
			}
			for i, c := range codes {
				if !recoveryFormat.MatchString(c) {
					t.Errorf("code %q is not xxxxx-xxxxx in the unambiguous alphabet", c)
				}
				for _, h := range hashes {
					if bytes.Contains(h, []byte(c)) || bytes.Contains(h, []byte(strings.ReplaceAll(c, "-", ""))) {
						t.Fatalf("hash %d contains a code in the clear", i)
					}
				}
			}
		})
	}
	t.Run("ok/unique", func(t *testing.T) {
		seen, seenHash := map[string]bool{}, map[string]bool{}
		for range 100 {
			codes, hashes := mfa.NewRecoveryCodes(10)
			for i := range codes {
				if seen[codes[i]] || seenHash[string(hashes[i])] {
					t.Fatalf("repeated code or hash after %d codes", len(seen))
				}
				seen[codes[i]], seenHash[string(hashes[i])] = true, true
			}
		}
	})
	t.Run("ok/uses the whole alphabet", func(t *testing.T) {
		// 32 symbols over 10,000 characters: every one should appear,
		// none should dominate (expected count 312.5).
		count := map[rune]int{}
		for range 100 {
			codes, _ := mfa.NewRecoveryCodes(10)
			for _, c := range strings.Join(codes, "") {
				if c != '-' {
					count[c]++
				}
			}
		}
		if len(count) != 32 {
			t.Fatalf("%d distinct symbols, want 32", len(count))
		}
		for c, n := range count {
			if n < 200 || n > 450 {
				t.Errorf("symbol %q appears %d times in 10000", c, n)
			}
		}
	})
}

func TestMatchRecoveryCode(t *testing.T) {
	codes, hashes := mfa.NewRecoveryCodes(10)
	otherCodes, _ := mfa.NewRecoveryCodes(10)
	tests := []struct {
		name   string
		code   string
		hashes [][]byte
		want   int // -1: no match
	}{
		{"ok/first", codes[0], hashes, 0},
		{"ok/last", codes[9], hashes, 9},
		{"ok/upper case", strings.ToUpper(codes[3]), hashes, 3},
		{"ok/without dash", strings.ReplaceAll(codes[4], "-", ""), hashes, 4},
		{"ok/spaces and extra dashes", " " + codes[5][:2] + " -" + codes[5][2:] + "\t", hashes, 5},
		{"ok/first of duplicated hashes", codes[2], append(slices.Clone(hashes), hashes[2]), 2},
		{"ok/among malformed hashes", codes[1], [][]byte{nil, {1, 2, 3}, hashes[1]}, 2},
		{"fail/code from another set", otherCodes[0], hashes, -1},
		{"fail/one symbol changed", changeOne(codes[0]), hashes, -1},
		{"fail/too short", codes[0][:10], hashes, -1},
		{"fail/too long", codes[0] + "0", hashes, -1},
		{"fail/u is not in the alphabet", "uuuuu-uuuuu", hashes, -1},
		{"fail/empty", "", hashes, -1},
		{"fail/no hashes", codes[0], nil, -1},
		{"fail/hash with code in clear", codes[0], [][]byte{[]byte(codes[0])}, -1},
		{"fail/huge input", strings.Repeat("-", 1<<20) + codes[0], hashes, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i, ok := mfa.MatchRecoveryCode(tc.code, tc.hashes)
			if ok != (tc.want >= 0) || i != tc.want {
				t.Fatalf("MatchRecoveryCode = %d, %v; want %d", i, ok, tc.want)
			}
		})
	}
}

// The caller spends a code by deleting its hash: the same code then no
// longer matches, and the others still do.
func TestRecoveryCodeSpentOnce(t *testing.T) {
	codes, hashes := mfa.NewRecoveryCodes(0)
	for len(codes) > 0 {
		c := codes[len(codes)/2]
		i, ok := mfa.MatchRecoveryCode(c, hashes)
		if !ok {
			t.Fatalf("code %d of %d did not match", len(codes)/2, len(codes))
		}
		hashes = slices.Delete(hashes, i, i+1)
		codes = slices.Delete(codes, len(codes)/2, len(codes)/2+1)
		if _, ok := mfa.MatchRecoveryCode(c, hashes); ok {
			t.Fatal("spent code matched again")
		}
	}
}

// A member may read 0 as O and 1 as I or L: they are typed as the digits.
func TestRecoveryCodeLookAlikes(t *testing.T) {
	for range 1000 {
		codes, hashes := mfa.NewRecoveryCodes(0)
		for want, c := range codes {
			if !strings.Contains(c, "0") || !strings.Contains(c, "1") {
				continue
			}
			typed := strings.Replace(strings.ReplaceAll(c, "0", "O"), "1", "I", 1)
			typed = strings.ReplaceAll(typed, "1", "l")
			if i, ok := mfa.MatchRecoveryCode(typed, hashes); !ok || i != want {
				t.Fatalf("%q typed as %q: got %d, %v", c, typed, i, ok)
			}
			return
		}
	}
	t.Fatal("no code with both 0 and 1 in 1000 sets")
}

func changeOne(code string) string {
	b := []byte(code)
	if b[0] == 'a' {
		b[0] = 'b'
	} else {
		b[0] = 'a'
	}
	return string(b)
}
