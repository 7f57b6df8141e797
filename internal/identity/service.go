package identity

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/mfa"
	"github.com/custodia-project/custodia/internal/password"
	"github.com/custodia-project/custodia/internal/sso"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/tenant"
)

// Options tune the service.
type Options struct {
	// Hasher hashes passwords (argon2id with a bound on concurrency).
	Hasher *password.Hasher
	// Policy is the password policy (length, strength, common list).
	Policy password.Policy
	// Passkeys, when set, enables WebAuthn second factors.
	Passkeys *mfa.Passkeys
	// Issuer names the installation in authenticator apps.
	Issuer string
	// HTTPClient reaches OpenID providers.
	HTTPClient *http.Client
	// Limits protect sign-in.
	Limits SigninLimits
	// Sleep waits out the progressive sign-in delay; tests replace it.
	Sleep func(ctx context.Context, d time.Duration)
}

// Service is the identity domain.
type Service struct {
	store   store.Store
	keyring *keys.Keyring
	tenants *tenant.Service
	now     func() time.Time
	log     *slog.Logger
	o       Options
	sso     *sso.Cache
	guard   *guard
	// approle limits AppRole login failures per source address.
	approle *guard
}

// New returns the service.
func New(s store.Store, kr *keys.Keyring, ts *tenant.Service, now func() time.Time, log *slog.Logger, o Options) *Service {
	if o.Issuer == "" {
		o.Issuer = "Custodia"
	}
	if o.HTTPClient == nil {
		o.HTTPClient = sso.NewPublicClient(20 * time.Second)
	}
	if o.Sleep == nil {
		o.Sleep = func(ctx context.Context, d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}
	o.Limits = o.Limits.withDefaults()
	return &Service{store: s, keyring: kr, tenants: ts, now: now, log: log, o: o,
		sso: sso.NewCache(o.HTTPClient, 10*time.Minute), guard: newGuard(o.Limits), approle: newGuard(SigninLimits{PerSource: AppRoleFailuresPerMinute})}
}

// NormalizeEmail lowercases and trims an address and checks its shape.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(s, " \t\r\n<>,;") || len(s) > 254 || !strings.Contains(domain, ".") && domain != "localhost" {
		return "", fault.New(fault.Invalid, "invalid_email", "email must be an address like name@example.com")
	}
	return s, nil
}

// tenantOf resolves a tenant reference (ID or slug) inside tx.
func tenantOf(ctx context.Context, tx store.TenantTx, ref string) (*store.Tenant, error) {
	t, err := tx.GetTenant(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		t, err = tx.GetTenantBySlug(ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "not_found", "no tenant %q", ref)
	}
	return t, err
}

func memberNotFound(id string) error {
	return fault.New(fault.NotFound, "not_found", "no member %q", id)
}

// member loads a member of tenantID by ID or email.
func member(ctx context.Context, tx store.IdentityTx, tenantID, ref string) (*store.Member, error) {
	var m *store.Member
	var err error
	if strings.Contains(ref, "@") {
		email, _ := NormalizeEmail(ref)
		m, err = tx.GetMemberByEmail(ctx, tenantID, email)
	} else {
		m, err = tx.GetMember(ctx, tenantID, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, memberNotFound(ref)
	}
	return m, err
}

// record appends a tenant audit entry in tx.
func (s *Service) record(ctx context.Context, tx store.AuditTx, tenantID, action, target string, details map[string]any) error {
	return audit.Append(ctx, tx, s.now(), audit.Entry{Log: tenantID, Action: action, Target: target, Details: details})
}

func wrapErr(op string, err error) error { return fault.Annotate("identity", op, err) }
