package store

import (
	"context"
	"crypto/rand"
	"strconv"
	"strings"
	"time"
)

// Credential kinds.
const (
	KindBank        = "bank"
	KindTaxPortal   = "tax_portal"
	KindPayroll     = "payroll"
	KindInvoicing   = "invoicing"
	KindCertificate = "certificate"
	KindOther       = "other"
)

// CredentialKinds are the kinds a credential may have.
var CredentialKinds = []string{KindBank, KindTaxPortal, KindPayroll, KindInvoicing, KindCertificate, KindOther}

// Credential is a tenant's stored login or secret: metadata here, each
// version's secret fields in a sealed record (kind RecordCredential, ID
// CredentialRecordID(ID, version)).
type Credential struct {
	TenantID string
	ID       string
	// Name is path-like ("bank/santander/main"), unique in the tenant.
	Name string
	// Group is what a "group:ID" grant covers: the first segment of Name
	// unless set.
	Group       string
	Kind        string
	Institution string
	LoginID     string
	Notes       string
	OwnerID     string
	Labels      map[string]string
	RotateBy    time.Time
	// Revealable lists the members who may reveal the secret to a person
	// (with the reveal permission, a reason, rate-limited, audited).
	// Empty: write-only for every person.
	Revealable     []string
	CurrentVersion int
	// MaxVersions is how many versions are kept (oldest pruned first).
	MaxVersions int
	// CASRequired makes every write give the version it replaces.
	CASRequired bool
	CreatedBy   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// RecordCredential is the record kind of credential secrets.
const RecordCredential = "credential"

// CredentialVersion is one version's metadata; the secret fields are the
// sealed record.
type CredentialVersion struct {
	TenantID     string
	CredentialID string
	Version      int
	// Fields are the names of the secret fields (never their values).
	Fields []string
	// Fingerprint is a keyed fingerprint of the password field, for reuse
	// detection without plaintext; nil when there is none.
	Fingerprint []byte
	// Strength is the password's zxcvbn score 0-4, -1 when unknown.
	Strength int
	// Breached is set when the password was on the shipped list of
	// breached passwords when the version was written.
	Breached    bool
	CreatedBy   string
	CreatedAt   time.Time
	DeletedAt   time.Time
	DestroyedAt time.Time
}

// Lease is a robot's hold on a fetched secret: it may read that version
// again while the lease lives; revocation ends it at once.
type Lease struct {
	ID           string
	TenantID     string
	CredentialID string
	Version      int
	SubjectType  string
	SubjectID    string
	Purpose      string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	RevokedAt    time.Time
	// Granted is the lifetime the lease was first granted (zero for a
	// lease granted before it was kept); RenewedAt is its last renewal.
	Granted   time.Duration
	RenewedAt time.Time
}

// CredentialFilter selects credentials of a tenant, by name order.
type CredentialFilter struct {
	TenantID string
	// Prefix keeps names that start with it ("bank/").
	Prefix  string
	OwnerID string
	// After is the last name of the previous page.
	After string
	Limit int
}

// CredentialSecret is a credential with one version and its sealed record.
type CredentialSecret struct {
	Credential Credential
	Version    CredentialVersion
	Record     Record
}

// MaxReuseCount bounds CountReuse: past it, a write's reuse warning says
// "at least" and costs no more.
const MaxReuseCount = 1000

// VaultTx stores credentials, their versions and leases.
type VaultTx interface {
	// InsertCredential fails with ErrConflict when the name is taken.
	InsertCredential(ctx context.Context, c *Credential) error
	UpdateCredential(ctx context.Context, c *Credential) error
	GetCredential(ctx context.Context, tenantID, id string) (*Credential, error)
	GetCredentialByName(ctx context.Context, tenantID, name string) (*Credential, error)
	// GetCredentialSecret reads the credential named name with its version
	// (the current one when version is 0) and that version's sealed
	// record, in one read. ErrNotFound when any of the three is missing.
	GetCredentialSecret(ctx context.Context, tenantID, name string, version int) (*CredentialSecret, error)
	// GetCredentialSecretByID is GetCredentialSecret by the credential's ID.
	GetCredentialSecretByID(ctx context.Context, tenantID, id string, version int) (*CredentialSecret, error)
	ListCredentials(ctx context.Context, f CredentialFilter) ([]Credential, error)
	// DeleteCredential removes a credential with its versions, leases and
	// certificate metadata (the caller deletes the sealed records).
	DeleteCredential(ctx context.Context, tenantID, id string) error

	InsertCredentialVersion(ctx context.Context, v *CredentialVersion) error
	UpdateCredentialVersion(ctx context.Context, v *CredentialVersion) error
	GetCredentialVersion(ctx context.Context, tenantID, credentialID string, version int) (*CredentialVersion, error)
	// ListCredentialVersions returns a credential's versions, oldest first.
	ListCredentialVersions(ctx context.Context, tenantID, credentialID string) ([]CredentialVersion, error)
	DeleteCredentialVersion(ctx context.Context, tenantID, credentialID string, version int) error
	// ListCurrentCredentialVersions returns the current, live version of
	// each of a tenant's credentials, by credential ID.
	ListCurrentCredentialVersions(ctx context.Context, tenantID string) ([]CredentialVersion, error)
	// CountReuse counts the tenant's credentials other than exceptID whose
	// current, live version has fingerprint, counting at most MaxReuseCount.
	CountReuse(ctx context.Context, tenantID string, fingerprint []byte, exceptID string) (int, error)

	InsertLease(ctx context.Context, l *Lease) error
	GetLease(ctx context.Context, tenantID, id string) (*Lease, error)
	UpdateLease(ctx context.Context, l *Lease) error
	// ListLeases returns leases of a credential or of a subject (either
	// may be empty), live at liveAt unless it is zero, newest first.
	ListLeases(ctx context.Context, tenantID, credentialID, subjectID string, liveAt time.Time) ([]Lease, error)
	// DeleteExpiredLeases deletes at most limit leases, of any tenant,
	// that expired before before, oldest first, and says how many.
	DeleteExpiredLeases(ctx context.Context, before time.Time, limit int) (int64, error)
}

// CredentialRecordID is the sealed record ID of a credential version.
func CredentialRecordID(credentialID string, version int) string {
	return credentialID + "/" + strconv.Itoa(version)
}

// NewID returns a new record ID: prefix and 20 random lowercase base32
// characters (100 bits), e.g. "crd_…". IDs say nothing about their record.
func NewID(prefix string) string { return prefix + strings.ToLower(rand.Text()[:20]) }

// sortable is base32 in ASCII order, so that encoded times sort as the
// times do.
const sortable = "234567abcdefghijklmnopqrstuvwxyz"

// NewTimeID returns a new ID for a record written many times a second and
// never looked up by anyone who should not see when it was made (a
// lease): prefix, the time in milliseconds (10 characters that sort as
// the times do) and 16 random lowercase base32 characters (80 bits).
// Successive IDs land at the end of their index instead of on a random
// page of it, so a batch of inserts dirties a few pages instead of one
// each.
func NewTimeID(prefix string, at time.Time) string {
	var b [10]byte
	ms := uint64(max(0, at.UnixMilli()))
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = sortable[ms&31]
		ms >>= 5
	}
	return prefix + string(b[:]) + strings.ToLower(rand.Text()[:16])
}
