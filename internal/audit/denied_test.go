package audit_test

import (
	"maps"
	"testing"

	"github.com/custodia-project/custodia/internal/audit"
)

// Denied builds the one authz.deny shape the route check and the vault's
// refusals share: permission and tenant always, what the refuser adds
// beside them, and never in their place.
func TestDenied(t *testing.T) {
	for _, c := range []struct {
		name    string
		more    map[string]any
		details map[string]any
	}{
		{"ok/route check", nil, map[string]any{"permission": "credentials.write", "tenant": "tnt_a"}},
		{"ok/vault refusal", map[string]any{"code": "not_found", "name": "bank/main"},
			map[string]any{"permission": "credentials.write", "tenant": "tnt_a", "code": "not_found", "name": "bank/main"}},
		{"ok/added details do not replace permission or tenant", map[string]any{"permission": "x", "tenant": "tnt_b"},
			map[string]any{"permission": "credentials.write", "tenant": "tnt_a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			more := maps.Clone(c.more)
			e := audit.Denied("tnt_a", "POST /api/v1/tenants/{tenant}/credentials", "credentials.write", "tnt_a", more)
			if e.Log != "tnt_a" || e.Action != "authz.deny" || e.Target != "POST /api/v1/tenants/{tenant}/credentials" ||
				e.Result != audit.ResultDenied || !maps.Equal(e.Details, c.details) {
				t.Errorf("Denied = %+v, want details %v", e, c.details)
			}
			if !maps.Equal(more, c.more) {
				t.Errorf("Denied changed the details it was given: %v", more)
			}
		})
	}
}
