package cli

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/custodia-project/custodia/internal/api"
	cv "github.com/custodia-project/custodia/internal/vault"
)

func printBreakGlass(e *env, raw json.RawMessage) error {
	b, err := decodeInto[cv.BreakGlass](raw)
	if err != nil {
		return err
	}
	fields(e, "ID", b.ID, "Operator", b.OperatorID, "Credential", b.CredentialID, "Reason", b.Reason, "Status", b.Status,
		"Open", yesNo(b.Open), "Minutes", strconv.Itoa(b.Minutes), "Decided by", dash(b.DecidedBy), "Expires", fmtTime(b.ExpiresAt),
		"Reveals", strconv.Itoa(b.Reveals))
	return nil
}

func breakGlassCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "breakglass",
		Short: "Operator staff: reveal a tenant's credential in an emergency, when the tenant's policy allows it",
		Long: `Break-glass lets the operator's staff reveal one of a tenant's credentials in an
emergency. The tenant decides (custodia policy set --break-glass): "off" (the
default) refuses every request, "approval" waits for one of its admins to
approve, "notify" opens at once. A pending request expires unanswered after
the policy's request_ttl_hours (24 by default); an approved one is open for the
policy's break_glass_minutes as they are when it is approved. Every request,
decision (with its optional --reason) and reveal is in the tenant's audit log
and the operator's, and the tenant's admins are notified.`,
	}
	ask := &cobra.Command{Use: "request", Short: "Operators: ask to reveal one credential, with a reason", Args: exactArgs(0, "no arguments")}
	var in cv.BreakGlassInput
	ask.Flags().StringVar(&in.Credential, "credential", "", "the credential's name or ID")
	ask.Flags().StringVar(&in.Reason, "reason", "", "why (the tenant sees it; both logs record it)")
	tenantSub(e, ask, func(b string, _ []string) (request, error) {
		if in.Credential == "" || in.Reason == "" {
			return request{}, usageErr("--credential and --reason are required")
		}
		return request{method: http.MethodPost, path: b + "/break-glass", body: in}, nil
	}, func(raw json.RawMessage) error { return printBreakGlass(e, raw) }, nil)

	list := &cobra.Command{Use: "list", Short: "A tenant's break-glass requests, newest first", Args: exactArgs(0, "no arguments")}
	tenantSub(e, list, func(b string, _ []string) (request, error) {
		return request{method: http.MethodGet, path: b + "/break-glass"}, nil
	}, listTable(e, "ID OPERATOR CREDENTIAL STATUS OPEN EXPIRES REVEALS", func(l *api.BreakGlassList, row func(...string)) {
		for _, x := range l.Requests {
			row(x.ID, x.OperatorID, x.CredentialID, x.Status, yesNo(x.Open), fmtTime(x.ExpiresAt), strconv.Itoa(x.Reveals))
		}
	}), nil)

	sub := func(verb, short string, print func(*env, json.RawMessage) error) *cobra.Command {
		s := &cobra.Command{Use: verb + " ID", Short: short, Args: exactArgs(1, "a break-glass request ID")}
		return tenantSub(e, s, func(b string, args []string) (request, error) {
			return request{method: http.MethodPost, path: b + "/break-glass/" + pathEscape(args[0]) + "/" + verb}, nil
		}, func(raw json.RawMessage) error { return print(e, raw) }, nil)
	}
	// decide is approve or deny, with an optional reason for both logs.
	decide := func(verb, short string) *cobra.Command {
		d := &cobra.Command{Use: verb + " ID", Short: short, Args: exactArgs(1, "a break-glass request ID")}
		var reason string
		d.Flags().StringVar(&reason, "reason", "", "why (optional; both logs record it)")
		return tenantSub(e, d, func(b string, args []string) (request, error) {
			r := request{method: http.MethodPost, path: b + "/break-glass/" + pathEscape(args[0]) + "/" + verb}
			if reason != "" {
				r.body = cv.BreakGlassDecision{Reason: reason}
			}
			return r, nil
		}, func(raw json.RawMessage) error { return printBreakGlass(e, raw) }, nil)
	}
	c.AddCommand(ask, list,
		decide("approve", "Tenant admins: approve a pending request (it opens for the policy's minutes); it expires unanswered after the policy's request_ttl_hours"),
		decide("deny", "Tenant admins: deny a pending request"),
		sub("reveal", "Operators: reveal the credential of an open request (audited in both logs; the tenant is told)", printSecret))
	return c
}
