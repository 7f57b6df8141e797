package password

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	// Most tests are about queueing, rehashing and parsing, not about cost:
	// let them use a few KiB instead of 19 MiB per hash.
	testOnlyAllowWeak = true
	os.Exit(m.Run())
}

// weakParams cost microseconds; only tests may use them (see TestMain).
func weakParams() Params {
	return Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

func TestParamsValidate(t *testing.T) {
	with := func(f func(*Params)) Params {
		p := DefaultParams()
		f(&p)
		return p
	}
	tests := []struct {
		name string
		p    Params
		ok   bool
	}{
		{"ok/default", DefaultParams(), true},
		{"ok/rfc9106-second-recommendation", with(func(p *Params) { p.Memory, p.Time, p.Threads = 64<<10, 3, 4 }), true},
		{"ok/at-ceilings", with(func(p *Params) {
			p.Memory, p.Time, p.Threads, p.SaltLen, p.KeyLen = maxMemory, maxTime, maxThreads, 64, 64
		}), true},
		{"fail/memory-below-owasp", with(func(p *Params) { p.Memory = 19455 }), false},
		{"fail/time-below-owasp", with(func(p *Params) { p.Time = 1 }), false},
		{"fail/no-threads", with(func(p *Params) { p.Threads = 0 }), false},
		{"fail/zero", Params{}, false},
		{"fail/memory-4GiB", with(func(p *Params) { p.Memory = 4 << 20 }), false},
		{"fail/memory-max-uint32", with(func(p *Params) { p.Memory = ^uint32(0) }), false},
		{"fail/time-absurd", with(func(p *Params) { p.Time = 1000 }), false},
		{"fail/threads-absurd", with(func(p *Params) { p.Threads = 255 }), false},
		{"fail/short-salt", with(func(p *Params) { p.SaltLen = 8 }), false},
		{"fail/long-salt", with(func(p *Params) { p.SaltLen = 65 }), false},
		{"fail/short-key", with(func(p *Params) { p.KeyLen = 15 }), false},
		{"fail/long-key", with(func(p *Params) { p.KeyLen = 1 << 20 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tt.p, err, tt.ok)
			}
		})
	}
}

// kats were computed with the reference implementation's command-line tool
// (Debian package argon2 0~20171227-0.3+deb12u1, from P-H-C/phc-winner-argon2):
//
//	printf '%s' PASSWORD | argon2 SALT -id -t T -k M -p P -l LEN -e
var kats = []struct {
	name, password, encoded string
	rehash                  bool // against DefaultParams
}{
	{"owasp-minimum", "correct horse battery staple",
		"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ISO7kkvFzh19GM8qB7patN3C3Y9HHsjlVTfEZ9T600Y", false},
	{"rfc9106-second-recommendation", "correct horse battery staple",
		"$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$mtB7vZKFuEQDVzeZe5lTtf3BPC1e5BL1UKy7IW/SpV0", false},
	{"unicode", "pässwörd ünïcödé 🔑",
		"$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$2bysVChSy6AtioCkQXS/G7INPgjjyCQ7wOGDT6XRVQo", false},
	{"64-byte-key", "x",
		"$argon2id$v=19$m=32768,t=4,p=2$c2FsdHNhbHRzYWx0c2FsdA$vdsJjVhRzEWGp4WMaI1DOL9T8++49xj1bJ7rWHx7v3/+Y0DkEmUBGjpmPeSyS8n2mLbpIoyg5eiNf+RXeaxqeQ", false},
	// Below the floor, memory not a multiple of 4×p, 8-byte salt, 16-byte
	// key: a legacy hash that must still verify, and then be replaced.
	{"legacy-weak", "legacy weak hash",
		"$argon2id$v=19$m=1000,t=3,p=3$TmFDbE5hQ2w$wOXkSg5OLeGfvwiczxVjnQ", true},
}

func TestKnownAnswers(t *testing.T) {
	h, err := NewHasher(DefaultParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, kat := range kats {
		t.Run("ok/"+kat.name, func(t *testing.T) {
			p, salt, key, err := ParsePHC(kat.encoded)
			if err != nil {
				t.Fatal(err)
			}
			// Recompute from the parts, independently of Verify.
			got := h.derive([]byte(kat.password), salt, p, p.KeyLen)
			if enc := encodePHC(p, salt, got); enc != kat.encoded {
				t.Fatalf("argon2id mismatch:\n got %s\nwant %s", enc, kat.encoded)
			}
			if string(got) != string(key) {
				t.Fatal("derived key differs from the stored key")
			}
			ok, rehash, err := h.Verify(t.Context(), kat.encoded, []byte(kat.password))
			if err != nil || !ok || rehash != kat.rehash {
				t.Fatalf("Verify = %v, %v, %v; want true, %v, nil", ok, rehash, err, kat.rehash)
			}
		})
		t.Run("fail/"+kat.name+"/wrong-password", func(t *testing.T) {
			ok, rehash, err := h.Verify(t.Context(), kat.encoded, []byte(kat.password+" "))
			if err != nil || ok || rehash {
				t.Fatalf("Verify = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

func TestParsePHC(t *testing.T) {
	const good = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ISO7kkvFzh19GM8qB7patN3C3Y9HHsjlVTfEZ9T600Y"
	const salt, key = "c29tZXNhbHRzb21lc2FsdA", "ISO7kkvFzh19GM8qB7patN3C3Y9HHsjlVTfEZ9T600Y"
	phc := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }

	t.Run("ok/fields", func(t *testing.T) {
		p, s, k, err := ParsePHC(good)
		if err != nil {
			t.Fatal(err)
		}
		want := Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
		if p != want || string(s) != "somesaltsomesalt" || len(k) != 32 {
			t.Fatalf("ParsePHC = %+v, %q, %d bytes", p, s, len(k))
		}
	})
	for name, s := range map[string]string{
		"ok/minimum-cost":  phc("m=8,t=1,p=1"),
		"ok/maximum-cost":  phc("m=1048576,t=16,p=16"),
		"ok/8-byte-salt":   "$argon2id$v=19$m=19456,t=2,p=1$TmFDbE5hQ2w$" + key,
		"ok/64-byte-key":   "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 85) + "Q",
		"ok/16-byte-key":   "$argon2id$v=19$m=1000,t=3,p=3$TmFDbE5hQ2w$wOXkSg5OLeGfvwiczxVjnQ",
		"ok/64-byte-salt":  "$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("A", 86) + "$" + key,
		"ok/own-encoding":  encodePHC(DefaultParams(), make([]byte, 16), make([]byte, 32)),
		"ok/kat-unicode":   kats[2].encoded,
		"ok/kat-4-threads": kats[1].encoded,
	} {
		t.Run(name, func(t *testing.T) {
			p, s2, k, err := ParsePHC(s)
			if err != nil {
				t.Fatal(err)
			}
			if enc := encodePHC(p, s2, k); enc != s {
				t.Fatalf("re-encoded as %s", enc)
			}
		})
	}

	fails := map[string]string{
		"empty":                "",
		"just-dollar":          "$",
		"argon2i":              strings.Replace(good, "argon2id", "argon2i", 1),
		"argon2d":              strings.Replace(good, "argon2id", "argon2d", 1),
		"bcrypt":               "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"uppercase-alg":        strings.Replace(good, "argon2id", "ARGON2ID", 1),
		"no-leading-dollar":    good[1:],
		"version-16":           strings.Replace(good, "v=19", "v=16", 1),
		"version-missing":      strings.Replace(good, "v=19$", "", 1),
		"version-leading-zero": strings.Replace(good, "v=19", "v=019", 1),
		"params-missing":       "$argon2id$v=19$" + salt + "$" + key,
		"params-reordered":     phc("t=2,m=19456,p=1"),
		"params-extra":         phc("m=19456,t=2,p=1,keyid=abc"),
		"params-data":          phc("m=19456,t=2,p=1,data=YWJj"),
		"params-two":           phc("m=19456,t=2"),
		"params-repeated":      phc("m=19456,m=19456,t=2"),
		"params-spaces":        phc("m=19456, t=2, p=1"),
		"params-empty-value":   phc("m=,t=2,p=1"),
		"m-leading-zero":       phc("m=019456,t=2,p=1"),
		"m-plus":               phc("m=+19456,t=2,p=1"),
		"m-negative":           phc("m=-1,t=2,p=1"),
		"m-hex":                phc("m=0x4c00,t=2,p=1"),
		"m-overflow-uint32":    phc("m=4294967296,t=2,p=1"),
		"m-4GiB":               phc("m=4194304,t=2,p=1"),
		"m-just-over-ceiling":  phc("m=1048577,t=2,p=1"),
		"m-zero":               phc("m=0,t=2,p=1"),
		"m-below-8-per-lane":   phc("m=15,t=1,p=2"),
		"t-zero":               phc("m=19456,t=0,p=1"),
		"t-absurd":             phc("m=19456,t=17,p=1"),
		"t-huge":               phc("m=19456,t=99999999999999999999,p=1"),
		"p-zero":               phc("m=19456,t=2,p=0"),
		"p-absurd":             phc("m=19456,t=2,p=17"),
		"p-wraps-uint8":        phc("m=19456,t=2,p=257"),
		"salt-missing":         "$argon2id$v=19$m=19456,t=2,p=1$$" + key,
		"salt-padded":          "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key,
		"salt-urlsafe":         "$argon2id$v=19$m=19456,t=2,p=1$" + "c29tZXNhbHRzb21lc2FsdA-_" + "$" + key,
		"salt-stray-bits":      "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdB$" + key,
		"salt-7-bytes":         "$argon2id$v=19$m=19456,t=2,p=1$TmFDbE5hQw$" + key,
		"salt-65-bytes":        "$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("A", 87) + "$" + key,
		"key-missing":          "$argon2id$v=19$m=19456,t=2,p=1$" + salt,
		"key-empty":            "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$",
		"key-15-bytes":         "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 20),
		"key-65-bytes":         "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 87),
		"key-not-base64":       "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("*", 43),
		"trailing-dollar":      good + "$",
		"trailing-newline":     good + "\n",
		"leading-space":        " " + good,
		"extra-field":          good + "$AAAA",
		"too-long":             good + strings.Repeat("A", 300),
		"nul":                  strings.Replace(good, "p=1", "p=1\x00", 1),
	}
	for name, s := range fails {
		t.Run("fail/"+name, func(t *testing.T) {
			p, salt, key, err := ParsePHC(s)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParsePHC = %+v, %v; want ErrMalformed", p, err)
			}
			if salt != nil || key != nil || p != (Params{}) {
				t.Fatal("returned values along with an error")
			}
			if s != "" && strings.Contains(err.Error(), s) {
				t.Fatal("error contains the stored hash")
			}
		})
	}
}

func FuzzParsePHC(f *testing.F) {
	for _, kat := range kats {
		f.Add(kat.encoded)
	}
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=019456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ISO7kkvFzh19GM8qB7patN3C3Y9HHsjlVTfEZ9T600Y")
	f.Add("$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := ParsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if enc := encodePHC(p, salt, key); enc != s {
			t.Fatalf("accepted %q but re-encodes as %q", s, enc)
		}
		if checkCost(p.Memory, p.Time, p.Threads) != nil || p.Memory > maxMemory {
			t.Fatalf("accepted out-of-bounds params %+v", p)
		}
	})
}
