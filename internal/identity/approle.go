package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
)

// AppRoleTokenTTL is the lifetime of a token from an AppRole login.
const AppRoleTokenTTL = time.Hour

var errAppRole = fault.New(fault.Invalid, "invalid_approle", "invalid role ID or secret ID")

// AppRoleLogin exchanges a robot's AppRole credentials for a short-lived
// robot token, as Vault's auth/approle/login does. The role ID is the
// robot's ID; the secret ID is one of its tokens that carries only the
// approle.login scope (custodia robot token NAME --scope approle.login),
// so a leaked secret ID can do nothing but log in, and revoking it or
// disabling the robot ends that. Every refusal looks the same.
func (s *Service) AppRoleLogin(ctx context.Context, roleID, secretID string) (keys.Secret, *store.APIToken, error) {
	if !strings.HasPrefix(secretID, auth.RobotTokenPrefix) || roleID == "" {
		return nil, nil, errAppRole
	}
	var tok keys.Secret
	var rec *store.APIToken
	err := s.store.Update(ctx, func(tx store.Tx) error {
		sec, err := tx.GetAPITokenByHash(ctx, auth.Hash(secretID))
		if errors.Is(err, store.ErrNotFound) {
			return errAppRole
		}
		if err != nil {
			return err
		}
		now := s.now()
		if sec.SubjectType != store.SubjectRobot || subtle.ConstantTimeCompare([]byte(sec.SubjectID), []byte(roleID)) != 1 ||
			!sec.RevokedAt.IsZero() || !now.Before(sec.ExpiresAt) || !slices.Equal(sec.Scopes, []string{string(authz.AppRoleLogin)}) {
			return errAppRole
		}
		r, err := tx.GetRobot(ctx, sec.TenantID, sec.SubjectID)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errAppRole
			}
			return err
		}
		t, err := tx.GetTenant(ctx, sec.TenantID)
		if err != nil {
			return err
		}
		if r.Status != store.RobotActive || t.Status != store.TenantActive {
			return errAppRole
		}
		if err := tx.TouchAPIToken(ctx, sec.ID, now.UTC()); err != nil {
			return err
		}
		tok, rec, err = s.issue(authz.WithPrincipal(ctx, &authz.Principal{Kind: authz.KindRobot, ID: r.ID, TenantID: r.TenantID}), tx,
			r.TenantID, store.SubjectRobot, r.ID, auth.RobotTokenPrefix, TokenInput{Name: "approle login"}, AppRoleTokenTTL)
		if err != nil {
			return err
		}
		return s.record(ctx, tx, r.TenantID, "robot.approle_login", r.ID, map[string]any{"secret_id": sec.ID, "token": rec.ID,
			"expires_at": rec.ExpiresAt})
	})
	if err != nil {
		return nil, nil, wrapErr("approle login", err)
	}
	return tok, rec, nil
}
