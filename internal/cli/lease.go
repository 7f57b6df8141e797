package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/custodia-project/custodia/internal/api"
)

// leaseCmd wraps the lease routes: a robot renews, re-reads or gives back
// what it fetched and lists its own leases; owners, admins and auditors
// list who holds what.
func leaseCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "lease", Short: "Leases of fetched secrets: list, re-read, renew, revoke"}

	list := &cobra.Command{Use: "list", Short: "Live leases of the tenant (owners, admins and auditors; a robot sees its own), or of one credential",
		Args: exactArgs(0, "no arguments")}
	var cred string
	list.Flags().StringVar(&cred, "credential", "", "only the leases of this credential (its name or ID)")
	tenantTable(e, list, func(b string, _ []string) (request, error) {
		q := url.Values{}
		if cred != "" {
			q.Set("credential", cred)
		}
		return request{method: http.MethodGet, path: b + "/leases", query: q}, nil
	}, "ID CREDENTIAL VERSION HOLDER PURPOSE EXPIRES", func(l *api.LeaseList, who func(string) string, row func(...string)) {
		for _, x := range l.Leases {
			row(x.ID, who(x.CredentialID), fmt.Sprint(x.Version), who(x.HolderID), x.Purpose, fmtTime(x.ExpiresAt))
		}
	})

	get := &cobra.Command{Use: "get ID", Short: "The holder reads its leased secret again while the lease lives",
		Args: exactArgs(1, "a lease ID")}
	tenantSub(e, get, func(b string, args []string) (request, error) {
		return request{method: http.MethodGet, path: b + "/leases/" + pathEscape(args[0])}, nil
	}, func(raw json.RawMessage) error { return printSecret(e, raw) }, nil)

	renew := &cobra.Command{Use: "renew ID", Short: "The holder extends its lease: --ttl from now (default: the lifetime it was granted; at most 1h)",
		Args: exactArgs(1, "a lease ID")}
	var ttl string
	renew.Flags().StringVar(&ttl, "ttl", "", "the lease's new lifetime from now, e.g. 15m (default: the lifetime it was first granted; at most 1h)")
	tenantSub(e, renew, func(b string, args []string) (request, error) {
		return request{method: http.MethodPost, path: b + "/leases/" + pathEscape(args[0]) + "/renew", body: api.RenewRequest{TTL: ttl}}, nil
	}, func(raw json.RawMessage) error {
		l, err := decodeInto[api.Lease](raw)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Lease %s until %s\n", l.ID, fmtTime(l.ExpiresAt))
		return nil
	}, nil)

	revoke := &cobra.Command{Use: "revoke ID", Short: "End a lease at once (its holder, or whoever manages grants)",
		Args: exactArgs(1, "a lease ID")}
	tenantSub(e, revoke, func(b string, args []string) (request, error) {
		return request{method: http.MethodDelete, path: b + "/leases/" + pathEscape(args[0])}, nil
	}, nil, func(args []string) string { return "Revoked lease " + args[0] })

	c.AddCommand(list, get, renew, revoke)
	return c
}
