package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDirectoryReadsEveryPage: a table names a credential that is not on
// the first page of the tenant's credentials (pages of two here, of 1,000
// in use); before, only the first page was read and the table showed the
// ID.
func TestDirectoryReadsEveryPage(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short outside CI: skips starting a server")
	}
	old := directoryPage
	directoryPage = 2
	t.Cleanup(func() { directoryPage = old })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	v := startServer(ctx, t, filepath.Join(t.TempDir(), "data"))
	v.token = v.readFile(t, "dev-operator-token")
	v.ok(t, "", "tenant", "create", "--slug", "acme", "--name", "ACME")
	invite := v.capture(t, `Invitation token: (\S+)`, v.ok(t, "", "tenant", "invite-owner", "acme", "--email", "olga@acme.example"))
	v.ok(t, "owner-password-1234\n", "member", "accept", invite, "--password-stdin")
	v.token = strings.TrimSpace(v.ok(t, "owner-password-1234\n", "login", "--tenant", "acme", "--email", "olga@acme.example", "--password-stdin"))
	v.ok(t, "", "robot", "create", "--tenant", "acme", "--name", "payroll-bot")
	// Names sort a, b, c, d, e: the last is on the third page.
	for _, name := range []string{"a/one", "b/two", "c/three", "d/four", "e/five"} {
		v.ok(t, "Zq7-long-enough-"+name+"-pw\n", "cred", "put", name, "--tenant", "acme", "--kind", "bank", "--secret-stdin")
	}
	for _, name := range []string{"e/five", "a/one"} {
		v.ok(t, "", "grant", "create", "--tenant", "acme", "--subject", "payroll-bot", "--permission", "credentials.fetch",
			"--resource", "credential:"+name, "--duration", "1h", "--reason", "payroll run")
	}
	out := v.ok(t, "", "grant", "list", "--tenant", "acme")
	for _, want := range []string{`\scredential:e/five\s`, `\scredential:a/one\s`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("grant list lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "credential:crd_") {
		t.Errorf("grant list shows a credential ID:\n%s", out)
	}
}
