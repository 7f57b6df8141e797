package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/mfa"
	"github.com/custodia-project/custodia/internal/store"
)

// factorsKind is the record kind of a member's second factors, sealed
// under the tenant's key (TOTP secrets must be readable again to verify).
const factorsKind = "mfa"

// factors are a member's second factors.
type factors struct {
	TOTPSecret string   `json:"totp_secret,omitempty"`
	TOTPStep   int64    `json:"totp_step,omitempty"`
	Recovery   [][]byte `json:"recovery,omitempty"`
	Handle     []byte   `json:"handle,omitempty"` // WebAuthn user handle: random, never the email
	Passkeys   [][]byte `json:"passkeys,omitempty"`
}

func (s *Service) loadFactors(ctx context.Context, tx store.Tx, m *store.Member) (*factors, error) {
	f := &factors{}
	rec, err := tx.GetRecord(ctx, m.TenantID, factorsKind, m.ID)
	if errors.Is(err, store.ErrNotFound) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	pt, err := s.keyring.Open(ctx, tx, m.TenantID, factorsKind, m.ID, rec.Ciphertext)
	if err != nil {
		return nil, err
	}
	defer pt.Wipe()
	if err := json.Unmarshal(pt, f); err != nil {
		return nil, err
	}
	return f, nil
}

func (s *Service) saveFactors(ctx context.Context, tx store.Tx, m *store.Member, f *factors) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	defer keys.Secret(b).Wipe()
	v, ct, err := s.keyring.Seal(ctx, tx, m.TenantID, factorsKind, m.ID, b)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	return tx.PutRecord(ctx, &store.Record{TenantID: m.TenantID, Kind: factorsKind, ID: m.ID, KeyVersion: v, Ciphertext: ct, CreatedAt: now, UpdatedAt: now})
}

func (s *Service) methods(ctx context.Context, tx store.Tx, m *store.Member) ([]string, error) {
	f, err := s.loadFactors(ctx, tx, m)
	if err != nil {
		return nil, err
	}
	var out []string
	if f.TOTPSecret != "" {
		out = append(out, "totp")
	}
	if len(f.Passkeys) > 0 && s.o.Passkeys != nil {
		out = append(out, "passkey")
	}
	if len(f.Recovery) > 0 {
		out = append(out, "recovery_code")
	}
	return out, nil
}

// checkFactor verifies the second factor of in and records its use (TOTP
// step, spent recovery code, passkey counter). It returns the factor used.
func (s *Service) checkFactor(ctx context.Context, tx store.Tx, m *store.Member, in MFAInput, c *store.Challenge) (string, error) {
	f, err := s.loadFactors(ctx, tx, m)
	if err != nil {
		return "", err
	}
	switch {
	case in.Code != "" && f.TOTPSecret != "":
		step, err := mfa.VerifyTOTP(f.TOTPSecret, in.Code, s.now(), f.TOTPStep)
		if err != nil {
			return "totp", errMFAFailed
		}
		f.TOTPStep = step
		return "totp", s.saveFactors(ctx, tx, m, f)
	case in.RecoveryCode != "":
		i, ok := mfa.MatchRecoveryCode(in.RecoveryCode, f.Recovery)
		if !ok {
			return "recovery_code", errMFAFailed
		}
		f.Recovery = append(f.Recovery[:i], f.Recovery[i+1:]...)
		if err := s.saveFactors(ctx, tx, m, f); err != nil {
			return "", err
		}
		if len(f.Recovery) <= 2 {
			_ = notify(ctx, tx, s.now(), m.TenantID, m.ID, "recovery_codes_low", "Few recovery codes left",
				map[string]any{"left": len(f.Recovery)})
		}
		return "recovery_code", s.record(s.as(ctx, m), tx, m.TenantID, "mfa.recovery_used", m.ID, map[string]any{"left": len(f.Recovery)})
	case len(in.Passkey) > 0 && s.o.Passkeys != nil:
		var pm pendingMFA
		_ = json.Unmarshal(c.Data, &pm)
		u, err := passkeyUser(m, f)
		if err != nil {
			return "passkey", err
		}
		cred, err := s.o.Passkeys.FinishLogin(u, pm.PasskeySession, in.Passkey)
		if err != nil {
			return "passkey", errMFAFailed
		}
		for i, raw := range f.Passkeys {
			old, err := mfa.UnmarshalCredential(raw)
			if err == nil && string(old.ID) == string(cred.ID) {
				if b, err := mfa.MarshalCredential(cred); err == nil {
					f.Passkeys[i] = b
				}
			}
		}
		return "passkey", s.saveFactors(ctx, tx, m, f)
	}
	return "none", errMFAFailed
}

func passkeyUser(m *store.Member, f *factors) (*mfa.User, error) {
	u := &mfa.User{ID: f.Handle, Name: m.Email, DisplayName: m.Name}
	if u.DisplayName == "" {
		u.DisplayName = m.Email
	}
	for _, raw := range f.Passkeys {
		c, err := mfa.UnmarshalCredential(raw)
		if err != nil {
			return nil, err
		}
		u.Credentials = append(u.Credentials, *c)
	}
	return u, nil
}

// self loads the calling member.
func (s *Service) self(ctx context.Context, tx store.Tx) (*store.Member, error) {
	p := authz.ActorOf(ctx)
	if p.Kind != "member" {
		return nil, fault.New(fault.Forbidden, "members_only", "only a member has second factors")
	}
	return tx.GetMember(ctx, p.TenantID, p.ID)
}

var errEnrollment = fault.New(fault.Invalid, "invalid_enrollment", "the enrollment is invalid or expired; start again")

// enrollment finds the calling member's live enrollment challenge, or nil.
func (s *Service) enrollment(ctx context.Context, tx store.Tx, kind, token string, m *store.Member) *store.Challenge {
	c, err := tx.GetChallenge(ctx, kind, auth.Hash(token))
	if err != nil || c.MemberID != m.ID || !s.now().Before(c.ExpiresAt) {
		return nil
	}
	return c
}

// enrolled stores a member's new factor, spends its challenge and marks
// the member as having a second factor. Recovery codes are made (and
// returned, to be shown once) with the member's first factor.
func (s *Service) enrolled(ctx context.Context, tx store.Tx, m *store.Member, f *factors, c *store.Challenge, action string, details map[string]any) ([]string, error) {
	var codes []string
	if len(f.Recovery) == 0 {
		codes, f.Recovery = mfa.NewRecoveryCodes(0)
	}
	if err := s.saveFactors(ctx, tx, m, f); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	if err := tx.UseChallenge(ctx, c.ID, now); err != nil {
		return nil, err
	}
	m.MFA, m.UpdatedAt = true, now
	if err := tx.UpdateMember(ctx, m); err != nil {
		return nil, err
	}
	return codes, s.record(ctx, tx, m.TenantID, action, m.ID, details)
}

// TOTPEnrollment is a started TOTP enrollment: the secret for the
// authenticator app, shown once, and the token to confirm it with.
type TOTPEnrollment struct {
	Token     keys.Secret
	Secret    keys.Secret
	URL       keys.Secret
	QRPNG     []byte
	ExpiresAt time.Time
}

// BeginTOTP starts enrolling an authenticator app for the calling member.
func (s *Service) BeginTOTP(ctx context.Context) (*TOTPEnrollment, error) {
	var out *TOTPEnrollment
	err := s.store.Update(ctx, func(tx store.Tx) error {
		m, err := s.self(ctx, tx)
		if err != nil {
			return err
		}
		e, err := mfa.NewTOTP(s.o.Issuer, m.Email)
		if err != nil {
			return err
		}
		png, err := e.QRPNG(256)
		if err != nil {
			return err
		}
		tok, hash := auth.NewToken("cust_tot_")
		now := s.now().UTC()
		id := store.NewID("chl_")
		_, ct, err := s.keyring.Seal(ctx, tx, m.TenantID, kindTOTP, id, e.Secret)
		if err != nil {
			return err
		}
		c := &store.Challenge{ID: id, Kind: kindTOTP, Hash: hash, TenantID: m.TenantID, MemberID: m.ID, Data: ct,
			CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
		if err := tx.InsertChallenge(ctx, c); err != nil {
			return err
		}
		out = &TOTPEnrollment{Token: tok, Secret: e.Secret, URL: e.URL, QRPNG: png, ExpiresAt: c.ExpiresAt}
		return nil
	})
	return out, wrapErr("begin totp", err)
}

// ConfirmTOTP finishes an enrollment with a first code from the app. The
// member's recovery codes are returned once, when they get their first
// factor.
func (s *Service) ConfirmTOTP(ctx context.Context, token, code string) ([]string, error) {
	return s.finishEnrollment(ctx, "confirm totp", kindTOTP, token, func(tx store.Tx, m *store.Member, c *store.Challenge, f *factors) (string, map[string]any, error, error) {
		secret, err := s.keyring.Open(ctx, tx, m.TenantID, kindTOTP, c.ID, c.Data)
		if err != nil {
			return "", nil, nil, err
		}
		step, err := mfa.VerifyTOTP(string(secret), code, s.now(), 0)
		if err != nil {
			return "", nil, fault.New(fault.Invalid, "invalid_code", "the code does not match; check the app's clock and try the next code"), nil
		}
		f.TOTPSecret, f.TOTPStep = string(secret), step
		return "mfa.totp_enroll", nil, nil, nil
	})
}

// NewRecoveryCodes replaces the calling member's recovery codes; the new
// ones are shown once. It needs a current TOTP code.
func (s *Service) NewRecoveryCodes(ctx context.Context, code string) ([]string, error) {
	var codes []string
	var failed error
	err := s.store.Update(ctx, func(tx store.Tx) error {
		failed = nil
		m, err := s.self(ctx, tx)
		if err != nil {
			return err
		}
		f, err := s.loadFactors(ctx, tx, m)
		if err != nil {
			return err
		}
		if f.TOTPSecret == "" {
			failed = fault.New(fault.Conflict, "no_totp", "enroll an authenticator app first")
			return nil
		}
		step, err := mfa.VerifyTOTP(f.TOTPSecret, code, s.now(), f.TOTPStep)
		if err != nil {
			failed = errMFAFailed
			return nil
		}
		f.TOTPStep = step
		codes, f.Recovery = mfa.NewRecoveryCodes(0)
		if err := s.saveFactors(ctx, tx, m, f); err != nil {
			return err
		}
		return s.record(ctx, tx, m.TenantID, "mfa.recovery_regenerate", m.ID, nil)
	})
	if err != nil {
		return nil, wrapErr("recovery codes", err)
	}
	return codes, failed
}

// BeginPasskey starts registering a passkey for the calling member and
// returns the options for navigator.credentials.create and a token.
func (s *Service) BeginPasskey(ctx context.Context) (options []byte, token keys.Secret, err error) {
	if s.o.Passkeys == nil {
		return nil, nil, fault.New(fault.Unavailable, "passkeys_off", "passkeys are not configured on this server (set --webauthn-origin)")
	}
	err = s.store.Update(ctx, func(tx store.Tx) error {
		m, err := s.self(ctx, tx)
		if err != nil {
			return err
		}
		f, err := s.loadFactors(ctx, tx, m)
		if err != nil {
			return err
		}
		if len(f.Handle) == 0 {
			f.Handle = make([]byte, 32)
			_, _ = rand.Read(f.Handle)
			if err := s.saveFactors(ctx, tx, m, f); err != nil {
				return err
			}
		}
		u, err := passkeyUser(m, f)
		if err != nil {
			return err
		}
		opts, session, err := s.o.Passkeys.BeginRegistration(u)
		if err != nil {
			return err
		}
		tok, hash := auth.NewToken("cust_pky_")
		now := s.now().UTC()
		if err := tx.InsertChallenge(ctx, &store.Challenge{ID: store.NewID("chl_"), Kind: kindPasskey, Hash: hash, TenantID: m.TenantID,
			MemberID: m.ID, Data: session, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}); err != nil {
			return err
		}
		options, token = opts, tok
		return nil
	})
	return options, token, wrapErr("begin passkey", err)
}

// FinishPasskey registers the browser's response. Recovery codes are
// returned once when this is the member's first factor.
func (s *Service) FinishPasskey(ctx context.Context, token string, response []byte, name string) ([]string, error) {
	if s.o.Passkeys == nil {
		return nil, fault.New(fault.Unavailable, "passkeys_off", "passkeys are not configured on this server")
	}
	return s.finishEnrollment(ctx, "finish passkey", kindPasskey, token, func(tx store.Tx, m *store.Member, c *store.Challenge, f *factors) (string, map[string]any, error, error) {
		u, err := passkeyUser(m, f)
		if err != nil {
			return "", nil, nil, err
		}
		cred, err := s.o.Passkeys.FinishRegistration(u, c.Data, response)
		if err != nil {
			return "", nil, fault.Wrap(err, fault.Invalid, "passkey_rejected", "the passkey response was rejected"), nil
		}
		b, err := mfa.MarshalCredential(cred)
		if err != nil {
			return "", nil, nil, err
		}
		f.Passkeys = append(f.Passkeys, b)
		return "mfa.passkey_enroll", map[string]any{"credential": base64.RawURLEncoding.EncodeToString(cred.ID), "name": strings.TrimSpace(name)}, nil, nil
	})
}

// finishEnrollment is the second step of enrolling a factor of kind for
// the calling member, in one transaction: it finds the enrollment that
// token started, lets add put the new factor in the member's factors (or
// refuse it with a client error), then stores and audits them under
// add's action. The recovery codes are returned once, when this is the
// member's first factor.
func (s *Service) finishEnrollment(ctx context.Context, op, kind, token string,
	add func(tx store.Tx, m *store.Member, c *store.Challenge, f *factors) (action string, details map[string]any, refused, err error)) ([]string, error) {
	var codes []string
	var failed error
	err := s.store.Update(ctx, func(tx store.Tx) error {
		codes, failed = nil, nil
		m, err := s.self(ctx, tx)
		if err != nil {
			return err
		}
		c := s.enrollment(ctx, tx, kind, token, m)
		if c == nil {
			failed = errEnrollment
			return nil
		}
		f, err := s.loadFactors(ctx, tx, m)
		if err != nil {
			return err
		}
		action, details, refused, err := add(tx, m, c, f)
		if err != nil || refused != nil {
			failed = refused
			return err
		}
		codes, err = s.enrolled(ctx, tx, m, f, c, action, details)
		return err
	})
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return codes, failed
}

// PasskeyChallenge returns the WebAuthn options for the second step of a
// pending sign-in.
func (s *Service) PasskeyChallenge(ctx context.Context, mfaToken string) ([]byte, error) {
	if s.o.Passkeys == nil {
		return nil, fault.New(fault.Unavailable, "passkeys_off", "passkeys are not configured on this server")
	}
	var opts []byte
	var failed error
	err := s.store.Update(ctx, func(tx store.Tx) error {
		failed = nil
		c, err := tx.GetChallenge(ctx, kindSigninMFA, auth.Hash(mfaToken))
		if err != nil || !s.now().Before(c.ExpiresAt) {
			failed = errMFAFailed
			return nil
		}
		m, err := tx.GetMember(ctx, c.TenantID, c.MemberID)
		if err != nil {
			return err
		}
		f, err := s.loadFactors(ctx, tx, m)
		if err != nil {
			return err
		}
		if len(f.Passkeys) == 0 {
			failed = fault.New(fault.Conflict, "no_passkey", "this account has no passkey; use a code")
			return nil
		}
		u, err := passkeyUser(m, f)
		if err != nil {
			return err
		}
		o, session, err := s.o.Passkeys.BeginLogin(u)
		if err != nil {
			return err
		}
		var pm pendingMFA
		_ = json.Unmarshal(c.Data, &pm)
		pm.PasskeySession = session
		b, _ := json.Marshal(pm)
		opts = o
		return tx.SetChallengeData(ctx, c.ID, b)
	})
	if err != nil {
		return nil, wrapErr("passkey challenge", err)
	}
	return opts, failed
}
