// Package sys runs the installation's lifecycle: first initialization (root
// key and first operator token), unsealing, sealing and root-key rotation,
// each recorded in the operator audit log.
//
// It must never let a share, key or token reach a log or an error message.
package sys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
)

// Service drives the seal state.
type Service struct {
	store   store.Store
	root    *keys.Root
	keyring *keys.Keyring
	auth    *auth.Service
	now     func() time.Time
	log     *slog.Logger
	// keyFile is the root key read from --root-key-file, if any.
	keyFile keys.Secret
}

// New returns the service. keyFile is the configured root key file's key,
// or nil for a Shamir installation.
func New(s store.Store, root *keys.Root, kr *keys.Keyring, a *auth.Service, now func() time.Time, log *slog.Logger, keyFile keys.Secret) *Service {
	return &Service{store: s, root: root, keyring: kr, auth: a, now: now, log: log, keyFile: keyFile}
}

// Start unseals a key-file installation at start-up. A wrong key is fatal:
// the caller must stop rather than serve with the wrong key.
func (s *Service) Start(ctx context.Context) error {
	st, err := s.root.Status(ctx)
	if err != nil {
		return err
	}
	if s.keyFile == nil {
		if st.Initialized && st.Type == keys.SealKeyFile {
			return fmt.Errorf("this data was initialized with a root key file: start with --root-key-file")
		}
		return nil
	}
	if !st.Initialized {
		return nil // operator init will use the key file
	}
	if err := s.root.UnsealWithKey(ctx, s.keyFile); err != nil {
		if errors.Is(err, keys.ErrWrongKey) {
			return fmt.Errorf("the root key file does not match this data (wrong key, or another installation's data): %w", err)
		}
		return err
	}
	return s.record(ctx, "sys.unseal", audit.ResultOK, map[string]any{"method": keys.SealKeyFile})
}

func (s *Service) record(ctx context.Context, action, result string, details map[string]any) error {
	return audit.Record(ctx, s.store, s.now(), audit.Entry{Log: store.OperatorLog, Action: action, Target: "root-key", Result: result, Details: details})
}

// InitRequest chooses the shares of a Shamir installation; a key-file
// installation ignores it.
type InitRequest struct {
	Shares    int `json:"shares"`
	Threshold int `json:"threshold"`
}

// InitResponse is shown once.
type InitResponse struct {
	Shares        []keys.Secret `json:"shares,omitempty"`
	Threshold     int           `json:"threshold,omitempty"`
	SealType      string        `json:"seal_type"`
	OperatorToken keys.Secret   `json:"operator_token"`
	TokenID       string        `json:"operator_token_id"`
	TokenExpires  time.Time     `json:"operator_token_expires_at"`
}

// Init creates the root key and the first operator token.
func (s *Service) Init(ctx context.Context, req InitRequest) (*InitResponse, error) {
	opt := keys.InitOptions{Type: keys.SealShamir, Shares: req.Shares, Threshold: req.Threshold}
	if s.keyFile != nil {
		opt = keys.InitOptions{Type: keys.SealKeyFile, Key: s.keyFile}
	} else if err := opt.Validate(); err != nil {
		return nil, fault.Wrap(err, fault.Invalid, "invalid_shares", "%v", err)
	}
	resp := &InitResponse{SealType: opt.Type}
	res, err := s.root.Init(ctx, opt, func(tx store.Tx) error {
		tok, rec, err := s.auth.IssueOperatorToken(ctx, tx, "initial operator token", auth.DefaultTokenTTL)
		if err != nil {
			return err
		}
		resp.OperatorToken, resp.TokenID, resp.TokenExpires = tok, rec.ID, rec.ExpiresAt
		return audit.Append(ctx, tx, s.now(), audit.Entry{Log: store.OperatorLog, Action: "sys.init", Target: "root-key",
			Details: map[string]any{"seal_type": opt.Type, "shares": opt.Shares, "threshold": opt.Threshold}})
	})
	if errors.Is(err, keys.ErrAlreadyInitialized) {
		return nil, fault.New(fault.Conflict, "already_initialized", "this installation is already initialized")
	}
	if err != nil {
		return nil, err
	}
	resp.Shares, resp.Threshold = res.Shares, res.Threshold
	return resp, nil
}

// Status reports the seal state.
func (s *Service) Status(ctx context.Context) (keys.Status, error) { return s.root.Status(ctx) }

// Unseal takes one share.
func (s *Service) Unseal(ctx context.Context, share string, reset bool) (keys.Status, error) {
	if reset {
		s.root.ResetUnseal()
		if share == "" {
			return s.root.Status(ctx)
		}
	}
	wasSealed := s.root.Sealed()
	st, err := s.root.Unseal(ctx, share)
	switch {
	case errors.Is(err, keys.ErrNotInitialized):
		return st, fault.New(fault.Conflict, "not_initialized", "the installation is not initialized; run custodia operator init")
	case errors.Is(err, keys.ErrWrongSealType):
		return st, fault.New(fault.Conflict, "wrong_seal_type", "this installation unseals with its root key file, not shares")
	case errors.Is(err, keys.ErrBadShare):
		_ = s.record(ctx, "sys.unseal", audit.ResultDenied, map[string]any{"reason": "share not recognized"})
		return st, fault.New(fault.Invalid, "bad_share", "share not recognized: it is malformed, already given, or not one of this installation's current shares; progress is unchanged (%d of %d)", st.Progress, st.Threshold)
	case err != nil:
		return st, err
	}
	if wasSealed && !st.Sealed {
		s.log.Info("vault unsealed", "generation", st.Generation)
		if err := s.record(ctx, "sys.unseal", audit.ResultOK, map[string]any{"method": keys.SealShamir}); err != nil {
			s.log.Error("audit unseal", "err", err)
		}
	}
	return st, nil
}

// Seal drops the root key from memory.
func (s *Service) Seal(ctx context.Context) error {
	if s.root.Sealed() {
		return nil
	}
	if err := s.record(ctx, "sys.seal", audit.ResultOK, nil); err != nil {
		return err
	}
	s.root.Seal()
	s.keyring.Forget("")
	s.log.Warn("vault sealed by operator")
	return nil
}

// RotateRootRequest chooses the new shares; zero keeps the current ones.
type RotateRootRequest struct {
	Shares    int `json:"shares,omitempty"`
	Threshold int `json:"threshold,omitempty"`
	// NewKey is the new root key of a key-file installation, base64. The
	// operator writes it to the key file before the next start.
	NewKey keys.Secret `json:"-"`
}

// RotateRootResponse carries the new shares (or confirms the new key).
type RotateRootResponse struct {
	Shares     []keys.Secret `json:"shares,omitempty"`
	Threshold  int           `json:"threshold,omitempty"`
	Generation int           `json:"generation"`
	// NewKey is the new root key (key-file installations only), shown once.
	NewKey keys.Secret `json:"new_root_key,omitempty"`
}

// RotateRoot replaces the root key and re-wraps every tenant key.
func (s *Service) RotateRoot(ctx context.Context, req RotateRootRequest) (*RotateRootResponse, error) {
	st, err := s.root.Status(ctx)
	if err != nil {
		return nil, err
	}
	opt := keys.RotateOptions{Type: st.Type, Shares: req.Shares, Threshold: req.Threshold}
	resp := &RotateRootResponse{Generation: st.Generation + 1}
	if st.Type == keys.SealKeyFile {
		k, err := keys.GenerateKey()
		if err != nil {
			return nil, err
		}
		opt.Key, resp.NewKey = k, keys.Secret(keys.EncodeKey(k))
	} else if req.Shares == 0 {
		opt.Shares, opt.Threshold = st.Shares, st.Threshold
	}
	if err := opt.Validate(); err != nil {
		return nil, fault.Wrap(err, fault.Invalid, "invalid_shares", "%v", err)
	}
	res, err := s.root.RotateRoot(ctx, opt, func(tx store.Tx) error {
		return audit.Append(ctx, tx, s.now(), audit.Entry{Log: store.OperatorLog, Action: "sys.rotate_root", Target: "root-key",
			Details: map[string]any{"generation": resp.Generation, "shares": opt.Shares, "threshold": opt.Threshold}})
	})
	if errors.Is(err, keys.ErrSealed) {
		return nil, fault.ErrSealed
	}
	if err != nil {
		return nil, err
	}
	resp.Shares, resp.Threshold = res.Shares, res.Threshold
	if st.Type == keys.SealKeyFile {
		s.keyFile = opt.Key
	}
	return resp, nil
}
