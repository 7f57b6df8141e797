package cli

import (
	"regexp"
	"strings"
	"testing"
)

// TestBreakGlassDecisionReason: approve and deny take an optional
// --reason, which both audit logs keep; without it they decide as before.
func TestBreakGlassDecisionReason(t *testing.T) {
	v, operator := startTenant(t)
	owner := v.token
	v.ok(t, "", "policy", "set", "--tenant", "acme", "--break-glass", "approval")
	v.ok(t, "Zq7-long-enough-bank-pw\n", "cred", "put", "bank/main", "--tenant", "acme", "--kind", "bank", "--secret-stdin")

	ask := func() string {
		v.token = operator
		defer func() { v.token = owner }()
		out := v.ok(t, "", "breakglass", "request", "--tenant", "acme", "--credential", "bank/main", "--reason", "incident 4711")
		return v.capture(t, `(?m)^ID: +(brk_\S+)`, out)
	}
	approved, denied, bare := ask(), ask(), ask()
	if out := v.ok(t, "", "breakglass", "approve", approved, "--tenant", "acme", "--reason", "ticket 4711, approved by Olga"); !regexp.MustCompile(`(?m)^Status: +approved$`).MatchString(out) {
		t.Errorf("approve:\n%s", out)
	}
	v.ok(t, "", "breakglass", "deny", denied, "--tenant", "acme", "--reason", "not for this")
	if out := v.ok(t, "", "breakglass", "deny", bare, "--tenant", "acme"); !regexp.MustCompile(`(?m)^Status: +denied$`).MatchString(out) {
		t.Errorf("deny without a reason:\n%s", out)
	}
	if r := v.run(t.Context(), "", "breakglass", "approve", bare, "--tenant", "acme", "--reason", "line one\nline two"); r.code == ExitOK {
		t.Errorf("a reason of two lines was accepted:\n%s", r.stdout)
	}

	tenantLog := v.ok(t, "", "audit", "list", "--tenant", "acme", "--action", "breakglass.approve", "-o", "json")
	v.token = operator
	operatorLog := v.ok(t, "", "audit", "list", "--operator", "--action", "breakglass.deny", "-o", "json")
	if !strings.Contains(tenantLog, "ticket 4711, approved by Olga") {
		t.Errorf("the tenant's log lacks the approval's reason:\n%s", tenantLog)
	}
	if !strings.Contains(operatorLog, "not for this") || strings.Count(operatorLog, `"reason"`) != 1 {
		t.Errorf("the operator's log of denials, one with a reason:\n%s", operatorLog)
	}
}
