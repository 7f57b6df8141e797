package mfa_test

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/custodia-project/custodia/internal/mfa"
)

// t0 is mid-step, so that ±15 s stays within the step.
var t0 = time.Date(2026, 3, 1, 12, 0, 15, 0, time.UTC)

func step(at time.Time) int64 { return at.Unix() / 30 }

// codeAt is what an authenticator app shows at time at.
func codeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newSecret(t testing.TB) string {
	t.Helper()
	e, err := mfa.NewTOTP("Custodia", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return string(e.Secret)
}

func TestVerifyTOTP(t *testing.T) {
	type tc struct {
		secret   string
		code     string
		now      time.Time
		lastStep int64
		want     error
		wantStep int64
	}
	// Each case makes its own secret, so no case can pass on another's code.
	tests := map[string]func(t *testing.T) tc{
		"ok/current step": func(t *testing.T) tc {
			s := newSecret(t)
			return tc{secret: s, code: codeAt(t, s, t0), now: t0, wantStep: step(t0)}
		},
		"ok/moved clock": func(t *testing.T) tc {
			s := newSecret(t)
			later := t0.Add(90 * 24 * time.Hour)
			return tc{secret: s, code: codeAt(t, s, later), now: later, lastStep: step(t0), wantStep: step(later)}
		},
		"ok/phone one step behind": func(t *testing.T) tc {
			s := newSecret(t)
			return tc{secret: s, code: codeAt(t, s, t0.Add(-30*time.Second)), now: t0, wantStep: step(t0) - 1}
		},
		"ok/phone one step ahead": func(t *testing.T) tc {
			s := newSecret(t)
			return tc{secret: s, code: codeAt(t, s, t0.Add(30*time.Second)), now: t0, wantStep: step(t0) + 1}
		},
		"ok/last second of the step before the window": func(t *testing.T) tc {
			s := newSecret(t)
			// now is at second 0 of its step: the code from 31 s ago is
			// from the previous step, still accepted.
			now := t0.Truncate(30 * time.Second)
			return tc{secret: s, code: codeAt(t, s, now.Add(-time.Second)), now: now, wantStep: step(now) - 1}
		},
		"ok/next step after the last used one": func(t *testing.T) tc {
			s := newSecret(t)
			return tc{secret: s, code: codeAt(t, s, t0), now: t0, lastStep: step(t0) - 1, wantStep: step(t0)}
		},
		"ok/code with spaces": func(t *testing.T) tc {
			s := newSecret(t)
			c := codeAt(t, s, t0)
			return tc{secret: s, code: " " + c[:3] + " \t" + c[3:] + " ", now: t0, wantStep: step(t0)}
		},
		"ok/lower-case secret": func(t *testing.T) tc {
			s := newSecret(t)
			return tc{secret: strings.ToLower(s), code: codeAt(t, s, t0), now: t0, wantStep: step(t0)}
		},
		"fail/phone two steps behind": func(t *testing.T) tc {
			s := newSecret(t)
			return tc{secret: s, code: codeAt(t, s, t0.Add(-60*time.Second)), now: t0, want: mfa.ErrInvalidCode}
		},
		"fail/phone two steps ahead": func(t *testing.T) tc {
			s := newSecret(t)
			return tc{secret: s, code: codeAt(t, s, t0.Add(60*time.Second)), now: t0, want: mfa.ErrInvalidCode}
		},
		"fail/replayed": func(t *testing.T) tc {
			s := newSecret(t)
			return tc{secret: s, code: codeAt(t, s, t0), now: t0, lastStep: step(t0), want: mfa.ErrReplayed}
		},
		"fail/replayed a few seconds later": func(t *testing.T) tc {
			s := newSecret(t)
			return tc{secret: s, code: codeAt(t, s, t0), now: t0.Add(20 * time.Second), lastStep: step(t0), want: mfa.ErrReplayed}
		},
		"fail/older than the last used step": func(t *testing.T) tc {
			s := newSecret(t)
			return tc{secret: s, code: codeAt(t, s, t0.Add(-30*time.Second)), now: t0, lastStep: step(t0), want: mfa.ErrReplayed}
		},
		"fail/another member's code": func(t *testing.T) tc {
			return tc{secret: newSecret(t), code: codeAt(t, newSecret(t), t0), now: t0, want: mfa.ErrInvalidCode}
		},
		"fail/wrong code": func(t *testing.T) tc {
			s := newSecret(t)
			c := []byte(codeAt(t, s, t0))
			c[5] = '0' + (c[5]-'0'+1)%10
			return tc{secret: s, code: string(c), now: t0, want: mfa.ErrInvalidCode}
		},
		"fail/five digits": func(t *testing.T) tc {
			return tc{secret: newSecret(t), code: "12345", now: t0, want: mfa.ErrInvalidCode}
		},
		"fail/seven digits": func(t *testing.T) tc {
			return tc{secret: newSecret(t), code: "1234567", now: t0, want: mfa.ErrInvalidCode}
		},
		"fail/empty": func(t *testing.T) tc { return tc{secret: newSecret(t), code: "", now: t0, want: mfa.ErrInvalidCode} },
		"fail/letters": func(t *testing.T) tc {
			return tc{secret: newSecret(t), code: "12345a", now: t0, want: mfa.ErrInvalidCode}
		},
		"fail/dash": func(t *testing.T) tc {
			return tc{secret: newSecret(t), code: "123-456", now: t0, want: mfa.ErrInvalidCode}
		},
		"fail/fullwidth": func(t *testing.T) tc {
			return tc{secret: newSecret(t), code: "１２３４５６", now: t0, want: mfa.ErrInvalidCode}
		},
		"fail/huge input": func(t *testing.T) tc {
			return tc{secret: newSecret(t), code: strings.Repeat(" ", 1<<20) + "123456", now: t0, want: mfa.ErrInvalidCode}
		},
		"fail/secret not base32": func(t *testing.T) tc {
			return tc{secret: "not base32!", code: "123456", now: t0, want: errBadSecret}
		},
		"fail/empty secret": func(t *testing.T) tc {
			// An empty HMAC key would make codes anyone can compute.
			return tc{secret: "", code: codeAt(t, "", t0), now: t0, want: errBadSecret}
		},
		"fail/short secret": func(t *testing.T) tc {
			s := "JBSWY3DPEHPK3PXP" // 10 bytes
			return tc{secret: s, code: codeAt(t, s, t0), now: t0, want: errBadSecret}
		},
	}
	for name, mk := range tests {
		t.Run(name, func(t *testing.T) {
			c := mk(t)
			got, err := mfa.VerifyTOTP(c.secret, c.code, c.now, c.lastStep)
			switch {
			case c.want == errBadSecret:
				if err == nil || errors.Is(err, mfa.ErrInvalidCode) || errors.Is(err, mfa.ErrReplayed) {
					t.Fatalf("err = %v, want a bad-secret error", err)
				}
				if c.secret != "" && strings.Contains(err.Error(), c.secret) {
					t.Fatalf("error reveals the secret: %v", err)
				}
			case c.want != nil:
				if !errors.Is(err, c.want) || got != 0 {
					t.Fatalf("VerifyTOTP = %d, %v; want %v", got, err, c.want)
				}
			default:
				if err != nil || got != c.wantStep {
					t.Fatalf("VerifyTOTP = %d, %v; want step %d", got, err, c.wantStep)
				}
			}
		})
	}
}

var errBadSecret = errors.New("test: bad secret")

// A member logging in twice within one step is refused the second time
// only because the caller passes back the stored step.
func TestVerifyTOTPSequence(t *testing.T) {
	s := newSecret(t)
	var last int64
	for i, at := range []time.Time{t0, t0.Add(30 * time.Second), t0.Add(31 * time.Minute)} {
		st, err := mfa.VerifyTOTP(s, codeAt(t, s, at), at, last)
		if err != nil || st != step(at) {
			t.Fatalf("login %d: step %d, %v", i, st, err)
		}
		if _, err := mfa.VerifyTOTP(s, codeAt(t, s, at), at.Add(10*time.Second), st); !errors.Is(err, mfa.ErrReplayed) {
			t.Fatalf("login %d replayed: %v", i, err)
		}
		last = st
	}
}

func TestNewTOTP(t *testing.T) {
	t.Run("ok/enrollment", func(t *testing.T) {
		e, err := mfa.NewTOTP("Custodia Vault", "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		key, err := otp.NewKeyFromURL(string(e.URL))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case len(e.Secret) != 32: // 20 bytes in base32
			t.Errorf("secret has %d characters", len(e.Secret))
		case key.Type() != "totp" || key.Issuer() != "Custodia Vault" || key.AccountName() != "ada@example.com":
			t.Errorf("URL %q: type %q issuer %q account %q", e.URL, key.Type(), key.Issuer(), key.AccountName())
		case key.Secret() != string(e.Secret) || key.Period() != 30 || key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1:
			t.Errorf("URL %q does not describe the enrollment", e.URL)
		case !strings.Contains(string(e.URL), "Custodia%20Vault"):
			t.Errorf("URL %q: spaces must be %%20 for Google Authenticator", e.URL)
		}
		// The URL the app scans must verify with the stored secret.
		if _, err := mfa.VerifyTOTP(string(e.Secret), codeAt(t, key.Secret(), t0), t0, 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ok/secrets are unique", func(t *testing.T) {
		seen := map[string]bool{}
		for range 100 {
			s := newSecret(t)
			if seen[s] {
				t.Fatal("repeated secret")
			}
			seen[s] = true
		}
	})
	t.Run("ok/redacted in logs", func(t *testing.T) {
		e, err := mfa.NewTOTP("Custodia", "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "%v %+v %s %#v %v\n", e, *e, e.Secret, e.URL, e.URL)
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "enrollment", e, "secret", e.Secret, "url", e.URL)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "enrollment", e, "secret", e.Secret, "url", e.URL)
		if strings.Contains(buf.String(), string(e.Secret)) || strings.Contains(buf.String(), "otpauth") {
			t.Fatalf("secret leaked: %s", buf.String())
		}
		if !strings.Contains(buf.String(), "[REDACTED]") {
			t.Fatalf("no redaction marker: %s", buf.String())
		}
	})
	t.Run("ok/QR code", func(t *testing.T) {
		e, _ := mfa.NewTOTP("Custodia", "ada@example.com")
		b, err := e.QRPNG(256)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if r := img.Bounds(); r.Dx() != 256 || r.Dy() != 256 {
			t.Fatalf("QR code is %v", r)
		}
	})
	for name, size := range map[string]int{"fail/QR code of size 0": 0, "fail/QR code too small to draw": 10, "fail/QR code too large": 1 << 20} {
		t.Run(name, func(t *testing.T) {
			e, _ := mfa.NewTOTP("Custodia", "ada@example.com")
			if _, err := e.QRPNG(size); err == nil {
				t.Fatal("no error")
			}
		})
	}
	for name, args := range map[string][2]string{
		"fail/no issuer":       {"", "ada@example.com"},
		"fail/no account":      {"Custodia", ""},
		"fail/colon in issuer": {"Custodia:EU", "ada@example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := mfa.NewTOTP(args[0], args[1]); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func BenchmarkVerifyTOTP(b *testing.B) {
	s := newSecret(b)
	code := codeAt(b, s, t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mfa.VerifyTOTP(s, code, t0, 0); err != nil {
			b.Fatal(err)
		}
	}
}
