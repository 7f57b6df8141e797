package mfa

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
)

// DefaultRecoveryCodes is how many codes NewRecoveryCodes makes when asked
// for n <= 0.
const DefaultRecoveryCodes = 10

// Recovery codes are 10 characters of Crockford's base32 alphabet in lower
// case: 50 bits each. The alphabet has no i, l, o or u, so what is printed
// cannot be misread, and the look-alikes a member may type (o, i, l) are
// read as the digits they resemble.
const (
	recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	recoveryLen      = 10
	recoverySaltLen  = 16
	recoveryHashLen  = recoverySaltLen + sha256.Size
)

// recoveryDomain separates these hashes from any other SHA-256 use.
const recoveryDomain = "custodia mfa recovery code v1\x00"

// NewRecoveryCodes returns n fresh recovery codes (DefaultRecoveryCodes if n
// <= 0), formatted "xxxxx-xxxxx", to show the member once, and for each the
// hash the caller stores instead. Codes within a set are distinct.
//
// Each hash is a random 16-byte salt followed by SHA-256(domain, salt,
// code). A fast hash is enough here, unlike for passwords, because the codes
// are random rather than chosen: online, 50 bits cannot be guessed through a
// rate-limited login; offline, a stolen hash still costs about 2^49 SHA-256
// evaluations on average, per code, and the code alone does not log anyone
// in. The salt is what keeps that cost per code: without it one pass over
// the code space would test every stored hash of every member at once.
func NewRecoveryCodes(n int) (codes []string, hashes [][]byte) {
	if n <= 0 {
		n = DefaultRecoveryCodes
	}
	codes = make([]string, 0, n)
	hashes = make([][]byte, 0, n)
	seen := make(map[string]bool, n)
	for len(codes) < n {
		var raw [recoveryLen]byte
		rand.Read(raw[:])
		var c [recoveryLen]byte
		for i, b := range raw {
			c[i] = recoveryAlphabet[b&31] // 32 symbols: no modulo bias
		}
		if seen[string(c[:])] {
			continue
		}
		seen[string(c[:])] = true
		h := make([]byte, recoveryHashLen)
		rand.Read(h[:recoverySaltLen])
		sum := recoveryHash(h[:recoverySaltLen], c[:])
		copy(h[recoverySaltLen:], sum[:])
		codes = append(codes, string(c[:5])+"-"+string(c[5:]))
		hashes = append(hashes, h)
	}
	return codes, hashes
}

// MatchRecoveryCode reports which of the stored hashes code matches. Case,
// spaces and dashes are ignored. Every hash is checked whatever the outcome,
// so the time taken does not reveal which one matched. The code is then
// spent: the caller must remove hashes[index] before accepting it.
func MatchRecoveryCode(code string, hashes [][]byte) (index int, ok bool) {
	c, valid := normalizeRecoveryCode(code)
	if !valid {
		return -1, false
	}
	index, found := -1, 0
	for i, h := range hashes {
		if len(h) != recoveryHashLen {
			continue // not one of ours; cannot match
		}
		sum := recoveryHash(h[:recoverySaltLen], c)
		eq := subtle.ConstantTimeCompare(sum[:], h[recoverySaltLen:])
		index = subtle.ConstantTimeSelect(eq&^found, i, index)
		found |= eq
	}
	return index, found == 1
}

func recoveryHash(salt, code []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(recoveryDomain))
	h.Write(salt)
	h.Write(code)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// normalizeRecoveryCode lowercases, drops separators and reads look-alike
// letters as digits; it accepts exactly recoveryLen alphabet symbols.
func normalizeRecoveryCode(code string) ([]byte, bool) {
	if len(code) > maxCodeInput {
		return nil, false
	}
	out := make([]byte, 0, recoveryLen)
	for i := 0; i < len(code); i++ {
		c := code[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch c {
		case ' ', '\t', '-':
			continue
		case 'o':
			c = '0'
		case 'i', 'l':
			c = '1'
		}
		if len(out) == recoveryLen || !isRecoverySymbol(c) {
			return nil, false
		}
		out = append(out, c)
	}
	return out, len(out) == recoveryLen
}

func isRecoverySymbol(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z' && c != 'i' && c != 'l' && c != 'o' && c != 'u')
}
