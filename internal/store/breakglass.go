package store

import (
	"context"
	"time"
)

// Break-glass states.
const (
	BreakGlassPending  = "pending"
	BreakGlassApproved = "approved"
	BreakGlassDenied   = "denied"
	// BreakGlassEnded: the tenant turned break-glass off while the
	// request was pending or open; it stays closed whatever the policy
	// says later.
	BreakGlassEnded = "ended"
)

// BreakGlass is an operator's emergency access to one credential of a
// tenant: allowed by the tenant's policy, approved when the policy says
// so, open until ExpiresAt.
type BreakGlass struct {
	ID           string
	TenantID     string
	OperatorID   string
	CredentialID string
	Reason       string
	Minutes      int
	Status       string
	RequestedAt  time.Time
	DecidedBy    string
	DecidedAt    time.Time
	ExpiresAt    time.Time
	Reveals      int
}

// BreakGlassTx stores break-glass requests.
type BreakGlassTx interface {
	InsertBreakGlass(ctx context.Context, b *BreakGlass) error
	GetBreakGlass(ctx context.Context, tenantID, id string) (*BreakGlass, error)
	UpdateBreakGlass(ctx context.Context, b *BreakGlass) error
	// ListBreakGlass returns a tenant's requests, newest first.
	ListBreakGlass(ctx context.Context, tenantID string, limit int) ([]BreakGlass, error)
}
