package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters, and the lengths of salt and key.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // lanes; also the goroutines one hash uses
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// The floor is OWASP's minimum recommendation for argon2id (Password Storage
// Cheat Sheet): 19 MiB, 2 passes, 1 lane.
const (
	minMemory  = 19 * 1024
	minTime    = 2
	minThreads = 1
)

// Ceilings. They exist so that neither a configuration typo nor a hostile
// stored hash can ask for gigabytes or minutes of work per sign-in; they are
// well above anything a sign-in should cost.
const (
	maxMemory  = 1 << 20 // KiB, 1 GiB
	maxTime    = 16
	maxThreads = 16
	maxSaltLen = 64
	maxKeyLen  = 64
	minSaltLen = 16 // for new hashes; stored ones may have 8 (see ParsePHC)
	minKeyLen  = 16
	// minStoredSaltLen is argon2's own minimum; older hashes may use it.
	minStoredSaltLen = 8
)

// testOnlyAllowWeak lets tests build a Hasher below the OWASP floor so that
// tests about queueing and rehashing run in microseconds. Set in TestMain.
var testOnlyAllowWeak = false

// DefaultParams returns OWASP's minimum argon2id configuration: 19 MiB of
// memory, 2 passes, 1 lane, a 16-byte salt and a 32-byte key. One hash takes
// a few tens of milliseconds on a server core.
func DefaultParams() Params {
	return Params{Memory: minMemory, Time: minTime, Threads: minThreads, SaltLen: 16, KeyLen: 32}
}

// Validate refuses parameters below OWASP's floor (Memory 19456 KiB, Time 2,
// Threads 1) and absurd ones: more than 1 GiB of memory, 16 passes or 16
// threads, and salts or keys shorter than 16 or longer than 64 bytes.
func (p Params) Validate() error {
	return p.validate(false)
}

func (p Params) validate(allowWeak bool) error {
	if !allowWeak {
		switch {
		case p.Memory < minMemory:
			return fmt.Errorf("password: argon2id memory %d KiB is below the minimum of %d KiB", p.Memory, minMemory)
		case p.Time < minTime:
			return fmt.Errorf("password: argon2id time %d is below the minimum of %d", p.Time, minTime)
		}
	}
	if err := checkCost(p.Memory, p.Time, p.Threads); err != nil {
		return fmt.Errorf("password: argon2id %w", err)
	}
	if p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen {
		return fmt.Errorf("password: argon2id salt length %d is outside %d..%d bytes", p.SaltLen, minSaltLen, maxSaltLen)
	}
	if p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen {
		return fmt.Errorf("password: argon2id key length %d is outside %d..%d bytes", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// checkCost holds the limits shared by configured and stored parameters.
func checkCost(m, t uint32, p uint8) error {
	switch {
	case p < minThreads || p > maxThreads:
		return fmt.Errorf("threads %d is outside %d..%d", p, minThreads, maxThreads)
	case t < 1 || t > maxTime:
		return fmt.Errorf("time %d is outside 1..%d", t, maxTime)
	case m < 8*uint32(p): // argon2's own minimum: 8 KiB per lane
		return fmt.Errorf("memory %d KiB is below 8 KiB per thread", m)
	case m > maxMemory:
		return fmt.Errorf("memory %d KiB is above the maximum of %d KiB", m, maxMemory)
	}
	return nil
}

// ErrMalformed is returned, wrapped, for a stored hash that is not a PHC
// string this package accepts. It means the stored data is wrong, not the
// password: treat it as an internal error.
var ErrMalformed = errors.New("password: malformed password hash")

const phcPrefix = "$argon2id$v=19$"

// maxPHCLen is longer than any string ParsePHC accepts; it stops the parser
// from working on megabytes of garbage.
const maxPHCLen = 256

var b64 = base64.RawStdEncoding.Strict()

// ParsePHC parses an argon2id hash in PHC string format,
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with salt and key in unpadded standard base64. It is strict, so that every
// accepted string has one spelling: only argon2id version 19 (0x13); m, t and
// p in that order, in decimal without leading zeros or signs; no other
// parameters; base64 without padding or stray bits. It accepts parameters
// below the OWASP floor, so that hashes made under older settings can still
// be verified (and then replaced), but refuses absurd ones: more than 1 GiB,
// 16 passes or 16 threads, salts outside 8..64 bytes and keys outside 16..64
// bytes. The returned Params have SaltLen and KeyLen set to the lengths found.
// Errors wrap ErrMalformed and never contain s.
func ParsePHC(s string) (p Params, salt, key []byte, err error) {
	malformed := func(what string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	if len(s) > maxPHCLen {
		return malformed("too long")
	}
	rest, ok := strings.CutPrefix(s, phcPrefix)
	if !ok {
		return malformed("not an argon2id version 19 PHC string")
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return malformed("want parameters, salt and key")
	}
	kv := strings.Split(fields[0], ",")
	if len(kv) != 3 {
		return malformed("want exactly m, t and p")
	}
	var vals [3]uint32
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return malformed("want parameters m, t, p in that order")
		}
		n, ok := parseDecimal(v)
		if !ok {
			return malformed("parameter " + name + " is not a canonical decimal")
		}
		vals[i] = n
	}
	if vals[2] > maxThreads {
		return malformed("too many threads")
	}
	m, t, threads := vals[0], vals[1], uint8(vals[2])
	if err := checkCost(m, t, threads); err != nil {
		return malformed(err.Error())
	}
	// The decoder skips \r and \n; a length check refuses them.
	salt, err = b64.DecodeString(fields[1])
	if err != nil || b64.EncodedLen(len(salt)) != len(fields[1]) {
		return malformed("salt is not unpadded base64")
	}
	if len(salt) < minStoredSaltLen || len(salt) > maxSaltLen {
		return malformed("salt length out of range")
	}
	key, err = b64.DecodeString(fields[2])
	if err != nil || b64.EncodedLen(len(key)) != len(fields[2]) {
		return malformed("key is not unpadded base64")
	}
	if len(key) < minKeyLen || len(key) > maxKeyLen {
		return malformed("key length out of range")
	}
	p = Params{Memory: m, Time: t, Threads: threads, SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	return p, salt, key, nil
}

// parseDecimal accepts only the spelling strconv.FormatUint would produce.
func parseDecimal(s string) (uint32, bool) {
	if s == "" || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}
