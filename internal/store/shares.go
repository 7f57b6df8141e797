package store

import (
	"context"
	"time"
)

// RecordShare is the record kind of share envelopes (record ID: the share
// ID). The envelope is already encrypted by the person who shared it;
// sealing it again under the tenant's keyring means shredding the tenant
// destroys it like everything else the tenant owns.
const RecordShare = "share"

// Share is a one-time share link's metadata. Nothing here opens it: the
// verifier is a hash of a key the server never sees, and the KDF
// parameters are public.
type Share struct {
	ID       string
	TenantID string
	// Label is the sharer's note to themselves (not secret).
	Label string
	// Verifier is SHA-256 of the link's auth key.
	Verifier []byte
	// KDFSalt and KDFIterations are the passphrase parameters; nil and 0
	// when the link has no passphrase.
	KDFSalt       []byte
	KDFIterations int
	// Size is the envelope's length in bytes.
	Size           int
	MaxViews       int
	Views          int
	FailedAttempts int
	CreatedBy      string
	CreatedAt      time.Time
	ExpiresAt      time.Time
}

// ShareCounts are the counters an open changes.
type ShareCounts struct {
	Views          int
	FailedAttempts int
}

// ShareFilter selects a tenant's shares, newest first.
type ShareFilter struct {
	TenantID string
	// CreatedBy keeps one member's shares ("" for all).
	CreatedBy string
	Limit     int
}

// ShareTx stores share links. A share is deleted when it is burned (read,
// revoked, expired or guessed at too often); its history is the audit log.
type ShareTx interface {
	// InsertShare fails with ErrConflict when the ID is taken.
	InsertShare(ctx context.Context, s *Share) error
	// GetShare finds a share by its ID alone (the public routes know no
	// tenant). In a write transaction it locks the share until commit
	// where several writers exist, so that openers of one link take turns
	// and each wrong key is counted on the counts the one before wrote.
	GetShare(ctx context.Context, id string) (*Share, error)
	// UpdateShareCounts sets a share's counters to to, only if they still
	// equal from, so two openers racing on different nodes cannot both
	// spend the same view; it reports whether it did.
	UpdateShareCounts(ctx context.Context, id string, from, to ShareCounts) (bool, error)
	// DeleteShare is ErrNotFound when the share is already gone.
	DeleteShare(ctx context.Context, tenantID, id string) error
	ListShares(ctx context.Context, f ShareFilter) ([]Share, error)
	// ListExpiredShares returns up to limit shares of any tenant that
	// expired at or before at, soonest first.
	ListExpiredShares(ctx context.Context, at time.Time, limit int) ([]Share, error)
}
