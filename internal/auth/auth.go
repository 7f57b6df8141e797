// Package auth issues and checks bearer tokens. Tokens are random, shown
// once, stored only as SHA-256 hashes (a 256-bit random token needs no slow
// hash), expire, and can be revoked.
//
// It must never store or log a token itself.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
)

// OperatorTokenPrefix marks operator tokens, so a leaked one is recognizable
// by secret scanners.
const OperatorTokenPrefix = "cust_op_"

// MaxTokenTTL bounds how long an operator token may live.
const MaxTokenTTL = 365 * 24 * time.Hour

// DefaultTokenTTL is the life of a token when none is asked for.
const DefaultTokenTTL = 30 * 24 * time.Hour

// Service manages operator tokens and authenticates every kind of bearer
// token and session.
type Service struct {
	store  store.Store
	now    func() time.Time
	grants *authz.Index
	// grantUse is when each grant's last use was written (grant ID to
	// time.Time), so a busy grant is written at most once a minute.
	grantUse sync.Map
	// tokens holds what authenticating a personal or robot token read
	// (by token hash), valid while the store's change stamp is unchanged:
	// any committed change to a token, member, robot, tenant, policy or
	// grant drops it (see store.ReadCache).
	tokens *store.ReadCache[string, cachedToken]
}

// tokenCacheBytes bounds the token cache (an entry is a few hundred bytes).
const tokenCacheBytes = 8 << 20

func New(s store.Store, now func() time.Time) *Service {
	return &Service{store: s, now: now, grants: authz.NewIndex(), tokens: store.NewAccessCache[string, cachedToken](s, tokenCacheBytes)}
}

// Hash is what the store keeps of a token.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func newID(prefix string) string { return prefix + strings.ToLower(rand.Text()[:16]) }

// IssueOperatorToken creates a token in tx and returns it; it is never
// retrievable again.
func (s *Service) IssueOperatorToken(ctx context.Context, tx store.Tx, name string, ttl time.Duration) (keys.Secret, *store.OperatorToken, error) {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	if ttl > MaxTokenTTL {
		return nil, nil, fault.New(fault.Invalid, "invalid_ttl", "token lifetime may not exceed %s", MaxTokenTTL)
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return nil, nil, fault.New(fault.Invalid, "invalid_name", "token name must be 1 to 100 characters")
	}
	tok, hash := NewToken(OperatorTokenPrefix)
	now := s.now().UTC()
	rec := &store.OperatorToken{ID: newID("otk_"), Name: name, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := tx.InsertOperatorToken(ctx, rec); err != nil {
		return nil, nil, fmt.Errorf("auth: issue operator token: %w", err)
	}
	if err := audit.Append(ctx, tx, now, audit.Entry{
		Log: store.OperatorLog, Action: "operator_token.create", Target: rec.ID,
		Details: map[string]any{"name": name, "expires_at": rec.ExpiresAt},
	}); err != nil {
		return nil, nil, err
	}
	return tok, rec, nil
}

// NewToken returns a random 256-bit token with a prefix, and its hash.
func NewToken(prefix string) (keys.Secret, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := keys.Secret(prefix + base64.RawURLEncoding.EncodeToString(b))
	return tok, Hash(string(tok))
}

// Authenticate resolves a bearer token or session. It fails for an unknown,
// expired or revoked one at the instant of expiry, and for the token of a
// member or robot that is no longer active.
func (s *Service) Authenticate(ctx context.Context, token string) (*authz.Principal, error) {
	switch {
	case strings.HasPrefix(token, PersonalTokenPrefix), strings.HasPrefix(token, RobotTokenPrefix):
		return s.authenticateToken(ctx, token)
	case strings.HasPrefix(token, SessionPrefix):
		return s.authenticateSession(ctx, token)
	case !strings.HasPrefix(token, OperatorTokenPrefix):
		return nil, fault.ErrUnauthenticated
	}
	var rec *store.OperatorToken
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = tx.GetOperatorTokenByHash(ctx, Hash(token))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("auth: look up token: %w", err)
	}
	now := s.now()
	if !rec.RevokedAt.IsZero() || !now.Before(rec.ExpiresAt) {
		return nil, fault.ErrUnauthenticated
	}
	return &authz.Principal{Kind: authz.KindOperator, ID: rec.ID}, nil
}

// TokenInfo describes a token without its secret.
type TokenInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

func info(t *store.OperatorToken) TokenInfo {
	return TokenInfo{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}
}

// Create issues a token in a transaction of its own.
func (s *Service) Create(ctx context.Context, name string, ttl time.Duration) (keys.Secret, TokenInfo, error) {
	var tok keys.Secret
	var rec *store.OperatorToken
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		tok, rec, err = s.IssueOperatorToken(ctx, tx, name, ttl)
		return err
	})
	if err != nil {
		return nil, TokenInfo{}, err
	}
	return tok, info(rec), nil
}

// List returns every operator token.
func (s *Service) List(ctx context.Context) ([]TokenInfo, error) {
	var out []TokenInfo
	err := s.store.View(ctx, func(tx store.Tx) error {
		ts, err := tx.ListOperatorTokens(ctx)
		for i := range ts {
			out = append(out, info(&ts[i]))
		}
		return err
	})
	return out, err
}

// Revoke ends a token at once.
func (s *Service) Revoke(ctx context.Context, id string) error {
	return s.store.Update(ctx, func(tx store.Tx) error {
		now := s.now().UTC()
		if err := tx.RevokeOperatorToken(ctx, id, now); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fault.New(fault.NotFound, "not_found", "no active operator token %q", id)
			}
			return err
		}
		return audit.Append(ctx, tx, now, audit.Entry{Log: store.OperatorLog, Action: "operator_token.revoke", Target: id})
	})
}
