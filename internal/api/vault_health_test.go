package api_test

import (
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/fault"
)

func TestParseDays(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"14d": 14 * 24 * time.Hour, "0d": 0, "36h": 36 * time.Hour, "90m": 90 * time.Minute,
	} {
		if got, err := api.ParseDays(in); err != nil || got != want {
			t.Errorf("ok/ParseDays(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "14 d", "1.5d", "99999999999d", "-3h", "soon"} {
		if _, err := api.ParseDays(in); err == nil {
			t.Errorf("fail/ParseDays(%q) accepted", in)
		}
	}
}

// The within query is outside input: it is parsed or refused with the
// error shape's code, never a panic or a negative window.
func FuzzParseDays(f *testing.F) {
	for _, s := range []string{"14d", "0d", "36h", "-1d", "1e9d", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := api.ParseDays(s)
		if err != nil {
			if fe, ok := fault.As(err); !ok || fe.Code != "invalid_within" {
				t.Fatalf("ParseDays(%q) error = %v", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDays(%q) = %v", s, d)
		}
	})
}
