package sso

import (
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/custodia-project/custodia/internal/fault"
)

var knownCodes = map[string]bool{
	CodeAccessDenied: true, CodeUnavailable: true, CodeProviderError: true,
	CodeInvalidCallback: true, CodeIssuerMismatch: true,
}

// FuzzParseCallback feeds the redirect's query, which the browser controls.
func FuzzParseCallback(f *testing.F) {
	for _, s := range []string{
		"state=abc&code=xyz",
		"state=abc&code=xyz&iss=https%3A%2F%2Fidp.example.com",
		"error=access_denied&error_description=The+user+said+no&state=abc",
		"error=server_error",
		"error=%0Ainjected%0Alog+line&error_description=%ff%fe",
		"code=a&code=b",
		"iss=https%3A%2F%2Fevil.example&code=a&state=b",
		"",
	} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, issParam bool) {
		p := &Provider{issuer: "https://idp.example.com", issParam: issParam}
		q, _ := url.ParseQuery(raw) // keeps what parsed, like net/http
		state, code, err := p.ParseCallback(q)
		if err == nil {
			if code == "" || code != q.Get("code") || state != q.Get("state") || q.Get("error") != "" {
				t.Fatalf("ParseCallback(%q) = %q, %q, nil", raw, state, code)
			}
			return
		}
		checkFault(t, err)
	})
}

func FuzzFinishError(f *testing.F) {
	f.Add("access_denied", "cancelled")
	f.Add("temporarily_unavailable", "")
	f.Add("x\r\ny", strings.Repeat("\u2028", 500))
	f.Fuzz(func(t *testing.T, code, desc string) {
		checkFault(t, FinishError(code, desc))
	})
}

// checkFault asserts what every callback failure promises: a known code, a
// fixed message, and a cause that fits on one bounded log line.
func checkFault(t *testing.T, err error) {
	t.Helper()
	fe, ok := fault.As(err)
	if !ok {
		t.Fatalf("error %v is not a *fault.Error", err)
	}
	if !knownCodes[fe.Code] {
		t.Fatalf("unexpected code %q", fe.Code)
	}
	full := err.Error()
	if strings.ContainsFunc(full, func(r rune) bool { return r > unicode.MaxASCII || unicode.IsControl(r) }) {
		t.Fatalf("error %q is not printable ASCII on one line", full)
	}
	if len(full) > 4096 {
		t.Fatalf("error is %d bytes", len(full))
	}
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"Alice@Example.COM", " a@b ", "a@b@c", "@b", "a@", "a b@c", "a@\u0130.com", "\u023a@\u023a", "a@b\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeEmail(s)
		if err != nil {
			if _, ok := fault.As(err); !ok {
				t.Fatalf("error %v is not a *fault.Error", err)
			}
			return
		}
		if strings.Count(n, "@") != 1 || strings.ContainsFunc(n, unicode.IsSpace) || len(n) > maxEmailLen {
			t.Fatalf("NormalizeEmail(%q) = %q", s, n)
		}
		local, domain, _ := strings.Cut(n, "@")
		if local == "" || domain == "" || domain != strings.ToLower(domain) {
			t.Fatalf("NormalizeEmail(%q) = %q", s, n)
		}
		if again, err := NormalizeEmail(n); err != nil || again != n {
			t.Fatalf("NormalizeEmail is not idempotent: %q -> %q -> %q, %v", s, n, again, err)
		}
	})
}

func TestNormalizeEmail(t *testing.T) {
	tests := map[string]string{
		"ok/lowercases the domain only": "Alice@Example.COM",
		"ok/trims":                      "  bob@example.com\n",
		"fail/no at":                    "alice.example.com",
		"fail/two ats":                  "a@b@example.com",
		"fail/no local part":            "@example.com",
		"fail/no domain":                "alice@",
		"fail/inner space":              "al ice@example.com",
		"fail/display name":             "Alice <alice@example.com>",
		"fail/control":                  "alice@exa\x00mple.com",
		"fail/too long":                 strings.Repeat("a", 250) + "@b.com",
		"fail/invalid UTF-8":            "al\xffice@example.com",
	}
	want := map[string]string{
		"ok/lowercases the domain only": "Alice@example.com",
		"ok/trims":                      "bob@example.com",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := NormalizeEmail(in)
			if strings.HasPrefix(name, "ok/") {
				if err != nil || got != want[name] {
					t.Fatalf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want[name])
				}
				return
			}
			if fe, ok := fault.As(err); !ok || fe.Code != "invalid_email" {
				t.Fatalf("NormalizeEmail(%q) = %q, %v; want an invalid_email fault", in, got, err)
			}
		})
	}
}
