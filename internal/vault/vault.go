// Package vault keeps a tenant's credentials: bank, tax-portal and payroll
// logins whose secret fields are sealed under the tenant's keyring, every
// change a new version.
//
// The promise it keeps: credentials are write-only for people. A person
// with credentials.write creates a credential and replaces its secret but
// never reads it back; a robot holding a grant fetches it just in time,
// under a short lease, with a stated purpose; a person may reveal it only
// when the tenant made that credential revealable to them by name, holds a
// reveal grant, and gives a reason, and the owner is told. Every read of a
// secret and every change is in the tenant's audit log, never the secret.
package vault

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/tenant"
)

// Limits.
const (
	DefaultMaxVersions = 10
	MaxVersionsLimit   = 100
	DefaultLease       = 5 * time.Minute
	MaxLease           = time.Hour
	MinLease           = time.Second
	maxFields          = 32
	maxFieldBytes      = 16 << 10
	maxNameLen         = 256
	// RevealsPerHour bounds how often one member may reveal secrets.
	RevealsPerHour = 10
)

// Service is the vault domain.
type Service struct {
	store   store.Store
	keyring *keys.Keyring
	now     func() time.Time
	log     *slog.Logger

	secrets *store.ReadCache[secretKey, *store.CredentialSecret] // see findOpen
}

// New returns the service. Its clock is read to the microsecond, as the
// stores keep times: a write's answer then gives the times its later
// reads give.
func New(s store.Store, kr *keys.Keyring, now func() time.Time, log *slog.Logger) *Service {
	micros := func() time.Time { return now().Truncate(time.Microsecond) }
	return &Service{store: s, keyring: kr, now: micros, log: log,
		secrets: store.NewReadCache[secretKey, *store.CredentialSecret](s, secretsCacheBytes)}
}

// Fields are a credential's secret fields (password, PIN, API key...).
type Fields map[string]string

// String keeps secrets out of fmt output.
func (Fields) String() string { return "[REDACTED]" }

// GoString keeps secrets out of %#v output.
func (Fields) GoString() string { return "[REDACTED]" }

// LogValue keeps secrets out of slog output.
func (Fields) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// PutInput creates a credential or writes its next version. Metadata
// fields left empty keep their current values on an existing credential.
type PutInput struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind,omitempty"`
	Institution string            `json:"institution,omitempty"`
	LoginID     string            `json:"login_id,omitempty"`
	Notes       string            `json:"notes,omitempty"`
	Group       string            `json:"group,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	RotateBy    time.Time         `json:"rotate_by,omitzero"`
	MaxVersions int               `json:"max_versions,omitempty"`
	// Secret are the secret fields; nil keeps the current secret (a
	// metadata-only change makes no new version).
	Secret Fields `json:"secret,omitempty"`
	// SealedSecret is the alternative to Secret: a Submission sealed to the
	// tenant's public key, base64 (docs/sealed-submission.md), so whoever
	// relays the request never holds the plaintext.
	SealedSecret string `json:"sealed_secret,omitempty"`
	// CAS, when set, must equal the current version (0: must not exist).
	CAS *int `json:"cas,omitempty"`
	// CASRequired, when set, turns check-and-set on or off for the
	// credential's later writes and restores (as /v1 metadata's
	// cas_required does).
	CASRequired *bool `json:"cas_required,omitempty"`
}

// Credential is what anyone with credentials.read may see: never a secret.
// A writer who may not read the credential is answered a receipt: ID,
// name, current version, whether check-and-set is required, times and
// warnings only (see viewFor); the fields that every full view carries
// are left out of it, not shown empty.
type Credential struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	Group          string            `json:"group,omitzero"`
	Kind           string            `json:"kind,omitzero"`
	Institution    string            `json:"institution,omitempty"`
	LoginID        string            `json:"login_id,omitempty"`
	Notes          string            `json:"notes,omitempty"`
	OwnerID        string            `json:"owner_id,omitzero"`
	Labels         map[string]string `json:"labels,omitempty"`
	RotateBy       time.Time         `json:"rotate_by,omitzero"`
	Revealable     []string          `json:"revealable_to,omitzero"` // [] in a full view
	CurrentVersion int               `json:"current_version"`
	MaxVersions    int               `json:"max_versions,omitzero"`
	// CASRequired: every write and restore must name the version it
	// replaces (cas). A receipt carries it too: it governs the writer's
	// next write, which would be refused cas_required anyway.
	CASRequired bool `json:"cas_required"`
	// Fields are the current version's field names (never values);
	// lists leave them out.
	Fields    []string  `json:"fields,omitempty"`
	CreatedBy string    `json:"created_by,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Warnings are what a write found wrong with the password it stored
	// (weak, breached, reused); they never refuse it.
	Warnings []Warning `json:"warnings,omitempty"`

	created bool // see Created
}

// Created reports whether the write that answered c created it. Its times
// cannot say so: a metadata-only write in the microsecond the credential
// was created leaves CreatedAt equal to UpdatedAt at version 1.
func (c *Credential) Created() bool { return c.created }

// Version is one version's metadata.
type Version struct {
	Version     int       `json:"version"`
	Fields      []string  `json:"fields"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	DeletedAt   time.Time `json:"deleted_at,omitzero"`
	DestroyedAt time.Time `json:"destroyed_at,omitzero"`
	Current     bool      `json:"current"`
}

// Secret is a secret handed out: to a robot under a lease, or revealed
// to a person.
type Secret struct {
	Credential string    `json:"credential"`
	Name       string    `json:"name"`
	Version    int       `json:"version"`
	LoginID    string    `json:"login_id,omitempty"`
	Fields     Fields    `json:"secret"`
	LeaseID    string    `json:"lease_id,omitempty"`
	ExpiresAt  time.Time `json:"lease_expires_at,omitzero"`
	// CreatedAt is when this version was written.
	CreatedAt time.Time         `json:"created_at"`
	Labels    map[string]string `json:"labels,omitempty"`
}

func view(c *store.Credential, fields []string) Credential {
	rv := c.Revealable
	if rv == nil {
		rv = []string{}
	}
	return Credential{ID: c.ID, Name: c.Name, Group: c.Group, Kind: c.Kind, Institution: c.Institution, LoginID: c.LoginID,
		Notes: c.Notes, OwnerID: c.OwnerID, Labels: c.Labels, RotateBy: c.RotateBy, Revealable: rv,
		CurrentVersion: c.CurrentVersion, MaxVersions: c.MaxVersions, CASRequired: c.CASRequired, Fields: fields, CreatedBy: c.CreatedBy,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// viewFor is c as the caller may see it after changing it: the full view
// for whoever may read c, and for a writer who may not (a token scoped to
// credentials.write alone, a robot granted only a write) a receipt of its
// own change: ID, name, version and times. A metadata-only write would
// otherwise show them the login ID, institution, owner, who may reveal it
// and its field names.
func (s *Service) viewFor(ctx context.Context, c *store.Credential, fields []string) Credential {
	if s.may(ctx, authz.CredentialsRead, c.TenantID, c) {
		return view(c, fields)
	}
	return Credential{ID: c.ID, Name: c.Name, CurrentVersion: c.CurrentVersion, CASRequired: c.CASRequired, CreatedAt: c.CreatedAt,
		UpdatedAt: c.UpdatedAt}
}

func resourceOf(c *store.Credential) authz.Resource {
	return authz.Resource{Type: authz.ResourceCredential, ID: c.ID, Group: c.Group}
}

func errNotFound(ref string) *fault.Error {
	return fault.New(fault.NotFound, "not_found", "no credential %q", ref)
}

// need checks perm on c for the caller. A refusal to whoever may not read
// c says "not found", so names a caller may not read do not leak.
func (s *Service) need(ctx context.Context, perm authz.Permission, tenantID string, c *store.Credential) (string, error) {
	p := authz.From(ctx)
	if p == nil {
		return "", fault.ErrUnauthenticated
	}
	id, ok := authz.Check(p, perm, tenantID, resourceOf(c), s.now())
	if !ok {
		// Whoever may not even see the credential is told it does not
		// exist, as for one that does not: a refused read, fetch, reveal
		// or write must not confirm a name. Only who may read it (and so
		// knows it is there) is told they may not do more. A refused write
		// to a name that holds nothing is judged on the credential it
		// would create, so it gets the same answer.
		if perm == authz.CredentialsRead || !s.may(ctx, authz.CredentialsRead, tenantID, c) {
			return "", refused(perm, c, errNotFound(c.Name))
		}
		return "", refused(perm, c, fault.New(fault.Forbidden, "forbidden", "you may not %s credential %q", verb(perm), c.Name))
	}
	return id, nil
}

// refusal is a refusal on one credential (need, write_only,
// too_many_reveals, erase_not_allowed, regroup_not_allowed...): the
// client sees its fault, and the tenant's log gets an authz.deny entry
// once the refused call is over (see denied). The route-level check
// records its own refusals; these are the ones only the vault sees.
type refusal struct {
	fault    *fault.Error
	perm     authz.Permission
	tenantID string
	target   string // the credential's ID, or the name given when there is none
	name     string
}

func (r *refusal) Error() string { return r.fault.Error() }
func (r *refusal) Unwrap() error { return r.fault }

// refused marks fe, a refusal of perm on c, for the audit log.
func refused(perm authz.Permission, c *store.Credential, fe *fault.Error) error {
	target := c.ID
	if target == "" {
		target = c.Name
	}
	return &refusal{fault: fe, perm: perm, tenantID: c.TenantID, target: target, name: c.Name}
}

// denied records the refusal err holds, if any, as an authz.deny entry in
// the tenant's log, in a transaction of its own: the refused call's own
// transaction (if it had one) rolled back, and a transaction cannot be
// opened inside another on a single writer. It is the route-level
// denials' entry (audit.Denied: permission, tenant) with the refusal's
// code and the credential's name added; never anything of a secret. It
// returns err, or store.ErrStale when the request was served from a cache
// gone stale (it runs again, and this refusal may not stand).
func (s *Service) denied(ctx context.Context, err error) error {
	var r *refusal
	if !errors.As(err, &r) || r.tenantID == "" {
		return err
	}
	rerr := audit.Record(ctx, s.store, s.now(), audit.Denied(r.tenantID, r.target, string(r.perm), r.tenantID,
		map[string]any{"code": r.fault.Code, "name": r.name}))
	if errors.Is(rerr, store.ErrStale) {
		return rerr
	}
	if rerr != nil {
		s.log.ErrorContext(ctx, "audit denial", "err", rerr)
	}
	return err
}

// may reports whether the caller holds perm on c.
func (s *Service) may(ctx context.Context, perm authz.Permission, tenantID string, c *store.Credential) bool {
	_, ok := authz.Check(authz.From(ctx), perm, tenantID, resourceOf(c), s.now())
	return ok
}

func verb(p authz.Permission) string {
	switch p {
	case authz.CredentialsWrite:
		return "change"
	case authz.CredentialsReveal:
		return "reveal"
	case authz.CredentialsFetch:
		return "fetch"
	}
	return "read"
}

// find looks a credential up by ID or name and checks perm on it for the
// caller.
func (s *Service) find(ctx context.Context, tx store.VaultTx, tenantID, ref string, perm authz.Permission) (*store.Credential, error) {
	c, err := Lookup(ctx, tx, tenantID, ref)
	if err != nil {
		return nil, err
	}
	if _, err := s.need(ctx, perm, tenantID, c); err != nil {
		return nil, err
	}
	return c, nil
}

// findToErase is find for erasing for good (a credential with every
// version, or versions' secrets): only the credential's owner, the
// tenant's owners and admins, and whoever holds a grant to write it may.
// A member's role lets them write every credential, not destroy the
// others'.
func (s *Service) findToErase(ctx context.Context, tx store.VaultTx, tenantID, ref string) (*store.Credential, error) {
	c, err := Lookup(ctx, tx, tenantID, ref)
	if err != nil {
		return nil, err
	}
	if _, err := s.need(ctx, authz.CredentialsWrite, tenantID, c); err != nil {
		return nil, err
	}
	return c, s.mayErase(ctx, tenantID, c)
}

// mayErase refuses a caller who may write c but not erase it for good:
// a member other than its owner, below admin, without a grant to write it.
// Erasing is deleting it, destroying versions' secrets, or lowering how
// many versions it keeps.
func (s *Service) mayErase(ctx context.Context, tenantID string, c *store.Credential) error {
	if p := authz.From(ctx); p.Kind == authz.KindMember && p.ID != c.OwnerID && authz.Rank(p.Role) < authz.Rank(authz.RoleAdmin) {
		grantsOnly := *p
		grantsOnly.Role = "" // what the member's grants allow, without the role
		if _, ok := authz.Check(&grantsOnly, authz.CredentialsWrite, tenantID, resourceOf(c), s.now()); !ok {
			return refused(authz.CredentialsWrite, c, fault.New(fault.Forbidden, "erase_not_allowed",
				"only the owner of %q, an admin, or someone granted credentials.write on it may erase it for good (or keep fewer versions)", c.Name))
		}
	}
	return nil
}

// mayRegroup refuses a caller who may not move c to another group: the
// group decides which group grants reach it (robots' fetches among them),
// so only the tenant's owners and admins move it.
func (s *Service) mayRegroup(ctx context.Context, c *store.Credential, group string) error {
	if group == "" || group == c.Group {
		return nil
	}
	if p := authz.From(ctx); p.Kind != authz.KindMember || authz.Rank(p.Role) < authz.Rank(authz.RoleAdmin) {
		return refused(authz.CredentialsWrite, c, fault.New(fault.Forbidden, "regroup_not_allowed",
			"only the tenant's owners and admins move a credential to another group (%q is in %q): the group decides which grants reach it", c.Name, c.Group))
	}
	return nil
}

// notIntoOwnRobotsReach refuses, under the tenant's robot dual control,
// moving c into a group on which a robot holds a live credentials.fetch
// grant while the caller issued one of that robot's live tokens: the
// grant was agreed for the group as it was, and the move would hand the
// caller, through their token, a secret nobody else agreed to.
func (s *Service) notIntoOwnRobotsReach(ctx context.Context, tx store.Tx, tenantID string, c *store.Credential, group string) error {
	if group == "" || group == c.Group {
		return nil
	}
	pol, err := tenant.ReadPolicy(ctx, tx, tenantID)
	if err != nil || !pol.DualControl() {
		return err
	}
	now := s.now()
	gs, err := tx.ListGrants(ctx, store.GrantFilter{TenantID: tenantID, LiveAt: now})
	if err != nil {
		return err
	}
	me := authz.From(ctx).ID
	for _, g := range gs {
		if g.SubjectType != store.SubjectRobot || g.Permission != string(authz.CredentialsFetch) ||
			g.ResourceType != store.ResourceGroup || g.ResourceID != group {
			continue
		}
		held, err := identity.RobotTokenHolders(ctx, tx, tenantID, g.SubjectID, now)
		if err != nil {
			return err
		}
		if tok, ok := held[me]; ok {
			return refused(authz.CredentialsWrite, c, fault.New(fault.Forbidden, "dual_control",
				"a robot whose token %s you issued fetches group %q: another owner or admin must move %q there "+
					"(the tenant's robot dual control takes two people)", tok, group, c.Name))
		}
	}
	return nil
}

// secretOf is version v's fields f of c, handed out.
func secretOf(c *store.Credential, v *store.CredentialVersion, f Fields) *Secret {
	return &Secret{Credential: c.ID, Name: c.Name, Version: v.Version, LoginID: c.LoginID, Fields: f, CreatedAt: v.CreatedAt,
		Labels: maps.Clone(c.Labels)} // c may be shared through the secrets cache
}

// parseTTL reads a lease lifetime: DefaultLease when empty, at most
// MaxLease.
func parseTTL(ttl string) (time.Duration, error) {
	if ttl == "" {
		return DefaultLease, nil
	}
	d, err := time.ParseDuration(ttl)
	if err != nil || d < MinLease || d > MaxLease {
		return 0, invalid("invalid_ttl", "ttl must be a duration from %s to %s, such as 15m", MinLease, MaxLease)
	}
	return d, nil
}

// Lookup finds a credential by its name, or by its ID (crd_…), in tx; a
// credential that does not exist is a not_found fault.
func Lookup(ctx context.Context, tx store.VaultTx, tenantID, ref string) (*store.Credential, error) {
	c, err := tx.GetCredentialByName(ctx, tenantID, ref)
	if errors.Is(err, store.ErrNotFound) && strings.HasPrefix(ref, "crd_") {
		c, err = tx.GetCredential(ctx, tenantID, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound(ref)
	}
	return c, err
}

func (s *Service) record(ctx context.Context, tx store.AuditTx, tenantID, action, target string, details map[string]any) error {
	return audit.Append(ctx, tx, s.now(), audit.Entry{Log: tenantID, Action: action, Target: target, Details: details})
}

func wrapErr(op string, err error) error { return fault.Annotate("vault", op, err) }

// fail is wrapErr for a call that may end in a refusal on a credential,
// which it records (see denied).
func (s *Service) fail(ctx context.Context, op string, err error) error {
	return s.denied(ctx, wrapErr(op, err))
}

// oneLine reports whether s, a purpose or reason shown to people in the
// audit log and on their terminals, is valid UTF-8 without control or
// bidirectional-format characters.
func oneLine(s string) bool { return plainText(s, "") }

func invalid(code, format string, args ...any) error {
	return fault.New(fault.Invalid, code, format, args...)
}

// checkName accepts path-like names: segments of letters, digits, '.',
// '_' and '-', separated by single '/'.
func checkName(name string) error {
	if name == "" || len(name) > maxNameLen || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return invalid("invalid_name", "name must be a path like bank/santander/main (1 to %d characters)", maxNameLen)
	}
	for _, r := range name {
		if !(r == '/' || r == '.' || r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return invalid("invalid_name", "name may hold letters, digits, '.', '_', '-' and '/' only")
		}
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "." || seg == ".." {
			return invalid("invalid_name", "name segments may not be . or ..")
		}
	}
	return nil
}

func checkFields(f Fields) ([]string, error) {
	if len(f) == 0 {
		return nil, invalid("invalid_secret", "secret needs at least one field, e.g. {\"password\": \"...\"}")
	}
	if len(f) > maxFields {
		return nil, invalid("invalid_secret", "at most %d secret fields", maxFields)
	}
	names := make([]string, 0, len(f))
	for k, v := range f {
		if k == "" || len(k) > 64 {
			return nil, invalid("invalid_secret", "field names must be 1 to 64 characters")
		}
		if len(v) > maxFieldBytes {
			return nil, invalid("invalid_secret", "field %q is larger than %d bytes", k, maxFieldBytes)
		}
		names = append(names, k)
	}
	sort.Strings(names)
	return names, nil
}

// Put creates a credential, or writes its next version. People may write
// without ever reading back; nobody gets the secret from this call.
func (s *Service) Put(ctx context.Context, tenantID string, in PutInput) (*Credential, error) {
	p := authz.From(ctx)
	if p == nil {
		return nil, fault.ErrUnauthenticated
	}
	if err := checkName(in.Name); err != nil {
		return nil, err
	}
	if in.Kind != "" && !slices.Contains(store.CredentialKinds, in.Kind) {
		return nil, invalid("invalid_kind", "kind must be one of %s", strings.Join(store.CredentialKinds, ", "))
	}
	if in.MaxVersions < 0 || in.MaxVersions > MaxVersionsLimit {
		return nil, invalid("invalid_max_versions", "max_versions must be 1 to %d", MaxVersionsLimit)
	}
	if in.SealedSecret != "" {
		if in.Secret != nil {
			return nil, invalid("secret_and_sealed_secret", "give the secret as secret or as sealed_secret, not both")
		}
		f, cas, err := s.openSealed(ctx, tenantID, in.Name, in.SealedSecret)
		if err != nil {
			return nil, err
		}
		if cas != nil {
			if in.CAS != nil && *in.CAS != *cas {
				return nil, invalid("cas_mismatch", "cas %d differs from the cas %d sealed in the submission", *in.CAS, *cas)
			}
			in.CAS = cas
		}
		in.Secret, in.SealedSecret = f, ""
	}
	var fields []string
	if in.Secret != nil {
		var err error
		if fields, err = checkFields(in.Secret); err != nil {
			return nil, err
		}
	}
	if err := refuseSecondFactors(in.Secret, in.Notes); err != nil {
		return nil, err
	}
	// The password is judged before the write transaction: zxcvbn takes
	// milliseconds, which a single writer should not wait for. Its inputs
	// include stored metadata, read only past the write's permission
	// check (judgeInputs), which the transaction makes again.
	var j judgement
	if in.Secret != nil {
		inputs, err := s.judgeInputs(ctx, tenantID, in)
		if err != nil {
			return nil, s.fail(ctx, "put", err)
		}
		j = judge(in.Secret, inputs...)
	}
	var out Credential
	err := s.store.Update(ctx, func(tx store.Tx) error {
		now := s.now().UTC()
		c, err := tx.GetCredentialByName(ctx, tenantID, in.Name)
		created := false
		switch {
		case errors.Is(err, store.ErrNotFound):
			c = &store.Credential{TenantID: tenantID, ID: store.NewID("crd_"), Name: in.Name, Kind: store.KindOther, OwnerID: p.ID,
				MaxVersions: DefaultMaxVersions, CreatedBy: p.ID, CreatedAt: now}
			c.Group, _, _ = strings.Cut(in.Name, "/")
			// Created in another group, it is written there: the right to
			// write is judged on that group, not on the name's.
			if in.Group != "" {
				c.Group = in.Group
			}
			created = true
		case err != nil:
			return err
		}
		details := map[string]any{}
		if created && in.Group != "" {
			details["group"] = c.Group
		}
		// Write access is checked on the credential itself (a grant may
		// name it or its group), and first: whoever may neither read nor
		// write it is told it does not exist, as for a name that holds
		// nothing, before anything else about it (check-and-set, its
		// version, its kind) can tell them otherwise.
		if _, err := s.need(ctx, authz.CredentialsWrite, tenantID, c); err != nil {
			return err
		}
		if created {
			if in.CAS != nil && *in.CAS != 0 {
				return fault.New(fault.Conflict, "cas_mismatch", "check-and-set %d, but %q does not exist", *in.CAS, in.Name)
			}
			if in.Secret == nil {
				return invalid("invalid_secret", "a new credential needs its secret fields")
			}
			if err := checkNewName(in.Name); err != nil {
				return err
			}
		} else {
			if in.CAS != nil && *in.CAS != c.CurrentVersion {
				return fault.New(fault.Conflict, "cas_mismatch", "check-and-set %d, but the current version is %d", *in.CAS, c.CurrentVersion)
			}
			if c.CASRequired && in.CAS == nil && in.Secret != nil {
				return fault.New(fault.Conflict, "cas_required", "credential %q requires check-and-set: give cas", in.Name)
			}
		}
		if err := refuseCertificatePut(c, created, in); err != nil {
			return err
		}
		if err := checkMetadata(c, created, in); err != nil {
			return err
		}
		if !created {
			if err := s.mayRegroup(ctx, c, in.Group); err != nil {
				return err
			}
			if err := s.notIntoOwnRobotsReach(ctx, tx, tenantID, c, in.Group); err != nil {
				return err
			}
			if in.MaxVersions != 0 && in.MaxVersions < c.MaxVersions {
				if err := s.mayErase(ctx, tenantID, c); err != nil {
					return err
				}
			}
		}
		if in.Kind != "" {
			c.Kind = in.Kind
		}
		if in.Institution != "" {
			c.Institution = in.Institution
		}
		if in.LoginID != "" {
			c.LoginID = in.LoginID
		}
		if in.Notes != "" {
			c.Notes = in.Notes
		}
		if in.Group != "" && in.Group != c.Group {
			if !created {
				details["group_was"] = c.Group
			}
			c.Group = in.Group
			details["group"] = c.Group
		}
		if in.Labels != nil {
			c.Labels = in.Labels
		}
		if done := setRotateBy(c, in.RotateBy, in.Secret != nil, now); !done.IsZero() {
			details["rotate_by_done"] = done
		}
		if in.MaxVersions != 0 {
			c.MaxVersions = in.MaxVersions
		}
		if in.CASRequired != nil && *in.CASRequired != c.CASRequired {
			c.CASRequired = *in.CASRequired
			details["cas_required"] = c.CASRequired
		}
		c.UpdatedAt = now
		details["name"], details["kind"] = c.Name, c.Kind
		var fp []byte
		if in.Secret != nil {
			c.CurrentVersion++
			if fp, err = s.sealVersion(ctx, tx, c, in.Secret, fields, j, p.ID, now); err != nil {
				return err
			}
			details["version"], details["fields"] = c.CurrentVersion, fields
		}
		if created {
			if err := tx.InsertCredential(ctx, c); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return fault.New(fault.Conflict, "name_taken", "credential %q was just created by someone else; retry", c.Name)
				}
				return err
			}
		} else if err := tx.UpdateCredential(ctx, c); err != nil {
			return err
		}
		if err := s.prune(ctx, tx, c, details); err != nil {
			return err
		}
		var warn []Warning
		if in.Secret != nil {
			if warn, err = s.warnings(ctx, tx, c, j, fp, details); err != nil {
				return err
			}
		}
		action := "credential.update"
		if created {
			action = "credential.create"
		}
		if err := s.record(ctx, tx, tenantID, action, c.ID, details); err != nil {
			return err
		}
		cur := fields // the version just written is the current one
		if in.Secret == nil {
			if cur, err = s.currentFields(ctx, tx, c); err != nil {
				return err
			}
		}
		out = s.viewFor(ctx, c, cur)
		out.Warnings, out.created = warn, created
		return nil
	})
	if err != nil {
		return nil, s.fail(ctx, "put", err)
	}
	return &out, nil
}

// setRotateBy applies a write's rotate_by to c: a date given is kept. A
// new secret (a certificate's renewal too) written without one when the
// rotation was overdue or due within DefaultRotationWindow is that
// rotation: the date is done with, and returned (zero otherwise); the next
// one is set with rotate_by.
func setRotateBy(c *store.Credential, given time.Time, newSecret bool, now time.Time) time.Time {
	switch {
	case !given.IsZero():
		c.RotateBy = given.UTC()
	case newSecret && !c.RotateBy.IsZero() && c.RotateBy.Before(now.Add(DefaultRotationWindow)):
		done := c.RotateBy
		c.RotateBy = time.Time{}
		return done
	}
	return time.Time{}
}

// sealVersion seals fields as version c.CurrentVersion of c, with the
// judgement of its password (strength, breached, keyed fingerprint), and
// returns the fingerprint.
func (s *Service) sealVersion(ctx context.Context, tx store.Tx, c *store.Credential, f Fields, names []string, j judgement, by string,
	now time.Time) ([]byte, error) {
	pt, err := json.Marshal(map[string]string(f))
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	rid := store.CredentialRecordID(c.ID, c.CurrentVersion)
	kv, ct, err := s.keyring.Seal(ctx, tx, c.TenantID, store.RecordCredential, rid, pt)
	if err != nil {
		return nil, err
	}
	if err := tx.PutRecord(ctx, &store.Record{TenantID: c.TenantID, Kind: store.RecordCredential, ID: rid, KeyVersion: kv,
		Ciphertext: ct, CreatedAt: now, UpdatedAt: now}); err != nil {
		return nil, err
	}
	fp, err := s.fingerprint(ctx, tx, c.TenantID, j)
	if err != nil {
		return nil, err
	}
	return fp, tx.InsertCredentialVersion(ctx, &store.CredentialVersion{TenantID: c.TenantID, CredentialID: c.ID, Version: c.CurrentVersion,
		Fields: names, Fingerprint: fp, Strength: j.strength, Breached: j.breached, CreatedBy: by, CreatedAt: now})
}

// prune keeps the newest MaxVersions versions, erasing the older ones, and
// names those it erased in details (as "pruned") unless details is nil.
//
// Pruning erases for good, so it is for whoever may erase c (mayErase):
// a write or restore by anyone else keeps every version, past
// MaxVersions if need be, and says how many it kept over (as
// "kept_over_max_versions"), until someone who may erase writes it or
// sets how many it keeps. Otherwise a member writing another's
// credential MaxVersions times would erase its history, which
// erase_not_allowed refuses them.
// keepRotationFlag: restoring version v, written before (or as) an offboarding
// flagged c for rotation, brings back a secret the leaver may know, so it
// is no rotation. The flag, which a newer version would clear, is raised
// again as of now (health counts a version written after the flag as the
// rotation), and the restore's audit entry says so.
func keepRotationFlag(ctx context.Context, tx store.Tx, c *store.Credential, v *store.CredentialVersion, now time.Time,
	details map[string]any) error {
	flags, err := tx.ListRotationFlags(ctx, c.TenantID)
	if err != nil {
		return err
	}
	for _, f := range flags {
		if f.ResourceType != store.ResourceCredential || (f.ResourceID != c.ID && f.ResourceID != c.Name) || !f.ClearedAt.IsZero() ||
			v.CreatedAt.After(f.FlaggedAt) {
			continue
		}
		f.FlaggedAt = now
		if err := tx.FlagRotation(ctx, &f); err != nil {
			return err
		}
		details["rotation_flag_kept"] = f.Reason
	}
	return nil
}

func (s *Service) prune(ctx context.Context, tx store.Tx, c *store.Credential, details map[string]any) error {
	if c.CurrentVersion <= c.MaxVersions {
		return nil // versions are numbered from 1: there are no more than this
	}
	vs, err := tx.ListCredentialVersions(ctx, c.TenantID, c.ID)
	if err != nil {
		return err
	}
	if len(vs) <= c.MaxVersions {
		return nil
	}
	if p := authz.From(ctx); p != nil && s.mayErase(ctx, c.TenantID, c) != nil {
		if details != nil {
			details["kept_over_max_versions"] = len(vs) - c.MaxVersions
		}
		return nil
	}
	var gone []int
	for i := 0; i < len(vs)-c.MaxVersions; i++ {
		if err := tx.DeleteCredentialVersion(ctx, c.TenantID, c.ID, vs[i].Version); err != nil {
			return err
		}
		if err := tx.DeleteRecord(ctx, c.TenantID, store.RecordCredential, store.CredentialRecordID(c.ID, vs[i].Version)); err != nil &&
			!errors.Is(err, store.ErrNotFound) {
			return err
		}
		gone = append(gone, vs[i].Version)
	}
	if details != nil && len(gone) > 0 {
		details["pruned"] = gone
	}
	return nil
}

func (s *Service) currentFields(ctx context.Context, tx store.Tx, c *store.Credential) ([]string, error) {
	if c.CurrentVersion == 0 {
		return nil, nil
	}
	v, err := tx.GetCredentialVersion(ctx, c.TenantID, c.ID, c.CurrentVersion)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !v.DeletedAt.IsZero() || !v.DestroyedAt.IsZero() {
		return nil, nil
	}
	return v.Fields, nil
}

// Get returns a credential's metadata (never its secret).
func (s *Service) Get(ctx context.Context, tenantID, ref string) (*Credential, error) {
	var out Credential
	err := s.store.View(ctx, func(tx store.Tx) error {
		c, err := s.find(ctx, tx, tenantID, ref, authz.CredentialsRead)
		if err != nil {
			return err
		}
		f, err := s.currentFields(ctx, tx, c)
		out = view(c, f)
		return err
	})
	if err != nil {
		return nil, s.fail(ctx, "get", err)
	}
	return &out, nil
}

// List returns the credentials under prefix the caller may read, by name.
func (s *Service) List(ctx context.Context, tenantID, prefix, after string, limit int) ([]Credential, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	p := authz.From(ctx)
	var out []Credential
	err := s.store.View(ctx, func(tx store.Tx) error {
		for len(out) < limit {
			cs, err := tx.ListCredentials(ctx, store.CredentialFilter{TenantID: tenantID, Prefix: prefix, After: after, Limit: limit})
			if err != nil {
				return err
			}
			for i := range cs {
				after = cs[i].Name
				if _, ok := authz.Check(p, authz.CredentialsRead, tenantID, resourceOf(&cs[i]), s.now()); !ok {
					continue
				}
				out = append(out, view(&cs[i], nil))
				if len(out) == limit {
					break
				}
			}
			if len(cs) < limit {
				break
			}
		}
		return nil
	})
	return out, wrapErr("list", err)
}

// History lists a credential's versions, oldest first.
func (s *Service) History(ctx context.Context, tenantID, ref string) ([]Version, error) {
	var out []Version
	err := s.store.View(ctx, func(tx store.Tx) error {
		c, err := s.find(ctx, tx, tenantID, ref, authz.CredentialsRead)
		if err != nil {
			return err
		}
		vs, err := tx.ListCredentialVersions(ctx, tenantID, c.ID)
		for _, v := range vs {
			out = append(out, Version{Version: v.Version, Fields: v.Fields, CreatedBy: v.CreatedBy, CreatedAt: v.CreatedAt,
				DeletedAt: v.DeletedAt, DestroyedAt: v.DestroyedAt, Current: v.Version == c.CurrentVersion})
		}
		return err
	})
	return out, s.fail(ctx, "history", err)
}

// Restore makes an earlier version's secret the current one, as a new
// version. The caller needs credentials.write, not the right to read it.
// cas is check-and-set as for Put: when given it must be the current
// version, and a credential that requires check-and-set is restored only
// with it, since a restore writes a version like any write.
func (s *Service) Restore(ctx context.Context, tenantID, ref string, version int, cas *int) (*Credential, error) {
	p := authz.From(ctx)
	var out Credential
	err := s.store.Update(ctx, func(tx store.Tx) error {
		c, err := s.find(ctx, tx, tenantID, ref, authz.CredentialsWrite)
		if err != nil {
			return err
		}
		// A destroyed version is said to be so, whatever else is wrong:
		// no retry can bring it back.
		if v, err := tx.GetCredentialVersion(ctx, tenantID, c.ID, version); err == nil && !v.DestroyedAt.IsZero() {
			return fault.New(fault.Conflict, "version_destroyed", "version %d of %q was destroyed: its secret is gone for good and cannot be restored",
				version, c.Name)
		}
		switch {
		case cas != nil && *cas != c.CurrentVersion:
			return fault.New(fault.Conflict, "cas_mismatch", "check-and-set %d, but the current version is %d", *cas, c.CurrentVersion)
		case cas == nil && c.CASRequired:
			return fault.New(fault.Conflict, "cas_required", "credential %q requires check-and-set: give cas, the current version (%d)",
				c.Name, c.CurrentVersion)
		}
		f, v, err := s.open(ctx, tx, c, version)
		if err != nil {
			return err
		}
		defer clear(f)
		now := s.now().UTC()
		c.CurrentVersion++
		c.UpdatedAt = now
		// Judged again: the breached list may have grown since.
		j := judgeFor(c, f)
		fp, err := s.sealVersion(ctx, tx, c, f, v.Fields, j, p.ID, now)
		if err != nil {
			return err
		}
		if err := tx.UpdateCredential(ctx, c); err != nil {
			return err
		}
		if err := s.restoredCertificate(ctx, tx, c, f, now); err != nil {
			return err
		}
		details := map[string]any{"name": c.Name, "from_version": version, "version": c.CurrentVersion}
		if err := keepRotationFlag(ctx, tx, c, v, now, details); err != nil {
			return err
		}
		if err := s.prune(ctx, tx, c, details); err != nil {
			return err
		}
		warn, err := s.warnings(ctx, tx, c, j, fp, details)
		if err != nil {
			return err
		}
		out = s.viewFor(ctx, c, v.Fields)
		out.Warnings = warn
		return s.record(ctx, tx, tenantID, "credential.restore", c.ID, details)
	})
	if err != nil {
		return nil, s.fail(ctx, "restore", err)
	}
	return &out, nil
}

// open unseals one version's fields (0: the current one).
func (s *Service) open(ctx context.Context, tx store.Tx, c *store.Credential, version int) (Fields, *store.CredentialVersion, error) {
	if version == 0 {
		version = c.CurrentVersion
	}
	v, err := tx.GetCredentialVersion(ctx, c.TenantID, c.ID, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fault.New(fault.NotFound, "no_version", "credential %q has no version %d", c.Name, version)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := live(c, v); err != nil {
		return nil, nil, err
	}
	rec, err := tx.GetRecord(ctx, c.TenantID, store.RecordCredential, store.CredentialRecordID(c.ID, version))
	if err != nil {
		return nil, nil, err
	}
	f, err := s.unseal(ctx, tx, rec)
	return f, v, err
}

// live refuses a deleted or destroyed version.
func live(c *store.Credential, v *store.CredentialVersion) error {
	switch {
	case !v.DestroyedAt.IsZero():
		return fault.New(fault.NotFound, "version_deleted", "version %d of %q was destroyed: its secret is gone for good", v.Version, c.Name)
	case !v.DeletedAt.IsZero():
		return fault.New(fault.NotFound, "version_deleted", "version %d of %q is deleted (POST /v1/secret/undelete/NAME brings it back)", v.Version, c.Name)
	}
	return nil
}

// unseal opens a credential version's sealed record.
func (s *Service) unseal(ctx context.Context, tx store.Tx, rec *store.Record) (Fields, error) {
	pt, err := s.keyring.Open(ctx, tx, rec.TenantID, store.RecordCredential, rec.ID, rec.Ciphertext)
	if err != nil {
		return nil, err
	}
	return decodeFields(pt)
}

// decodeFields decodes an opened record and clears it.
func decodeFields(pt keys.Secret) (Fields, error) {
	defer clear(pt)
	var f Fields
	if err := json.Unmarshal(pt, &f); err != nil {
		return nil, err
	}
	return f, nil
}

// findOpen finds a credential, checks perm on it and opens a version (the
// current one when version is 0). A credential named by its name is read
// with its version and sealed record at once; by ID, or when one of them
// is missing, it takes the longer way, which says which one is.
//
// It reads through the secrets cache: a credential found at once (by name
// or ID), with its version and sealed record, is kept (still sealed) while the store's
// change stamp holds. The grant and the version's state are judged afresh
// on every call, and the plaintext is never kept.
func (s *Service) findOpen(ctx context.Context, tenantID, ref string, version int, perm authz.Permission) (*store.Credential, *store.CredentialVersion, Fields, string, error) {
	key := secretKey{tenantID, ref, version}
	if cs, ok := s.secrets.Get(ctx, key); ok {
		c, v, f, grant, err := s.openFound(ctx, nil, cs, perm)
		if !errors.Is(err, errKeysNotCached) {
			return c, v, f, grant, err
		}
	}
	stamp, cacheable := s.secrets.Stamp() // before the read: see store.ReadCache
	var c *store.Credential
	var v *store.CredentialVersion
	var f Fields
	var grant string
	err := s.store.View(ctx, func(tx store.Tx) error {
		cs, err := tx.GetCredentialSecret(ctx, tenantID, ref, version)
		if errors.Is(err, store.ErrNotFound) && strings.HasPrefix(ref, "crd_") {
			cs, err = tx.GetCredentialSecretByID(ctx, tenantID, ref, version) // as lookup: a name first, then an ID
		}
		if err == nil {
			if cacheable {
				s.secrets.Put(key, cs, stamp, len(cs.Record.Ciphertext)+len(cs.Credential.Notes)+1024)
			}
			c, v, f, grant, err = s.openFound(ctx, tx, cs, perm)
			return err
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if c, err = Lookup(ctx, tx, tenantID, ref); err != nil {
			return err
		}
		if grant, err = s.need(ctx, perm, tenantID, c); err != nil {
			return err
		}
		f, v, err = s.open(ctx, tx, c, version)
		return err
	})
	if err != nil {
		return nil, nil, nil, "", err
	}
	return c, v, f, grant, nil
}

// secretKey names what findOpen caches: a credential by tenant and
// reference, at a version (0: the current one).
type secretKey struct {
	tenantID, ref string
	version       int
}

// secretsCacheBytes bounds the secrets cache (sealed records and their
// credentials' metadata).
const secretsCacheBytes = 64 << 20

// errKeysNotCached: openFound was given no transaction and the tenant's
// keys are not cached.
var errKeysNotCached = errors.New("vault: tenant keys not cached")

// openFound checks perm on a credential read with its version and record
// and opens the record. Without a transaction (tx nil) it opens only with
// the keyring's cached keys, failing with errKeysNotCached otherwise. cs
// is not changed: it may be shared through the cache.
func (s *Service) openFound(ctx context.Context, tx store.Tx, cs *store.CredentialSecret, perm authz.Permission) (*store.Credential, *store.CredentialVersion, Fields, string, error) {
	c, v := &cs.Credential, &cs.Version
	grant, err := s.need(ctx, perm, c.TenantID, c)
	if err != nil {
		return nil, nil, nil, "", err
	}
	if err := live(c, v); err != nil {
		return nil, nil, nil, "", err
	}
	var f Fields
	if tx == nil {
		pt, ok, err := s.keyring.OpenCached(cs.Record.TenantID, store.RecordCredential, cs.Record.ID, cs.Record.Ciphertext)
		if !ok {
			return nil, nil, nil, "", errKeysNotCached
		}
		if err == nil {
			f, err = decodeFields(pt)
		}
		return c, v, f, grant, err
	}
	f, err = s.unseal(ctx, tx, &cs.Record)
	return c, v, f, grant, err
}

// FetchInput is a robot's just-in-time fetch.
type FetchInput struct {
	// Purpose is why the robot needs it now ("monthly payroll run"); it is
	// audited.
	Purpose string `json:"purpose"`
	// TTL is the lease's lifetime (default 5 minutes, at most an hour).
	TTL     string `json:"ttl,omitempty"`
	Version int    `json:"version,omitempty"`
}

// Fetch hands a robot the secret under a lease. Only robots fetch; people
// reveal (see Reveal), and no role carries either right: a grant does.
func (s *Service) Fetch(ctx context.Context, tenantID, ref string, in FetchInput) (*Secret, error) {
	p := authz.From(ctx)
	if p == nil {
		return nil, fault.ErrUnauthenticated
	}
	if p.Kind != authz.KindRobot {
		return nil, s.denied(ctx, refused(authz.CredentialsFetch, &store.Credential{TenantID: tenantID, Name: ref},
			fault.New(fault.Forbidden, "robots_only", "only robots fetch credentials; a person with the right may reveal one")))
	}
	in.Purpose = strings.TrimSpace(in.Purpose)
	if in.Purpose == "" || len(in.Purpose) > 500 {
		return nil, invalid("purpose_required", "say why the secret is needed now (purpose, 1 to 500 characters)")
	}
	if !oneLine(in.Purpose) {
		return nil, invalid("invalid_purpose", "purpose must be one line of text, without control characters")
	}
	ttl, err := parseTTL(in.TTL)
	if err != nil {
		return nil, err
	}
	// The read runs on a reader (in parallel with every other read); only
	// the lease and its audit entry go through the writer, together. A
	// grant revoked or a version destroyed in between is as if the fetch
	// had come just before.
	c, v, f, grant, err := s.findOpen(ctx, tenantID, ref, in.Version, authz.CredentialsFetch)
	if err != nil {
		return nil, s.fail(ctx, "fetch", err)
	}
	out := secretOf(c, v, f)
	err = s.store.Update(store.Appending(ctx), func(tx store.Tx) error {
		now := s.now().UTC()
		l := &store.Lease{ID: store.NewTimeID("lse_", now), TenantID: tenantID, CredentialID: out.Credential, Version: out.Version,
			SubjectType: store.SubjectRobot, SubjectID: p.ID, Purpose: in.Purpose, CreatedAt: now, ExpiresAt: now.Add(ttl), Granted: ttl}
		if err := tx.InsertLease(ctx, l); err != nil {
			return err
		}
		out.LeaseID, out.ExpiresAt = l.ID, l.ExpiresAt
		return s.record(ctx, tx, tenantID, "credential.fetch", out.Credential, map[string]any{"name": out.Name, "version": out.Version,
			"lease": l.ID, "purpose": in.Purpose, "grant": grant, "lease_expires_at": l.ExpiresAt})
	})
	if err != nil {
		return nil, s.fail(ctx, "fetch", err)
	}
	return out, nil
}

// RevealInput is a person's reason to read a secret back.
type RevealInput struct {
	Reason  string `json:"reason"`
	Version int    `json:"version,omitempty"`
}

// Reveal shows a person a secret: only a credential made revealable to
// them by name, with a reveal grant, a reason, at most RevealsPerHour an
// hour; the owner is notified.
func (s *Service) Reveal(ctx context.Context, tenantID, ref string, in RevealInput) (*Secret, error) {
	p := authz.From(ctx)
	if p == nil {
		return nil, fault.ErrUnauthenticated
	}
	if p.Kind != authz.KindMember {
		return nil, s.denied(ctx, refused(authz.CredentialsReveal, &store.Credential{TenantID: tenantID, Name: ref},
			fault.New(fault.Forbidden, "people_only", "only people reveal; robots fetch under a lease")))
	}
	in.Reason = strings.TrimSpace(in.Reason)
	if in.Reason == "" || len(in.Reason) > 500 {
		return nil, invalid("reason_required", "say why you need to see it (reason, 1 to 500 characters)")
	}
	if !oneLine(in.Reason) {
		return nil, invalid("invalid_reason", "reason must be one line of text, without control characters")
	}
	var out *Secret
	err := s.store.Update(ctx, func(tx store.Tx) error {
		c, err := Lookup(ctx, tx, tenantID, ref)
		if err != nil {
			return err
		}
		// Write-only is the first answer, whatever the grants: it is why
		// no grant alone can reveal it (unless the caller may not even
		// see it, who is told it does not exist).
		if !slices.Contains(c.Revealable, p.ID) {
			if !s.may(ctx, authz.CredentialsRead, tenantID, c) {
				return refused(authz.CredentialsReveal, c, errNotFound(c.Name))
			}
			return refused(authz.CredentialsReveal, c, fault.New(fault.Forbidden, "write_only", "credential %q is write-only for you: "+
				"the tenant has not made it revealable to you (an admin can, with cred revealable; a reveal also needs a credentials.reveal grant)", c.Name))
		}
		grant, err := s.need(ctx, authz.CredentialsReveal, tenantID, c)
		if err != nil {
			return err
		}
		if err := s.revealAllowed(ctx, tx, tenantID, p.ID); err != nil {
			if fe, ok := fault.As(err); ok && fe.Code == "too_many_reveals" {
				return refused(authz.CredentialsReveal, c, fe)
			}
			return err
		}
		f, v, err := s.open(ctx, tx, c, in.Version)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		out = secretOf(c, v, f)
		if c.OwnerID != p.ID {
			if err := identity.Notify(ctx, tx, now, tenantID, c.OwnerID, "credential_revealed",
				fmt.Sprintf("%s was revealed", c.Name), map[string]any{"credential": c.ID, "by": p.ID, "reason": in.Reason}); err != nil {
				return err
			}
		}
		return s.record(ctx, tx, tenantID, "credential.reveal", c.ID, map[string]any{"name": c.Name, "version": v.Version,
			"reason": in.Reason, "grant": grant})
	})
	if err != nil {
		return nil, s.fail(ctx, "reveal", err)
	}
	return out, nil
}

// revealAllowed refuses a member's reveal past RevealsPerHour in the last
// hour. It counts the member's reveals in the tenant's audit log (only
// reveals that happened are recorded as credential.reveal), so the limit
// holds across restarts and nodes (two nodes racing may each allow the
// last one) and a transaction run twice counts once.
func (s *Service) revealAllowed(ctx context.Context, tx store.Tx, tenantID, memberID string) error {
	evs, err := tx.ListAudit(ctx, store.AuditFilter{LogID: tenantID, AfterSeq: -1, Action: "credential.reveal", ActorID: memberID,
		Since: s.now().Add(-time.Hour), Limit: RevealsPerHour})
	if err != nil {
		return err
	}
	if len(evs) >= RevealsPerHour {
		return fault.New(fault.RateLimited, "too_many_reveals", "at most %d reveals an hour", RevealsPerHour)
	}
	return nil
}

// SetRevealable names the members who may reveal a credential (empty:
// write-only for everyone). It needs members.manage-level trust: the
// caller's role must carry policy.manage. Nobody adds themselves: another
// owner or admin must.
func (s *Service) SetRevealable(ctx context.Context, tenantID, ref string, members []string) (*Credential, error) {
	if len(members) > maxRevealable {
		return nil, invalid("too_many_members", "a credential is revealable to at most %d members", maxRevealable)
	}
	var out Credential
	err := s.store.Update(ctx, func(tx store.Tx) error {
		c, err := Lookup(ctx, tx, tenantID, ref)
		if err != nil {
			return err
		}
		ids := []string{}
		for _, m := range members {
			mem, err := tx.GetMember(ctx, tenantID, m)
			if errors.Is(err, store.ErrNotFound) {
				mem, err = tx.GetMemberByEmail(ctx, tenantID, strings.ToLower(strings.TrimSpace(m)))
			}
			if errors.Is(err, store.ErrNotFound) {
				return fault.New(fault.NotFound, "not_found", "no member %q", m)
			}
			if err != nil {
				return err
			}
			if mem.Status != store.MemberActive {
				return invalid("member_not_active", "member %q is %s: only active members may be named", m, mem.Status)
			}
			if !slices.Contains(ids, mem.ID) {
				ids = append(ids, mem.ID)
			}
		}
		// Nobody makes a credential revealable to themselves: with a
		// reveal grant they may give themselves, one admin would read a
		// write-only secret alone (invariant 3). Staying on a list one is
		// already on is no new right.
		if p := authz.From(ctx); p != nil && slices.Contains(ids, p.ID) && !slices.Contains(c.Revealable, p.ID) {
			return refused(authz.PolicyManage, c, fault.New(fault.Forbidden, "self_revealable",
				"you may not make %q revealable to yourself: another owner or admin must do it", c.Name))
		}
		c.Revealable, c.UpdatedAt = ids, s.now().UTC()
		if err := tx.UpdateCredential(ctx, c); err != nil {
			return err
		}
		f, err := s.currentFields(ctx, tx, c)
		out = s.viewFor(ctx, c, f)
		if err != nil {
			return err
		}
		return s.record(ctx, tx, tenantID, "credential.revealable", c.ID, map[string]any{"name": c.Name, "members": ids})
	})
	if err != nil {
		return nil, s.fail(ctx, "set revealable", err)
	}
	return &out, nil
}

// Lease returns a live lease's secret again, to the robot holding it. It
// is a read of the secret like the fetch, so it is audited (lease.read) in
// the same transaction that finds the lease live: no secret leaves without
// its entry.
func (s *Service) Lease(ctx context.Context, tenantID, leaseID string) (*Secret, error) {
	p := authz.From(ctx)
	var out *Secret
	err := s.store.Update(ctx, func(tx store.Tx) error {
		out = nil
		l, c, err := s.liveLease(ctx, tx, tenantID, leaseID, p)
		if err != nil {
			return err
		}
		f, v, err := s.open(ctx, tx, c, l.Version)
		if err != nil {
			return err
		}
		out = &Secret{Credential: c.ID, Name: c.Name, Version: l.Version, LoginID: c.LoginID, Fields: f, LeaseID: l.ID, ExpiresAt: l.ExpiresAt,
			CreatedAt: v.CreatedAt, Labels: c.Labels}
		return s.record(ctx, tx, tenantID, "lease.read", l.ID, map[string]any{"robot": p.ID, "lease": l.ID, "credential": c.ID,
			"name": c.Name, "version": l.Version})
	})
	if err != nil {
		if out != nil {
			clear(out.Fields)
		}
		return nil, s.fail(ctx, "lease", err)
	}
	return out, nil
}

// liveLease returns the caller's live lease and its credential; the grant
// that allowed the fetch must still hold (revoking it ends every lease it
// gave).
func (s *Service) liveLease(ctx context.Context, tx store.Tx, tenantID, id string, p *authz.Principal) (*store.Lease, *store.Credential, error) {
	l, err := tx.GetLease(ctx, tenantID, id)
	gone := fault.New(fault.NotFound, "lease_gone", "no live lease %q (expired, revoked or never yours)", id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, gone
	}
	if err != nil {
		return nil, nil, err
	}
	if p == nil || l.SubjectID != p.ID || !l.RevokedAt.IsZero() || !s.now().Before(l.ExpiresAt) {
		return nil, nil, gone
	}
	c, err := tx.GetCredential(ctx, tenantID, l.CredentialID)
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.need(ctx, authz.CredentialsFetch, tenantID, c); err != nil {
		return nil, nil, err
	}
	return l, c, nil
}

// LeaseInfo returns the caller's live lease (not its secret), on the terms
// of Lease: another's, an expired or revoked one, or one whose grant is
// gone is a lease_gone fault.
func (s *Service) LeaseInfo(ctx context.Context, tenantID, leaseID string) (*store.Lease, error) {
	p := authz.From(ctx)
	var out *store.Lease
	err := s.store.View(ctx, func(tx store.Tx) error {
		l, _, err := s.liveLease(ctx, tx, tenantID, leaseID, p)
		out = l
		return err
	})
	if err != nil {
		return nil, s.fail(ctx, "lease", err)
	}
	return out, nil
}

// RenewLease extends the caller's live lease to ttl from now (at most an
// hour). An empty ttl renews for the lifetime the lease was first granted:
// a lease fetched for 30 minutes is renewed for 30 minutes each time,
// however it was renewed before, as Vault renews by a lease's own TTL when
// no increment is asked for (DefaultLease for a lease granted before that
// was kept).
func (s *Service) RenewLease(ctx context.Context, tenantID, leaseID, ttl string) (*store.Lease, error) {
	var d time.Duration
	if ttl != "" {
		var err error
		if d, err = parseTTL(ttl); err != nil {
			return nil, err
		}
	}
	p := authz.From(ctx)
	var out *store.Lease
	err := s.store.Update(ctx, func(tx store.Tx) error {
		l, c, err := s.liveLease(ctx, tx, tenantID, leaseID, p)
		if err != nil {
			return err
		}
		life := d
		if life == 0 {
			life = cmp.Or(l.Granted, DefaultLease)
		}
		now := s.now().UTC()
		l.ExpiresAt, l.RenewedAt = now.Add(min(life, MaxLease)), now
		if err := tx.UpdateLease(ctx, l); err != nil {
			return err
		}
		out = l
		return s.record(ctx, tx, tenantID, "lease.renew", l.ID, map[string]any{"credential": c.ID, "expires_at": l.ExpiresAt})
	})
	if err != nil {
		return nil, s.fail(ctx, "renew lease", err)
	}
	return out, nil
}

// RevokeLease ends a lease at once: its holder, or anyone who may manage
// grants.
func (s *Service) RevokeLease(ctx context.Context, tenantID, leaseID string) error {
	p := authz.From(ctx)
	err := s.store.Update(ctx, func(tx store.Tx) error {
		l, err := tx.GetLease(ctx, tenantID, leaseID)
		if errors.Is(err, store.ErrNotFound) {
			return fault.New(fault.NotFound, "not_found", "no lease %q", leaseID)
		}
		if err != nil {
			return err
		}
		if p == nil || (l.SubjectID != p.ID && !authz.Allow(p, authz.GrantsManage, tenantID, s.now())) {
			return fault.New(fault.NotFound, "not_found", "no lease %q", leaseID)
		}
		if !l.RevokedAt.IsZero() {
			return nil
		}
		l.RevokedAt = s.now().UTC()
		if err := tx.UpdateLease(ctx, l); err != nil {
			return err
		}
		return s.record(ctx, tx, tenantID, "lease.revoke", l.ID, map[string]any{"credential": l.CredentialID, "holder": l.SubjectID})
	})
	return wrapErr("revoke lease", err)
}

// Leases lists the live leases of a credential (or all of the tenant's).
// Whoever may read the tenant's grants sees every holder's; a robot
// without that right sees its own.
func (s *Service) Leases(ctx context.Context, tenantID, ref string) ([]store.Lease, error) {
	p := authz.From(ctx)
	if p == nil {
		return nil, fault.ErrUnauthenticated
	}
	holder := ""
	if _, ok := authz.Check(p, authz.GrantsRead, tenantID, authz.Resource{Type: authz.ResourceTenant, ID: tenantID}, s.now()); !ok {
		if p.Kind != authz.KindRobot || p.TenantID != tenantID {
			code, msg := authz.Denial(p, authz.GrantsRead, tenantID)
			return nil, fault.New(fault.Forbidden, code, "%s", msg)
		}
		holder = p.ID
	}
	var out []store.Lease
	err := s.store.View(ctx, func(tx store.Tx) error {
		credID := ""
		if ref != "" {
			c, err := Lookup(ctx, tx, tenantID, ref)
			if err != nil {
				return err
			}
			if holder != "" && !s.may(ctx, authz.CredentialsRead, tenantID, c) && !s.may(ctx, authz.CredentialsFetch, tenantID, c) {
				return errNotFound(c.Name)
			}
			credID = c.ID
		}
		var err error
		out, err = tx.ListLeases(ctx, tenantID, credID, holder, s.now())
		return err
	})
	return out, wrapErr("leases", err)
}

// LeaseRetention is how long an expired or revoked lease is kept before
// PurgeLeases deletes it. Every fetch's audit entry keeps the lease's ID,
// holder, purpose and expiry for the audit log's own retention.
const LeaseRetention = 24 * time.Hour

// purgeBatch bounds the leases one purge transaction deletes, so that a
// large backlog never holds the writer long.
const purgeBatch = 5000

// PurgeLeases deletes the leases of every tenant that expired more than
// LeaseRetention ago, in transactions of at most purgeBatch, and says how
// many. Without it the lease table would grow by a row per fetch forever.
func (s *Service) PurgeLeases(ctx context.Context) (int64, error) {
	before := s.now().Add(-LeaseRetention)
	var total int64
	for {
		var n int64
		err := s.store.Update(ctx, func(tx store.Tx) error {
			var err error
			n, err = tx.DeleteExpiredLeases(ctx, before, purgeBatch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("vault: purge leases: %w", err)
		}
		total += n
		if n < purgeBatch {
			return total, nil
		}
	}
}

// Delete removes a credential, every version and its sealed secrets.
func (s *Service) Delete(ctx context.Context, tenantID, ref string) error {
	err := s.store.Update(ctx, func(tx store.Tx) error {
		c, err := s.findToErase(ctx, tx, tenantID, ref)
		if err != nil {
			return err
		}
		vs, err := tx.ListCredentialVersions(ctx, tenantID, c.ID)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if err := tx.DeleteRecord(ctx, tenantID, store.RecordCredential, store.CredentialRecordID(c.ID, v.Version)); err != nil &&
				!errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if err := tx.DeleteCredential(ctx, tenantID, c.ID); err != nil {
			return err
		}
		return s.record(ctx, tx, tenantID, "credential.delete", c.ID, map[string]any{"name": c.Name, "versions": len(vs)})
	})
	return s.fail(ctx, "delete", err)
}
