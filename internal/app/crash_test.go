package app_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/store"
)

// TestCrashRecovery kills a real server process (SIGKILL, no shutdown) in
// the middle of a write load and restarts it on the same data directory:
// every write it acknowledged must still be there, with its audit entry,
// and the operator audit log must still verify.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short outside CI: skips building and running the server binary")
	}
	bin := buildCustodia(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()

	srv := startCustodia(t, ctx, bin, dir)
	tok, err := os.ReadFile(filepath.Join(dir, "dev-operator-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))

	// The load: 8 writers create tenants until the server dies, or the
	// caps stop them.
	const (
		writers   = 8
		killAfter = 300 // acknowledged creates
		killAt    = 3 * time.Second
		maxTries  = 5000
	)
	var (
		mu    sync.Mutex
		acked = map[string]string{} // slug -> tenant ID
		next  atomic.Int64
		n     atomic.Int64 // acknowledged
		other atomic.Int64 // answered, but not 201
	)
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > maxTries || ctx.Err() != nil {
					return
				}
				slug := fmt.Sprintf("t-%d", i)
				r, err := srv.do(ctx, "POST", "/api/v1/tenants", token, map[string]string{"slug": slug, "name": "x"})
				if err != nil {
					select {
					case <-killed:
						return // the server is gone: expected
					default:
						t.Errorf("create %s before the kill: %v", slug, err)
						return
					}
				}
				if r.status != http.StatusCreated {
					other.Add(1)
					continue
				}
				var tv struct{ ID, Slug string }
				if err := json.Unmarshal(r.body, &tv); err != nil || tv.ID == "" || tv.Slug != slug {
					t.Errorf("create %s: %d %s", slug, r.status, r.body)
					continue
				}
				mu.Lock()
				acked[slug] = tv.ID
				mu.Unlock()
				n.Add(1)
			}
		})
	}
	start := time.Now()
	for n.Load() < killAfter && time.Since(start) < killAt && next.Load() < maxTries {
		time.Sleep(5 * time.Millisecond)
	}
	close(killed)
	srv.kill()
	wg.Wait()
	mu.Lock()
	t.Logf("killed after %v: %d creates acknowledged, %d refused, %d attempted", time.Since(start).Round(time.Millisecond), len(acked), other.Load(), min(next.Load(), maxTries))
	mu.Unlock()
	if len(acked) == 0 {
		t.Fatalf("no create was acknowledged before the kill; server log:\n%s", srv.log())
	}
	if other.Load() > 0 {
		t.Errorf("%d creates answered with something other than 201", other.Load())
	}

	srv = startCustodia(t, ctx, bin, dir)
	for slug, id := range acked {
		r, err := srv.do(ctx, "GET", "/api/v1/tenants/"+slug, token, nil)
		if err != nil {
			t.Fatal(err)
		}
		var tv struct{ ID string }
		if r.status != http.StatusOK || json.Unmarshal(r.body, &tv) != nil || tv.ID != id {
			t.Errorf("acknowledged tenant %s (%s) after the crash: %d %s", slug, id, r.status, r.body)
		}
	}

	// Every tenant that exists, acknowledged or not, committed with its
	// audit entry, and the log verifies.
	var tenants []string
	for after := ""; ; {
		r, err := srv.do(ctx, "GET", "/api/v1/tenants?limit=1000&after="+after, token, nil)
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("list tenants: %v %d %s", err, r.status, r.body)
		}
		var tl struct {
			Tenants []struct{ ID string }
			Next    string
		}
		if err := json.Unmarshal(r.body, &tl); err != nil {
			t.Fatal(err)
		}
		for _, tv := range tl.Tenants {
			tenants = append(tenants, tv.ID)
		}
		if tl.Next == "" {
			break
		}
		after = tl.Next
	}
	r, err := srv.do(ctx, "GET", "/api/v1/audit/public-key", token, nil)
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("public key: %v %d %s", err, r.status, r.body)
	}
	var pk struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal(r.body, &pk); err != nil {
		t.Fatal(err)
	}
	r, err = srv.do(ctx, "GET", "/api/v1/audit/"+store.OperatorLog+"/export", token, nil)
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("export: %v %d %.300s", err, r.status, r.body)
	}
	rep, err := audit.Verify(bytes.NewReader(r.body), pk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Uncovered != 0 || rep.Entries != rep.Size {
		t.Fatalf("the operator log does not verify after the crash: %+v", rep)
	}
	created := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var ln audit.ExportLine
		if json.Unmarshal(sc.Bytes(), &ln) == nil && ln.Entry != nil && ln.Entry.Action == "tenant.create" {
			created[ln.Entry.Target]++
		}
	}
	for slug, id := range acked {
		if created[id] != 1 {
			t.Errorf("acknowledged tenant %s (%s) has %d tenant.create entries", slug, id, created[id])
		}
	}
	if len(created) != len(tenants) {
		t.Errorf("%d tenants exist but %d have a tenant.create entry", len(tenants), len(created))
	}
	for _, id := range tenants {
		if created[id] != 1 {
			t.Errorf("tenant %s exists with %d tenant.create entries", id, created[id])
		}
	}
	// A few tenant logs verify too (each holds its tenant.create).
	checked := 0
	for slug, id := range acked {
		if checked == 3 {
			break
		}
		checked++
		// Tenant entries are for the tenant's own readers: give the tenant
		// its first owner and read as them.
		owner := crashOwner(ctx, t, srv, token, slug)
		r, err := srv.do(ctx, "GET", "/api/v1/tenants/"+slug+"/audit/export", owner, nil)
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("export %s: %v %d %.300s", slug, err, r.status, r.body)
		}
		rep, err := audit.Verify(bytes.NewReader(r.body), pk.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Log != id || rep.Size < 1 || rep.Entries != rep.Size {
			t.Errorf("tenant %s log after the crash: %+v", slug, rep)
		}
	}
	t.Logf("after restart: %d tenants, operator log of %d entries verifies", len(tenants), rep.Size)
}

// crashOwner invites, accepts and signs in a tenant's first owner.
func crashOwner(ctx context.Context, t *testing.T, srv *custodiaProc, opToken, slug string) string {
	t.Helper()
	const pw = "plum Vortex harbour 93 quietly"
	email := "owner@" + slug + ".example"
	r, err := srv.do(ctx, "POST", "/api/v1/tenants/"+slug+"/owner-invite", opToken, map[string]string{"email": email})
	if err != nil || r.status != http.StatusCreated {
		t.Fatalf("owner invite %s: %v %d %s", slug, err, r.status, r.body)
	}
	var inv struct {
		InviteToken string `json:"invite_token"`
	}
	if err := json.Unmarshal(r.body, &inv); err != nil {
		t.Fatal(err)
	}
	if r, err = srv.do(ctx, "POST", "/api/v1/auth/accept", "", map[string]string{"token": inv.InviteToken, "password": pw}); err != nil || r.status != http.StatusOK {
		t.Fatalf("accept %s: %v %d %s", slug, err, r.status, r.body)
	}
	r, err = srv.do(ctx, "POST", "/api/v1/auth/signin", "", map[string]any{"tenant": slug, "email": email, "password": pw, "want_token": true})
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("sign in %s: %v %d %s", slug, err, r.status, r.body)
	}
	var si struct{ Session string }
	if err := json.Unmarshal(r.body, &si); err != nil || si.Session == "" {
		t.Fatalf("sign in %s: %s", slug, r.body)
	}
	return si.Session
}

// buildCustodia builds the server binary from the module root.
func buildCustodia(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no go command to build the server with, and CI is set: the crash test must run in CI")
		}
		t.Skip("no go command to build the server with (outside CI only)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "go.mod") {
		t.Fatalf("go env GOMOD: %v %q", err, out)
	}
	bin := filepath.Join(t.TempDir(), "custodia")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/custodia")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// custodiaProc is a server process on 127.0.0.1.
type custodiaProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	client *http.Client
	done   chan struct{}
	mu     sync.Mutex
	stderr bytes.Buffer
}

type crashResp struct {
	status int
	body   []byte
}

// startCustodia starts "custodia server --dev" on dir and waits until it is
// ready.
func startCustodia(t *testing.T, ctx context.Context, bin, dir string) *custodiaProc {
	t.Helper()
	cmd := exec.Command(bin, "server", "--data", dir, "--dev", "--listen", "127.0.0.1:0", "--log-level", "warn")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CUSTODIA_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &custodiaProc{t: t, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if a, ok := strings.CutPrefix(line, "Listening on "); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	select {
	case p.base = <-addr:
	case <-p.done:
		t.Fatalf("server exited at start:\n%s", p.log())
	case <-ctx.Done():
		t.Fatalf("server did not start in time:\n%s", p.log())
	}
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in tls/cert.pem")
	}
	p.client = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: true,
	}}
	for {
		r, err := p.do(ctx, "GET", "/readyz", "", nil)
		if err == nil && r.status == http.StatusOK {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("server exited before ready:\n%s", p.log())
		case <-ctx.Done():
			t.Fatalf("server not ready in time (%v):\n%s", err, p.log())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *custodiaProc) do(ctx context.Context, method, path, token string, body any) (crashResp, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if err != nil {
		return crashResp{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := p.client.Do(req)
	if err != nil {
		return crashResp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return crashResp{}, err
	}
	return crashResp{res.StatusCode, b}, nil
}

// kill sends SIGKILL to this server process (only) and waits for it.
func (p *custodiaProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("kill server: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Error("server did not exit after SIGKILL")
	}
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
}

func (p *custodiaProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}
