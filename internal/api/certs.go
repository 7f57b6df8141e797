package api

import (
	"net/http"
	"time"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/vault"
)

// CertificateList is a tenant's certificates, soonest expiry first.
type CertificateList struct {
	Certificates []vault.Certificate `json:"certificates"`
}

// certRoutes are the digital-certificate routes. A certificate is a
// credential of kind "certificate", named like any credential; the
// credential routes (versions, restore, revealable, fetch, delete) work on
// it too, and these add the PKCS#12 upload, the certificate's public facts
// and a fetch with the parts named.
func certRoutes(h *handlers) []Route {
	t := func(method, path string, perm authz.Permission, summary string, req, resp any, fn Handler) Route {
		return Route{Method: method, Pattern: "/api/v1/tenants/{tenant}" + path, Perm: perm, TenantParam: "tenant", Unsealed: true,
			Tag: "certificates", Summary: summary, Request: req, Response: resp, Handler: fn}
	}
	list := t("GET", "/certificates", authz.CredentialsRead, "Certificates (public facts, never keys), soonest expiry first", nil,
		CertificateList{}, h.listCertificates)
	list.Query = []Param{{"expiring_within", "only those expiring within this long (e.g. 30d, 72h), expired ones included", "string"}}
	return []Route{
		list,
		t("POST", "/certificates", authz.CredentialsWrite,
			"Upload a PKCS#12 file with its password: checked, kept sealed, write-only for people (next version if the name exists)",
			vault.UploadInput{}, vault.Certificate{}, h.uploadCertificate),
		t("GET", "/certificates/{cert}", authz.CredentialsRead, "A certificate's subject, issuer, serial, validity, holder and credential metadata",
			nil, vault.Certificate{}, h.getCertificate),
		t("POST", "/certificates/{cert}/fetch", authz.VaultUse,
			"Robots: fetch the certificate, chain and private key (PEM) under a lease, with a purpose (needs a fetch grant)",
			vault.FetchInput{}, vault.CertificateSecret{}, h.fetchCertificate),
	}
}

func (h *handlers) listCertificates(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var within time.Duration
		if s := r.URL.Query().Get("expiring_within"); s != "" {
			var err error
			if within, err = ParseWindow("expiring_within", s, true); err != nil {
				return err
			}
		}
		cs, err := h.d.Vault.ListCertificates(r.Context(), tid, within)
		if err != nil {
			return err
		}
		return ok(w, CertificateList{Certificates: cs})
	})(w, r)
}

func (h *handlers) uploadCertificate(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in vault.UploadInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		c, err := h.d.Vault.UploadCertificate(r.Context(), tid, in)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if c.Version == 1 && c.Credential.CreatedAt.Equal(c.Credential.UpdatedAt) {
			status = http.StatusCreated
		}
		WriteJSON(w, status, c)
		return nil
	})(w, r)
}

func (h *handlers) getCertificate(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		c, err := h.d.Vault.GetCertificate(r.Context(), tid, r.PathValue("cert"))
		if err != nil {
			return err
		}
		return ok(w, c)
	})(w, r)
}

func (h *handlers) fetchCertificate(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		var in vault.FetchInput
		if err := Decode(r, &in); err != nil {
			return err
		}
		s, err := h.d.Vault.FetchCertificate(r.Context(), tid, r.PathValue("cert"), in)
		if err != nil {
			return err
		}
		noStore(w)
		return ok(w, s)
	})(w, r)
}
