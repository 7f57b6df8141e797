package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/vault"
)

func TestParseWindow(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"14d": 14 * 24 * time.Hour, "0d": 0, "36h": 36 * time.Hour, "90m": 90 * time.Minute, "3650d": 3650 * 24 * time.Hour,
	} {
		if got, err := api.ParseWindow("within", in, false); err != nil || got != want {
			t.Errorf("ok/ParseWindow(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "14 d", "1.5d", "99999999999d", "-3h", "soon", "3651d", "87601h"} {
		if _, err := api.ParseWindow("within", in, false); err == nil {
			t.Errorf("fail/ParseWindow(%q) accepted", in)
		}
	}
	// A positive window refuses zero, and the error names the parameter.
	for _, in := range []string{"0d", "0s"} {
		_, err := api.ParseWindow("expiring_within", in, true)
		if fe, ok := fault.As(err); !ok || fe.Code != "invalid_expiring_within" || !strings.Contains(fe.Message, "expiring_within must be") {
			t.Errorf("positive ParseWindow(%q) = %v", in, err)
		}
	}
}

// The within query is outside input: it is parsed or refused with the
// error shape's code, never a panic or a negative window.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"14d", "0d", "36h", "-1d", "1e9d", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := api.ParseWindow("within", s, false)
		if err != nil {
			if fe, ok := fault.As(err); !ok || fe.Code != "invalid_within" {
				t.Fatalf("ParseWindow(%q) error = %v", s, err)
			}
			return
		}
		if d < 0 || d > vault.MaxRotationWindow {
			t.Fatalf("ParseWindow(%q) = %v", s, d)
		}
	})
}
