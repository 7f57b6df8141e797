package authz

import (
	"strings"
	"testing"
)

// A refused robot is told whether a grant could help: only grantable
// permissions can be given to it.
func TestDenialForRobots(t *testing.T) {
	r := &Principal{Kind: KindRobot, TenantID: "t1"}
	for perm, want := range map[Permission]string{
		CredentialsFetch: "holds no grant in force",
		SharesCreate:     "robots may not use",
		BreakGlassRead:   "robots may not use",
	} {
		if code, msg := Denial(r, perm, "t1"); code != "forbidden" || !strings.Contains(msg, want) {
			t.Errorf("Denial(robot, %s) = %s %q, want it to say %q", perm, code, msg, want)
		}
	}
}
