package cli

import (
	"regexp"
	"strings"
	"testing"
)

// TestDirectoryReadsEveryPage: a table names a credential that is not on
// the first page of the tenant's credentials (pages of two here, of 1,000
// in use); before, only the first page was read and the table showed the
// ID.
func TestDirectoryReadsEveryPage(t *testing.T) {
	old := directoryPage
	directoryPage = 2
	t.Cleanup(func() { directoryPage = old })
	v, _ := startTenant(t)
	// One owner: robot dual control off, so the owner grants their robot.
	v.ok(t, "", "policy", "set", "--tenant", "acme", "--robot-dual-control", "off")
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
