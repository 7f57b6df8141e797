package auth

import (
	"context"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/store"
)

// TokenDescription is what a token's holder may learn about it (never the
// token itself): Vault clients ask for it through lookup-self.
type TokenDescription struct {
	ID          string
	Name        string
	TenantID    string
	SubjectType string
	SubjectID   string
	Scopes      []string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Describe returns what an API or operator token is. Sessions are not
// described; a revoked or expired token is unauthenticated.
func (s *Service) Describe(ctx context.Context, token string) (*TokenDescription, error) {
	now := s.now()
	var out *TokenDescription
	err := s.store.View(ctx, func(tx store.Tx) error {
		switch {
		case strings.HasPrefix(token, PersonalTokenPrefix), strings.HasPrefix(token, RobotTokenPrefix):
			t, err := tx.GetAPITokenByHash(ctx, Hash(token))
			if err != nil {
				return err
			}
			if !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt) {
				return fault.ErrUnauthenticated
			}
			if t.Pending {
				return ErrTokenPending
			}
			out = &TokenDescription{ID: t.ID, Name: t.Name, TenantID: t.TenantID, SubjectType: t.SubjectType, SubjectID: t.SubjectID,
				Scopes: t.Scopes, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
		case strings.HasPrefix(token, OperatorTokenPrefix):
			t, err := tx.GetOperatorTokenByHash(ctx, Hash(token))
			if err != nil {
				return err
			}
			if !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt) {
				return fault.ErrUnauthenticated
			}
			out = &TokenDescription{ID: t.ID, Name: t.Name, SubjectType: "operator", SubjectID: t.ID, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
		default:
			return fault.New(fault.Forbidden, "not_a_token", "only API and operator tokens can be looked up, not a sign-in session: make one with custodia token create")
		}
		return nil
	})
	if err != nil {
		return nil, notFoundIsUnauthenticated(err)
	}
	return out, nil
}
