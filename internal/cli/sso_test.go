package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/sso/ssotest"
)

// TestSingleSignOnCommandLine drives single sign-on end to end through the
// command line: a real server (in-process, on loopback) that trusts a
// private OpenID provider through --sso-ca-file (on the operator's own
// network, here loopback, so --sso-allow-private-networks), the owner
// configuring SSO with "policy set", and "login --sso" fed the address a
// browser lands on.
func TestSingleSignOnCommandLine(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short outside CI: skips starting a server and an OpenID provider")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	const callback = "https://vault.example.com/api/v1/auth/sso/callback"
	op := ssotest.Start(t, callback)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "idp-ca.pem")
	idpCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: op.Server.Certificate().Raw})
	if err := os.WriteFile(caFile, idpCert, 0o600); err != nil {
		t.Fatal(err)
	}
	v := startServer(ctx, t, filepath.Join(dir, "data"), "--sso-ca-file", caFile, "--sso-allow-private-networks")

	// The operator makes a tenant; its owner accepts and signs in.
	v.token = v.readFile(t, "dev-operator-token")
	v.ok(t, "", "tenant", "create", "--slug", "acme", "--name", "ACME")
	invite := v.capture(t, `Invitation token: (\S+)`, v.ok(t, "", "tenant", "invite-owner", "acme", "--email", "olga@acme.example"))
	v.ok(t, "owner-password-1234\n", "member", "accept", invite, "--password-stdin")
	v.token = strings.TrimSpace(v.ok(t, "owner-password-1234\n", "login", "--tenant", "acme", "--email", "olga@acme.example", "--password-stdin"))

	// Turning SSO on needs the provider's issuer, the client and the
	// callback; the secret comes from stdin and is never shown.
	if r := v.run(ctx, "", "policy", "set", "--tenant", "acme", "--sso-client-id", op.ClientID); r.code != ExitUsage || !strings.Contains(r.stderr, "--sso-issuer") {
		t.Errorf("policy set with only a client ID while SSO is off: exit %d\n%s", r.code, r.stderr)
	}
	if r := v.run(ctx, "", "policy", "set", "--tenant", "acme", "--sso-off", "--sso-jit"); r.code != ExitUsage {
		t.Errorf("policy set --sso-off --sso-jit: exit %d, want %d", r.code, ExitUsage)
	}
	out := v.ok(t, op.ClientSecret+"\n", "policy", "set", "--tenant", "acme", "--sso-issuer", op.Issuer, "--sso-client-id", op.ClientID,
		"--sso-redirect-url", callback, "--sso-jit", "--sso-client-secret-stdin")
	for _, want := range []string{"SSO issuer: +" + regexp.QuoteMeta(op.Issuer), "SSO client ID: +custodia", "SSO JIT members: +yes", "SSO default role: +member", "SSO only: +no"} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("policy set output lacks %q:\n%s", want, out)
		}
	}
	// Only the given fields change.
	out = v.ok(t, "", "policy", "set", "--tenant", "acme", "--approvals", "1")
	if !strings.Contains(out, "SSO JIT members:") || !strings.Contains(out, "SSO redirect URL:") {
		t.Errorf("another field's change dropped the SSO settings:\n%s", out)
	}
	for _, args := range [][]string{{"policy", "show", "--tenant", "acme"}, {"policy", "show", "--tenant", "acme", "-o", "json"}} {
		if out := v.ok(t, "", args...); strings.Contains(out, op.ClientSecret) {
			t.Errorf("%s shows the client secret:\n%s", strings.Join(args, " "), out)
		}
	}

	// The browser lands on the server's callback first, without the state
	// cookie: refused, pointing at the command, and the code is not spent.
	// The person pastes the address; the command finishes the sign-in.
	landed := false
	r := v.ssoLogin(ctx, t, func(authURL string) (string, error) {
		u, err := op.Authorize(ctx, op.Browser(), authURL, ssotest.Alice.Username, ssotest.Alice.Password)
		if err != nil {
			return "", err
		}
		status, body, err := v.browse(ctx, u)
		if err != nil {
			return "", err
		}
		if status != http.StatusUnauthorized || !strings.Contains(body, "custodia login --sso") {
			return "", fmt.Errorf("the browser landing on the callback: %d %s", status, body)
		}
		landed = true
		return u.String(), nil
	})
	if r.code != ExitOK || !landed {
		t.Fatalf("login --sso: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, op.Issuer) || !strings.Contains(r.stderr, "paste it here") || !strings.Contains(r.stderr, "Signed in as mem_") {
		t.Errorf("login --sso stderr:\n%s", r.stderr)
	}
	session := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(session, "cust_") || strings.ContainsAny(session, " \n") {
		t.Fatalf("login --sso stdout = %q, want the session token alone", r.stdout)
	}
	owner := v.token
	v.token = session
	me := v.ok(t, "", "whoami")
	if !regexp.MustCompile(`Role: +member`).MatchString(me) || !regexp.MustCompile(`Kind: +member`).MatchString(me) {
		t.Errorf("whoami with the SSO session:\n%s", me)
	}
	v.token = owner
	if out := v.ok(t, "", "member", "show", strings.ToLower(ssotest.Alice.Email), "--tenant", "acme"); !regexp.MustCompile(`SSO: +yes`).MatchString(out) {
		t.Errorf("the JIT member:\n%s", out)
	}

	for name, tc := range map[string]struct {
		paste    func(u *url.URL) string
		wantCode int
		want     string
	}{
		"fail/wrong state": {func(u *url.URL) string {
			q := u.Query()
			q.Set("state", "not-the-state")
			u.RawQuery = q.Encode()
			return u.String()
		}, ExitAuth, "another sign-in"},
		"fail/provider error": {func(*url.URL) string {
			return callback + "?error=access_denied&error_description=the+user+said+no"
		}, ExitAuth, "the user said no"},
		"fail/no code": {func(*url.URL) string { return callback }, ExitUsage, "no code"},
	} {
		t.Run(name, func(t *testing.T) {
			r := v.ssoLogin(ctx, t, func(authURL string) (string, error) {
				u, err := op.Authorize(ctx, op.Browser(), authURL, ssotest.Alice.Username, ssotest.Alice.Password)
				if err != nil {
					return "", err
				}
				return tc.paste(u), nil
			})
			if r.code != tc.wantCode || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want %d mentioning %q\nstdout: %s\nstderr: %s", r.code, tc.wantCode, tc.want, r.stdout, r.stderr)
			}
		})
	}

	// --sso is a sign-in without a password.
	if r := v.run(ctx, "", "login", "--sso", "--tenant", "acme", "--email", "x@acme.example"); r.code != ExitUsage {
		t.Errorf("login --sso --email: exit %d, want %d", r.code, ExitUsage)
	}

	// Off again: the policy says so and sign-in is refused.
	if out := v.ok(t, "", "policy", "set", "--tenant", "acme", "--sso-off"); !regexp.MustCompile(`SSO: +off`).MatchString(out) {
		t.Errorf("policy set --sso-off:\n%s", out)
	}
	if r := v.run(ctx, "", "login", "--sso", "--tenant", "acme"); r.code == ExitOK || !strings.Contains(r.stderr, "single sign-on") {
		t.Errorf("login --sso with SSO off: exit %d\n%s", r.code, r.stderr)
	}
}

// vault is a server started in-process and the environment of the commands
// run against it.
type vault struct {
	addr, data, token string
	ca                *x509.CertPool
}

type result struct {
	code           int
	stdout, stderr string
}

// startServer runs "custodia server --dev" in-process on a loopback port
// until the test ends, and waits until it is ready.
func startServer(ctx context.Context, t *testing.T, data string, args ...string) *vault {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	sctx, stop := context.WithCancel(ctx)
	logs := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		args := append([]string{"server", "--dev", "--data", data, "--listen", addr, "--log-format", "text"}, args...)
		done <- Run(sctx, args, &env{stdin: strings.NewReader(""), stdout: logs, stderr: logs, getenv: func(string) string { return "" }})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the server did not stop")
		}
		if t.Failed() {
			t.Logf("server output:\n%s", logs.String())
		}
	})

	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for {
		select {
		case code := <-done:
			t.Fatalf("the server stopped (exit %d):\n%s", code, logs.String())
		case <-ctx.Done():
			t.Fatalf("the server was not ready in time:\n%s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		res, err := probe.Get("https://" + addr + "/readyz")
		if err != nil {
			continue
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			break
		}
	}
	v := &vault{addr: "https://" + addr, data: data, ca: x509.NewCertPool()}
	if !v.ca.AppendCertsFromPEM([]byte(v.readFile(t, "tls/cert.pem"))) {
		t.Fatal("no server certificate in the data directory")
	}
	return v
}

// startTenant starts a server (skipped under -short outside CI) with the
// tenant acme whose owner olga@acme.example is signed in: v.token is her
// session; operator is the operator's token.
func startTenant(t *testing.T) (v *vault, operator string) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short outside CI: skips starting a server")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	v = startServer(ctx, t, filepath.Join(t.TempDir(), "data"))
	operator = v.readFile(t, "dev-operator-token")
	v.token = operator
	v.ok(t, "", "tenant", "create", "--slug", "acme", "--name", "ACME")
	invite := v.capture(t, `Invitation token: (\S+)`, v.ok(t, "", "tenant", "invite-owner", "acme", "--email", "olga@acme.example"))
	v.ok(t, "owner-password-1234\n", "member", "accept", invite, "--password-stdin")
	v.token = strings.TrimSpace(v.ok(t, "owner-password-1234\n", "login", "--tenant", "acme", "--email", "olga@acme.example", "--password-stdin"))
	return v, operator
}

func (v *vault) readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(v.data, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (v *vault) getenv(k string) string {
	switch k {
	case "CUSTODIA_ADDR":
		return v.addr
	case "CUSTODIA_CA_CERT":
		return filepath.Join(v.data, "tls", "cert.pem")
	case "CUSTODIA_TOKEN":
		return v.token
	}
	return ""
}

// run runs one command with stdin.
func (v *vault) run(ctx context.Context, stdin string, args ...string) result {
	var out, errOut bytes.Buffer
	code := Run(ctx, args, &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: v.getenv})
	return result{code, out.String(), errOut.String()}
}

// ok runs one command that must succeed and returns its stdout.
func (v *vault) ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := v.run(t.Context(), stdin, args...)
	if r.code != ExitOK {
		t.Fatalf("custodia %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (v *vault) capture(t *testing.T, re, out string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%q not in:\n%s", re, out)
	}
	return m[1]
}

// browse plays the browser following the provider's redirect: it opens u's
// path and query on this server (u names the public host the provider
// knows), without any cookie of this server.
func (v *vault) browse(ctx context.Context, u *url.URL) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.addr+u.Path+"?"+u.RawQuery, nil)
	if err != nil {
		return 0, "", err
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: v.ca}}}
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// ssoLogin runs "login --sso --tenant acme". Once the command has printed
// the provider's address on stderr, paste is called with it (in another
// goroutine) and its answer is written to the command's stdin as one line.
func (v *vault) ssoLogin(ctx context.Context, t *testing.T, paste func(authURL string) (string, error)) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stdin, typed := io.Pipe()
	watch := &watchWriter{re: regexp.MustCompile(`https://127\.0\.0\.1:\d+/\S*authorize\S*`), found: make(chan string, 1)}
	var pasteErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case authURL := <-watch.found:
			line, err := paste(authURL)
			if err != nil {
				pasteErr = err
				typed.CloseWithError(err)
				return
			}
			_, _ = io.WriteString(typed, line+"\n")
		case <-ctx.Done():
			pasteErr = errors.New("the command printed no provider address")
		}
	})
	var out bytes.Buffer
	code := Run(ctx, []string{"login", "--sso", "--tenant", "acme"}, &env{stdin: stdin, stdout: &out, stderr: watch, getenv: v.getenv})
	cancel()      // a command that printed no address stops the wait
	stdin.Close() // a command that returned without reading unblocks the paste
	wg.Wait()
	if pasteErr != nil {
		t.Fatalf("pasting: %v\nstderr: %s", pasteErr, watch.String())
	}
	return result{code, out.String(), watch.String()}
}

// watchWriter keeps what is written and sends the first match of re on
// found.
type watchWriter struct {
	lockedBuffer
	re    *regexp.Regexp
	found chan string
	sent  bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if m := w.re.Find(w.buf.Bytes()); m != nil {
			w.sent = true
			w.found <- string(m)
		}
	}
	return len(p), nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
