package cli

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/spf13/cobra"

	"github.com/custodia-project/custodia/internal/api"
)

func sessionCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "session", Short: "List your sign-in sessions (end the current one with custodia logout)"}

	list := &cobra.Command{
		Use:   "list",
		Short: "List your sessions, past ones included; CURRENT marks the one CUSTODIA_TOKEN is",
		Long: `List your sessions, oldest first, ended ones included (REVOKED says when).
CURRENT says yes for the session the token in use belongs to; with a personal
API token none is.`,
		Args: exactArgs(0, "no arguments"),
	}
	apiCmd(e, list, func([]string) (request, error) {
		return request{method: http.MethodGet, path: "/api/v1/me/sessions"}, nil
	}, listTable(e, "ID CURRENT METHOD MFA SOURCE-IP CREATED LAST-SEEN EXPIRES REVOKED USER-AGENT", func(r *api.SessionList, row func(...string)) {
		for _, s := range r.Sessions {
			row(s.ID, yesNo(s.Current), s.Method, yesNo(s.MFA), dash(s.SourceIP), fmtTime(s.CreatedAt),
				fmtTime(s.LastSeenAt), fmtTime(s.ExpiresAt), fmtTime(s.RevokedAt), dash(s.UserAgent))
		}
	}), nil)

	c.AddCommand(list)
	return c
}

func notificationCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "notification", Short: "Read your notifications: requests, offboardings, reviews, sign-in alerts"}

	list := &cobra.Command{Use: "list", Short: "List your latest 100 notifications, newest first", Args: exactArgs(0, "no arguments")}
	mk := clientFlags(list, e)
	var unread bool
	list.Flags().BoolVar(&unread, "unread", false, "only those not marked read")
	list.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		var r api.NotificationList
		if err := cl.Do(c.Context(), http.MethodGet, "/api/v1/me/notifications", nil, nil, &r); err != nil {
			return err
		}
		// The API has no filter: --unread filters here, for -o json as well.
		if unread {
			r.Notifications = slices.DeleteFunc(r.Notifications, func(n api.Notification) bool { return !n.ReadAt.IsZero() })
		}
		if r.Notifications == nil {
			r.Notifications = []api.Notification{}
		}
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			var rows [][]string
			for _, n := range r.Notifications {
				rows = append(rows, []string{n.ID, fmtTime(n.CreatedAt), n.Kind, fmtTime(n.ReadAt), n.Subject})
			}
			return table(e, "ID CREATED KIND READ SUBJECT", rows)
		})
	}

	read := &cobra.Command{Use: "read ID", Short: "Mark a notification read", Args: exactArgs(1, "a notification ID")}
	apiCmd(e, read, func(args []string) (request, error) {
		return request{method: http.MethodPost, path: "/api/v1/me/notifications/" + pathEscape(args[0]) + "/read"}, nil
	}, nil, func(args []string) string { return "Marked " + args[0] + " read" })

	c.AddCommand(list, read)
	return c
}
