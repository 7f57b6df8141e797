package cli

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/custodia-project/custodia/internal/access"
	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/client"
	"github.com/custodia-project/custodia/internal/config"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/sso"
)

// publicClient is a client without a token, for the sign-in routes: a
// stale CUSTODIA_TOKEN in the environment must not get in their way.
func publicClient(cc *config.Client) (*client.Client, error) {
	cl, err := client.New(client.Options{Addr: cc.Addr, CACert: cc.CACert, InsecureSkipVerify: cc.InsecureSkipVerify})
	if err != nil {
		return nil, &exitError{code: ExitUsage, err: err}
	}
	return cl, nil
}

// readPassword reads a password: one line of stdin with --password-stdin,
// otherwise a prompt without echo on a terminal. Passwords never come from
// arguments, which other users can see.
func readPassword(e *env, fromStdin bool, prompt string) (string, error) {
	if !fromStdin {
		f, ok := e.stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", usageErr("give the password on stdin with --password-stdin")
		}
	}
	pw, err := readSecretLine(e, prompt)
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", usageErr("no password given")
	}
	return pw, nil
}

func loginCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "login",
		Short: "Sign in as a tenant member and print the session token",
		Long: `Sign in with an email and password (read from stdin with --password-stdin, or
from the terminal without echo), or with the tenant's single sign-on (--sso).
When the member has a second factor, give --code (authenticator app) or
--recovery-code. The session token is printed alone on standard output, so that

    export CUSTODIA_TOKEN=$(custodia login --tenant acme --email me@example.com --password-stdin < pw)

works; details go to standard error.

With --sso the command prints the OpenID provider's address: open it in a
browser and sign in there. The provider then sends the browser to this
server's single sign-on page, which refuses it, because the sign-in belongs to
this command (it holds the cookie that binds the sign-in to whoever started
it). Copy that page's full address from the browser's address bar and paste it
as one line on standard input:

    export CUSTODIA_TOKEN=$(custodia login --sso --tenant acme)

The pasted address is good once, for ten minutes.`,
		Args: exactArgs(0, "no arguments"),
	}
	mk := clientFlags(c, e)
	var tenant, email, code, recovery string
	var pwStdin, useSSO bool
	c.Flags().StringVar(&tenant, "tenant", "", "tenant ID or slug (or CUSTODIA_TENANT)")
	c.Flags().StringVar(&email, "email", "", "the member's email")
	c.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of stdin")
	c.Flags().BoolVar(&useSSO, "sso", false, "sign in with the tenant's single sign-on (OpenID Connect) provider")
	c.Flags().StringVar(&code, "code", "", "a current code from the authenticator app")
	c.Flags().StringVar(&recovery, "recovery-code", "", "a recovery code (each works once)")
	c.RunE = func(c *cobra.Command, args []string) error {
		_, cc, err := mk()
		if err != nil {
			return err
		}
		switch {
		case useSSO && (email != "" || pwStdin):
			return usageErr("--sso excludes --email and --password-stdin")
		case useSSO && tenant == "":
			return usageErr("--tenant is required")
		case !useSSO && (tenant == "" || email == ""):
			return usageErr("--tenant and --email are required (or --tenant and --sso)")
		case code != "" && recovery != "":
			return usageErr("give --code or --recovery-code, not both")
		}
		var (
			cl  *client.Client
			raw json.RawMessage
		)
		if useSSO {
			if cl, raw, err = ssoSignin(c.Context(), e, cc, tenant); err != nil {
				return err
			}
		} else {
			pw, err := readPassword(e, pwStdin, "Password: ")
			if err != nil {
				return err
			}
			if cl, err = publicClient(cc); err != nil {
				return err
			}
			in := api.SigninRequest{SigninInput: identity.SigninInput{Tenant: tenant, Email: email, Password: pw}, WantToken: true}
			if err := cl.Do(c.Context(), http.MethodPost, "/api/v1/auth/signin", nil, in, &raw); err != nil {
				return err
			}
		}
		r, err := decodeInto[api.SigninResponse](raw)
		if err != nil {
			return err
		}
		if r.Status == "mfa_required" {
			if code == "" && recovery == "" {
				return &exitError{code: ExitAuth, err: fmt.Errorf("a second factor is required (%s): repeat with --code or --recovery-code",
					strings.Join(r.MFAMethods, ", "))}
			}
			mfa := api.MFARequest{MFAInput: identity.MFAInput{MFAToken: r.MFAToken, Code: code, RecoveryCode: recovery}, WantToken: true}
			if err := cl.Do(c.Context(), http.MethodPost, "/api/v1/auth/signin/mfa", nil, mfa, &raw); err != nil {
				return err
			}
			if r, err = decodeInto[api.SigninResponse](raw); err != nil {
				return err
			}
		}
		if r.Session == "" {
			return fmt.Errorf("sign-in answered %q without a session", r.Status)
		}
		return output(e.stdout, cc, raw, func() error {
			fmt.Fprintln(e.stdout, r.Session)
			fmt.Fprintf(e.stderr, "Signed in as %s (tenant %s); session %s expires %s.\n", r.MemberID, r.TenantID, r.SessionID, fmtTime(r.ExpiresAt))
			if r.MFAEnroll {
				fmt.Fprintln(e.stderr, "The tenant requires a second factor: this session may only enroll one (custodia mfa totp-enroll).")
			}
			return nil
		})
	}
	return c
}

// ssoSignin runs single sign-on from the command line: it starts the
// sign-in, has the person sign in at the provider in a browser, reads the
// address the browser landed on from stdin and finishes the sign-in with it.
// It returns the client, whose cookie jar holds the sign-in's state cookie,
// and the callback's answer (a session, or a second factor to give).
//
// The browser does not bring the code to the server itself: the server only
// finishes a sign-in for the client holding the state cookie set at start,
// so a callback address sent to someone else cannot sign them in as its
// sender. The browser never had that cookie; this command does.
func ssoSignin(ctx context.Context, e *env, cc *config.Client, tenant string) (*client.Client, json.RawMessage, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, nil, err
	}
	cl, err := client.New(client.Options{Addr: cc.Addr, CACert: cc.CACert, InsecureSkipVerify: cc.InsecureSkipVerify, Jar: jar})
	if err != nil {
		return nil, nil, &exitError{code: ExitUsage, err: err}
	}
	var start api.SSOStart
	if err := cl.Do(ctx, http.MethodGet, "/api/v1/auth/sso/"+pathEscape(tenant)+"/start", url.Values{"redirect": {"false"}}, nil, &start); err != nil {
		return nil, nil, err
	}
	au, err := url.Parse(start.AuthURL)
	if err != nil || au.Host == "" {
		return nil, nil, fmt.Errorf("the server answered an unusable provider address %q", start.AuthURL)
	}
	fmt.Fprintf(e.stderr, `Single sign-on for %s:

  1. Open this address in a browser and sign in at your provider:

     %s

  2. The browser then lands on this server's single sign-on page, which refuses
     it: the sign-in belongs to this command. Copy that page's full address from
     the browser's address bar and paste it here (within %d minutes).

`, tenant, start.AuthURL, int(sso.PendingTTL/time.Minute))
	line, err := readLine(ctx, e, "Address: ")
	if err != nil {
		return nil, nil, err
	}
	q, err := callbackQuery(line, au.Query().Get("state"))
	if err != nil {
		return nil, nil, err
	}
	q.Set("want_token", "true")
	var raw json.RawMessage
	if err := cl.Do(ctx, http.MethodGet, "/api/v1/auth/sso/callback", q, nil, &raw); err != nil {
		return nil, nil, err
	}
	return cl, raw, nil
}

// callbackQuery takes the code and state out of the address the browser
// landed on. An error from the provider, an address without a code or one
// of another sign-in (its state is not wantState) is refused here, with a
// clearer message than the server's.
func callbackQuery(pasted, wantState string) (url.Values, error) {
	pasted = strings.TrimSpace(pasted)
	if pasted == "" {
		return nil, usageErr("no address given: paste the full address of the page the browser landed on")
	}
	u, err := url.Parse(pasted)
	if err != nil {
		return nil, usageErr("the pasted text is not an address: %v", err)
	}
	q := u.Query()
	if pe := q.Get("error"); pe != "" {
		msg := pe
		if d := q.Get("error_description"); d != "" {
			msg += ": " + d
		}
		return nil, &exitError{code: ExitAuth, err: fmt.Errorf("the provider refused the sign-in (%s)", msg)}
	}
	if q.Get("code") == "" || q.Get("state") == "" {
		return nil, usageErr("the address has no code and state: paste the full address of the page the browser landed on after signing in")
	}
	if wantState != "" && subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(wantState)) != 1 {
		return nil, &exitError{code: ExitAuth, err: errors.New("the address belongs to another sign-in (its state differs); run the command again and paste the address its own link leads to")}
	}
	return url.Values{"code": {q.Get("code")}, "state": {q.Get("state")}}, nil
}

// readLine reads one line of stdin, prompting on a terminal. It gives up
// when ctx ends (Ctrl-C while waiting for a paste), leaving the read behind.
func readLine(ctx context.Context, e *env, prompt string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, prompt)
	}
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err == io.EOF {
			err = nil
		}
		done <- result{line, err}
	}()
	select {
	case r := <-done:
		return strings.TrimSpace(r.line), r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func logoutCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "logout", Short: "End the session of CUSTODIA_TOKEN", Args: exactArgs(0, "no arguments")}
	return apiCmd(e, c, func([]string) (request, error) {
		return request{method: http.MethodPost, path: "/api/v1/me/signout"}, nil
	}, nil, func([]string) string { return "Signed out." })
}

func whoamiCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "whoami", Short: "Show who the token belongs to and what it may do", Args: exactArgs(0, "no arguments")}
	return apiCmd(e, c, func([]string) (request, error) {
		return request{method: http.MethodGet, path: "/api/v1/me"}, nil
	}, func(raw json.RawMessage) error {
		m, err := decodeInto[api.Me](raw)
		if err != nil {
			return err
		}
		fields(e, "Kind", m.Kind, "ID", m.ID, "Tenant", m.TenantID, "Role", m.Role, "Scopes", strings.Join(m.Scopes, ", "),
			"MFA", yesNo(m.MFA), "Via", m.Via, "Permissions", dash(strings.Join(m.Permissions, ", ")))
		return nil
	}, nil)
}

func printMember(e *env, m *api.Member) {
	fields(e, "ID", m.ID, "Email", m.Email, "Name", m.Name, "Role", m.Role, "Status", m.Status, "MFA", yesNo(m.MFA),
		"SSO", yesNo(m.SSO), "Last sign-in", fmtTime(m.LastSigninAt), "Created", fmtTime(m.CreatedAt))
	if !m.LockedUntil.IsZero() {
		fields(e, "Locked until", fmtTime(m.LockedUntil))
	}
	if !m.OffboardedAt.IsZero() {
		fields(e, "Offboarded", fmtTime(m.OffboardedAt))
	}
}

func printInvite(e *env, raw json.RawMessage) error {
	r, err := decodeInto[api.InviteResponse](raw)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Invitation token: %s\n(member %s, %s as %s; expires %s; shown only now: give it to %s, who runs \"custodia member accept\")\n",
		r.InviteToken, r.Member.ID, r.Member.Email, r.Member.Role, fmtTime(r.ExpiresAt), r.Member.Email)
	return nil
}

// inviteOwnerCmd is "tenant invite-owner": operators invite a tenant's first
// owner; from then on the tenant manages its own members.
func inviteOwnerCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "invite-owner TENANT", Short: "Invite a tenant's first owner (the invitation token is printed once)",
		Args: exactArgs(1, "a tenant ID or slug")}
	var email, name string
	c.Flags().StringVar(&email, "email", "", "the owner's email")
	c.Flags().StringVar(&name, "name", "", "the owner's name")
	return apiCmd(e, c, func(args []string) (request, error) {
		if email == "" {
			return request{}, usageErr("--email is required")
		}
		return request{method: http.MethodPost, path: "/api/v1/tenants/" + pathEscape(args[0]) + "/owner-invite",
			body: api.InviteOwnerRequest{Email: email, Name: name}}, nil
	}, func(raw json.RawMessage) error { return printInvite(e, raw) }, nil)
}

func memberCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "member", Short: "Invite, list, change and offboard a tenant's members; accept an invitation; rotation flags"}

	accept := &cobra.Command{Use: "accept TOKEN", Short: "Accept an invitation and set a password (read from stdin with --password-stdin)",
		Args: exactArgs(1, "the invitation token")}
	mkAccept := clientFlags(accept, e)
	var acceptName string
	var pwStdin bool
	accept.Flags().StringVar(&acceptName, "name", "", "your name")
	accept.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the new password from the first line of stdin")
	accept.RunE = func(c *cobra.Command, args []string) error {
		_, cc, err := mkAccept()
		if err != nil {
			return err
		}
		pw, err := readPassword(e, pwStdin, "New password: ")
		if err != nil {
			return err
		}
		cl, err := publicClient(cc)
		if err != nil {
			return err
		}
		var raw json.RawMessage
		in := identity.AcceptInput{Token: args[0], Name: acceptName, Password: pw}
		if err := cl.Do(c.Context(), http.MethodPost, "/api/v1/auth/accept", nil, in, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			m, err := decodeInto[api.Member](raw)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Welcome: %s is now an active %s (member %s, tenant sign-in: custodia login).\n", m.Email, m.Role, m.ID)
			return nil
		})
	}

	list := &cobra.Command{Use: "list", Short: "List the tenant's members", Args: exactArgs(0, "no arguments")}
	listBase := tenantFlag(list)
	apiCmd(e, list, func([]string) (request, error) {
		b, err := listBase()
		return request{method: http.MethodGet, path: b + "/members"}, err
	}, listTable(e, "ID EMAIL NAME ROLE STATUS MFA", func(r *api.MemberList, row func(...string)) {
		for _, m := range r.Members {
			row(m.ID, m.Email, dash(m.Name), m.Role, m.Status, yesNo(m.MFA))
		}
	}), nil)

	memberText := func(raw json.RawMessage) error {
		m, err := decodeInto[api.Member](raw)
		if err != nil {
			return err
		}
		printMember(e, m)
		return nil
	}

	show := &cobra.Command{Use: "show MEMBER", Short: "Show a member (by ID or email)", Args: exactArgs(1, "a member ID or email")}
	showBase := tenantFlag(show)
	apiCmd(e, show, func(args []string) (request, error) {
		b, err := showBase()
		return request{method: http.MethodGet, path: b + "/members/" + pathEscape(args[0])}, err
	}, memberText, nil)

	invite := &cobra.Command{Use: "invite", Short: "Invite a person (the invitation token is printed once)", Args: exactArgs(0, "no arguments")}
	inviteBase := tenantFlag(invite)
	var in identity.InviteInput
	invite.Flags().StringVar(&in.Email, "email", "", "their email")
	invite.Flags().StringVar(&in.Role, "role", "", "owner, admin, member or auditor")
	invite.Flags().StringVar(&in.Name, "name", "", "their name")
	apiCmd(e, invite, func([]string) (request, error) {
		b, err := inviteBase()
		if err != nil {
			return request{}, err
		}
		if in.Email == "" || in.Role == "" {
			return request{}, usageErr("--email and --role are required")
		}
		return request{method: http.MethodPost, path: b + "/members", body: in}, nil
	}, func(raw json.RawMessage) error { return printInvite(e, raw) }, nil)

	role := &cobra.Command{Use: "role MEMBER ROLE", Short: "Change a member's role (owner, admin, member, auditor)",
		Args: exactArgs(2, "a member and a role")}
	roleBase := tenantFlag(role)
	apiCmd(e, role, func(args []string) (request, error) {
		b, err := roleBase()
		return request{method: http.MethodPost, path: b + "/members/" + pathEscape(args[0]) + "/role", body: api.RoleRequest{Role: args[1]}}, err
	}, memberText, nil)

	offboard := &cobra.Command{
		Use:   "offboard MEMBER",
		Short: "Offboard a member in one action and print the blast-radius report",
		Long: `Offboard a member: their sessions, tokens and grants are revoked at once, what
they owned (robots) moves to --transfer-to, and the report says what they
could reach and what they actually revealed. Read it again later with
"custodia member report ID".`,
		Args: exactArgs(1, "a member ID or email"),
	}
	offBase := tenantFlag(offboard)
	var off access.OffboardInput
	offboard.Flags().StringVar(&off.TransferTo, "transfer-to", "", "member (ID or email) who takes over what they owned")
	offboard.Flags().StringVar(&off.Reason, "reason", "", "why (recorded in the report and the audit log)")
	apiCmd(e, offboard, func(args []string) (request, error) {
		b, err := offBase()
		return request{method: http.MethodPost, path: b + "/members/" + pathEscape(args[0]) + "/offboard", body: off}, err
	}, func(raw json.RawMessage) error {
		r, err := decodeInto[access.Report](raw)
		if err != nil {
			return err
		}
		fmt.Fprint(e.stdout, r.Text())
		return nil
	}, nil)

	flags := &cobra.Command{
		Use:   "rotation-flags",
		Short: "List credentials marked rotation-needed by offboarding",
		Long: `List the credentials whose secrets should be changed where they are used (the
bank, the tax portal) because a member who was offboarded could reveal them or
did. FLAGGED-BY is the offboarding report that marked them: read it with
"custodia member report ID".`,
		Args: exactArgs(0, "no arguments"),
	}
	tenantSub(e, flags, func(b string, _ []string) (request, error) {
		return request{method: http.MethodGet, path: b + "/rotation-flags"}, nil
	}, listTable(e, "RESOURCE FLAGGED FLAGGED-BY REASON", func(r *api.RotationFlags, row func(...string)) {
		for _, f := range r.Flags {
			row(f.ResourceType+":"+f.ResourceID, fmtTime(f.FlaggedAt), dash(f.Source), dash(f.Reason))
		}
	}), nil)

	c.AddCommand(accept, list, show, invite, role, offboard, memberReportCmd(e), flags)
	return c
}

func memberReportCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "report REPORT_ID", Short: "Print an offboarding report (text, or JSON with --format json or -o json)",
		Args: exactArgs(1, "a report ID")}
	mk := clientFlags(c, e)
	base := tenantFlag(c)
	var format string
	c.Flags().StringVar(&format, "format", "", "text (default) or json")
	c.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		b, err := base()
		if err != nil {
			return err
		}
		switch format {
		case "":
			format = "text"
			if cc.Output == "json" {
				format = "json"
			}
		case "text", "json":
		default:
			return usageErr("--format must be text or json")
		}
		path := b + "/offboarding/" + pathEscape(args[0])
		if format == "text" {
			return cl.Download(c.Context(), path, url.Values{"format": {"text"}}, e.stdout)
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodGet, path, nil, nil, &raw); err != nil {
			return err
		}
		cc.Output = "json"
		return output(e.stdout, cc, raw, nil)
	}
	return c
}

// tokenFlags registers --name, --ttl and --scope for a new token.
func tokenFlags(c *cobra.Command, in *identity.TokenInput, what string) {
	c.Flags().StringVar(&in.Name, "name", "", "what the token is for")
	c.Flags().StringVar(&in.TTL, "ttl", "", "lifetime, such as 720h (default: 30 days)")
	c.Flags().StringSliceVar(&in.Scopes, "scope", nil, "a permission the token is limited to (repeatable; default: everything "+what+" may do)")
}

func printNewToken(e *env, raw json.RawMessage) error {
	r, err := decodeInto[api.NewAPIToken](raw)
	if err != nil {
		return err
	}
	// The same facts as robot create gives, after the token alone on its
	// first line (scripts take that line).
	fmt.Fprintf(e.stdout, "%s\n(id %s, scopes %s, expires %s; shown only now)\n", r.Token, r.Info.ID, dash(strings.Join(r.Info.Scopes, ",")),
		fmtTime(r.Info.ExpiresAt))
	if r.Info.PendingApproval {
		fmt.Fprintf(e.stdout, "It works only once another owner or admin approves it (robot dual control):\n"+
			"  custodia robot approve-token %s %s\n", r.Info.SubjectID, r.Info.ID)
	}
	return nil
}

func printTokens(e *env, raw json.RawMessage) error {
	r, err := decodeInto[api.APITokenList](raw)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, t := range r.Tokens {
		approval := "-"
		switch {
		case t.PendingApproval:
			approval = "pending"
		case t.ApprovedBy != "":
			approval = "by " + t.ApprovedBy
		}
		rows = append(rows, []string{t.ID, t.Name, t.SubjectType + ":" + t.SubjectID, dash(strings.Join(t.Scopes, ",")),
			fmtTime(t.ExpiresAt), fmtTime(t.LastUsedAt), fmtTime(t.RevokedAt), approval})
	}
	return table(e, "ID NAME SUBJECT SCOPES EXPIRES LAST-USED REVOKED APPROVAL", rows)
}

// onCommandLine reports whether the flag name was given on c's command
// line. It is read before clientFlags fills unset flags from CUSTODIA_*
// variables and the config file, after which Changed no longer tells.
func onCommandLine(c *cobra.Command, name string) func() bool {
	var given bool
	c.PreRunE = func(c *cobra.Command, _ []string) error {
		given = c.Flags().Changed(name)
		return nil
	}
	return func() bool { return given }
}

func tokenCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke your own API tokens; admins: any token of the tenant",
		Long: `Create, list and revoke your own API tokens. Without --all or --tenant these
commands only touch your own tokens, whatever CUSTODIA_TENANT says.

Owners and admins reach every token of the tenant, people's and robots'
alike, by saying so on the command line:

    custodia token list --all --tenant acme       # every token of the tenant
    custodia token revoke tok_... --tenant acme   # revoke any token of the tenant

"token list --all" takes the tenant from --tenant or CUSTODIA_TENANT;
"token revoke" revokes someone else's token only with --tenant given on the
command line. Operators' tokens: custodia operator token.`,
	}

	create := &cobra.Command{Use: "create", Short: "Create a personal API token (printed once)", Args: exactArgs(0, "no arguments")}
	var in identity.TokenInput
	tokenFlags(create, &in, "you")
	apiCmd(e, create, func([]string) (request, error) {
		if in.Name == "" {
			return request{}, usageErr("--name is required")
		}
		return request{method: http.MethodPost, path: "/api/v1/me/tokens", body: in}, nil
	}, func(raw json.RawMessage) error { return printNewToken(e, raw) }, nil)

	list := &cobra.Command{
		Use:   "list",
		Short: "List your API tokens, or with --all every token of the tenant",
		Long: `List your own API tokens. With --all, list every token of the tenant
instead, people's and robots' (owners, admins and auditors), the tenant taken
from --tenant or CUSTODIA_TENANT, or else your token's own. --tenant without
--all is refused rather than guessed at.`,
		Args: exactArgs(0, "no arguments"),
	}
	var all bool
	list.Flags().BoolVar(&all, "all", false, "every token of the tenant (people and robots), not only yours")
	listBase := tenantFlag(list)
	listTenantGiven := onCommandLine(list, "tenant")
	apiCmd(e, list, func([]string) (request, error) {
		if !all {
			if listTenantGiven() {
				return request{}, usageErr("--tenant goes with --all: \"token list --all --tenant T\" lists every token of the tenant; without both, your own")
			}
			return request{method: http.MethodGet, path: "/api/v1/me/tokens"}, nil
		}
		b, err := listBase()
		return request{method: http.MethodGet, path: b + "/tokens"}, err
	}, func(raw json.RawMessage) error { return printTokens(e, raw) }, nil)

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke one of your tokens at once, or with --tenant any token of the tenant",
		Long: `Revoke one of your own tokens at once. With --tenant, revoke any token of
that tenant, a person's or a robot's (owners and admins). --tenant is read
only from the command line, never from CUSTODIA_TENANT: revoking someone
else's token is always spelled out.`,
		Args: exactArgs(1, "a token ID"),
	}
	var revokeTenant string
	revoke.Flags().StringVar(&revokeTenant, "tenant", "", "revoke any token of this tenant (ID or slug), not only yours; command line only")
	revokeTenantGiven := onCommandLine(revoke, "tenant")
	apiCmd(e, revoke, func(args []string) (request, error) {
		if !revokeTenantGiven() {
			return request{method: http.MethodDelete, path: "/api/v1/me/tokens/" + pathEscape(args[0])}, nil
		}
		if revokeTenant == "" {
			return request{}, usageErr("--tenant needs a tenant ID or slug")
		}
		return request{method: http.MethodDelete, path: "/api/v1/tenants/" + pathEscape(revokeTenant) + "/tokens/" + pathEscape(args[0])}, nil
	}, nil, func(args []string) string { return "Revoked " + args[0] })

	c.AddCommand(create, list, revoke)
	return c
}

func printRecoveryCodes(e *env, codes []string) {
	fmt.Fprintln(e.stdout, "Recovery codes (each works once; shown only now, keep them offline):")
	for _, rc := range codes {
		fmt.Fprintln(e.stdout, "  "+rc)
	}
}

func mfaCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "mfa", Short: "Enroll a second factor (authenticator app); replace recovery codes",
		Long: `Enroll an authenticator app as your second factor and replace your recovery
codes. Passkeys cannot be registered from a terminal: WebAuthn needs a browser
to reach the authenticator, so they are registered from one (the API's
POST /api/v1/me/mfa/passkeys and .../passkeys/finish).`}

	enroll := &cobra.Command{Use: "totp-enroll", Short: "Start enrolling an authenticator app: prints its secret once",
		Long: `Start enrolling an authenticator app. The secret and its otpauth:// URL are
printed once: add them to the app, then finish with
"custodia mfa totp-confirm --enroll-token TOKEN --code CODE".`,
		Args: exactArgs(0, "no arguments")}
	apiCmd(e, enroll, func([]string) (request, error) {
		return request{method: http.MethodPost, path: "/api/v1/me/mfa/totp"}, nil
	}, func(raw json.RawMessage) error {
		r, err := decodeInto[api.TOTPBegin](raw)
		if err != nil {
			return err
		}
		fields(e, "Secret", r.Secret, "URL", r.URL, "Enroll token", r.EnrollToken, "Expires", fmtTime(r.ExpiresAt))
		fmt.Fprintln(e.stdout, "Add the secret to your app, then: custodia mfa totp-confirm --enroll-token TOKEN --code CODE")
		return nil
	}, nil)

	confirm := &cobra.Command{Use: "totp-confirm", Short: "Confirm the app with a first code; prints recovery codes once", Args: exactArgs(0, "no arguments")}
	var in api.TOTPConfirm
	confirm.Flags().StringVar(&in.EnrollToken, "enroll-token", "", "the token totp-enroll printed")
	confirm.Flags().StringVar(&in.Code, "code", "", "a current code from the app")
	apiCmd(e, confirm, func([]string) (request, error) {
		if in.EnrollToken == "" || in.Code == "" {
			return request{}, usageErr("--enroll-token and --code are required")
		}
		return request{method: http.MethodPost, path: "/api/v1/me/mfa/totp/confirm", body: in}, nil
	}, func(raw json.RawMessage) error {
		r, err := decodeInto[api.RecoveryCodes](raw)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "The authenticator app is enrolled.")
		if len(r.RecoveryCodes) > 0 {
			printRecoveryCodes(e, r.RecoveryCodes)
		}
		return nil
	}, nil)

	recovery := &cobra.Command{Use: "recovery-codes", Short: "Replace your recovery codes (needs an app code); prints the new ones once",
		Long: `Replace your recovery codes, for instance when they were lost or used up: give
a current code from the authenticator app. The new codes are printed once, and
the old ones stop working at once.`,
		Args: exactArgs(0, "no arguments")}
	var rin api.CodeRequest
	recovery.Flags().StringVar(&rin.Code, "code", "", "a current code from the authenticator app")
	apiCmd(e, recovery, func([]string) (request, error) {
		if rin.Code == "" {
			return request{}, usageErr("--code is required")
		}
		return request{method: http.MethodPost, path: "/api/v1/me/mfa/recovery-codes", body: rin}, nil
	}, func(raw json.RawMessage) error {
		r, err := decodeInto[api.RecoveryCodes](raw)
		if err != nil {
			return err
		}
		if len(r.RecoveryCodes) == 0 {
			return errors.New("the server answered without recovery codes")
		}
		printRecoveryCodes(e, r.RecoveryCodes)
		fmt.Fprintln(e.stderr, "WARNING: your previous recovery codes no longer work; keep these instead.")
		return nil
	}, nil)

	c.AddCommand(enroll, confirm, recovery)
	return c
}
