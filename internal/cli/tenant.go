package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/client"
	"github.com/custodia-project/custodia/internal/config"
)

type clientMaker = func() (*client.Client, *config.Client, error)

func pathEscape(s string) string { return url.PathEscape(s) }

func printTenant(e *env, raw json.RawMessage) error {
	var t api.Tenant
	if err := json.Unmarshal(raw, &t); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ID:       %s\nSlug:     %s\nName:     %s\nStatus:   %s\nCreated:  %s\n",
		t.ID, t.Slug, t.Name, t.Status, t.CreatedAt.Format(time.RFC3339))
	return nil
}

// tenantCall is a tenant subcommand taking the tenant as its one argument.
func tenantCall(e *env, use, short, method, suffix string, body func() any, text func(json.RawMessage) error) *cobra.Command {
	c := &cobra.Command{Use: use + " TENANT", Short: short, Args: exactArgs(1, "a tenant ID or slug")}
	mk := clientFlags(c, e)
	c.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		var b any
		if body != nil {
			b = body()
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), method, "/api/v1/tenants/"+pathEscape(args[0])+suffix, nil, b, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error { return text(raw) })
	}
	return c
}

func tenantCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "tenant", Short: "Create, list, show, suspend, re-key and shred tenants"}

	create := &cobra.Command{Use: "create", Short: "Create a tenant and its first key", Args: exactArgs(0, "no arguments")}
	mk := clientFlags(create, e)
	var in struct{ slug, name string }
	create.Flags().StringVar(&in.slug, "slug", "", "short unique name: lowercase letters, digits and hyphens")
	create.Flags().StringVar(&in.name, "name", "", "display name")
	create.RunE = func(c *cobra.Command, args []string) error {
		if in.slug == "" || in.name == "" {
			return usageErr("--slug and --name are required")
		}
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodPost, "/api/v1/tenants", nil, map[string]string{"slug": in.slug, "name": in.name}, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error { return printTenant(e, raw) })
	}

	list := &cobra.Command{Use: "list", Short: "List tenants", Args: exactArgs(0, "no arguments")}
	mkList := clientFlags(list, e)
	var after string
	var limit int
	list.Flags().StringVar(&after, "after", "", "show tenants after this ID (paging)")
	list.Flags().IntVar(&limit, "limit", 100, "page size")
	list.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mkList()
		if err != nil {
			return err
		}
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		if after != "" {
			q.Set("after", after)
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodGet, "/api/v1/tenants", q, nil, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			var r api.TenantList
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSLUG\tNAME\tSTATUS")
			for _, t := range r.Tenants {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Slug, t.Name, t.Status)
			}
			if r.Next != "" {
				fmt.Fprintf(tw, "(more: --after %s)\n", r.Next)
			}
			return tw.Flush()
		})
	}

	var reason string
	suspend := tenantCall(e, "suspend", "Suspend a tenant", http.MethodPost, "/suspend",
		func() any { return api.StatusRequest{Reason: reason} }, func(raw json.RawMessage) error { return printTenant(e, raw) })
	suspend.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	resume := tenantCall(e, "resume", "Resume a suspended tenant", http.MethodPost, "/resume",
		func() any { return api.StatusRequest{Reason: reason} }, func(raw json.RawMessage) error { return printTenant(e, raw) })
	resume.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")

	var confirm string
	shred := tenantCall(e, "shred", "Crypto-shred a tenant: destroy every key (irreversible)", http.MethodPost, "/shred",
		func() any { return api.ShredRequest{Confirm: confirm} }, func(raw json.RawMessage) error { return printTenant(e, raw) })
	shred.Flags().StringVar(&confirm, "confirm", "", "repeat the tenant's slug to confirm")

	printKeys := func(raw json.RawMessage) error {
		var r api.KeyList
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tSTATE\tRECORDS\tCREATED")
		for _, k := range r.Keys {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", k.Version, k.State, k.Records, k.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}

	c.AddCommand(create, list,
		tenantCall(e, "show", "Show a tenant", http.MethodGet, "", nil, func(raw json.RawMessage) error { return printTenant(e, raw) }),
		suspend, resume, shred, inviteOwnerCmd(e),
		tenantCall(e, "keys", "List key versions and the records sealed under each", http.MethodGet, "/keys", nil, printKeys),
		tenantCall(e, "rotate-key", "Make a new key version and re-wrap old records in the background", http.MethodPost, "/keys/rotate", nil,
			func(raw json.RawMessage) error {
				var r api.RotateResponse
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "Key version %d is active. Re-wrap job %s: %d of %d records (watch: custodia job show %s)\n",
					r.Version, r.Job.ID, r.Job.Done, r.Job.Total, r.Job.ID)
				return nil
			}),
		tenantCall(e, "public-key", "Show the tenant's HPKE public key for sealed submissions", http.MethodGet, "/public-key", nil,
			func(raw json.RawMessage) error {
				var r api.PublicKey
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "Tenant:  %s\nVersion: %d\nSuite:   %s\nKey:     %s\n", r.TenantID, r.Version, r.Suite, r.PublicKey)
				return nil
			}),
	)
	return c
}

func printJob(e *env, j api.Job) {
	fmt.Fprintf(e.stdout, "ID:       %s\nKind:     %s\nTenant:   %s\nState:    %s\nProgress: %d of %d\n", j.ID, j.Kind, j.TenantID, j.State, j.Done, j.Total)
	if j.Error != "" {
		fmt.Fprintf(e.stdout, "Error:    %s\n", j.Error)
	}
}

func jobCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "job", Short: "Watch background jobs (key re-wraps)"}
	show := &cobra.Command{Use: "show ID", Short: "Show a job and its progress", Args: exactArgs(1, "a job ID")}
	mk := clientFlags(show, e)
	show.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodGet, "/api/v1/jobs/"+pathEscape(args[0]), nil, nil, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			var j api.Job
			if err := json.Unmarshal(raw, &j); err != nil {
				return err
			}
			printJob(e, j)
			return nil
		})
	}
	list := &cobra.Command{Use: "list", Short: "List recent jobs", Args: exactArgs(0, "no arguments")}
	mkList := clientFlags(list, e)
	var tenant string
	list.Flags().StringVar(&tenant, "tenant", "", "only this tenant's jobs (tenant ID)")
	list.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mkList()
		if err != nil {
			return err
		}
		q := url.Values{}
		if tenant != "" {
			q.Set("tenant", tenant)
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodGet, "/api/v1/jobs", q, nil, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			var r api.JobList
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tTENANT\tSTATE\tPROGRESS")
			for _, j := range r.Jobs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\n", j.ID, j.Kind, j.TenantID, j.State, j.Done, j.Total)
			}
			return tw.Flush()
		})
	}
	c.AddCommand(show, list)
	return c
}
