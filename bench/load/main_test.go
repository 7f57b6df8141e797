package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	tests := map[string]struct {
		url     string
		wantErr bool
	}{
		"ok/ipv4":                  {url: "https://127.0.0.1:8443/healthz"},
		"ok/ipv4-other-127":        {url: "http://127.8.9.10/"},
		"ok/ipv6":                  {url: "https://[::1]:8443/healthz"},
		"ok/ipv4-mapped-ipv6":      {url: "https://[::ffff:127.0.0.1]:8443/"},
		"ok/localhost":             {url: "https://localhost:8443/v1/secret/data/p{i}"},
		"ok/localhost-upper":       {url: "http://LOCALHOST/"},
		"fail/private":             {url: "https://10.0.0.1:8443/healthz", wantErr: true},
		"fail/unspecified":         {url: "https://0.0.0.0:8443/", wantErr: true},
		"fail/public-name":         {url: "https://example.com/", wantErr: true},
		"fail/localhost-lookalike": {url: "https://localhost.example.com/", wantErr: true},
		"fail/ipv6-public":         {url: "https://[2001:db8::1]/", wantErr: true},
		"fail/placeholder-host":    {url: "https://127.0.0.{i}/", wantErr: true},
		"fail/scheme":              {url: "ftp://127.0.0.1/", wantErr: true},
		"fail/no-scheme":           {url: "127.0.0.1:8443/healthz", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkLoopback(tc.url)
			if (err != nil) != tc.wantErr {
				t.Fatalf("checkLoopback(%q) = %v, want error %v", tc.url, err, tc.wantErr)
			}
		})
	}
}

func TestDialLoopbackOnly(t *testing.T) {
	tests := map[string]struct {
		addr    string
		wantErr bool
	}{
		"ok/ipv4":              {addr: "127.0.0.1:443"},
		"ok/ipv6":              {addr: "[::1]:443"},
		"fail/private":         {addr: "192.168.1.1:443", wantErr: true},
		"fail/unresolved-name": {addr: "localhost:443", wantErr: true}, // the hook sees resolved addresses only
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := dialLoopbackOnly("tcp", tc.addr, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("dialLoopbackOnly(%q) = %v, want error %v", tc.addr, err, tc.wantErr)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		d := make([]time.Duration, len(n))
		for i, v := range n {
			d[i] = time.Duration(v) * time.Millisecond
		}
		return d
	}
	upTo := func(n int) []time.Duration {
		d := make([]time.Duration, n)
		for i := range d {
			d[i] = time.Duration(i+1) * time.Millisecond
		}
		return d
	}
	hundred, thousand := upTo(100), upTo(1000)
	tests := map[string]struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		"ok/empty":         {sorted: nil, p: 99, want: 0},
		"ok/one":           {sorted: ms(7), p: 50, want: 7 * time.Millisecond},
		"ok/p50-of-4":      {sorted: ms(1, 2, 3, 4), p: 50, want: 2 * time.Millisecond},
		"ok/p51-of-4":      {sorted: ms(1, 2, 3, 4), p: 51, want: 3 * time.Millisecond},
		"ok/max":           {sorted: ms(1, 2, 3, 4), p: 100, want: 4 * time.Millisecond},
		"ok/p90-of-100":    {sorted: hundred, p: 90, want: 90 * time.Millisecond},
		"ok/p99-of-100":    {sorted: hundred, p: 99, want: 99 * time.Millisecond},
		"ok/p99.9-of-100":  {sorted: hundred, p: 99.9, want: 100 * time.Millisecond},
		"ok/p99.9-of-1000": {sorted: thousand, p: 99.9, want: 999 * time.Millisecond},
		"ok/p90-of-1000":   {sorted: thousand, p: 90, want: 900 * time.Millisecond},
		"ok/tiny-p":        {sorted: hundred, p: 0.001, want: 1 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Fatalf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

// tlsTarget starts a TLS test server and writes its certificate where
// -cacert can read it.
func tlsTarget(t *testing.T, h http.HandlerFunc) (*httptest.Server, string) {
	t.Helper()
	ts := httptest.NewTLSServer(h)
	t.Cleanup(ts.Close)
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(certFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return ts, certFile
}

func TestRun(t *testing.T) {
	t.Run("ok/n50-paths", func(t *testing.T) {
		var (
			mu    sync.Mutex
			paths = map[string]int{}
			auth  = map[string]int{}
		)
		ts, certFile := tlsTarget(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			paths[r.URL.Path]++
			auth[r.Header.Get("Authorization")]++
			mu.Unlock()
			w.Write([]byte(`{"status":"ok"}`))
		})
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{
			"-url", ts.URL + "/v1/secret/data/p{i}", "-paths", "5",
			"-header", "Authorization: Bearer t0ken",
			"-cacert", certFile, "-c", "4", "-n", "50", "-warmup", "0", "-json",
		}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("exit %d, stderr: %s", code, stderr.String())
		}
		var rep report
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("output is not one JSON object: %v\n%s", err, stdout.String())
		}
		if rep.Requests != 50 || rep.Status[200] != 50 || rep.Errors != 0 {
			t.Fatalf("requests %d, status %v, errors %d; want 50 OK", rep.Requests, rep.Status, rep.Errors)
		}
		if rep.Protocol != "HTTP/1.1" {
			t.Errorf("protocol %q, want HTTP/1.1", rep.Protocol)
		}
		l := rep.LatencyMS
		if l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
			t.Errorf("latencies not positive and ordered: %+v", l)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(paths) != 5 || paths["/v1/secret/data/p0"] != 10 || paths["/v1/secret/data/p4"] != 10 {
			t.Errorf("paths seen %v, want p0..p4 ten times each", paths)
		}
		if auth["Bearer t0ken"] != 50 {
			t.Errorf("Authorization headers seen %v", auth)
		}
	})

	t.Run("ok/h2-text", func(t *testing.T) {
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		ts.EnableHTTP2 = true
		ts.StartTLS()
		t.Cleanup(ts.Close)
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{
			"-url", ts.URL, "-insecure", "-h2", "-n", "10", "-warmup", "0",
		}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("exit %d, stderr: %s", code, stderr.String())
		}
		if out := stdout.String(); !strings.Contains(out, "HTTP/2.0") || !strings.Contains(out, "200: 10") {
			t.Errorf("output does not show 10 HTTP/2 OKs:\n%s", out)
		}
		if !strings.Contains(stderr.String(), "WARNING") {
			t.Errorf("-insecure printed no warning")
		}
	})

	t.Run("fail/all-500", func(t *testing.T) {
		ts, certFile := tlsTarget(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
		})
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{
			"-url", ts.URL, "-cacert", certFile, "-n", "10", "-warmup", "0",
		}, &stdout, &stderr)
		if code != 1 {
			t.Fatalf("exit %d, want 1; stdout: %s", code, stdout.String())
		}
	})

	t.Run("fail/untrusted-cert", func(t *testing.T) {
		ts, _ := tlsTarget(t, func(w http.ResponseWriter, r *http.Request) {})
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"-url", ts.URL, "-n", "5", "-warmup", "0", "-json"}, &stdout, &stderr)
		var rep report
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		if code != 1 || rep.Errors != 5 || !strings.Contains(rep.ErrorSample, "certificate") {
			t.Fatalf("exit %d, errors %d (%s); want 1 and 5 certificate errors", code, rep.Errors, rep.ErrorSample)
		}
	})

	t.Run("fail/usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"-url", "https://10.1.2.3/"},
			{"-url", "https://127.0.0.1/p{i}"},             // {i} without -paths
			{"-url", "https://127.0.0.1/", "-paths", "10"}, // -paths without {i}
			{"-url", "https://127.0.0.1/", "-c", "0"},
			{"-url", "https://127.0.0.1/", "-header", "NoColon"},
			{},
		} {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
				t.Errorf("%q: exit %d, want 2", args, code)
			}
		}
	})
}
