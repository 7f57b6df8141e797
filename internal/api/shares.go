package api

import (
	"net/http"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/share"
	"github.com/custodia-project/custodia/internal/sharelinks"
)

// ShareList is a tenant's live share links (metadata only).
type ShareList struct {
	Shares []sharelinks.Info `json:"shares"`
}

// OpenShareRequest proves the opener holds the link (and its passphrase).
type OpenShareRequest struct {
	// Auth is the link's auth key, base64: never the link key itself.
	Auth []byte `json:"auth"`
}

// Body caps of the share routes, below the server's general cap: the open
// route is public, and an envelope is at most share.MaxEnvelope bytes.
const (
	maxShareCreateBody = 128 << 10
	maxShareOpenBody   = 1 << 10
)

// shareRoutes are one-time share links: members create, list and burn
// them in their tenant; anyone with a link's ID may peek at it, and only
// whoever holds the link's key can open it. /s/{id} is the browser page
// that opens links; the key stays in the fragment, which browsers never
// send.
func shareRoutes(h *handlers) []Route {
	base := "/api/v1/tenants/{tenant}/shares"
	list := Route{Method: "GET", Pattern: base, Perm: authz.SharesCreate, TenantParam: "tenant", Unsealed: true, Tag: "shares",
		Summary:  "Live share links: your own, or every one of the tenant for those who manage shares (metadata only)",
		Response: ShareList{}, Handler: h.listShares}
	return []Route{
		{Method: "POST", Pattern: base, Perm: authz.SharesCreate, TenantParam: "tenant", Unsealed: true, Tag: "shares",
			Summary: "Store a share envelope encrypted by the client (never the key); the link is built by the client",
			Request: sharelinks.CreateInput{}, Response: sharelinks.Info{}, Status: http.StatusCreated, Handler: h.createShare},
		list,
		{Method: "DELETE", Pattern: base + "/{id}", Perm: authz.SharesCreate, TenantParam: "tenant", Unsealed: true, Tag: "shares",
			Summary: "Burn a share link now (its creator, or whoever manages shares)", Status: http.StatusNoContent, Handler: h.burnShare},
		{Method: "GET", Pattern: "/api/v1/shares/{id}", Perm: authz.Public, Unsealed: true, Tag: "shares",
			Summary:  "Whether a link needs a passphrase, its parameters, views left and expiry; spends no view",
			Response: sharelinks.Public{}, Handler: h.peekShare},
		{Method: "POST", Pattern: "/api/v1/shares/{id}/open", Perm: authz.Public, Unsealed: true, Tag: "shares",
			Summary: "Open a link with its auth key: the envelope once per view; the last view, or the fifth wrong key, burns it",
			Request: OpenShareRequest{}, Response: sharelinks.Opened{}, Handler: h.openShare},
		{Method: "GET", Pattern: "/s/{id}", Perm: authz.Public, Tag: "shares", RawContentType: "text/html",
			Summary: "The browser page that opens a share link (the key stays in the fragment)", Handler: h.sharePage},
	}
}

func (h *handlers) createShare(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		r.Body = http.MaxBytesReader(w, r.Body, maxShareCreateBody)
		var in sharelinks.CreateInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		s, err := h.d.Shares.Create(r.Context(), tid, in)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusCreated, s)
		return nil
	})(w, r)
}

func (h *handlers) listShares(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		ss, err := h.d.Shares.List(r.Context(), tid)
		if err != nil {
			return err
		}
		return ok(w, ShareList{Shares: ss})
	})(w, r)
}

func (h *handlers) burnShare(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		if err := h.d.Shares.Burn(r.Context(), tid, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})(w, r)
}

func (h *handlers) peekShare(w http.ResponseWriter, r *http.Request) error {
	p, err := h.d.Shares.Peek(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, p)
}

func (h *handlers) openShare(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxShareOpenBody)
	var in OpenShareRequest
	if err := Decode(r, &in); err != nil {
		return err
	}
	o, err := h.d.Shares.Open(r.Context(), r.PathValue("id"), in.Auth)
	if err != nil {
		return err
	}
	noStore(w)
	return ok(w, o)
}

func (h *handlers) sharePage(w http.ResponseWriter, r *http.Request) error {
	html, csp := share.Page()
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", csp)
	hd.Set("Cache-Control", "no-store")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("X-Robots-Tag", "noindex, nofollow")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(html)
	return err
}
