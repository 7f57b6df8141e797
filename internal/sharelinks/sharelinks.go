// Package sharelinks is the server side of one-time share links: it keeps
// the envelope a person encrypted in their own client (sealed once more
// under the tenant's keyring), hands it out to whoever proves they hold the
// link, at most the allowed number of times and only before the link
// expires, and burns it after the last view, on revocation, at expiry, or
// after too many wrong attempts. Creation, every open (failed ones too) and
// every burn are in the tenant's audit log.
//
// It must never see, store, log or audit the link key, the passphrase, the
// encryption key or the plaintext: it gets the envelope, the SHA-256 of the
// auth key, and the public passphrase parameters (see internal/share and
// docs/share-links.md).
package sharelinks

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/share"
	"github.com/custodia-project/custodia/internal/store"
)

// Limits.
const (
	DefaultTTL   = 24 * time.Hour
	MaxTTL       = 7 * 24 * time.Hour
	MinTTL       = time.Minute
	DefaultViews = 1
	MaxViews     = 10
	// MaxFailedAttempts wrong auth keys burn a link, so a passphrase
	// cannot be guessed online.
	MaxFailedAttempts = 5
	maxLabel          = 200
	sweepBatch        = 200
)

// Burn reasons, in share.burn audit entries.
const (
	BurnRead            = "read"
	BurnRevoked         = "revoked"
	BurnExpired         = "expired"
	BurnTooManyAttempts = "too_many_attempts"
	// BurnCreatorLeft: the member who made the link was offboarded.
	BurnCreatorLeft = "creator_offboarded"
)

// Service is the share-link domain.
type Service struct {
	store   store.Store
	keyring *keys.Keyring
	now     func() time.Time
	log     *slog.Logger
}

// New returns the service.
func New(s store.Store, kr *keys.Keyring, now func() time.Time, log *slog.Logger) *Service {
	return &Service{store: s, keyring: kr, now: now, log: log}
}

// CreateInput is what a client sends to create a link: never the key.
type CreateInput struct {
	// Ciphertext is the envelope (internal/share), base64.
	Ciphertext []byte `json:"ciphertext"`
	// Verifier is SHA-256 of the link's auth key, base64.
	Verifier []byte `json:"verifier"`
	// KDF are the passphrase parameters, null without a passphrase.
	KDF *share.KDF `json:"kdf"`
	// MaxViews is how many times the link opens (default 1, at most 10).
	MaxViews int `json:"max_views,omitempty"`
	// ExpiresIn is a Go duration (default 24h, at most 168h).
	ExpiresIn string `json:"expires_in,omitempty"`
	// Label is a note for the sharer's own list (not secret: it is in the
	// audit log; never shown to the opener).
	Label string `json:"label,omitempty"`
}

// Info is a link as its tenant sees it: metadata only.
type Info struct {
	ID                 string    `json:"id"`
	Label              string    `json:"label,omitempty"`
	PassphraseRequired bool      `json:"passphrase_required"`
	MaxViews           int       `json:"max_views"`
	Views              int       `json:"views"`
	ViewsLeft          int       `json:"views_left"`
	FailedAttempts     int       `json:"failed_attempts"`
	Size               int       `json:"size"`
	CreatedBy          string    `json:"created_by"`
	CreatedAt          time.Time `json:"created_at"`
	ExpiresAt          time.Time `json:"expires_at"`
}

// Public is what anyone holding a link's ID may learn before opening it.
type Public struct {
	ID                 string     `json:"id"`
	Version            int        `json:"version"`
	PassphraseRequired bool       `json:"passphrase_required"`
	KDF                *share.KDF `json:"kdf"`
	ViewsLeft          int        `json:"views_left"`
	ExpiresAt          time.Time  `json:"expires_at"`
}

// Opened is the envelope handed to an opener who proved they hold the link.
type Opened struct {
	Ciphertext []byte `json:"ciphertext"`
	ViewsLeft  int    `json:"views_left"`
}

func info(s *store.Share) Info {
	return Info{ID: s.ID, Label: s.Label, PassphraseRequired: s.KDFSalt != nil, MaxViews: s.MaxViews, Views: s.Views,
		ViewsLeft: s.MaxViews - s.Views, FailedAttempts: s.FailedAttempts, Size: s.Size, CreatedBy: s.CreatedBy,
		CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt}
}

// ErrGone answers every link that cannot be opened: unknown, expired,
// already read, revoked, burned, or of a tenant that is not active. One
// answer for all, so a probe learns nothing.
var ErrGone = fault.New(fault.NotFound, "share_gone",
	"this share link has expired, was already opened or revoked, or does not exist; ask the sender for a new one")

func invalid(code, format string, args ...any) error {
	return fault.New(fault.Invalid, code, format, args...)
}

func wrapErr(op string, err error) error { return fault.Annotate("sharelinks", op, err) }

func (s *Service) record(ctx context.Context, tx store.AuditTx, tenantID, action, id, result string, details map[string]any) error {
	return audit.Append(ctx, tx, s.now(), audit.Entry{Log: tenantID, Action: action, Target: id, Result: result, Details: details})
}

// Validate checks a create request, fills in the defaults and returns the
// link's lifetime.
func (in *CreateInput) Validate() (time.Duration, error) {
	if err := share.CheckEnvelope(in.Ciphertext); err != nil {
		return 0, invalid("invalid_ciphertext", "ciphertext must be a version %d share envelope of 1 to %d secret bytes, base64 (see docs/share-links.md)",
			share.Version, share.MaxPlaintext)
	}
	if len(in.Verifier) != 32 {
		return 0, invalid("invalid_verifier", "verifier must be the SHA-256 of the link's auth key (32 bytes, base64)")
	}
	if err := in.KDF.Check(); err != nil {
		return 0, invalid("invalid_kdf", "kdf must be null or {salt: %d bytes base64, iterations: %d to %d}",
			share.SaltSize, share.MinIterations, share.MaxIterations)
	}
	if in.MaxViews == 0 {
		in.MaxViews = DefaultViews
	}
	if in.MaxViews < 1 || in.MaxViews > MaxViews {
		return 0, invalid("invalid_max_views", "max_views must be 1 to %d", MaxViews)
	}
	ttl, ok := Lifetime(in.ExpiresIn)
	if !ok {
		return 0, invalid("invalid_expires_in", "expires_in must be a duration from %s to %s (7 days), such as 24h", MinTTL, "168h")
	}
	in.Label = strings.TrimSpace(in.Label)
	if len(in.Label) > maxLabel || strings.IndexFunc(in.Label, unicode.IsControl) >= 0 {
		return 0, invalid("invalid_label", "label must be at most %d characters, on one line", maxLabel)
	}
	return ttl, nil
}

// Lifetime reads a link's lifetime: DefaultTTL when expiresIn is empty,
// else a Go duration from MinTTL to MaxTTL; ok is false for anything else.
func Lifetime(expiresIn string) (ttl time.Duration, ok bool) {
	if expiresIn == "" {
		return DefaultTTL, true
	}
	d, err := time.ParseDuration(expiresIn)
	return d, err == nil && d >= MinTTL && d <= MaxTTL
}

// Create stores a new link for the calling member or robot.
func (s *Service) Create(ctx context.Context, tenantID string, in CreateInput) (*Info, error) {
	p := authz.From(ctx)
	if !p.Tenant() {
		return nil, fault.ErrUnauthenticated
	}
	ttl, err := in.Validate()
	if err != nil {
		return nil, err
	}
	var out Info
	err = s.store.Update(ctx, func(tx store.Tx) error {
		now := s.now().UTC()
		sh := &store.Share{ID: store.NewID(share.IDPrefix), TenantID: tenantID, Label: in.Label, Verifier: in.Verifier,
			Size: len(in.Ciphertext), MaxViews: in.MaxViews, CreatedBy: p.ID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
		if in.KDF != nil {
			sh.KDFSalt, sh.KDFIterations = in.KDF.Salt, in.KDF.Iterations
		}
		kv, ct, err := s.keyring.Seal(ctx, tx, tenantID, store.RecordShare, sh.ID, in.Ciphertext)
		if err != nil {
			return err
		}
		if err := tx.PutRecord(ctx, &store.Record{TenantID: tenantID, Kind: store.RecordShare, ID: sh.ID, KeyVersion: kv, Ciphertext: ct,
			CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		if err := tx.InsertShare(ctx, sh); err != nil {
			return err
		}
		out = info(sh)
		return s.record(ctx, tx, tenantID, "share.create", sh.ID, audit.ResultOK, map[string]any{"label": sh.Label, "max_views": sh.MaxViews,
			"expires_at": sh.ExpiresAt, "passphrase": in.KDF != nil, "size": sh.Size})
	})
	if err != nil {
		return nil, wrapErr("create", err)
	}
	return &out, nil
}

// List returns the caller's live links, or every live link of the tenant
// for those who manage shares; newest first.
func (s *Service) List(ctx context.Context, tenantID string) ([]Info, error) {
	p := authz.From(ctx)
	if !p.Tenant() {
		return nil, fault.ErrUnauthenticated
	}
	f := store.ShareFilter{TenantID: tenantID, CreatedBy: p.ID}
	if authz.Allow(p, authz.SharesManage, tenantID, s.now()) {
		f.CreatedBy = ""
	}
	out := []Info{}
	err := s.store.View(ctx, func(tx store.Tx) error {
		ss, err := tx.ListShares(ctx, f)
		now := s.now()
		for i := range ss {
			if now.Before(ss[i].ExpiresAt) {
				out = append(out, info(&ss[i]))
			}
		}
		return err
	})
	return out, wrapErr("list", err)
}

// burn deletes a share and its envelope and records why. It is
// store.ErrNotFound when another transaction burned it first.
func (s *Service) burn(ctx context.Context, tx store.Tx, sh *store.Share, reason string) error {
	return burnShare(ctx, tx, s.now(), sh, reason)
}

func burnShare(ctx context.Context, tx store.Tx, now time.Time, sh *store.Share, reason string) error {
	if err := tx.DeleteShare(ctx, sh.TenantID, sh.ID); err != nil {
		return err
	}
	if err := tx.DeleteRecord(ctx, sh.TenantID, store.RecordShare, sh.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return audit.Append(ctx, tx, now, audit.Entry{Log: sh.TenantID, Action: "share.burn", Target: sh.ID, Result: audit.ResultOK,
		Details: map[string]any{"reason": reason, "views": sh.Views, "failed_attempts": sh.FailedAttempts}})
}

// BurnCreatedBy burns, in tx, every link memberID made in tenantID: an
// offboarding calls it, so that a leaver's links do not outlive their
// access. It returns how many it burned.
func BurnCreatedBy(ctx context.Context, tx store.Tx, now time.Time, tenantID, memberID string) (int, error) {
	const page = 1000
	burned := 0
	for {
		// Burned links are deleted, so each page starts over.
		ss, err := tx.ListShares(ctx, store.ShareFilter{TenantID: tenantID, CreatedBy: memberID, Limit: page})
		if err != nil {
			return 0, err
		}
		for i := range ss {
			if err := burnShare(ctx, tx, now, &ss[i], BurnCreatorLeft); err != nil {
				return 0, err
			}
		}
		burned += len(ss)
		if len(ss) < page {
			return burned, nil
		}
	}
}

// Burn revokes a link now: its creator, or whoever manages shares.
func (s *Service) Burn(ctx context.Context, tenantID, id string) error {
	p := authz.From(ctx)
	if !p.Tenant() {
		return fault.ErrUnauthenticated
	}
	notFound := fault.New(fault.NotFound, "not_found", "no live share link %q", id)
	err := s.store.Update(ctx, func(tx store.Tx) error {
		sh, err := tx.GetShare(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return notFound
		}
		if err != nil {
			return err
		}
		if sh.TenantID != tenantID || (sh.CreatedBy != p.ID && !authz.Allow(p, authz.SharesManage, tenantID, s.now())) {
			return notFound
		}
		if err := s.burn(ctx, tx, sh, BurnRevoked); errors.Is(err, store.ErrNotFound) {
			return notFound
		} else if err != nil {
			return err
		}
		return nil
	})
	return wrapErr("burn", err)
}

// live finds a share that may still be opened at now.
func (s *Service) live(ctx context.Context, tx store.Tx, id string) (*store.Share, error) {
	if !share.ValidID(id) {
		return nil, ErrGone
	}
	sh, err := tx.GetShare(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrGone
	}
	if err != nil {
		return nil, err
	}
	// Refused at the instant it expires, whether or not the sweep has
	// burned it yet.
	if !s.now().Before(sh.ExpiresAt) {
		return nil, ErrGone
	}
	t, err := tx.GetTenant(ctx, sh.TenantID)
	if err != nil {
		return nil, err
	}
	if t.Status != store.TenantActive {
		return nil, ErrGone
	}
	return sh, nil
}

// Peek tells an opener whether a passphrase is needed, without spending a
// view (link previews and mail scanners fetch pages; only an explicit
// open spends a view).
func (s *Service) Peek(ctx context.Context, id string) (*Public, error) {
	var out *Public
	err := s.store.View(ctx, func(tx store.Tx) error {
		sh, err := s.live(ctx, tx, id)
		if err != nil {
			return err
		}
		out = &Public{ID: sh.ID, Version: share.Version, PassphraseRequired: sh.KDFSalt != nil, ViewsLeft: sh.MaxViews - sh.Views,
			ExpiresAt: sh.ExpiresAt}
		if sh.KDFSalt != nil {
			out.KDF = &share.KDF{Salt: sh.KDFSalt, Iterations: sh.KDFIterations}
		}
		return nil
	})
	return out, wrapErr("peek", err)
}

// Open hands out the envelope to whoever sends the link's auth key, and
// spends a view; the last view burns the link in the same transaction. A
// wrong auth key is counted, and the MaxFailedAttempts-th burns the link.
func (s *Service) Open(ctx context.Context, id string, auth []byte) (*Opened, error) {
	if len(auth) != share.KeySize {
		return nil, invalid("invalid_auth", "auth must be the link's auth key (%d bytes, base64)", share.KeySize)
	}
	verifier := share.Verifier(auth)
	// The store locks the share's row for the transaction (GetShare), so
	// openers of one link take turns and the counts cannot move under
	// this one. Should they move anyway, the attempt runs again on the
	// new counts rather than answering without counting: an uncounted
	// wrong key would be a free guess at the passphrase.
	var out *Opened
	var wrong, err error
	for range maxOpenRuns {
		out, wrong, err = s.open(ctx, id, verifier)
		if !errors.Is(err, errCountsMoved) {
			break
		}
	}
	if errors.Is(err, errCountsMoved) {
		err = busy()
	}
	if err != nil {
		return nil, wrapErr("open", err)
	}
	if wrong != nil {
		return nil, wrong
	}
	return out, nil
}

// maxOpenRuns bounds how often Open runs again when the counts it read
// moved before it could write them.
const maxOpenRuns = 5

// errCountsMoved: another transaction changed a share's counts between
// this one's read and its write.
var errCountsMoved = errors.New("sharelinks: share counts moved")

// open is one run of Open's transaction. It returns the envelope, or the
// refusal of a wrong key that was counted (and committed), or err.
func (s *Service) open(ctx context.Context, id string, verifier []byte) (out *Opened, wrong, err error) {
	err = s.store.Update(ctx, func(tx store.Tx) error {
		out, wrong = nil, nil
		sh, err := s.live(ctx, tx, id)
		if err != nil {
			return err
		}
		from := store.ShareCounts{Views: sh.Views, FailedAttempts: sh.FailedAttempts}
		if subtle.ConstantTimeCompare(verifier, sh.Verifier) != 1 {
			sh.FailedAttempts++
			left := MaxFailedAttempts - sh.FailedAttempts
			if err := s.record(ctx, tx, sh.TenantID, "share.open", sh.ID, audit.ResultFailed,
				map[string]any{"failed_attempts": sh.FailedAttempts}); err != nil {
				return err
			}
			if left <= 0 {
				if err := s.burn(ctx, tx, sh, BurnTooManyAttempts); errors.Is(err, store.ErrNotFound) {
					return ErrGone
				} else if err != nil {
					return err
				}
				wrong = fault.New(fault.Forbidden, "share_wrong_key",
					"wrong passphrase or damaged link, and that was the last attempt: the link is burned; ask the sender for a new one")
				return nil
			}
			if ok, err := tx.UpdateShareCounts(ctx, sh.ID, from, store.ShareCounts{Views: sh.Views, FailedAttempts: sh.FailedAttempts}); err != nil {
				return err
			} else if !ok {
				return errCountsMoved
			}
			// Committed, so the attempt counts; the caller gets the refusal.
			wrong = fault.New(fault.Forbidden, "share_wrong_key",
				"wrong passphrase or damaged link; %d more wrong attempt(s) burn the link", left)
			return nil
		}
		rec, err := tx.GetRecord(ctx, sh.TenantID, store.RecordShare, sh.ID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrGone
		}
		if err != nil {
			return err
		}
		env, err := s.keyring.Open(ctx, tx, sh.TenantID, store.RecordShare, sh.ID, rec.Ciphertext)
		if errors.Is(err, keys.ErrKeyDestroyed) {
			return ErrGone
		}
		if err != nil {
			return err
		}
		sh.Views++
		out = &Opened{Ciphertext: []byte(env), ViewsLeft: sh.MaxViews - sh.Views}
		if err := s.record(ctx, tx, sh.TenantID, "share.open", sh.ID, audit.ResultOK,
			map[string]any{"view": sh.Views, "views_left": out.ViewsLeft}); err != nil {
			return err
		}
		if out.ViewsLeft <= 0 {
			if err := s.burn(ctx, tx, sh, BurnRead); errors.Is(err, store.ErrNotFound) {
				return ErrGone
			} else if err != nil {
				return err
			}
			return nil
		}
		if ok, err := tx.UpdateShareCounts(ctx, sh.ID, from, store.ShareCounts{Views: sh.Views, FailedAttempts: sh.FailedAttempts}); err != nil {
			return err
		} else if !ok {
			return errCountsMoved
		}
		return nil
	})
	return out, wrong, err
}

func busy() error {
	return fault.New(fault.Conflict, "share_busy", "someone opened this link at the same moment; try again")
}

// Sweep burns every link that has expired, recording each in its tenant's
// log. Expired links were already refused at expiry; this removes their
// envelopes. It returns how many it burned.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		n := 0
		err := s.store.Update(ctx, func(tx store.Tx) error {
			n = 0
			ss, err := tx.ListExpiredShares(ctx, s.now(), sweepBatch)
			if err != nil {
				return err
			}
			for i := range ss {
				if err := s.burn(ctx, tx, &ss[i], BurnExpired); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, wrapErr("sweep", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}
