package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/custodia-project/custodia/internal/access"
	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/tenant"
)

// tenantSub is a subcommand of a tenant-scoped noun: --tenant plus the
// request built from the tenant's API base and the arguments.
func tenantSub(e *env, c *cobra.Command, req func(base string, args []string) (request, error), text func(json.RawMessage) error, done func([]string) string) *cobra.Command {
	base := tenantFlag(c)
	return apiCmd(e, c, func(args []string) (request, error) {
		b, err := base()
		if err != nil {
			return request{}, err
		}
		return req(b, args)
	}, text, done)
}

func robotCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "robot", Short: "Create robots (service accounts), give them tokens, disable them"}

	printRobot := func(r api.Robot) {
		fields(e, "ID", r.ID, "Name", r.Name, "Owner", r.OwnerID, "Status", r.Status, "Created", fmtTime(r.CreatedAt))
	}

	create := &cobra.Command{Use: "create", Short: "Create a robot and its first token (printed once)", Args: exactArgs(0, "no arguments")}
	var name string
	var tok identity.TokenInput
	create.Flags().StringVar(&name, "name", "", "the robot's name: no spaces or slashes")
	create.Flags().StringVar(&tok.TTL, "ttl", "", "lifetime of its token, such as 720h (default: 30 days)")
	create.Flags().StringSliceVar(&tok.Scopes, "scope", nil, "a permission its token is limited to (repeatable), such as credentials.fetch")
	tenantSub(e, create, func(b string, _ []string) (request, error) {
		if name == "" {
			return request{}, usageErr("--name is required")
		}
		in := identity.RobotInput{Name: name}
		if tok.TTL != "" || len(tok.Scopes) > 0 {
			t := tok
			t.Name = name + " token"
			in.Token = &t
		}
		return request{method: http.MethodPost, path: b + "/robots", body: in}, nil
	}, func(raw json.RawMessage) error {
		r, err := decodeInto[api.NewRobot](raw)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Robot %s (%s) created.\nToken: %s\n(id %s, scopes %s, expires %s; shown only now)\n",
			r.Robot.Name, r.Robot.ID, r.Token, r.Info.ID, dash(strings.Join(r.Info.Scopes, ",")), fmtTime(r.Info.ExpiresAt))
		return nil
	}, nil)

	list := &cobra.Command{Use: "list", Short: "List robots", Args: exactArgs(0, "no arguments")}
	tenantTable(e, list, func(b string, _ []string) (request, error) {
		return request{method: http.MethodGet, path: b + "/robots"}, nil
	}, "ID NAME OWNER STATUS CREATED", func(r *api.RobotList, who func(string) string, row func(...string)) {
		for _, rb := range r.Robots {
			row(rb.ID, rb.Name, who(rb.OwnerID), rb.Status, fmtTime(rb.CreatedAt))
		}
	})

	token := &cobra.Command{Use: "token ROBOT", Short: "Give a robot another token (printed once)", Args: exactArgs(1, "a robot ID or name")}
	var tin identity.TokenInput
	tokenFlags(token, &tin, "the robot")
	tenantSub(e, token, func(b string, args []string) (request, error) {
		in := tin
		if in.Name == "" {
			in.Name = args[0] + " token"
		}
		return request{method: http.MethodPost, path: b + "/robots/" + pathEscape(args[0]) + "/tokens", body: in}, nil
	}, func(raw json.RawMessage) error { return printNewToken(e, raw) }, nil)

	disable := &cobra.Command{Use: "disable ROBOT", Short: "Disable a robot: its tokens and grants stop at once", Args: exactArgs(1, "a robot ID or name")}
	tenantSub(e, disable, func(b string, args []string) (request, error) {
		return request{method: http.MethodPost, path: b + "/robots/" + pathEscape(args[0]) + "/disable"}, nil
	}, func(raw json.RawMessage) error {
		r, err := decodeInto[api.Robot](raw)
		if err != nil {
			return err
		}
		printRobot(*r)
		return nil
	}, nil)

	approve := &cobra.Command{
		Use:   "approve-token ROBOT TOKEN-ID",
		Short: "Approve a robot's token that waits for a second owner or admin",
		Long: `Approve a robot's token that waits for a second owner or admin.

Under the tenant's robot dual control (policy robot_dual_control, on by
default) a token or AppRole secret ID issued for a robot that holds a
credentials.fetch grant authenticates nothing until an owner or admin other
than its issuer approves it here: whoever issued it holds it, and a second
person agrees that they may. Nobody approves a token they issued.`,
		Args: exactArgs(2, "a robot ID or name and the token's ID (tok_...)"),
	}
	tenantSub(e, approve, func(b string, args []string) (request, error) {
		return request{method: http.MethodPost, path: b + "/robots/" + pathEscape(args[0]) + "/tokens/" + pathEscape(args[1]) + "/approve"}, nil
	}, func(raw json.RawMessage) error {
		t, err := decodeInto[api.APIToken](raw)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Token %s (%s) approved; issued by %s, it now works.\n", t.ID, t.Name, t.CreatedBy)
		return nil
	}, nil)

	c.AddCommand(create, list, token, approve, disable)
	return c
}

func printGrant(e *env, g *api.Grant) {
	fields(e, "ID", g.ID, "Subject", g.SubjectType+":"+g.SubjectID, "Permission", g.Permission, "Resource", g.Resource,
		"Reason", g.Reason, "Created by", g.CreatedBy, "Request", g.RequestID, "Created", fmtTime(g.CreatedAt), "Expires", fmtTime(g.ExpiresAt))
	if !g.RevokedAt.IsZero() {
		fields(e, "Revoked", fmtTime(g.RevokedAt))
	}
}

func grantCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "grant", Short: "Grant a permission on a resource until an expiry; list and revoke grants"}

	create := &cobra.Command{Use: "create", Short: "Grant a member or robot a permission for a while", Args: exactArgs(0, "no arguments")}
	var in access.GrantInput
	create.Flags().StringVar(&in.Subject, "subject", "", "member (ID or email) or robot (ID or name)")
	create.Flags().StringVar(&in.Permission, "permission", "", "the permission, such as credentials.reveal")
	create.Flags().StringVar(&in.Resource, "resource", "", `"tenant" (default), "group:NAME" or "credential:NAME-OR-ID" (kept as the credential's ID)`)
	create.Flags().StringVar(&in.Duration, "duration", "", "how long, such as 8h (grants always expire)")
	create.Flags().StringVar(&in.Reason, "reason", "", "why (recorded in the audit log)")
	tenantSub(e, create, func(b string, _ []string) (request, error) {
		if in.Subject == "" || in.Permission == "" || in.Duration == "" || in.Reason == "" {
			return request{}, usageErr("--subject, --permission, --duration and --reason are required")
		}
		return request{method: http.MethodPost, path: b + "/grants", body: in}, nil
	}, func(raw json.RawMessage) error {
		g, err := decodeInto[api.Grant](raw)
		if err != nil {
			return err
		}
		printGrant(e, g)
		return nil
	}, nil)

	list := &cobra.Command{Use: "list", Short: "List grants", Args: exactArgs(0, "no arguments")}
	var subject string
	var live bool
	list.Flags().StringVar(&subject, "subject", "", "only this subject: a member (ID or email) or robot (ID or name)")
	list.Flags().BoolVar(&live, "live", false, "only grants in force now")
	tenantTable(e, list, func(b string, _ []string) (request, error) {
		q := url.Values{}
		if subject != "" {
			q.Set("subject", subject)
		}
		if live {
			q.Set("live", "true")
		}
		return request{method: http.MethodGet, path: b + "/grants", query: q}, nil
	}, "ID SUBJECT PERMISSION RESOURCE EXPIRES STATE", func(r *api.GrantList, who func(string) string, row func(...string)) {
		for _, g := range r.Grants {
			state := "live"
			switch {
			case !g.RevokedAt.IsZero():
				state = "revoked"
			case !g.RetiredAt.IsZero():
				state = "retired"
			case !g.ExpiresAt.After(time.Now()):
				state = "expired"
			}
			row(g.ID, g.SubjectType+":"+who(g.SubjectID), g.Permission, resourceName(g.Resource, who), fmtTime(g.ExpiresAt), state)
		}
	})

	revoke := &cobra.Command{Use: "revoke ID", Short: "Revoke a grant at once", Args: exactArgs(1, "a grant ID")}
	tenantSub(e, revoke, func(b string, args []string) (request, error) {
		return request{method: http.MethodDelete, path: b + "/grants/" + pathEscape(args[0])}, nil
	}, nil, func(args []string) string { return "Revoked " + args[0] })

	c.AddCommand(create, list, revoke)
	return c
}

func printRequest(e *env, raw json.RawMessage) error {
	r, err := decodeInto[api.AccessRequest](raw)
	if err != nil {
		return err
	}
	fields(e, "ID", r.ID, "Requester", r.RequesterID, "Permission", r.Permission, "Resource", r.Resource, "Duration", r.Duration,
		"Reason", r.Reason, "Status", r.Status, "Approvals", fmt.Sprintf("%d of %d", len(r.Approvals), r.ApprovalsNeeded),
		"Decided by", r.DecidedBy, "Note", r.DecisionNote, "Grant", r.GrantID, "Expires", fmtTime(r.ExpiresAt))
	return nil
}

func requestCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "request", Short: "Request access for a while; approve, deny or cancel requests"}

	create := &cobra.Command{Use: "create", Short: "Request a permission for a while, with a reason", Args: exactArgs(0, "no arguments")}
	var in access.RequestInput
	create.Flags().StringVar(&in.Permission, "permission", "", "the permission, such as credentials.reveal")
	create.Flags().StringVar(&in.Resource, "resource", "", `"tenant" (default), "group:NAME" or "credential:NAME-OR-ID" (kept as the credential's ID)`)
	create.Flags().StringVar(&in.Duration, "duration", "", "how long, such as 8h")
	create.Flags().StringVar(&in.Reason, "reason", "", "why (the approvers see it)")
	tenantSub(e, create, func(b string, _ []string) (request, error) {
		if in.Permission == "" || in.Duration == "" || in.Reason == "" {
			return request{}, usageErr("--permission, --duration and --reason are required")
		}
		return request{method: http.MethodPost, path: b + "/requests", body: in}, nil
	}, func(raw json.RawMessage) error { return printRequest(e, raw) }, nil)

	list := &cobra.Command{Use: "list", Short: "List access requests (approvers see all, others their own)", Args: exactArgs(0, "no arguments")}
	var status string
	list.Flags().StringVar(&status, "status", "", "pending, approved, denied, expired or canceled")
	tenantTable(e, list, func(b string, _ []string) (request, error) {
		q := url.Values{}
		if status != "" {
			q.Set("status", status)
		}
		return request{method: http.MethodGet, path: b + "/requests", query: q}, nil
	}, "ID REQUESTER PERMISSION RESOURCE DURATION STATUS APPROVALS GRANT", func(r *api.AccessRequestList, who func(string) string, row func(...string)) {
		for _, x := range r.Requests {
			row(x.ID, who(x.RequesterID), x.Permission, resourceName(x.Resource, who), x.Duration, x.Status,
				fmt.Sprintf("%d/%d", len(x.Approvals), x.ApprovalsNeeded), dash(x.GrantID))
		}
	})

	decide := func(verb, short string) *cobra.Command {
		d := &cobra.Command{Use: verb + " ID", Short: short, Args: exactArgs(1, "a request ID")}
		var note string
		d.Flags().StringVar(&note, "note", "", "a note for the requester")
		return tenantSub(e, d, func(b string, args []string) (request, error) {
			return request{method: http.MethodPost, path: b + "/requests/" + pathEscape(args[0]) + "/" + verb, body: api.NoteRequest{Note: note}}, nil
		}, func(raw json.RawMessage) error { return printRequest(e, raw) }, nil)
	}

	cancel := &cobra.Command{Use: "cancel ID", Short: "Withdraw your own pending request", Args: exactArgs(1, "a request ID")}
	tenantSub(e, cancel, func(b string, args []string) (request, error) {
		return request{method: http.MethodPost, path: b + "/requests/" + pathEscape(args[0]) + "/cancel"}, nil
	}, nil, func(args []string) string { return "Canceled " + args[0] })

	c.AddCommand(create, list,
		decide("approve", "Approve a request (the last needed approval creates the grant)"),
		decide("deny", "Deny a request"),
		cancel)
	return c
}

func printReview(e *env, raw json.RawMessage) error {
	r, err := decodeInto[api.Review](raw)
	if err != nil {
		return err
	}
	fields(e, "ID", r.ID, "Status", r.Status, "Unanswered", r.Unanswered, "Created by", r.CreatedBy, "Created", fmtTime(r.CreatedAt),
		"Deadline", fmtTime(r.Deadline))
	if !r.ClosedAt.IsZero() {
		fields(e, "Closed", fmtTime(r.ClosedAt))
	}
	if len(r.Lines) == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout)
	var rows [][]string
	for _, l := range r.Lines {
		res := ""
		if l.ResourceType != "" {
			res = l.ResourceType + ":" + l.ResourceID
		}
		rows = append(rows, []string{strconv.Itoa(l.Seq), l.Kind, l.SubjectType + ":" + l.SubjectID, dash(l.Label), dash(l.Permission),
			dash(res), fmtTime(l.LastUsedAt), dash(l.Decision)})
	}
	return table(e, "LINE KIND SUBJECT LABEL PERMISSION RESOURCE LAST-USED DECISION", rows)
}

func reviewCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "review", Short: "Run access reviews: start, decide lines, sign off, export the evidence"}

	start := &cobra.Command{Use: "start", Short: "Open a review of every role, grant, token and robot", Args: exactArgs(0, "no arguments")}
	var deadline string
	start.Flags().StringVar(&deadline, "deadline", "", "RFC 3339 time (default: the policy's review window)")
	tenantSub(e, start, func(b string, _ []string) (request, error) {
		var in api.StartReviewRequest
		if deadline != "" {
			t, err := time.Parse(time.RFC3339, deadline)
			if err != nil {
				return request{}, usageErr("--deadline: %v", err)
			}
			in.Deadline = t
		}
		return request{method: http.MethodPost, path: b + "/reviews", body: in}, nil
	}, func(raw json.RawMessage) error { return printReview(e, raw) }, nil)

	list := &cobra.Command{Use: "list", Short: "List reviews, newest first", Args: exactArgs(0, "no arguments")}
	tenantSub(e, list, func(b string, _ []string) (request, error) {
		return request{method: http.MethodGet, path: b + "/reviews"}, nil
	}, listTable(e, "ID STATUS CREATED DEADLINE CLOSED", func(r *api.ReviewList, row func(...string)) {
		for _, rv := range r.Reviews {
			row(rv.ID, rv.Status, fmtTime(rv.CreatedAt), fmtTime(rv.Deadline), fmtTime(rv.ClosedAt))
		}
	}), nil)

	show := &cobra.Command{Use: "show ID", Short: "Show a review and its lines", Args: exactArgs(1, "a review ID")}
	tenantSub(e, show, func(b string, args []string) (request, error) {
		return request{method: http.MethodGet, path: b + "/reviews/" + pathEscape(args[0])}, nil
	}, func(raw json.RawMessage) error { return printReview(e, raw) }, nil)

	decide := &cobra.Command{
		Use:   "decide ID",
		Short: "Keep or revoke lines of a review, several in one call",
		Long: `Keep or revoke lines of a review: a kept line stays, a revoked one is revoked
at sign-off. Line numbers are those "review show" prints. All the lines are
decided in one call: either every decision is recorded or none is.

    custodia review decide rev_... --keep 1,2,5 --revoke 3 --note "quarterly"
    custodia review decide rev_... --line 1=keep --line 3=revoke
    custodia review decide rev_... --line 4 --keep             # one line

A bare --keep or --revoke decides the --line lines given without "=keep" or
"=revoke". --note is recorded with every line decided.`,
		// The flags are parsed in RunE, after attachLines: see there.
		DisableFlagParsing: true,
	}
	var df decideFlags
	df.register(decide.Flags())
	var decided []access.LineDecision
	tenantSub(e, decide, func(b string, args []string) (request, error) {
		ds, err := df.decisions()
		if err != nil {
			return request{}, err
		}
		decided = ds
		return request{method: http.MethodPost, path: b + "/reviews/" + pathEscape(args[0]) + "/decisions",
			body: api.DecisionsRequest{Decisions: ds}}, nil
	}, nil, func(args []string) string {
		out := make([]string, len(decided))
		for i, d := range decided {
			out[i] = fmt.Sprintf("Line %d of %s: %s", d.Seq, args[0], d.Decision)
		}
		return strings.Join(out, "\n")
	})
	run := decide.RunE
	decide.RunE = func(c *cobra.Command, raw []string) error {
		if err := c.Flags().Parse(attachLines(c.Flags(), raw)); err != nil {
			return usageErr("%v (see %s --help)", err, c.CommandPath())
		}
		if help, _ := c.Flags().GetBool("help"); help {
			return c.Help()
		}
		if err := exactArgs(1, "a review ID")(c, c.Flags().Args()); err != nil {
			return err
		}
		return run(c, c.Flags().Args())
	}

	signoff := &cobra.Command{Use: "signoff ID", Short: "Sign a review off: apply revocations and keep the evidence", Args: exactArgs(1, "a review ID")}
	tenantSub(e, signoff, func(b string, args []string) (request, error) {
		return request{method: http.MethodPost, path: b + "/reviews/" + pathEscape(args[0]) + "/signoff"}, nil
	}, func(raw json.RawMessage) error {
		s, err := decodeInto[access.Signoff](raw)
		if err != nil {
			return err
		}
		fields(e, "Review", s.Review, "Signed by", s.SignedBy, "Closed", fmtTime(s.ClosedAt), "Kept", strconv.Itoa(s.Kept),
			"Revoked", strconv.Itoa(s.Revoked), "Escalated", strconv.Itoa(s.Escalated), "Applied", dash(strings.Join(s.Applied, ", ")))
		for _, f := range s.Failures {
			fmt.Fprintf(e.stdout, "FAILED: %s\n", f)
		}
		return nil
	}, nil)

	c.AddCommand(start, list, show, decide, signoff, reviewExportCmd(e))
	return c
}

func reviewExportCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "export ID", Short: "Write a signed-off review's evidence (JSON)", Args: exactArgs(1, "a review ID")}
	mk := clientFlags(c, e)
	base := tenantFlag(c)
	var file string
	c.Flags().StringVarP(&file, "file", "f", "", "file to write (default: standard output)")
	c.RunE = func(c *cobra.Command, args []string) error {
		cl, _, err := mk()
		if err != nil {
			return err
		}
		b, err := base()
		if err != nil {
			return err
		}
		var w io.Writer = e.stdout
		if file != "" {
			f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		if err := cl.Download(c.Context(), b+"/reviews/"+pathEscape(args[0])+"/export", nil, w); err != nil {
			return err
		}
		if f, ok := w.(*os.File); ok && file != "" {
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Wrote %s\n", file)
		}
		return nil
	}
	return c
}

func printPolicy(e *env, raw json.RawMessage) error {
	p, err := decodeInto[tenant.Policy](raw)
	if err != nil {
		return err
	}
	num := func(n int) string {
		if n == 0 {
			return "default"
		}
		return strconv.Itoa(n)
	}
	fields(e, "Require MFA", yesNo(p.RequireMFA), "Approvals", num(p.Approvals), "Request TTL hours", num(p.RequestTTLHours),
		"Max grant hours", num(p.MaxGrantHours), "Review every days", num(p.ReviewEveryDays), "Review window days", num(p.ReviewWindowDays),
		"Review unanswered", dash(p.ReviewUnanswered), "Session idle minutes", num(p.SessionIdleMinutes), "Session max hours", num(p.SessionMaxHours),
		"Break-glass", dash(p.BreakGlass), "Break-glass minutes", num(p.BreakGlassMinutes),
		"Robot dual control", p.Defaults().RobotDualControl)
	// The client secret is kept sealed apart from the policy: never shown.
	if s := p.SSO; s != nil {
		fields(e, "SSO issuer", s.Issuer, "SSO client ID", s.ClientID, "SSO redirect URL", s.RedirectURL,
			"SSO JIT members", yesNo(s.JIT), "SSO default role", dash(s.DefaultRole), "SSO only", yesNo(s.Only))
	} else {
		fields(e, "SSO", "off")
	}
	return nil
}

func policyCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "policy", Short: "Show and change a tenant's security policy"}

	show := &cobra.Command{Use: "show", Short: "Show the tenant's security policy", Args: exactArgs(0, "no arguments")}
	tenantSub(e, show, func(b string, _ []string) (request, error) {
		return request{method: http.MethodGet, path: b + "/policy"}, nil
	}, func(raw json.RawMessage) error { return printPolicy(e, raw) }, nil)

	set := &cobra.Command{
		Use:   "set",
		Short: "Change the given fields of the policy (the others stay)",
		Long: `Change the given fields of the policy; the others stay as they are.

Single sign-on (OpenID Connect) is turned on with the provider's issuer, this
server's client ID there and this server's callback; the client secret is read
from the first line of stdin, never from an argument, and is never shown:

    custodia policy set --tenant acme --sso-issuer https://idp.example.com \
      --sso-client-id custodia --sso-redirect-url https://vault.example.com/api/v1/auth/sso/callback \
      --sso-jit --sso-client-secret-stdin < client-secret

Later --sso-* flags change only what they name; --sso-off turns it off.
Members then sign in with "custodia login --sso".`,
		Args: exactArgs(0, "no arguments"),
	}
	mk := clientFlags(set, e)
	base := tenantFlag(set)
	var p tenant.Policy
	fs := set.Flags()
	fs.BoolVar(&p.RequireMFA, "require-mfa", false, "every member gives a second factor at sign-in")
	fs.IntVar(&p.Approvals, "approvals", 0, "admins who must approve an access request (1 to 10)")
	fs.IntVar(&p.RequestTTLHours, "request-ttl-hours", 0, "hours a request waits for an answer (1 to 720)")
	fs.IntVar(&p.MaxGrantHours, "max-grant-hours", 0, "longest grant or approved request, in hours (1 to 8784)")
	fs.IntVar(&p.ReviewEveryDays, "review-every-days", 0, "days between access reviews (1 to 366; -1: only on demand)")
	fs.IntVar(&p.ReviewWindowDays, "review-window-days", 0, "days reviewers have before the deadline (1 to 90)")
	fs.StringVar(&p.ReviewUnanswered, "review-unanswered", "", "unanswered lines at the deadline: revoke or escalate")
	fs.IntVar(&p.SessionIdleMinutes, "session-idle-minutes", 0, "end sessions idle this many minutes (1 to 1440)")
	fs.IntVar(&p.SessionMaxHours, "session-max-hours", 0, "end sessions after this many hours (1 to 720)")
	fs.StringVar(&p.BreakGlass, "break-glass", "", "operator staff break-glass: off, approval (an admin approves each) or notify")
	fs.IntVar(&p.BreakGlassMinutes, "break-glass-minutes", 0, "how long an allowed break-glass lasts (1 to 240)")
	fs.StringVar(&p.RobotDualControl, "robot-dual-control", "", "on (default): a robot's fetch grant and its tokens take two people; "+
		"off: one owner or admin may do both (every owner and admin is told)")
	var ssoIn tenant.SSO
	var ssoOff, secretStdin bool
	fs.StringVar(&ssoIn.Issuer, "sso-issuer", "", "single sign-on: the OpenID provider's issuer URL")
	fs.StringVar(&ssoIn.ClientID, "sso-client-id", "", "single sign-on: this server's client ID at the provider")
	fs.StringVar(&ssoIn.RedirectURL, "sso-redirect-url", "", "single sign-on: this server's callback, https://HOST/api/v1/auth/sso/callback")
	fs.BoolVar(&ssoIn.JIT, "sso-jit", false, "single sign-on: create a member at first sign-in of a verified email")
	fs.StringVar(&ssoIn.DefaultRole, "sso-default-role", "", "single sign-on: role of members created at sign-in: member or auditor")
	fs.BoolVar(&ssoIn.Only, "sso-only", false, "single sign-on: refuse password sign-in for every member")
	fs.BoolVar(&ssoOff, "sso-off", false, "turn single sign-on off")
	fs.BoolVar(&secretStdin, "sso-client-secret-stdin", false, "single sign-on: read the client secret from the first line of stdin")
	ssoFlags := map[string]func(*tenant.SSO){
		"sso-issuer":       func(s *tenant.SSO) { s.Issuer = ssoIn.Issuer },
		"sso-client-id":    func(s *tenant.SSO) { s.ClientID = ssoIn.ClientID },
		"sso-redirect-url": func(s *tenant.SSO) { s.RedirectURL = ssoIn.RedirectURL },
		"sso-jit":          func(s *tenant.SSO) { s.JIT = ssoIn.JIT },
		"sso-default-role": func(s *tenant.SSO) { s.DefaultRole = ssoIn.DefaultRole },
		"sso-only":         func(s *tenant.SSO) { s.Only = ssoIn.Only },
	}
	set.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		b, err := base()
		if err != nil {
			return err
		}
		ssoChanged := secretStdin
		for name := range ssoFlags {
			ssoChanged = ssoChanged || fs.Changed(name)
		}
		if ssoOff && ssoChanged {
			return usageErr("--sso-off excludes the other --sso-* flags")
		}
		var cur tenant.Policy
		if err := cl.Do(c.Context(), http.MethodGet, b+"/policy", nil, nil, &cur); err != nil {
			return err
		}
		// The API reads 0 as "unset" and puts the default back, so a 0
		// given here would silently become the default (30 break-glass
		// minutes for 0): refuse it instead.
		for _, name := range []string{"approvals", "request-ttl-hours", "max-grant-hours", "review-every-days",
			"review-window-days", "session-idle-minutes", "session-max-hours", "break-glass-minutes"} {
			if f := fs.Lookup(name); f.Changed && f.Value.String() == "0" {
				return usageErr("--%s 0 is not a setting: %s", name, f.Usage)
			}
		}
		changed := 0
		for name, apply := range map[string]func(){
			"require-mfa":          func() { cur.RequireMFA = p.RequireMFA },
			"approvals":            func() { cur.Approvals = p.Approvals },
			"request-ttl-hours":    func() { cur.RequestTTLHours = p.RequestTTLHours },
			"max-grant-hours":      func() { cur.MaxGrantHours = p.MaxGrantHours },
			"review-every-days":    func() { cur.ReviewEveryDays = p.ReviewEveryDays },
			"review-window-days":   func() { cur.ReviewWindowDays = p.ReviewWindowDays },
			"review-unanswered":    func() { cur.ReviewUnanswered = p.ReviewUnanswered },
			"session-idle-minutes": func() { cur.SessionIdleMinutes = p.SessionIdleMinutes },
			"session-max-hours":    func() { cur.SessionMaxHours = p.SessionMaxHours },
			"break-glass":          func() { cur.BreakGlass = p.BreakGlass },
			"break-glass-minutes":  func() { cur.BreakGlassMinutes = p.BreakGlassMinutes },
			"robot-dual-control":   func() { cur.RobotDualControl = p.RobotDualControl },
		} {
			if fs.Changed(name) {
				apply()
				changed++
			}
		}
		switch {
		case ssoOff:
			cur.SSO = nil
			changed++
		case ssoChanged:
			if cur.SSO == nil && !(fs.Changed("sso-issuer") && fs.Changed("sso-client-id") && fs.Changed("sso-redirect-url")) {
				return usageErr("single sign-on is off: turning it on needs --sso-issuer, --sso-client-id and --sso-redirect-url")
			}
			next := tenant.SSO{}
			if cur.SSO != nil {
				next = *cur.SSO
			}
			for name, apply := range ssoFlags {
				if fs.Changed(name) {
					apply(&next)
				}
			}
			cur.SSO = &next
			changed++
		}
		if changed == 0 {
			return usageErr("give at least one field to change (see --help)")
		}
		update := api.PolicyUpdate{Policy: cur}
		if secretStdin {
			// From stdin only: arguments are visible to other users.
			if update.SSOClientSecret, err = readSecretLine(e, "SSO client secret: "); err != nil {
				return err
			}
			if update.SSOClientSecret == "" {
				return usageErr("no client secret on stdin")
			}
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodPut, b+"/policy", nil, update, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error { return printPolicy(e, raw) })
	}

	c.AddCommand(show, set)
	return c
}

// decideFlags are review decide's flags.
type decideFlags struct {
	lines        []string
	keep, revoke decisionFlag
	note         string
}

func (d *decideFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&d.lines, "line", nil, "decide line `SEQ[=keep|revoke]` (repeatable)")
	fs.Var(&d.keep, "keep", "keep `[LINES]`, such as 1,2,5; bare, the --line lines")
	fs.Var(&d.revoke, "revoke", "revoke `[LINES]` at sign-off; bare, the --line lines")
	fs.Lookup("keep").NoOptDefVal = "true"
	fs.Lookup("revoke").NoOptDefVal = "true"
	fs.StringVar(&d.note, "note", "", "why (recorded with every line decided)")
}

func (d *decideFlags) decisions() ([]access.LineDecision, error) {
	return lineDecisions(d.lines, &d.keep, &d.revoke, d.note)
}

// decisionFlag is review decide's --keep or --revoke: bare, it decides the
// lines given with --line (the one-line form, "--line 4 --keep"); with a
// list, it decides those lines ("--keep 1,2,5").
type decisionFlag struct {
	bare  bool
	lines []int
}

func (d *decisionFlag) Set(s string) error {
	switch s {
	case "true":
		d.bare = true
		return nil
	case "false":
		d.bare = false
		return nil
	}
	for _, f := range strings.Split(s, ",") {
		seq, err := parseSeq(f)
		if err != nil {
			return err
		}
		d.lines = append(d.lines, seq)
	}
	return nil
}

func (d *decisionFlag) String() string {
	out := make([]string, len(d.lines))
	for i, l := range d.lines {
		out[i] = strconv.Itoa(l)
	}
	return strings.Join(out, ",")
}

// Type is "bool" so that help shows the flag as a switch that may take a
// value (its usage names the value), as it is.
func (d *decisionFlag) Type() string { return "bool" }

func parseSeq(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a line number (see review show)", s)
	}
	return n, nil
}

var seqList = regexp.MustCompile(`^\d+(,\d+)*$`)

// attachLines joins a list of line numbers that follows --keep or --revoke
// to the flag ("--keep 1,2" becomes "--keep=1,2"). pflag cannot give a
// flag an optional value in the next argument, and a bare --keep must go on
// working for the one-line form. Values of other flags are passed over, so
// "--note --keep" stays a note.
func attachLines(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if (a == "--keep" || a == "--revoke") && i+1 < len(args) && seqList.MatchString(args[i+1]) {
			out = append(out, a+"="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
		var f *pflag.Flag
		switch {
		case strings.HasPrefix(a, "--") && !strings.Contains(a, "="):
			f = fs.Lookup(a[2:])
		case len(a) == 2 && a[0] == '-' && a[1] != '-':
			f = fs.ShorthandLookup(a[1:])
		}
		if f != nil && f.NoOptDefVal == "" && i+1 < len(args) {
			out = append(out, args[i+1])
			i++
		}
	}
	return out
}

// lineDecisions turns review decide's flags into one decision per line, in
// line order. A line given twice the same way counts once; kept and revoked
// at once is refused.
func lineDecisions(lines []string, keep, revoke *decisionFlag, note string) ([]access.LineDecision, error) {
	got := map[int]string{}
	add := func(seq int, d string) error {
		if prev, ok := got[seq]; ok && prev != d {
			return usageErr("line %d is both kept and revoked", seq)
		}
		got[seq] = d
		return nil
	}
	var bare []int
	for _, l := range lines {
		s, d, decided := strings.Cut(l, "=")
		seq, err := parseSeq(s)
		if err != nil {
			return nil, usageErr("--line %s: %v", l, err)
		}
		if !decided {
			bare = append(bare, seq)
			continue
		}
		if d != access.Keep && d != access.Revoke {
			return nil, usageErr("--line %s: the decision is keep or revoke", l)
		}
		if err := add(seq, d); err != nil {
			return nil, err
		}
	}
	switch {
	case keep.bare && revoke.bare:
		return nil, usageErr("give one bare --keep or --revoke, not both")
	case len(bare) > 0 && !keep.bare && !revoke.bare:
		return nil, usageErr("--line %d has no decision: write --line %d=keep or =revoke, or add exactly one bare --keep or --revoke", bare[0], bare[0])
	case len(bare) == 0 && (keep.bare || revoke.bare):
		return nil, usageErr("a bare --keep or --revoke decides the --line lines: give --line SEQ, or the lines, such as --keep 1,2")
	}
	for _, seq := range bare {
		d := access.Keep
		if revoke.bare {
			d = access.Revoke
		}
		if err := add(seq, d); err != nil {
			return nil, err
		}
	}
	for _, set := range []struct {
		lines    []int
		decision string
	}{{keep.lines, access.Keep}, {revoke.lines, access.Revoke}} {
		for _, seq := range set.lines {
			if err := add(seq, set.decision); err != nil {
				return nil, err
			}
		}
	}
	if len(got) == 0 {
		return nil, usageErr("give the lines to decide: --keep LINES, --revoke LINES or --line SEQ=keep|revoke (see --help)")
	}
	out := make([]access.LineDecision, 0, len(got))
	for seq, d := range got {
		out = append(out, access.LineDecision{Seq: seq, Decision: d, Note: note})
	}
	slices.SortFunc(out, func(a, b access.LineDecision) int { return a.Seq - b.Seq })
	return out, nil
}
