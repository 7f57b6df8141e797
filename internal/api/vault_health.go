package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/vault"
)

// vaultHealthRoutes report the password health of a tenant's credentials
// and what needs rotating: metadata only, for the credentials the caller
// may read (decided per credential, so the route admits every person and
// robot of the tenant: a robot with a read grant on one group sees that
// group). Their paths sit beside /credentials so they never clash with a
// credential's name.
func vaultHealthRoutes(h *handlers) []Route {
	rotation := Route{Method: "GET", Pattern: "/api/v1/tenants/{tenant}/credentials-rotation", Perm: authz.VaultUse, TenantParam: "tenant",
		Unsealed: true, Tag: "credentials",
		Summary:  "Credentials to rotate and why: rotate-by passed or near, flagged by an offboarding, breached, owner left",
		Query:    []Param{{"within", "how far ahead to look for rotate-by dates: days (14d) or a Go duration (336h); default 14d", "string"}},
		Response: vault.RotationList{}, Handler: h.credentialsRotation}
	return []Route{
		{Method: "GET", Pattern: "/api/v1/tenants/{tenant}/credentials-health", Perm: authz.VaultUse, TenantParam: "tenant", Unsealed: true,
			Tag: "credentials", Summary: "Password health of the credentials you may read: weak, reused, breached, overdue, flagged, owner left",
			Response: vault.HealthReport{}, Handler: h.credentialsHealth},
		rotation,
	}
}

func (h *handlers) credentialsHealth(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		rep, err := h.d.Vault.Health(r.Context(), tid)
		if err != nil {
			return err
		}
		return ok(w, rep)
	})(w, r)
}

func (h *handlers) credentialsRotation(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		within := vault.DefaultRotationWindow
		if s := r.URL.Query().Get("within"); s != "" {
			d, err := ParseWindow("within", s, false)
			if err != nil {
				return err
			}
			within = d
		}
		l, err := h.d.Vault.RotationNeeded(r.Context(), tid, within)
		if err != nil {
			return err
		}
		return ok(w, l)
	})(w, r)
}

// ParseWindow reads a time window from the query parameter param: whole
// days ("14d") or a Go duration ("36h"), at most vault.MaxRotationWindow
// (3650 days), and more than zero when positive. The error names param.
func ParseWindow(param, s string, positive bool) (time.Duration, error) {
	bad := fault.New(fault.Invalid, "invalid_"+param, "%s must be days such as 14d or a duration such as 36h, at most %dd",
		param, int(vault.MaxRotationWindow/(24*time.Hour)))
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > int(vault.MaxRotationWindow/(24*time.Hour)) {
			return 0, bad
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 0 || d > vault.MaxRotationWindow {
			return 0, bad
		}
	}
	if positive && d == 0 {
		return 0, bad
	}
	return d, nil
}
