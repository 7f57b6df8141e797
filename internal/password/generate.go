package password

import "crypto/rand"

// generateAlphabet has no characters that are easily confused when read or
// typed: no 0, O, o, 1, l or I. 56 symbols, about 5.8 bits each.
const generateAlphabet = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"

// generateLen characters give about 139 bits of entropy.
const generateLen = 24

// Generate returns a new random password of 24 characters from an alphabet
// without look-alike characters, about 139 bits of entropy, that passes
// DefaultPolicy. The caller owns the slice and should clear it when done.
func Generate() []byte {
	for {
		p := randomString(generateLen)
		// A uniformly random 24-character string fails only if zxcvbn happens
		// to see a long pattern in it; the chance is negligible, but the
		// promise is that the result passes, so check.
		if DefaultPolicy().Check(string(p)) == nil {
			return p
		}
		clear(p)
	}
}

func randomString(n int) []byte {
	const a = len(generateAlphabet)
	// Reject bytes at or above the largest multiple of a so that every
	// symbol is equally likely.
	const limit = 256 - 256%a
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		rand.Read(buf[:])
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, generateAlphabet[int(b)%a])
			}
		}
	}
	clear(buf[:])
	return out
}
