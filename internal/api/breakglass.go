package api

import (
	"net/http"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/vault"
)

// BreakGlassList is a tenant's break-glass requests.
type BreakGlassList struct {
	Requests []vault.BreakGlass `json:"requests"`
}

// breakGlassRoutes: the operator's staff ask to reveal a tenant's
// credential in an emergency; the tenant's policy allows it or not, its
// admins approve when the policy says so, and both sides see every step.
func breakGlassRoutes(h *handlers) []Route {
	t := func(method, path string, perm authz.Permission, summary string, req, resp any, status int, fn Handler) Route {
		return Route{Method: method, Pattern: "/api/v1/tenants/{tenant}/break-glass" + path, Perm: perm, TenantParam: "tenant",
			Unsealed: true, Tag: "break-glass", Summary: summary, Request: req, Response: resp, Status: status, Handler: fn}
	}
	return []Route{
		t("GET", "", authz.BreakGlassRead, "Break-glass requests of the tenant, newest first (operators and the tenant's people, not robots)",
			nil, BreakGlassList{}, 0, h.listBreakGlass),
		t("POST", "", authz.BreakGlass, "Operators: ask to reveal one credential in an emergency, with a reason (the tenant's policy decides)",
			vault.BreakGlassInput{}, vault.BreakGlass{}, http.StatusCreated, h.requestBreakGlass),
		t("POST", "/{id}/approve", authz.RequestsDecide, "A tenant admin approves a pending break-glass request that has not expired, with an optional reason (body optional): it opens for the policy's minutes as they are now",
			vault.BreakGlassDecision{}, vault.BreakGlass{}, 0, h.decideBreakGlass(true)),
		t("POST", "/{id}/deny", authz.RequestsDecide, "A tenant admin denies a pending break-glass request, with an optional reason (body optional)",
			vault.BreakGlassDecision{}, vault.BreakGlass{}, 0, h.decideBreakGlass(false)),
		t("POST", "/{id}/reveal", authz.BreakGlass, "The requesting operator reveals the credential while the request is open (audited in both logs; the tenant is told)",
			nil, vault.Secret{}, 0, h.revealBreakGlass),
	}
}

func (h *handlers) listBreakGlass(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		bs, err := h.d.Vault.BreakGlassRequests(r.Context(), tid)
		if err != nil {
			return err
		}
		if bs == nil {
			bs = []vault.BreakGlass{}
		}
		return ok(w, BreakGlassList{Requests: bs})
	})(w, r)
}

func (h *handlers) requestBreakGlass(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in vault.BreakGlassInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		b, err := h.d.Vault.RequestBreakGlass(r.Context(), tid, in)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusCreated, b)
		return nil
	})(w, r)
}

func (h *handlers) decideBreakGlass(approve bool) Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
			// The body is optional: clients that send none decide
			// without a reason, as before reasons were taken.
			var in vault.BreakGlassDecision
			if r.ContentLength != 0 {
				if err := Decode(r, &in); err != nil {
					return err
				}
			}
			b, err := h.d.Vault.DecideBreakGlass(r.Context(), tid, r.PathValue("id"), approve, in)
			if err != nil {
				return err
			}
			return ok(w, b)
		})(w, r)
	}
}

func (h *handlers) revealBreakGlass(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		s, err := h.d.Vault.RevealBreakGlass(r.Context(), tid, r.PathValue("id"))
		if err != nil {
			return err
		}
		noStore(w)
		return ok(w, s)
	})(w, r)
}
