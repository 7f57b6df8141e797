package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/vault"
)

// CredentialList is a page of credentials (metadata only).
type CredentialList struct {
	Credentials []vault.Credential `json:"credentials"`
	// Next is the "after" of the next page, empty at the end.
	Next string `json:"next,omitempty"`
}

type VersionList struct {
	Versions []vault.Version `json:"versions"`
}

type RestoreRequest struct {
	Version int `json:"version"`
	// CAS, when set, must equal the current version; a credential that
	// requires check-and-set is restored only with it.
	CAS *int `json:"cas,omitempty"`
}

type RevealableRequest struct {
	// Members are member IDs or emails; [] makes the credential
	// write-only for everyone. It must be given (null is refused).
	Members []string `json:"members"`
}

type Lease struct {
	ID           string    `json:"id"`
	CredentialID string    `json:"credential_id"`
	Version      int       `json:"version"`
	HolderID     string    `json:"holder_id"`
	Purpose      string    `json:"purpose"`
	CreatedAt    time.Time `json:"created_at"`
	ExpiresAt    time.Time `json:"expires_at"`
}

type LeaseList struct {
	Leases []Lease `json:"leases"`
}

type RenewRequest struct {
	// TTL is how long from now (at most an hour); none renews for the
	// lifetime the lease was first granted.
	TTL string `json:"ttl,omitempty"`
}

// vaultRoutes are the native credential routes. A credential is named by
// its ID or its path-like name with each "/" escaped as %2F. Route-level
// permissions admit the tenant's principals; whether one may read, write,
// fetch or reveal a given credential is decided per credential (a grant
// may name it or its group), and a refused read answers 404.
func vaultRoutes(h *handlers) []Route {
	t := func(method, path string, perm authz.Permission, summary string, req, resp any, fn Handler) Route {
		return Route{Method: method, Pattern: "/api/v1/tenants/{tenant}" + path, Perm: perm, TenantParam: "tenant", Unsealed: true,
			Tag: "credentials", Summary: summary, Request: req, Response: resp, Handler: fn}
	}
	list := t("GET", "/credentials", authz.CredentialsRead, "Credentials (metadata, never secrets), by name", nil, CredentialList{}, h.listCredentials)
	list.Query = []Param{{"prefix", "names starting with this, e.g. bank/", "string"}, {"after", "the previous page's next", "string"},
		{"limit", "page size, at most 1000", "integer"}}
	put := t("POST", "/credentials", authz.CredentialsWrite,
		"Create a credential or write its next version; secrets are write-only for people", vault.PutInput{}, vault.Credential{}, h.putCredential)
	return []Route{
		list, put,
		t("GET", "/credentials/{cred}", authz.CredentialsRead, "A credential's metadata", nil, vault.Credential{}, h.getCredential),
		{Method: "DELETE", Pattern: "/api/v1/tenants/{tenant}/credentials/{cred}", Perm: authz.CredentialsWrite, TenantParam: "tenant",
			Unsealed: true, Tag: "credentials", Summary: "Delete a credential with every version", Status: http.StatusNoContent,
			Handler: h.deleteCredential},
		t("GET", "/credentials/{cred}/versions", authz.CredentialsRead, "A credential's versions, oldest first", nil, VersionList{}, h.credentialVersions),
		t("POST", "/credentials/{cred}/restore", authz.CredentialsWrite, "Make an earlier version current again (as a new version), without reading it; "+
			"cas as for a write (needed when the credential requires check-and-set)", RestoreRequest{}, vault.Credential{}, h.restoreCredential),
		t("PUT", "/credentials/{cred}/revealable", authz.PolicyManage, "Name the members who may reveal this credential (empty: write-only for all)",
			RevealableRequest{}, vault.Credential{}, h.setRevealable),
		confirms(t("POST", "/credentials/{cred}/fetch", authz.VaultUse, "Robots: fetch the secret under a lease, with a purpose (needs a fetch grant)",
			vault.FetchInput{}, vault.Secret{}, h.fetchCredential)),
		t("POST", "/credentials/{cred}/reveal", authz.VaultUse,
			"People: reveal a revealable secret with a reason (needs a reveal grant; rate-limited; the owner is told)",
			vault.RevealInput{}, vault.Secret{}, h.revealCredential),
		t("GET", "/leases", authz.VaultUse, "Live leases (of one credential with ?credential=); a robot without grants.read sees its own", nil, LeaseList{}, h.listLeases),
		t("GET", "/leases/{lease}", authz.VaultUse, "The holder reads its leased secret again while the lease lives", nil, vault.Secret{}, h.getLease),
		t("POST", "/leases/{lease}/renew", authz.VaultUse, "The holder extends its lease (at most an hour from now)", RenewRequest{}, Lease{}, h.renewLease),
		{Method: "DELETE", Pattern: "/api/v1/tenants/{tenant}/leases/{lease}", Perm: authz.VaultUse, TenantParam: "tenant",
			Unsealed: true, Tag: "credentials", Summary: "Revoke a lease at once (its holder, or whoever manages grants)", Status: http.StatusNoContent,
			Handler: h.revokeLease},
	}
}

func (h *handlers) listCredentials(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		q := r.URL.Query()
		limit := 1000
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 1000 {
				return fault.New(fault.Invalid, "invalid_limit", "limit must be 1 to 1000")
			}
			limit = n
		}
		cs, err := h.d.Vault.List(r.Context(), tid, q.Get("prefix"), q.Get("after"), limit)
		if err != nil {
			return err
		}
		out := CredentialList{Credentials: cs}
		if out.Credentials == nil {
			out.Credentials = []vault.Credential{}
		}
		if len(cs) == limit {
			out.Next = cs[len(cs)-1].Name
		}
		return ok(w, out)
	})(w, r)
}

func (h *handlers) putCredential(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in vault.PutInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		c, err := h.d.Vault.Put(r.Context(), tid, in)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if c.Created() {
			status = http.StatusCreated
		}
		WriteJSON(w, status, c)
		return nil
	})(w, r)
}

func (h *handlers) getCredential(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		c, err := h.d.Vault.Get(r.Context(), tid, r.PathValue("cred"))
		if err != nil {
			return err
		}
		return ok(w, c)
	})(w, r)
}

func (h *handlers) deleteCredential(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		if err := h.d.Vault.Delete(r.Context(), tid, r.PathValue("cred")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})(w, r)
}

func (h *handlers) credentialVersions(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		vs, err := h.d.Vault.History(r.Context(), tid, r.PathValue("cred"))
		if err != nil {
			return err
		}
		if vs == nil {
			vs = []vault.Version{}
		}
		return ok(w, VersionList{Versions: vs})
	})(w, r)
}

func (h *handlers) restoreCredential(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in RestoreRequest
		if err := Decode(r, &in); err != nil {
			return err
		}
		if in.Version < 1 {
			return fault.New(fault.Invalid, "invalid_version", "version must be 1 or more")
		}
		c, err := h.d.Vault.Restore(r.Context(), tid, r.PathValue("cred"), in.Version, in.CAS)
		if err != nil {
			return err
		}
		return ok(w, c)
	})(w, r)
}

func (h *handlers) setRevealable(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in RevealableRequest
		if err := Decode(r, &in); err != nil {
			return err
		}
		// Clearing the list is said ([]), never implied by a field left out.
		if in.Members == nil {
			return fault.New(fault.Invalid, "members_required",
				"give members: the whole list of who may reveal it (member IDs or emails), or [] to make it write-only for everyone")
		}
		c, err := h.d.Vault.SetRevealable(r.Context(), tid, r.PathValue("cred"), in.Members)
		if err != nil {
			return err
		}
		return ok(w, c)
	})(w, r)
}

// noStore marks a response holding a secret as never to be cached.
func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

func (h *handlers) fetchCredential(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in vault.FetchInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		s, err := h.d.Vault.Fetch(r.Context(), tid, r.PathValue("cred"), in)
		if err != nil {
			return err
		}
		noStore(w)
		return ok(w, s)
	})(w, r)
}

func (h *handlers) revealCredential(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in vault.RevealInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		s, err := h.d.Vault.Reveal(r.Context(), tid, r.PathValue("cred"), in)
		if err != nil {
			return err
		}
		noStore(w)
		return ok(w, s)
	})(w, r)
}

func (h *handlers) listLeases(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		ls, err := h.d.Vault.Leases(r.Context(), tid, r.URL.Query().Get("credential"))
		if err != nil {
			return err
		}
		out := LeaseList{Leases: []Lease{}}
		for _, l := range ls {
			out.Leases = append(out.Leases, Lease{ID: l.ID, CredentialID: l.CredentialID, Version: l.Version, HolderID: l.SubjectID,
				Purpose: l.Purpose, CreatedAt: l.CreatedAt, ExpiresAt: l.ExpiresAt})
		}
		return ok(w, out)
	})(w, r)
}

func (h *handlers) getLease(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		s, err := h.d.Vault.Lease(r.Context(), tid, r.PathValue("lease"))
		if err != nil {
			return err
		}
		noStore(w)
		return ok(w, s)
	})(w, r)
}

func (h *handlers) renewLease(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in RenewRequest
		if err := Decode(r, &in); err != nil {
			return err
		}
		l, err := h.d.Vault.RenewLease(r.Context(), tid, r.PathValue("lease"), in.TTL)
		if err != nil {
			return err
		}
		return ok(w, Lease{ID: l.ID, CredentialID: l.CredentialID, Version: l.Version, HolderID: l.SubjectID, Purpose: l.Purpose,
			CreatedAt: l.CreatedAt, ExpiresAt: l.ExpiresAt})
	})(w, r)
}

func (h *handlers) revokeLease(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		if err := h.d.Vault.RevokeLease(r.Context(), tid, r.PathValue("lease")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})(w, r)
}
