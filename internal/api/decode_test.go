package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/tenant"
)

func decode(body string, limit int64) error {
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, limit)
	var in tenant.CreateInput
	return api.Decode(r, &in)
}

func TestDecode(t *testing.T) {
	for name, c := range map[string]struct {
		body string
		ok   bool
	}{
		"ok/plain":           {`{"slug":"a","name":"b"}`, true},
		"ok/whitespace":      {" {\"slug\":\"a\"}\n\t ", true},
		"fail/unknown field": {`{"slug":"a","x":1}`, false},
		"fail/two objects":   {`{"slug":"a"}{"slug":"b"}`, false},
		"fail/wrong type":    {`{"slug":["a"]}`, false},
		"fail/truncated":     {`{"slug":"a`, false},
		"fail/empty":         {``, false},
		"fail/null then obj": {`null {}`, false},
		"fail/oversized":     {`{"slug":"` + strings.Repeat("a", 100) + `"}`, false},
	} {
		t.Run(name, func(t *testing.T) {
			err := decode(c.body, 64)
			if (err == nil) != c.ok {
				t.Fatalf("Decode = %v, want ok=%v", err, c.ok)
			}
			if err != nil && api.Status(api.Public(err).Kind)/100 != 4 {
				t.Fatalf("error %v maps to status %d, want 4xx", err, api.Status(api.Public(err).Kind))
			}
		})
	}
}

// FuzzDecode: whatever a client sends, Decode either accepts a single JSON
// object or returns an error that renders as a 4xx, never a panic or 5xx.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"slug":"a","name":"b"}`, `{"slug":1}`, `{`, `[]`, `{"slug":"a"} x`, "\x00", `{"name":"\ud800"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		err := decode(body, 4096)
		if err == nil {
			if !json.Valid([]byte(body)) {
				t.Fatalf("accepted invalid JSON %q", body)
			}
			return
		}
		pub := api.Public(err)
		if st := api.Status(pub.Kind); st/100 != 4 {
			t.Fatalf("body %q: error %v renders as %d", body, err, st)
		}
		if pub.Kind == fault.Internal {
			t.Fatalf("internal error for client input: %v", err)
		}
	})
}

func TestRenderHidesInternals(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	api.Render(w, r, discardLogger(), "rid1", errInternal{})
	if w.Code != 500 || strings.Contains(w.Body.String(), "pq:") || strings.Contains(w.Body.String(), "SELECT") {
		t.Fatalf("internal error rendered as %d %s", w.Code, w.Body)
	}
	var eb api.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error.Code != "internal" || eb.Error.RequestID != "rid1" {
		t.Fatalf("body %s", w.Body)
	}
}

type errInternal struct{}

func (errInternal) Error() string { return "pq: syntax error at SELECT secret FROM" }
