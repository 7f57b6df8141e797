package identity

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/tenant"
)

// SigninLimits protect sign-in.
type SigninLimits struct {
	// PerSource is how many sign-in attempts one source address may make
	// per minute (a burst of that many, refilled evenly).
	PerSource int
	// DelayAfter failures in a row, each further failure is answered after
	// a delay that doubles up to MaxDelay.
	DelayAfter int
	MaxDelay   time.Duration
	// LockAfter failures in a row lock the account for LockFor.
	LockAfter int
	LockFor   time.Duration
	// MFAAttempts is how many wrong second-factor codes end a pending
	// sign-in.
	MFAAttempts int
}

func (l SigninLimits) withDefaults() SigninLimits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.PerSource, 20)
	def(&l.DelayAfter, 3)
	def(&l.LockAfter, 10)
	def(&l.MFAAttempts, 5)
	if l.MaxDelay <= 0 {
		l.MaxDelay = 8 * time.Second
	}
	if l.LockFor <= 0 {
		l.LockFor = 15 * time.Minute
	}
	return l
}

// delay is the progressive delay after failures in a row.
func (l SigninLimits) delay(failures int) time.Duration {
	if failures < l.DelayAfter {
		return 0
	}
	d := time.Duration(float64(250*time.Millisecond) * math.Pow(2, float64(failures-l.DelayAfter)))
	return min(d, l.MaxDelay)
}

// guard keeps the in-memory side of sign-in protection: a token bucket per
// source address, and failure counts for accounts that do not exist, so
// that they are delayed and "locked" exactly like real ones and their
// answers reveal nothing.
type guard struct {
	mu      sync.Mutex
	limits  SigninLimits
	buckets map[string]*bucket
	ghosts  map[[32]byte]*ghost
}

type bucket struct {
	tokens float64
	at     time.Time
}

type ghost struct {
	failures    int
	lockedUntil time.Time
	at          time.Time
}

func newGuard(l SigninLimits) *guard {
	return &guard{limits: l, buckets: map[string]*bucket{}, ghosts: map[[32]byte]*ghost{}}
}

// allow takes one attempt from src's bucket.
func (g *guard) allow(src string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.buckets) > 100_000 {
		g.sweep(now)
	}
	capacity := float64(g.limits.PerSource)
	b := g.buckets[src]
	if b == nil {
		b = &bucket{tokens: capacity, at: now}
		g.buckets[src] = b
	}
	b.tokens = min(capacity, b.tokens+now.Sub(b.at).Minutes()*capacity)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// exhausted reports, without taking anything, whether src's bucket is
// empty: for limits that charge only failures (allow then charges one).
func (g *guard) exhausted(src string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.buckets[src]
	if b == nil {
		return false
	}
	capacity := float64(g.limits.PerSource)
	return min(capacity, b.tokens+now.Sub(b.at).Minutes()*capacity) < 1
}

func (g *guard) sweep(now time.Time) {
	for k, b := range g.buckets {
		if now.Sub(b.at) > time.Minute {
			delete(g.buckets, k)
		}
	}
	for k, x := range g.ghosts {
		if now.Sub(x.at) > g.limits.LockFor {
			delete(g.ghosts, k)
		}
	}
}

func ghostKey(tenantRef, email string) [32]byte {
	return sha256.Sum256([]byte(tenantRef + "\x00" + email))
}

// ghostFail counts a failure for an account that does not exist and
// returns the failures in a row.
func (g *guard) ghostFail(k [32]byte, now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	x := g.ghosts[k]
	if x == nil {
		if len(g.ghosts) > 100_000 {
			g.sweep(now)
		}
		x = &ghost{}
		g.ghosts[k] = x
	}
	if !x.lockedUntil.IsZero() && !now.Before(x.lockedUntil) {
		x.failures, x.lockedUntil = 0, time.Time{}
	}
	x.failures++
	x.at = now
	if x.failures >= g.limits.LockAfter && x.lockedUntil.IsZero() {
		x.lockedUntil = now.Add(g.limits.LockFor)
	}
	return x.failures
}

// ErrSigninFailed is the one answer to every failed sign-in: unknown
// tenant, unknown email, wrong password, locked account.
var ErrSigninFailed = fault.New(fault.Unauthenticated, "invalid_credentials", "the email or password is wrong, or the account is temporarily locked")

// ErrTooManyAttempts refuses a source that tried too often.
var ErrTooManyAttempts = fault.New(fault.RateLimited, "too_many_attempts", "too many sign-in attempts from this address; wait a minute")

// SigninInput is a password sign-in.
type SigninInput struct {
	Tenant   string `json:"tenant"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Signin is the outcome of a first sign-in step.
type Signin struct {
	// Session is set when sign-in is complete.
	Session   keys.Secret
	SessionID string
	ExpiresAt time.Time
	// MFAToken is set instead when a second factor is needed; MFAMethods
	// lists what the member can give.
	MFAToken   keys.Secret
	MFAMethods []string
	// MFAEnroll tells a member of a tenant that requires a second factor
	// and who has none yet that the session can only enroll one.
	MFAEnroll bool
	MemberID  string
	TenantID  string
}

// pendingMFA is the data of a sign-in waiting for its second factor.
type pendingMFA struct {
	Method         string `json:"method"`
	Failures       int    `json:"failures"`
	PasskeySession []byte `json:"passkey_session,omitempty"`
}

// SignIn checks a password. Every failure looks the same to the caller and
// takes as long, whether or not the account exists.
func (s *Service) SignIn(ctx context.Context, in SigninInput) (*Signin, error) {
	src := audit.SourceFrom(ctx)
	now := s.now()
	if !s.guard.allow(src.IP, now) {
		return nil, ErrTooManyAttempts
	}
	email, _ := NormalizeEmail(in.Email)
	var t *store.Tenant
	var m *store.Member
	var pol tenant.Policy
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		if t, err = tenantOf(ctx, tx, in.Tenant); err != nil {
			return err
		}
		if pol, err = tenant.ReadPolicy(ctx, tx, t.ID); err != nil {
			return err
		}
		m, err = tx.GetMemberByEmail(ctx, t.ID, email)
		return err
	})
	if err != nil {
		if _, ok := fault.As(err); !ok && !errors.Is(err, store.ErrNotFound) {
			return nil, wrapErr("sign in", err)
		}
		// Unknown tenant or account: the same work, delays and answer as a
		// wrong password.
		_ = s.o.Hasher.Dummy(ctx, []byte(in.Password))
		n := s.guard.ghostFail(ghostKey(in.Tenant, email), now)
		if t != nil {
			s.recordFailure(ctx, t.ID, "", "unknown_account")
		}
		s.o.Sleep(ctx, s.o.Limits.delay(n))
		return nil, ErrSigninFailed
	}
	if t.Status != store.TenantActive {
		_ = s.o.Hasher.Dummy(ctx, []byte(in.Password))
		return nil, ErrSigninFailed
	}
	if pol.SSO != nil && pol.SSO.Only {
		return nil, fault.New(fault.Forbidden, "sso_only", "this organization signs in with single sign-on only")
	}
	locked := now.Before(m.LockedUntil)
	ok := false
	rehash := false
	if m.Status == store.MemberActive && m.PasswordHash != "" {
		ok, rehash, err = s.o.Hasher.Verify(ctx, m.PasswordHash, []byte(in.Password))
		if err != nil {
			return nil, wrapErr("verify password", err)
		}
	} else {
		_ = s.o.Hasher.Dummy(ctx, []byte(in.Password))
	}
	if !ok || locked {
		reason := "bad_password"
		if locked {
			reason = "locked"
		} else if m.Status != store.MemberActive {
			reason = "inactive_member"
		}
		n := s.fail(ctx, m, reason, now, !locked)
		s.o.Sleep(ctx, s.o.Limits.delay(n))
		return nil, ErrSigninFailed
	}
	if rehash {
		if h, err := s.o.Hasher.Hash(ctx, []byte(in.Password)); err == nil {
			m.PasswordHash = h
		}
	}
	return s.firstFactorDone(ctx, m, pol, "password")
}

// firstFactorDone opens a session, or a pending sign-in when the member
// has a second factor.
func (s *Service) firstFactorDone(ctx context.Context, m *store.Member, pol tenant.Policy, method string) (*Signin, error) {
	out := &Signin{MemberID: m.ID, TenantID: m.TenantID}
	err := s.store.Update(ctx, func(tx store.Tx) error {
		now := s.now().UTC()
		cur, err := tx.GetMember(ctx, m.TenantID, m.ID)
		if err != nil {
			return err
		}
		cur.FailedSignins, cur.LockedUntil, cur.PasswordHash, cur.UpdatedAt = 0, time.Time{}, m.PasswordHash, now
		if m.OIDCSubject != "" {
			cur.OIDCSubject = m.OIDCSubject
		}
		if cur.MFA {
			methods, err := s.methods(ctx, tx, cur)
			if err != nil {
				return err
			}
			data, _ := json.Marshal(pendingMFA{Method: method})
			tok, hash := auth.NewToken("cust_mfa_")
			if err := tx.InsertChallenge(ctx, &store.Challenge{ID: store.NewID("chl_"), Kind: kindSigninMFA, Hash: hash, TenantID: cur.TenantID,
				MemberID: cur.ID, Data: data, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}); err != nil {
				return err
			}
			out.MFAToken, out.MFAMethods = tok, methods
			if err := tx.UpdateMember(ctx, cur); err != nil {
				return err
			}
			return s.record(s.as(ctx, cur), tx, cur.TenantID, "signin.first_factor", cur.ID, map[string]any{"method": method})
		}
		out.MFAEnroll = pol.RequireMFA
		cur.LastSigninAt = now
		if err := tx.UpdateMember(ctx, cur); err != nil {
			return err
		}
		return s.openSession(ctx, tx, cur, pol, method, false, out)
	})
	if err != nil {
		return nil, wrapErr("sign in", err)
	}
	return out, nil
}

// as returns ctx with the member as the audit actor.
func (s *Service) as(ctx context.Context, m *store.Member) context.Context {
	return audit.WithSource(ctx, withActor(audit.SourceFrom(ctx), audit.ActorPerson, m.ID))
}

// openSession creates a session in tx. A session the request already
// carried is revoked: every sign-in gets a fresh session ID.
func (s *Service) openSession(ctx context.Context, tx store.Tx, m *store.Member, pol tenant.Policy, method string, withMFA bool, out *Signin) error {
	now := s.now().UTC()
	src := audit.SourceFrom(ctx)
	if old := previousSession(ctx); old != "" {
		if prev, err := tx.GetSessionByHash(ctx, auth.Hash(old)); err == nil && prev.RevokedAt.IsZero() {
			if err := tx.RevokeSession(ctx, prev.ID, now); err != nil {
				return err
			}
		}
	}
	tok, hash := auth.NewToken(auth.SessionPrefix)
	ses := &store.Session{ID: store.NewID("ses_"), TenantID: m.TenantID, MemberID: m.ID, Hash: hash, MFA: withMFA, Method: method,
		SourceIP: src.IP, UserAgent: truncate(src.UserAgent, 256), CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(pol.SessionMax())}
	if err := tx.InsertSession(ctx, ses); err != nil {
		return err
	}
	out.Session, out.SessionID, out.ExpiresAt = tok, ses.ID, ses.ExpiresAt
	return s.record(s.as(ctx, m), tx, m.TenantID, "signin.success", m.ID, map[string]any{"method": method, "mfa": withMFA, "session": ses.ID})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

type prevSessionKey struct{}

// WithPreviousSession tells sign-in which session the request carried, so
// that it is replaced rather than kept beside the new one.
func WithPreviousSession(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, prevSessionKey{}, token)
}

func previousSession(ctx context.Context) string {
	s, _ := ctx.Value(prevSessionKey{}).(string)
	return s
}

// fail counts a failed sign-in of a real account, locks it at the limit,
// and returns the failures in a row.
func (s *Service) fail(ctx context.Context, m *store.Member, reason string, now time.Time, count bool) int {
	n := m.FailedSignins
	err := s.store.Update(ctx, func(tx store.Tx) error {
		cur, err := tx.GetMember(ctx, m.TenantID, m.ID)
		if err != nil {
			return err
		}
		if count {
			cur.FailedSignins++
		}
		n = cur.FailedSignins
		lockedNow := count && cur.FailedSignins >= s.o.Limits.LockAfter && !now.Before(cur.LockedUntil)
		if lockedNow {
			cur.LockedUntil = now.Add(s.o.Limits.LockFor).UTC()
			cur.FailedSignins = 0
		}
		if err := tx.UpdateMember(ctx, cur); err != nil {
			return err
		}
		if err := audit.Append(ctx, tx, now, audit.Entry{Log: m.TenantID, Action: "signin.fail", Target: m.ID, Result: audit.ResultDenied,
			Details: map[string]any{"reason": reason, "failures": n}}); err != nil {
			return err
		}
		if lockedNow {
			if err := s.record(ctx, tx, m.TenantID, "member.lock", m.ID, map[string]any{"until": cur.LockedUntil}); err != nil {
				return err
			}
			return notify(ctx, tx, now, m.TenantID, m.ID, "account_locked", "Your account was locked after repeated failed sign-ins",
				map[string]any{"until": cur.LockedUntil})
		}
		return nil
	})
	if err != nil {
		s.log.Error("record failed sign-in", "err", err)
	}
	return n
}

func (s *Service) recordFailure(ctx context.Context, tenantID, target, reason string) {
	if err := audit.Record(ctx, s.store, s.now(), audit.Entry{Log: tenantID, Action: "signin.fail", Target: target,
		Result: audit.ResultDenied, Details: map[string]any{"reason": reason}}); err != nil {
		s.log.Error("record failed sign-in", "err", err)
	}
}

// MFAInput is the second step of a sign-in.
type MFAInput struct {
	MFAToken     string `json:"mfa_token"`
	Code         string `json:"code,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
	// Passkey is the browser's WebAuthn assertion (after PasskeyChallenge).
	Passkey json.RawMessage `json:"passkey,omitempty"`
}

var errMFAFailed = fault.New(fault.Unauthenticated, "invalid_second_factor", "the code is wrong, used or expired")

// SignInMFA finishes a sign-in with a TOTP code, a recovery code or a
// passkey. A pending sign-in survives a few wrong codes, then ends.
func (s *Service) SignInMFA(ctx context.Context, in MFAInput) (*Signin, error) {
	if !strings.HasPrefix(in.MFAToken, "cust_mfa_") {
		return nil, errMFAFailed
	}
	src := audit.SourceFrom(ctx)
	if !s.guard.allow(src.IP, s.now()) {
		return nil, ErrTooManyAttempts
	}
	out := &Signin{}
	var failed error
	err := s.store.Update(ctx, func(tx store.Tx) error {
		failed = nil
		now := s.now().UTC()
		c, err := tx.GetChallenge(ctx, kindSigninMFA, auth.Hash(in.MFAToken))
		if err != nil || !now.Before(c.ExpiresAt) {
			failed = errMFAFailed
			return nil
		}
		var pm pendingMFA
		_ = json.Unmarshal(c.Data, &pm)
		m, err := tx.GetMember(ctx, c.TenantID, c.MemberID)
		if err != nil {
			return err
		}
		pol, err := tenant.ReadPolicy(ctx, tx, m.TenantID)
		if err != nil {
			return err
		}
		used, err := s.checkFactor(ctx, tx, m, in, c)
		if err != nil {
			if _, ok := fault.As(err); !ok {
				return err
			}
			failed = err
			pm.Failures++
			if pm.Failures >= s.o.Limits.MFAAttempts {
				if err := tx.UseChallenge(ctx, c.ID, now); err != nil {
					return err
				}
			} else {
				// Keep the count in the pending sign-in.
				data, _ := json.Marshal(pm)
				if err := tx.SetChallengeData(ctx, c.ID, data); err != nil {
					return err
				}
			}
			return audit.Append(s.as(ctx, m), tx, now, audit.Entry{Log: m.TenantID, Action: "signin.fail", Target: m.ID,
				Result: audit.ResultDenied, Details: map[string]any{"reason": "bad_second_factor", "factor": used}})
		}
		if err := tx.UseChallenge(ctx, c.ID, now); err != nil {
			return err
		}
		m.LastSigninAt, m.UpdatedAt = now, now
		if err := tx.UpdateMember(ctx, m); err != nil {
			return err
		}
		out.MemberID, out.TenantID = m.ID, m.TenantID
		return s.openSession(ctx, tx, m, pol, pm.Method+"+"+used, true, out)
	})
	if err != nil {
		return nil, wrapErr("second factor", err)
	}
	if failed != nil {
		return nil, failed
	}
	return out, nil
}

// SignOut ends a session.
func (s *Service) SignOut(ctx context.Context, sessionID string) error {
	p := authz.ActorOf(ctx)
	return wrapErr("sign out", s.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.RevokeSession(ctx, sessionID, s.now().UTC()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return s.record(ctx, tx, p.TenantID, "signout", p.ID, map[string]any{"session": sessionID})
	}))
}
