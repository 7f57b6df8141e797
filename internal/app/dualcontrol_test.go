package app_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// soloRobots turns acme's robot dual control off (keeping the rest of its
// policy), so that one owner may create a robot, grant it
// credentials.fetch and use its token. Tests of what a robot's fetch does
// (leases, caching, /v1 shapes) start from there; TestRobotDualControl
// tests the default.
func (n *node) soloRobots(by string) {
	n.t.Helper()
	var pol map[string]any
	n.do("GET", "/api/v1/tenants/acme/policy", by, nil).json(n.t, &pol)
	pol["robot_dual_control"] = "off"
	if r := n.do("PUT", "/api/v1/tenants/acme/policy", by, pol); r.status != 200 {
		n.t.Fatalf("dual control off: %d %s", r.status, r.body)
	}
}

// soloRobot creates a robot in a tenant without robot dual control: its
// creator may also grant it credentials.fetch.
func (n *node) soloRobot(by, name string) (id, token string) {
	n.t.Helper()
	n.soloRobots(by)
	return n.robot(by, name)
}

// Invariant 3 through robots: under the tenant's robot dual control (on by
// default) no one owner or admin both holds a robot's token and gives the
// robot credentials.fetch. A grant by whoever issued one of its live
// tokens is refused; a token issued for a robot that holds the grant waits
// for a second person; AppRole secret IDs are tokens like the others.
func TestRobotDualControl(t *testing.T) {
	forEngine(t, func(t *testing.T, n *node) {
		n.initAndUnseal()
		n.createTenant("acme")
		owner := n.pat(n.owner("acme"))
		adaID, ada := n.join("acme", owner, "ada", "admin")
		ada = n.pat(ada)
		id := n.putBank(owner, "bank/santander/main", bankSecret)
		fetch := func(tok string) resp {
			return n.do("POST", "/api/v1/tenants/acme/credentials/"+id+"/fetch", tok, map[string]string{"purpose": "statements"})
		}
		grant := func(by, robot string) resp {
			return n.do("POST", "/api/v1/tenants/acme/grants", by, map[string]string{"subject": robot, "permission": "credentials.fetch",
				"resource": "tenant", "duration": "24h", "reason": "statement robot"})
		}
		type tokenInfo struct {
			ID              string
			CreatedBy       string `json:"created_by"`
			PendingApproval bool   `json:"pending_approval"`
			ApprovedBy      string `json:"approved_by"`
		}
		issue := func(by, robot string, scopes ...string) (string, tokenInfo) {
			t.Helper()
			r := n.do("POST", "/api/v1/tenants/acme/robots/"+robot+"/tokens", by, map[string]any{"name": "another", "scopes": scopes})
			if r.status != 201 {
				t.Fatalf("robot token: %d %s", r.status, r.body)
			}
			var nt struct {
				Token string
				Info  tokenInfo
			}
			r.json(t, &nt)
			return nt.Token, nt.Info
		}
		approve := func(by, robot, tok string) resp {
			return n.do("POST", "/api/v1/tenants/acme/robots/"+robot+"/tokens/"+tok+"/approve", by, nil)
		}

		// The owner creates a robot and so holds its first token: they
		// may not also give it the secrets.
		botID, bot := n.robot(owner, "cassius")
		if r := grant(owner, botID); r.status != 403 || r.errCode(t) != "dual_control" {
			t.Fatalf("the token's issuer grants its robot fetch: %d %s", r.status, r.body)
		}
		if r := fetch(bot); r.status != 404 {
			t.Errorf("robot without a grant fetches: %d %s", r.status, r.body)
		}
		// A second person grants: the owner's token now fetches.
		if r := grant(ada, botID); r.status != 201 {
			t.Fatalf("another admin grants: %d %s", r.status, r.body)
		}
		if r := fetch(bot); r.status != 200 || !strings.Contains(string(r.body), bankSecret) {
			t.Fatalf("robot fetch with two people behind it: %d %s", r.status, r.body)
		}

		// A new token of a robot that holds the grant waits: whoever
		// issues it (here the owner, who did not grant) would otherwise
		// read alone.
		second, info := issue(owner, botID)
		if !info.PendingApproval || info.CreatedBy == "" {
			t.Fatalf("token of a robot with a fetch grant: %+v", info)
		}
		// The grant's audit trail names who could use it at once: the
		// holder of the robot's live token.
		if hs := n.auditDetails(n.tenantID("acme"), "grant.robot_token_holders"); len(hs) != 1 ||
			fmt.Sprint(hs[0]["holders"]) != "["+info.CreatedBy+"]" {
			t.Errorf("token holders of the grant: %v, want [%s]", hs, info.CreatedBy)
		}
		if r := fetch(second); r.status != 401 || r.errCode(t) != "token_pending_approval" {
			t.Errorf("pending token fetches: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/v1/secret/data/bank/santander/main", second, nil); r.status < 400 || strings.Contains(string(r.body), bankSecret) {
			t.Errorf("pending token reads through /v1: %d %s", r.status, r.body)
		}
		if r := n.do("GET", "/v1/auth/token/lookup-self", second, nil); r.status < 400 {
			t.Errorf("pending token looks itself up: %d %s", r.status, r.body)
		}
		if r := approve(owner, botID, info.ID); r.status != 403 || r.errCode(t) != "own_token" {
			t.Errorf("issuer approves their own token: %d %s", r.status, r.body)
		}
		if r := fetch(second); r.status != 401 {
			t.Errorf("pending token after a refused approval: %d %s", r.status, r.body)
		}
		r := approve(ada, botID, info.ID)
		var approved tokenInfo
		if r.status != 200 {
			t.Fatalf("second person approves: %d %s", r.status, r.body)
		}
		if r.json(t, &approved); approved.PendingApproval || approved.ApprovedBy != adaID {
			t.Errorf("approved token: %+v", approved)
		}
		if r := fetch(second); r.status != 200 {
			t.Errorf("approved token fetches: %d %s", r.status, r.body)
		}
		if r := approve(ada, botID, info.ID); r.status != 409 || r.errCode(t) != "not_pending" {
			t.Errorf("approve twice: %d %s", r.status, r.body)
		}
		// Another robot's token is not approved through this one's path.
		otherID, _ := n.robot(ada, "other")
		if r := approve(ada, otherID, info.ID); r.status != 404 {
			t.Errorf("approve through another robot: %d %s", r.status, r.body)
		}

		// A token scoped away from secrets needs nobody's approval.
		if _, reader := issue(owner, botID, "credentials.read"); reader.PendingApproval {
			t.Errorf("a read-only token waits: %+v", reader)
		}
		// An AppRole secret ID waits like any token: its login is refused
		// until a second person approves it.
		sid, sidInfo := issue(owner, botID, "approle.login")
		if !sidInfo.PendingApproval {
			t.Fatalf("secret ID of a robot with a fetch grant: %+v", sidInfo)
		}
		login := func() resp {
			return n.do("POST", "/v1/auth/approle/login", "", map[string]string{"role_id": botID, "secret_id": sid})
		}
		if r := login(); r.status != 400 {
			t.Errorf("login with a pending secret ID: %d %s", r.status, r.body)
		}
		if r := approve(ada, botID, sidInfo.ID); r.status != 200 {
			t.Fatalf("approve the secret ID: %d %s", r.status, r.body)
		}
		if r := login(); r.status != 200 {
			t.Errorf("login with an approved secret ID: %d %s", r.status, r.body)
		}

		// Whoever granted cannot approve a token they issue either: the
		// grant and a token of theirs would again be one person's.
		_, adaTok := issue(ada, botID)
		if r := approve(ada, botID, adaTok.ID); r.status != 403 {
			t.Errorf("the granter approves their own token: %d %s", r.status, r.body)
		}
		// Revoking the token one issued makes one eligible to grant.
		botTwo, _ := n.robot(owner, "tertius")
		if r := grant(owner, botTwo); r.status != 403 {
			t.Errorf("grant to a robot whose token one holds: %d %s", r.status, r.body)
		}
		var nr struct {
			Tokens []struct {
				tokenInfo
				SubjectID string `json:"subject_id"`
			}
		}
		n.do("GET", "/api/v1/tenants/acme/tokens", owner, nil).json(t, &nr)
		for _, tk := range nr.Tokens {
			if tk.SubjectID == botTwo {
				if r := n.do("DELETE", "/api/v1/tenants/acme/tokens/"+tk.ID, owner, nil); r.status != 204 {
					t.Fatalf("revoke: %d %s", r.status, r.body)
				}
			}
		}
		if r := grant(owner, botTwo); r.status != 201 {
			t.Errorf("grant after revoking one's token: %d %s", r.status, r.body)
		}

		// An AppRole login's token is held by whoever issued the secret ID:
		// logging in, then revoking the secret ID and the robot's token,
		// leaves the holder unable to grant its robot fetch.
		loopID, _ := n.robot(owner, "loop")
		loopSID, _ := issue(owner, loopID, "approle.login")
		var li struct {
			Auth struct {
				ClientToken string `json:"client_token"`
			}
		}
		if r := n.do("POST", "/v1/auth/approle/login", "", map[string]string{"role_id": loopID, "secret_id": loopSID}); r.status != 200 {
			t.Fatalf("approle login: %d %s", r.status, r.body)
		} else {
			r.json(t, &li)
		}
		var all struct {
			Tokens []struct {
				tokenInfo
				SubjectID string `json:"subject_id"`
				Scopes    []string
			}
		}
		n.do("GET", "/api/v1/tenants/acme/tokens", owner, nil).json(t, &all)
		for _, tk := range all.Tokens {
			if tk.SubjectID != loopID {
				continue
			}
			if tk.CreatedBy != info.CreatedBy {
				t.Errorf("loop's token %+v is not held by the owner %s", tk, info.CreatedBy)
			}
			if len(tk.Scopes) > 0 { // the first token and the secret ID, not the login's
				if r := n.do("DELETE", "/api/v1/tenants/acme/tokens/"+tk.ID, owner, nil); r.status != 204 {
					t.Fatalf("revoke: %d %s", r.status, r.body)
				}
			}
		}
		if r := grant(owner, loopID); r.status != 403 || r.errCode(t) != "dual_control" {
			t.Errorf("grant while holding the robot's AppRole login token: %d %s", r.status, r.body)
		}
		if r := fetch(li.Auth.ClientToken); r.status != 404 {
			t.Errorf("login token fetches without a grant: %d %s", r.status, r.body)
		}

		// A group grant was agreed for the group as it is: whoever holds
		// the robot's token may not move another credential into it.
		grouperID, grouper := n.robot(owner, "grouper")
		if r := n.do("POST", "/api/v1/tenants/acme/grants", ada, map[string]string{"subject": grouperID, "permission": "credentials.fetch",
			"resource": "group:payroll", "duration": "24h", "reason": "payroll robot"}); r.status != 201 {
			t.Fatalf("group grant: %d %s", r.status, r.body)
		}
		taxID := n.putBank(owner, "tax/aeat", "Tax-portal-secret-0042")
		move := func(by string) resp {
			return n.do("POST", "/api/v1/tenants/acme/credentials", by, map[string]any{"name": "tax/aeat", "group": "payroll"})
		}
		if r := move(owner); r.status != 403 || r.errCode(t) != "dual_control" {
			t.Errorf("token holder moves a credential into their robot's group: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+taxID+"/fetch", grouper, map[string]string{"purpose": "x"}); r.status != 404 {
			t.Errorf("robot fetches outside its group: %d %s", r.status, r.body)
		}
		if r := move(ada); r.status != 200 {
			t.Errorf("another admin moves it: %d %s", r.status, r.body)
		}
		if r := n.do("POST", "/api/v1/tenants/acme/credentials/"+taxID+"/fetch", grouper, map[string]string{"purpose": "x"}); r.status != 200 {
			t.Errorf("robot fetches after the agreed move: %d %s", r.status, r.body)
		}

		// While a second owner or admin exists, nobody turns dual control
		// off: that one person alone would be what it prevents.
		var pol map[string]any
		n.do("GET", "/api/v1/tenants/acme/policy", owner, nil).json(t, &pol)
		if pol["robot_dual_control"] != "on" {
			t.Errorf("default policy: %v", pol)
		}
		pol["robot_dual_control"] = "off"
		if r := n.do("PUT", "/api/v1/tenants/acme/policy", owner, pol); r.status != 403 || r.errCode(t) != "dual_control_needed" {
			t.Fatalf("dual control off with two admins: %d %s", r.status, r.body)
		}
		// A tenant one person runs may turn it off, loudly: every owner
		// and admin hears of it. Then one person may do both.
		if r := n.do("POST", "/api/v1/tenants/acme/members/"+adaID+"/role", owner, map[string]string{"role": "member"}); r.status != 200 {
			t.Fatalf("role: %d %s", r.status, r.body)
		}
		n.soloRobots(owner)
		// info.CreatedBy: the owner issued that token.
		if got := n.notifications(n.tenantID("acme"), info.CreatedBy); count(got, "robot_dual_control_off") != 1 {
			t.Errorf("owner's notifications after dual control off: %v", got)
		}
		soloID, solo := n.robot(owner, "solo")
		if r := grant(owner, soloID); r.status != 201 {
			t.Fatalf("grant with dual control off: %d %s", r.status, r.body)
		}
		if r := fetch(solo); r.status != 200 {
			t.Errorf("fetch with dual control off: %d %s", r.status, r.body)
		}
		if _, later := issue(owner, soloID); later.PendingApproval {
			t.Errorf("token with dual control off waits: %+v", later)
		}
		if got := n.notifications(n.tenantID("acme"), adaID); count(got, "robot_dual_control_off") != 1 {
			t.Errorf("the demoted admin is not told dual control went off: %v", got)
		}

		// Turning it on again makes the tokens one person both holds and
		// granted wait for a second person: off for a moment is not a
		// lasting way round.
		pol["robot_dual_control"] = "on"
		if r := n.do("PUT", "/api/v1/tenants/acme/policy", owner, pol); r.status != 200 {
			t.Fatalf("dual control on: %d %s", r.status, r.body)
		}
		if r := fetch(solo); r.status != 401 || r.errCode(t) != "token_pending_approval" {
			t.Errorf("one person's robot after dual control is on again: %d %s", r.status, r.body)
		}
		if r := fetch(bot); r.status != 200 {
			t.Errorf("a robot two people set up, after dual control is on again: %d %s", r.status, r.body)
		}

		// An open invitation of an admin counts as a second person, and
		// every admin hears of it.
		zed := n.do("POST", "/api/v1/tenants/acme/members", owner, map[string]string{"email": "zed@acme.example", "role": "admin"})
		if zed.status != 201 {
			t.Fatalf("invite: %d %s", zed.status, zed.body)
		}
		if got := n.notifications(n.tenantID("acme"), info.CreatedBy); count(got, "admin_invited") != 2 {
			t.Errorf("owner's notifications of admin invitations (ada, zed): %v", got)
		}
		if r := n.do("PUT", "/api/v1/tenants/acme/policy", owner, map[string]string{"robot_dual_control": "off"}); r.status != 403 ||
			r.errCode(t) != "dual_control_needed" {
			t.Errorf("dual control off with an admin invited: %d %s", r.status, r.body)
		}

		// Every two-person refusal is in the tenant's log.
		codes := map[string]int{}
		for _, d := range n.auditDetails(n.tenantID("acme"), "authz.deny") {
			if c, _ := d["code"].(string); c != "" {
				codes[c]++
			}
		}
		if codes["dual_control"] < 3 || codes["own_token"] < 2 || codes["dual_control_needed"] < 2 {
			t.Errorf("audited refusals: %v", codes)
		}

		// Offboarding revokes the robot tokens the leaver issued: they may
		// have kept a copy.
		r = n.do("POST", "/api/v1/tenants/acme/members/"+adaID+"/offboard", owner, map[string]string{"reason": "left", "transfer_to": info.CreatedBy})
		var rep struct {
			RobotTokensRevoked []string `json:"robot_tokens_revoked"`
		}
		if r.status != 200 {
			t.Fatalf("offboard: %d %s", r.status, r.body)
		}
		// (adaTok, and the first token of the robot "other" she created.)
		if r.json(t, &rep); len(rep.RobotTokensRevoked) != 2 || !slices.Contains(rep.RobotTokensRevoked, adaTok.ID) {
			t.Errorf("robot tokens revoked with the leaver: %v, want 2 with %s", rep.RobotTokensRevoked, adaTok.ID)
		}
	})
}
