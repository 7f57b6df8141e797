package identity

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/sso"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/tenant"
)

// ssoSecretKind is the record kind of a tenant's sealed OIDC client secret.
const ssoSecretKind = "sso"

// Policy returns a tenant's policy.
func (s *Service) Policy(ctx context.Context, tenantID string) (tenant.Policy, error) {
	var p tenant.Policy
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		p, err = tenant.ReadPolicy(ctx, tx, tenantID)
		return err
	})
	return p, wrapErr("policy", err)
}

// SetPolicy replaces a tenant's policy; a non-empty client secret is
// sealed under the tenant's key.
func (s *Service) SetPolicy(ctx context.Context, tenantID string, p tenant.Policy, clientSecret string) (tenant.Policy, error) {
	if err := p.Validate(); err != nil {
		return p, err
	}
	err := s.store.Update(ctx, func(tx store.Tx) error {
		was, err := tenant.ReadPolicy(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if err := tenant.WritePolicy(ctx, tx, tenantID, p); err != nil {
			return err
		}
		if was.DualControl() && !p.DualControl() {
			// Off is for a tenant one person runs: where a second owner
			// or admin exists, they are the second person, and turning it
			// off alone would be the very thing it prevents.
			if n, err := countAdmins(ctx, tx, s.now(), tenantID); err != nil {
				return err
			} else if n > 1 {
				return fault.New(fault.Forbidden, "dual_control_needed", "this organization has %d owners and admins (open invitations included): "+
					"robot dual control stays on (a second one grants robots fetch or approves their tokens)", n)
			}
			// Loud: from now on one owner or admin can read secrets
			// through a robot, so every member hears of it, those who
			// were owners or admins a moment ago included.
			if err := notifyMembers(ctx, tx, s.now().UTC(), tenantID, "robot_dual_control_off",
				"Robot dual control was turned off: one owner or admin alone may now give a robot secrets and hold its token",
				map[string]any{"by": authz.ActorOf(ctx).ID}); err != nil {
				return err
			}
		}
		if !was.DualControl() && p.DualControl() {
			if err := s.pendSoloRobotTokens(ctx, tx, tenantID); err != nil {
				return err
			}
		}
		if p.Defaults().BreakGlass == tenant.BreakGlassOff {
			if err := s.endBreakGlass(ctx, tx, tenantID); err != nil {
				return err
			}
		}
		if p.SSO == nil {
			// Turning SSO off forgets the client secret: turning it on
			// again must give one, never silently reuse the old.
			if err := tx.DeleteRecord(ctx, tenantID, ssoSecretKind, "client_secret"); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			clientSecret = ""
		}
		if clientSecret != "" {
			v, ct, err := s.keyring.Seal(ctx, tx, tenantID, ssoSecretKind, "client_secret", []byte(clientSecret))
			if err != nil {
				return err
			}
			now := s.now().UTC()
			if err := tx.PutRecord(ctx, &store.Record{TenantID: tenantID, Kind: ssoSecretKind, ID: "client_secret", KeyVersion: v,
				Ciphertext: ct, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
		}
		b, _ := json.Marshal(p.Defaults())
		var details map[string]any
		_ = json.Unmarshal(b, &details)
		details["sso_client_secret_changed"] = clientSecret != ""
		return s.record(ctx, tx, tenantID, "policy.update", tenantID, details)
	})
	s.sso.Forget(tenantID)
	s.recordRefusal(ctx, tenantID, tenantID, authz.PolicyManage, err)
	if err != nil {
		return p, wrapErr("set policy", err)
	}
	return p.Defaults(), nil
}

// pendSoloRobotTokens runs when robot dual control is turned (back) on:
// a live robot token whose issuer also made one of that robot's live
// fetch grants, as one person could while it was off, waits again for a
// second person's approval. Otherwise turning it off for a moment would
// leave one person's robot reading for as long as its grant lasts.
func (s *Service) pendSoloRobotTokens(ctx context.Context, tx store.Tx, tenantID string) error {
	now := s.now().UTC()
	gs, err := tx.ListGrants(ctx, store.GrantFilter{TenantID: tenantID, LiveAt: now})
	if err != nil {
		return err
	}
	granters := map[string]map[string]bool{} // robot -> who granted it fetch
	for _, g := range gs {
		if g.SubjectType == store.SubjectRobot && g.Permission == string(authz.CredentialsFetch) {
			if granters[g.SubjectID] == nil {
				granters[g.SubjectID] = map[string]bool{}
			}
			granters[g.SubjectID][g.CreatedBy] = true
		}
	}
	var pended []string
	for robot, by := range granters {
		ts, err := tx.ListAPITokens(ctx, tenantID, robot)
		if err != nil {
			return err
		}
		for _, t := range ts {
			if by[t.CreatedBy] && !t.Pending && t.LiveAt(now) {
				if err := tx.PendAPIToken(ctx, tenantID, t.ID); err != nil {
					return err
				}
				pended = append(pended, t.ID)
			}
		}
	}
	if len(pended) == 0 {
		return nil
	}
	slices.Sort(pended)
	if err := s.record(ctx, tx, tenantID, "token.pend", tenantID, map[string]any{"tokens": pended,
		"why": "robot dual control turned on: each is held by whoever granted its robot fetch"}); err != nil {
		return err
	}
	_, err = NotifyAdmins(ctx, tx, now, tenantID, "robot_token_pending",
		"Robot tokens wait for your approval: dual control was turned on", map[string]any{"tokens": pended})
	return err
}

// openBreakGlassScan bounds how many of a tenant's newest break-glass
// requests endBreakGlass looks at: open ones are recent (a pending request
// waits for an admin, an approved one is open for its minutes).
const openBreakGlassScan = 10_000

// endBreakGlass ends a tenant's pending and open break-glass requests for
// good (the tenant turned break-glass off), in both audit logs.
func (s *Service) endBreakGlass(ctx context.Context, tx store.Tx, tenantID string) error {
	bs, err := tx.ListBreakGlass(ctx, tenantID, openBreakGlassScan)
	if err != nil {
		return err
	}
	pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	var ended []string
	for i := range bs {
		b := &bs[i]
		// A pending request that lapsed unanswered stays what it is,
		// expired; only live ones end.
		live := b.Status == store.BreakGlassPending && now.Before(pol.BreakGlassDeadline(b)) ||
			b.Status == store.BreakGlassApproved && now.Before(b.ExpiresAt)
		if !live {
			continue
		}
		b.Status = store.BreakGlassEnded
		if b.ExpiresAt.IsZero() || now.Before(b.ExpiresAt) {
			b.ExpiresAt = now
		}
		if err := tx.UpdateBreakGlass(ctx, b); err != nil {
			return err
		}
		ended = append(ended, b.ID)
	}
	if len(ended) == 0 {
		return nil
	}
	return audit.AppendBoth(ctx, tx, now, tenantID, "breakglass.end", tenantID,
		map[string]any{"requests": ended, "why": "break-glass turned off"})
}

func (s *Service) ssoConfig(ctx context.Context, tx store.Tx, tenantID string) (sso.Config, *tenant.SSO, error) {
	pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
	if err != nil {
		return sso.Config{}, nil, err
	}
	if pol.SSO == nil {
		return sso.Config{}, nil, fault.New(fault.NotFound, "sso_off", "this organization has no single sign-on")
	}
	cfg := sso.Config{Issuer: pol.SSO.Issuer, ClientID: pol.SSO.ClientID, RedirectURL: pol.SSO.RedirectURL}
	rec, err := tx.GetRecord(ctx, tenantID, ssoSecretKind, "client_secret")
	if err == nil {
		if cfg.ClientSecret, err = s.keyring.Open(ctx, tx, tenantID, ssoSecretKind, "client_secret", rec.Ciphertext); err != nil {
			return cfg, nil, err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return cfg, nil, err
	}
	return cfg, pol.SSO, nil
}

// StartSSO begins a sign-in at the tenant's provider and returns the URL to
// send the browser to. The pending login (state, nonce, PKCE verifier) is
// kept server-side, sealed, keyed by the hash of its state.
func (s *Service) StartSSO(ctx context.Context, ref string) (string, error) {
	var authURL string
	err := s.store.Update(ctx, func(tx store.Tx) error {
		t, err := tenantOf(ctx, tx, ref)
		if err != nil {
			return err
		}
		cfg, _, err := s.ssoConfig(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		p, err := s.sso.Provider(ctx, t.ID, cfg, s.now())
		if err != nil {
			return err
		}
		u, pending := p.Start(s.now())
		b, _ := json.Marshal(pending)
		id := store.NewID("chl_")
		_, ct, err := s.keyring.Seal(ctx, tx, t.ID, kindSSO, id, b)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		authURL = u
		return tx.InsertChallenge(ctx, &store.Challenge{ID: id, Kind: kindSSO, Hash: auth.Hash(pending.State), TenantID: t.ID,
			Data: ct, CreatedAt: now, ExpiresAt: now.Add(sso.PendingTTL)})
	})
	return authURL, wrapErr("start sso", err)
}

var errSSO = fault.New(fault.Unauthenticated, "sso_failed", "single sign-on failed; start again")

// FinishSSO handles the provider's redirect: it matches the member by
// verified email (creating one when the tenant allows just-in-time
// members), links the provider's subject, and signs them in (asking for
// the second factor when they have one).
func (s *Service) FinishSSO(ctx context.Context, q url.Values) (*Signin, error) {
	state := q.Get("state")
	if state == "" || len(state) > 512 {
		return nil, errSSO
	}
	var c *store.Challenge
	var cfg sso.Config
	var conf *tenant.SSO
	var pending sso.Pending
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		c, err = tx.GetChallenge(ctx, kindSSO, auth.Hash(state))
		if err != nil {
			return errSSO
		}
		// Spent at once: a state is good for one callback only.
		if err := tx.UseChallenge(ctx, c.ID, s.now().UTC()); err != nil {
			return errSSO
		}
		b, err := s.keyring.Open(ctx, tx, c.TenantID, kindSSO, c.ID, c.Data)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &pending); err != nil {
			return err
		}
		cfg, conf, err = s.ssoConfig(ctx, tx, c.TenantID)
		return err
	})
	if err != nil {
		return nil, wrapErr("finish sso", err)
	}
	p, err := s.sso.Provider(ctx, c.TenantID, cfg, s.now())
	if err != nil {
		return nil, err
	}
	st, code, err := p.ParseCallback(q)
	if err != nil {
		s.recordFailure(ctx, c.TenantID, "", "sso_error")
		return nil, err
	}
	id, err := p.Finish(ctx, pending, s.now(), st, code)
	if err != nil {
		s.recordFailure(ctx, c.TenantID, "", "sso_rejected")
		return nil, err
	}
	subject := id.Issuer + "|" + id.Subject
	// Members are stored under NormalizeEmail (lowercased whole); the
	// provider's address is matched the same way.
	email, err := NormalizeEmail(id.Email)
	if err != nil {
		return nil, errNoSSOMember
	}
	var m *store.Member
	var pol tenant.Policy
	err = s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		if pol, err = tenant.ReadPolicy(ctx, tx, c.TenantID); err != nil {
			return err
		}
		now := s.now().UTC()
		m, err = tx.GetMemberByEmail(ctx, c.TenantID, email)
		switch {
		case errors.Is(err, store.ErrNotFound) && conf.JIT:
			m = &store.Member{ID: store.NewID("mem_"), TenantID: c.TenantID, Email: email, Name: id.Name, Role: conf.DefaultRole,
				Status: store.MemberActive, OIDCSubject: subject, CreatedAt: now, UpdatedAt: now}
			if err := tx.InsertMember(ctx, m); err != nil {
				return err
			}
			return s.record(s.as(ctx, m), tx, c.TenantID, "member.join", m.ID, map[string]any{"role": m.Role, "via": "sso_jit"})
		case errors.Is(err, store.ErrNotFound):
			return errNoSSOMember
		case err != nil:
			return err
		}
		if m.Status == store.MemberOffboarded || (m.OIDCSubject != "" && m.OIDCSubject != subject) {
			return errNoSSOMember
		}
		if m.Status == store.MemberInvited {
			m.Status = store.MemberActive
			if err := s.record(s.as(ctx, m), tx, c.TenantID, "member.join", m.ID, map[string]any{"role": m.Role, "via": "sso"}); err != nil {
				return err
			}
		}
		if m.OIDCSubject == "" {
			m.OIDCSubject = subject
		}
		m.UpdatedAt = now
		return tx.UpdateMember(ctx, m)
	})
	if err != nil {
		if errors.Is(err, errNoSSOMember) {
			s.recordFailure(ctx, c.TenantID, "", "sso_no_member")
		}
		return nil, wrapErr("finish sso", err)
	}
	return s.firstFactorDone(ctx, m, pol, "sso")
}

var errNoSSOMember = fault.New(fault.Forbidden, "sso_no_member", "no member of this organization has that verified email; ask an admin to invite you")
