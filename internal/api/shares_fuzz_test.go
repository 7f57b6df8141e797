package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/share"
	"github.com/custodia-project/custodia/internal/sharelinks"
)

func decodeCapped(body string, limit int64, v any) error {
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, limit)
	return Decode(r, v)
}

func mustBeClientError(t *testing.T, body string, err error) {
	t.Helper()
	pub := Public(err)
	if st := Status(pub.Kind); st/100 != 4 || pub.Kind == fault.Internal {
		t.Fatalf("body %q: error %v renders as %d", body, err, st)
	}
}

// FuzzShareOpenRequest: the public open route's body either decodes into
// an auth key or is a 4xx; the route's cap holds.
func FuzzShareOpenRequest(f *testing.F) {
	for _, s := range []string{`{"auth":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`, `{"auth":""}`, `{"auth":null}`, `{"auth":[1,2]}`,
		`{"auth":"!!"}`, `{"auth":"AA==","x":1}`, `{}`, `{"auth":"` + strings.Repeat("A", 2000) + `"}`, "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var in OpenShareRequest
		err := decodeCapped(body, maxShareOpenBody, &in)
		if err != nil {
			mustBeClientError(t, body, err)
			return
		}
		if len(body) > maxShareOpenBody || !json.Valid([]byte(body)) {
			t.Fatalf("accepted %d bytes of body %q", len(body), body)
		}
		if len(in.Auth) > maxShareOpenBody {
			t.Fatalf("auth of %d bytes from a capped body", len(in.Auth))
		}
	})
}

// FuzzShareCreateRequest: a create body either decodes and validates into
// a share the server can keep, or is refused with a 4xx.
func FuzzShareCreateRequest(f *testing.F) {
	p, _ := share.Prepare([]byte("seed"), "pass", share.MinIterations)
	good, _ := json.Marshal(sharelinks.CreateInput{Ciphertext: p.Envelope, Verifier: p.Verifier, KDF: p.KDF, MaxViews: 2, ExpiresIn: "1h", Label: "x"})
	for _, s := range []string{string(good), `{"ciphertext":"AQ==","verifier":"AA=="}`, `{"kdf":{"salt":"AA==","iterations":-1}}`,
		`{"max_views":1e9}`, `{"expires_in":"-1h"}`, `{"label":"\u0000"}`, `{"kdf":null,"ciphertext":[1]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var in sharelinks.CreateInput
		err := decodeCapped(body, maxShareCreateBody, &in)
		if err == nil {
			var ttl time.Duration
			if ttl, err = in.Validate(); err == nil {
				if share.CheckEnvelope(in.Ciphertext) != nil || len(in.Verifier) != 32 || in.KDF.Check() != nil ||
					in.MaxViews < 1 || in.MaxViews > sharelinks.MaxViews || ttl < sharelinks.MinTTL || ttl > sharelinks.MaxTTL {
					t.Fatalf("accepted %+v", in)
				}
				return
			}
		}
		mustBeClientError(t, body, err)
	})
}
