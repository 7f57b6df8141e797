package client_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"

	"github.com/custodia-project/custodia/internal/client"
)

// TestJar checks that a client given a jar sends back the cookies the
// server set (single sign-on binds its state this way), and that one
// without a jar keeps none.
func TestJar(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "__Host-state", Value: "s1", Path: "/", Secure: true, HttpOnly: true})
			w.WriteHeader(http.StatusNoContent)
			return
		}
		c, err := r.Cookie("__Host-state")
		if err != nil {
			http.Error(w, `{"error":{"code":"no_cookie","message":"no cookie"}}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"state":"` + c.Value + `"}`))
	}))
	defer srv.Close()

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		jar  http.CookieJar
		want string
	}{
		"ok/jar":      {jar, "s1"},
		"fail/no jar": {nil, ""},
	} {
		t.Run(name, func(t *testing.T) {
			cl, err := client.New(client.Options{Addr: srv.URL, InsecureSkipVerify: true, Jar: tc.jar})
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.Do(t.Context(), http.MethodGet, "/set", nil, nil, nil); err != nil {
				t.Fatal(err)
			}
			var out struct{ State string }
			err = cl.Do(t.Context(), http.MethodGet, "/get", nil, nil, &out)
			if out.State != tc.want || (tc.want == "") != (err != nil) {
				t.Errorf("state = %q, err = %v; want %q", out.State, err, tc.want)
			}
		})
	}
}
