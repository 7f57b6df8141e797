package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
)

// AppRoleTokenTTL is the lifetime of a token from an AppRole login.
const AppRoleTokenTTL = time.Hour

var errAppRole = fault.New(fault.Invalid, "invalid_approle", "invalid role ID or secret ID")

// AppRoleFailuresPerMinute is how many failed AppRole logins a source
// address may make a minute; successful ones cost nothing, so a fleet of
// robots behind one address is not held back by its own logins.
const AppRoleFailuresPerMinute = 20

// ErrAppRoleTooMany refuses a source that failed too often.
var ErrAppRoleTooMany = fault.New(fault.RateLimited, "too_many_attempts", "too many failed AppRole logins from this address; wait a minute")

// AppRoleLogin exchanges a robot's AppRole credentials for a short-lived
// robot token, as Vault's auth/approle/login does. The role ID is the
// robot's ID; the secret ID is one of its tokens that carries only the
// approle.login scope (custodia robot token NAME --scope approle.login),
// so a leaked secret ID can do nothing but log in, and revoking it or
// disabling the robot ends that. Every refusal looks the same.
func (s *Service) AppRoleLogin(ctx context.Context, roleID, secretID string) (keys.Secret, *store.APIToken, error) {
	src := audit.SourceFrom(ctx).IP
	if s.approle.exhausted(src, s.now()) {
		return nil, nil, ErrAppRoleTooMany
	}
	if !strings.HasPrefix(secretID, auth.RobotTokenPrefix) || roleID == "" {
		s.approle.allow(src, s.now())
		return nil, nil, errAppRole
	}
	var tok keys.Secret
	var rec *store.APIToken
	// A refusal of a secret ID that is some tenant's token is audited in
	// that tenant's log, with why; an unknown one only costs its source.
	var failed *store.APIToken
	var why string
	refuse := func(sec *store.APIToken, reason string) error {
		failed, why = sec, reason
		return errAppRole
	}
	err := s.store.Update(ctx, func(tx store.Tx) error {
		failed = nil
		sec, err := tx.GetAPITokenByHash(ctx, auth.Hash(secretID))
		if errors.Is(err, store.ErrNotFound) {
			return errAppRole
		}
		if err != nil {
			return err
		}
		now := s.now()
		switch {
		case sec.SubjectType != store.SubjectRobot || subtle.ConstantTimeCompare([]byte(sec.SubjectID), []byte(roleID)) != 1:
			return refuse(sec, "role_id_mismatch")
		case !sec.RevokedAt.IsZero():
			return refuse(sec, "secret_id_revoked")
		case !now.Before(sec.ExpiresAt):
			return refuse(sec, "secret_id_expired")
		case !slices.Equal(sec.Scopes, []string{string(authz.AppRoleLogin)}):
			return refuse(sec, "not_a_secret_id")
		case sec.Pending:
			return refuse(sec, "secret_id_pending_approval")
		}
		r, err := tx.GetRobot(ctx, sec.TenantID, sec.SubjectID)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return refuse(sec, "robot_not_found")
			}
			return err
		}
		t, err := tx.GetTenant(ctx, sec.TenantID)
		if err != nil {
			return err
		}
		if r.Status != store.RobotActive {
			return refuse(sec, "robot_disabled")
		}
		if t.Status != store.TenantActive {
			return refuse(sec, "tenant_inactive")
		}
		if err := tx.TouchAPIToken(ctx, sec.ID, now.UTC()); err != nil {
			return err
		}
		tok, rec, err = s.issue(authz.WithPrincipal(ctx, &authz.Principal{Kind: authz.KindRobot, ID: r.ID, TenantID: r.TenantID}), tx,
			r.TenantID, store.SubjectRobot, r.ID, auth.RobotTokenPrefix, TokenInput{Name: "approle login"}, AppRoleTokenTTL,
			issued{HeldBy: sec.CreatedBy})
		if err != nil {
			return err
		}
		return s.record(ctx, tx, r.TenantID, "robot.approle_login", r.ID, map[string]any{"secret_id": sec.ID, "token": rec.ID,
			"expires_at": rec.ExpiresAt})
	})
	if errors.Is(err, errAppRole) {
		s.approle.allow(src, s.now())
		if failed != nil {
			if aerr := audit.Record(ctx, s.store, s.now(), audit.Entry{Log: failed.TenantID, Action: "robot.approle_login",
				Target: failed.SubjectID, Result: audit.ResultFailed, Details: map[string]any{"secret_id": failed.ID, "reason": why}}); aerr != nil {
				s.log.Warn("approle: audit a refused login", "error", aerr)
			}
		}
	}
	if err != nil {
		return nil, nil, wrapErr("approle login", err)
	}
	return tok, rec, nil
}
