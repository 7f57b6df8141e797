package api_test

import (
	"encoding/json"
	"testing"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/fault"
)

// A renewal's increment is read as Vault reads it: seconds as a number or
// a string, or a duration string.
func TestVaultIncrement(t *testing.T) {
	for in, want := range map[string]int64{
		`{"increment":600}`: 600, `{"increment":"600"}`: 600, `{"increment":"10m"}`: 600, `{"increment":"1h30m"}`: 5400,
		`{"increment":"1.5s"}`: 1, `{"increment":"0s"}`: 0, `{"increment":0}`: 0, `{"increment":""}`: 0, `{"increment":null}`: 0, `{}`: 0,
		`{"increment":" 7200 "}`: 7200,
	} {
		var l api.VaultLease
		if err := json.Unmarshal([]byte(in), &l); err != nil || int64(l.Increment) != want {
			t.Errorf("%s: %d, %v; want %d", in, l.Increment, err, want)
		}
	}
	for _, in := range []string{`{"increment":-1}`, `{"increment":"-5m"}`, `{"increment":1.5}`, `{"increment":"soon"}`,
		`{"increment":true}`, `{"increment":[1]}`, `{"increment":99999999999999999999}`, `{"increment":"876001h"}`, `{"increment":"0.5s"}`} {
		var l api.VaultLease
		err := json.Unmarshal([]byte(in), &l)
		if fe, ok := fault.As(err); !ok || fe.Code != "invalid_increment" {
			t.Errorf("%s: %v, want invalid_increment", in, err)
		}
	}
}

// The increment is outside input: parsed to whole, non-negative seconds
// or refused with its code, never a panic.
func FuzzVaultIncrement(f *testing.F) {
	for _, s := range []string{`600`, `"600"`, `"10m"`, `-1`, `"9223372036854775807ns"`, `1e3`, `"\u0031h"`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var v api.VaultIncrement
		err := v.UnmarshalJSON([]byte(raw))
		if err != nil {
			if fe, ok := fault.As(err); !ok || fe.Code != "invalid_increment" {
				t.Fatalf("%q: error %v", raw, err)
			}
			return
		}
		if v < 0 {
			t.Fatalf("%q: negative increment %d", raw, v)
		}
	})
}
