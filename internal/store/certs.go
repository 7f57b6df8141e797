package store

import (
	"context"
	"time"
)

// Certificate alerts. Each is given at most once per certificate: MarkCertificateAlert
// records it and reports whether this call was the one that did.
const (
	CertAlert30Days     = "30d"
	CertAlert7Days      = "7d"
	CertAlertExpired    = "expired"
	CertAlertHolderLeft = "holder_left"
)

// CertAlerts are the alert names MarkCertificateAlert accepts.
var CertAlerts = []string{CertAlert30Days, CertAlert7Days, CertAlertExpired, CertAlertHolderLeft}

// Certificate is the public part of a digital certificate kept in the
// vault: a credential of kind KindCertificate whose sealed secret fields
// hold the key. Nothing here is secret.
type Certificate struct {
	TenantID     string
	CredentialID string
	// Version is the credential version these facts describe.
	Version   int
	Subject   string
	Issuer    string
	Serial    string // hexadecimal, lowercase
	NotBefore time.Time
	NotAfter  time.Time
	// Fingerprint is the SHA-256 of the leaf certificate's DER.
	Fingerprint  []byte
	KeyAlgorithm string
	// HolderID is the member the certificate identifies, if any.
	HolderID string
	// When each alert was given; zero until then.
	Alerted30Days     time.Time
	Alerted7Days      time.Time
	AlertedExpired    time.Time
	AlertedHolderLeft time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// CertificateFilter selects certificates, soonest expiry first (then by
// tenant and credential ID). Only live certificates are selected, unless
// IncludeDeleted says otherwise: those whose facts describe their
// credential's current version while it is neither deleted nor destroyed.
type CertificateFilter struct {
	// TenantID is one tenant's; empty selects every tenant's (for sweeps).
	TenantID string
	HolderID string
	// ExpiresBy keeps certificates whose NotAfter is at or before it.
	ExpiresBy time.Time
	// Unalerted keeps certificates that have not had this alert yet.
	Unalerted string
	// IncludeDeleted also selects certificates whose current version is
	// deleted (restorable), never destroyed ones: offboarding tells about
	// every certificate the leaver held that can still be brought back.
	IncludeDeleted bool
	// After continues a list after this position (keyset pagination):
	// the Cursor of the last certificate of the previous page.
	After *CertificateCursor
	// Limit caps the page; 0 or more than MaxCertificatePage means
	// MaxCertificatePage.
	Limit int
}

// MaxCertificatePage is the most certificates one ListCertificates call
// returns; readers of a whole tenant page with CertificateFilter.After.
const MaxCertificatePage = 10000

// CertificateCursor is a position in the order ListCertificates lists.
type CertificateCursor struct {
	NotAfter     time.Time
	TenantID     string
	CredentialID string
}

// Cursor is c's position in the order ListCertificates lists.
func (c *Certificate) Cursor() *CertificateCursor {
	return &CertificateCursor{NotAfter: c.NotAfter, TenantID: c.TenantID, CredentialID: c.CredentialID}
}

// CertTx stores certificate metadata beside the credentials that hold the
// certificates' keys.
type CertTx interface {
	// PutCertificate inserts or replaces a credential's certificate.
	PutCertificate(ctx context.Context, c *Certificate) error
	// GetCertificate returns a credential's certificate facts whatever the
	// state of the version they describe.
	GetCertificate(ctx context.Context, tenantID, credentialID string) (*Certificate, error)
	// ListCertificates returns live certificates only, or live and
	// deleted ones with f.IncludeDeleted (see CertificateFilter): a
	// deleted or replaced version never has expiry alerts. It returns at
	// most f.Limit of them (MaxCertificatePage when 0), from f.After on.
	ListCertificates(ctx context.Context, f CertificateFilter) ([]Certificate, error)
	DeleteCertificate(ctx context.Context, tenantID, credentialID string) error
	// MarkCertificateAlert records alert at at unless it was already
	// recorded, and reports whether this call recorded it: of two nodes
	// racing, exactly one gets true.
	MarkCertificateAlert(ctx context.Context, tenantID, credentialID, alert string, at time.Time) (bool, error)
}
