package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/client"
)

// directory turns the IDs a table would show into what people recognise:
// a member's email, a robot's name, a credential's name. It asks the
// server only when a table first needs one kind, once per kind; what the
// caller may not list (a robot's token, say) stays an ID, as does
// anything not found. JSON output is never changed.
type directory struct {
	ctx   context.Context
	cl    *client.Client
	base  string // the tenant's API base, /api/v1/tenants/T
	names map[string]string
	asked map[string]bool // ID prefix → listed already (every page of it)
	next  string          // credentials: the next page's "after"
}

func newDirectory(c *cobra.Command, base string) *directory {
	cl, _ := c.Context().Value(clientKey{}).(*client.Client)
	return &directory{ctx: c.Context(), cl: cl, base: base, names: map[string]string{}, asked: map[string]bool{}}
}

// directoryPage is how many credentials one request of the directory
// lists (the API's largest page); an ID not found on the pages read so far
// reads the next, so a tenant's every credential can be named.
var directoryPage = 1000

// name is what to show for id. Subjects written "member:ID" or
// "robot:ID" keep their kind.
func (d *directory) name(id string) string {
	if kind, rest, ok := strings.Cut(id, ":"); ok && (kind == "member" || kind == "robot") {
		return kind + ":" + d.name(rest)
	}
	prefix, _, ok := strings.Cut(id, "_")
	if !ok || d.cl == nil {
		return id
	}
	for {
		if n, ok := d.names[id]; ok && n != "" {
			return n
		}
		if d.asked[prefix] {
			return id
		}
		d.load(prefix)
	}
}

// long is name with the ID after it, for a detail view where both fit:
// "olga@acme.example (mem_…)".
func (d *directory) long(id string) string {
	if n := d.name(id); n != id {
		return n + " (" + id + ")"
	}
	return id
}

// load lists one kind of thing (credentials a page at a time; asked is set
// after the last); an error (no right to list it) leaves its IDs as they
// are.
func (d *directory) load(prefix string) {
	d.asked[prefix] = true
	get := func(path string, q url.Values, v any) bool {
		var raw json.RawMessage
		if err := d.cl.Do(d.ctx, http.MethodGet, d.base+path, q, nil, &raw); err != nil {
			return false
		}
		return json.Unmarshal(raw, v) == nil
	}
	switch prefix {
	case "mem":
		var l api.MemberList
		if get("/members", nil, &l) {
			for _, m := range l.Members {
				d.names[m.ID] = m.Email
			}
		}
	case "rbt":
		var l api.RobotList
		if get("/robots", nil, &l) {
			for _, r := range l.Robots {
				d.names[r.ID] = r.Name
			}
		}
	case "crd":
		q := url.Values{"limit": {strconv.Itoa(directoryPage)}}
		if d.next != "" {
			q.Set("after", d.next)
		}
		var l api.CredentialList
		if get("/credentials", q, &l) {
			for _, c := range l.Credentials {
				d.names[c.ID] = c.Name
			}
			// A page that does not move on ends the listing.
			d.asked[prefix] = l.Next == "" || l.Next == d.next
			d.next = l.Next
		}
	}
}

// tenantTable is tenantSub for a list shown as a table whose cells name
// members, robots or credentials: fill passes their IDs through who.
func tenantTable[L any](e *env, c *cobra.Command, req func(base string, args []string) (request, error), header string,
	fill func(l *L, who func(id string) string, row func(cells ...string))) *cobra.Command {
	var dir *directory
	return tenantSub(e, c, func(b string, args []string) (request, error) {
		dir = newDirectory(c, b)
		return req(b, args)
	}, func(raw json.RawMessage) error {
		return listTable(e, header, func(l *L, row func(...string)) { fill(l, dir.name, row) })(raw)
	}, nil)
}

// resourceName shows a grant's or request's resource with a credential's
// name for its ID ("credential:bank/santander"); "tenant" and groups are
// names already.
func resourceName(res string, who func(string) string) string {
	if kind, id, ok := strings.Cut(res, ":"); ok && kind == "credential" {
		return kind + ":" + who(id)
	}
	return res
}
