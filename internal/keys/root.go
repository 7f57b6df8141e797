package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/openbao/openbao/sdk/v2/helper/shamir"

	"github.com/custodia-project/custodia/internal/store"
)

// Seal types: how the root key comes back after a restart.
const (
	SealShamir  = "shamir"  // threshold of unseal shares held by people
	SealKeyFile = "keyfile" // a key file on storage apart from the data
)

// RootKeySize is the size of the root key and every data key (AES-256).
const RootKeySize = 32

const metaSealConfig = "seal.config"

// sealConfig is what the store holds about the root key: enough to check a
// share or key, nothing to rebuild it.
type sealConfig struct {
	Type       string `json:"type"`
	Shares     int    `json:"shares,omitempty"`
	Threshold  int    `json:"threshold,omitempty"`
	Generation int    `json:"generation"`
	// ShareHashes are SHA-256 hashes of each share, to name a wrong share
	// at once instead of after the threshold is reached.
	ShareHashes []string  `json:"share_hashes,omitempty"`
	Verifier    []byte    `json:"verifier"`
	CreatedAt   time.Time `json:"created_at"`
}

// Status is the seal state, safe to show to anyone.
type Status struct {
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	Type        string `json:"type,omitempty"`
	Threshold   int    `json:"threshold,omitempty"`
	Shares      int    `json:"shares,omitempty"`
	// Progress is how many valid shares have been given towards unsealing.
	Progress   int `json:"progress"`
	Generation int `json:"generation,omitempty"`
}

// Root holds the root key in memory while unsealed.
type Root struct {
	store store.Store
	now   func() time.Time

	mu      sync.RWMutex
	cfg     *sealConfig // nil until loaded or initialized
	key     Secret      // nil while sealed
	wrap    cipher.AEAD // derived from key, wraps tenant keys
	pending [][]byte    // shares given so far
	hooks   []func()
}

// NewRoot returns a sealed Root over s.
func NewRoot(s store.Store, now func() time.Time) *Root {
	return &Root{store: s, now: now}
}

// AfterUnseal registers fn to run (in its own goroutine) each time the root
// key becomes available.
func (r *Root) AfterUnseal(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks = append(r.hooks, fn)
}

func (r *Root) loadConfig(ctx context.Context) (*sealConfig, error) {
	r.mu.RLock()
	cfg := r.cfg
	r.mu.RUnlock()
	if cfg != nil {
		return cfg, nil
	}
	var raw []byte
	err := r.store.View(ctx, func(tx store.Tx) error {
		var err error
		raw, err = tx.GetMeta(ctx, metaSealConfig)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: read seal configuration: %w", err)
	}
	cfg = new(sealConfig)
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("keys: seal configuration is corrupt: %w", err)
	}
	r.mu.Lock()
	r.cfg = cfg
	r.mu.Unlock()
	return cfg, nil
}

// Status reports the seal state.
func (r *Root) Status(ctx context.Context) (Status, error) {
	cfg, err := r.loadConfig(ctx)
	if err != nil {
		return Status{}, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if cfg == nil {
		return Status{Sealed: true}, nil
	}
	return Status{
		Initialized: true, Sealed: r.key == nil, Type: cfg.Type,
		Threshold: cfg.Threshold, Shares: cfg.Shares, Progress: len(r.pending), Generation: cfg.Generation,
	}, nil
}

// Sealed reports whether the root key is absent from memory.
func (r *Root) Sealed() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.key == nil
}

// InitOptions choose how a new installation keeps its root key.
type InitOptions struct {
	Type      string
	Shares    int
	Threshold int
	// Key is the root key for SealKeyFile; ignored for SealShamir, which
	// generates its own.
	Key Secret
}

// InitResult is shown to the operator exactly once.
type InitResult struct {
	// Shares are the encoded unseal shares (SealShamir only).
	Shares    []Secret
	Threshold int
}

// Validate checks the share parameters.
func (o InitOptions) Validate() error {
	switch o.Type {
	case SealShamir:
		if o.Shares < 1 || o.Shares > 255 {
			return fmt.Errorf("shares must be between 1 and 255, got %d", o.Shares)
		}
		if o.Threshold < 1 || o.Threshold > o.Shares {
			return fmt.Errorf("threshold must be between 1 and shares (%d), got %d", o.Shares, o.Threshold)
		}
		if o.Shares > 1 && o.Threshold < 2 {
			return errors.New("threshold must be at least 2 when there is more than one share: one share alone would open the vault")
		}
	case SealKeyFile:
		if len(o.Key) != RootKeySize {
			return fmt.Errorf("root key must be %d bytes", RootKeySize)
		}
	default:
		return fmt.Errorf("unknown seal type %q", o.Type)
	}
	return nil
}

// Init creates the root key of a new installation. inTx runs in the same
// transaction (the caller creates the first operator token there). A Shamir
// installation stays sealed until its shares are given back; a key-file
// installation is unsealed at once.
func (r *Root) Init(ctx context.Context, opt InitOptions, inTx func(store.Tx) error) (*InitResult, error) {
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("keys: init: %w", err)
	}
	if cfg, err := r.loadConfig(ctx); err != nil {
		return nil, err
	} else if cfg != nil {
		return nil, ErrAlreadyInitialized
	}
	cfg := &sealConfig{Type: opt.Type, Generation: 1, CreatedAt: r.now().UTC()}
	key, res, err := newRootKey(opt, cfg)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	err = r.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertMeta(ctx, metaSealConfig, raw); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return ErrAlreadyInitialized
			}
			return err
		}
		if inTx != nil {
			return inTx(tx)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("keys: init: %w", err)
	}
	r.mu.Lock()
	r.cfg = cfg
	r.mu.Unlock()
	if opt.Type == SealKeyFile {
		if err := r.setKey(key); err != nil {
			return nil, err
		}
	} else {
		key.Wipe()
	}
	return res, nil
}

// newRootKey makes the root key opt asks for (a random one split into
// shares, or a copy of the given key file's) and records in cfg what checks
// it later: share hashes and the verifier.
func newRootKey(opt InitOptions, cfg *sealConfig) (Secret, *InitResult, error) {
	res := &InitResult{}
	key := append(Secret{}, opt.Key...)
	if opt.Type == SealShamir {
		key = make(Secret, RootKeySize)
		_, _ = rand.Read(key)
		shares, hashes, err := split(key, opt.Shares, opt.Threshold)
		if err != nil {
			return nil, nil, err
		}
		cfg.Shares, cfg.Threshold, cfg.ShareHashes = opt.Shares, opt.Threshold, hashes
		res.Shares, res.Threshold = shares, opt.Threshold
	}
	v, err := makeVerifier(key)
	if err != nil {
		return nil, nil, err
	}
	cfg.Verifier = v
	return key, res, nil
}

// split cuts key into shares and returns them encoded, with their hashes.
func split(key Secret, n, threshold int) ([]Secret, []string, error) {
	var raw [][]byte
	if n == 1 {
		raw = [][]byte{append([]byte{}, key...)}
	} else {
		var err error
		raw, err = shamir.Split(key, n, threshold)
		if err != nil {
			return nil, nil, fmt.Errorf("keys: split root key: %w", err)
		}
	}
	shares := make([]Secret, len(raw))
	hashes := make([]string, len(raw))
	for i, s := range raw {
		shares[i] = Secret(base64.StdEncoding.EncodeToString(s))
		hashes[i] = shareHash(s)
		clear(s)
	}
	return shares, hashes, nil
}

func shareHash(share []byte) string {
	h := sha256.New()
	h.Write([]byte("custodia/unseal-share/v1\x00"))
	h.Write(share)
	return hex.EncodeToString(h.Sum(nil))
}

// DecodeShare parses an unseal share as printed by init.
func DecodeShare(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) < RootKeySize || len(b) > RootKeySize+1 {
		return nil, fmt.Errorf("%w: not a share printed by custodia operator init", ErrBadShare)
	}
	return b, nil
}

// Unseal takes one share. When the threshold is reached the root key is
// rebuilt, checked and kept in memory. A share that does not belong to this
// installation is refused and leaves the progress unchanged.
func (r *Root) Unseal(ctx context.Context, share string) (Status, error) {
	cfg, err := r.loadConfig(ctx)
	if err != nil {
		return Status{}, err
	}
	if cfg == nil {
		return Status{}, ErrNotInitialized
	}
	if cfg.Type != SealShamir {
		return Status{}, fmt.Errorf("%w: this installation unseals with its key file", ErrWrongSealType)
	}
	b, err := DecodeShare(share)
	if err != nil {
		st, _ := r.Status(ctx)
		return st, err
	}
	h := shareHash(b)
	if !slices.ContainsFunc(cfg.ShareHashes, func(x string) bool { return subtle.ConstantTimeCompare([]byte(x), []byte(h)) == 1 }) {
		st, _ := r.Status(ctx)
		return st, ErrBadShare
	}
	r.mu.Lock()
	if r.key != nil {
		r.mu.Unlock()
		return r.Status(ctx)
	}
	for _, p := range r.pending {
		if shareHash(p) == h {
			r.mu.Unlock()
			st, _ := r.Status(ctx)
			return st, fmt.Errorf("%w: this share was already given", ErrBadShare)
		}
	}
	r.pending = append(r.pending, b)
	if len(r.pending) < cfg.Threshold {
		r.mu.Unlock()
		return r.Status(ctx)
	}
	var key Secret
	if cfg.Threshold == 1 {
		key = Secret(append([]byte{}, r.pending[0]...))
	} else {
		k, err := shamir.Combine(r.pending)
		if err != nil {
			r.resetLocked()
			r.mu.Unlock()
			return Status{}, fmt.Errorf("keys: combine shares: %w", ErrBadShare)
		}
		key = k
	}
	r.resetLocked()
	r.mu.Unlock()
	if err := r.setKey(key); err != nil {
		return Status{}, err
	}
	return r.Status(ctx)
}

// ResetUnseal forgets the shares given so far.
func (r *Root) ResetUnseal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resetLocked()
}

func (r *Root) resetLocked() {
	for _, p := range r.pending {
		clear(p)
	}
	r.pending = nil
}

// UnsealWithKey unseals a key-file installation.
func (r *Root) UnsealWithKey(ctx context.Context, key Secret) error {
	cfg, err := r.loadConfig(ctx)
	if err != nil {
		return err
	}
	if cfg == nil {
		return ErrNotInitialized
	}
	if cfg.Type != SealKeyFile {
		return fmt.Errorf("%w: this installation unseals with Shamir shares (custodia operator unseal), not a key file", ErrWrongSealType)
	}
	return r.setKey(append(Secret{}, key...))
}

// setKey checks key against the stored verifier and installs it.
func (r *Root) setKey(key Secret) error {
	r.mu.Lock()
	cfg := r.cfg
	if !checkVerifier(key, cfg.Verifier) {
		r.mu.Unlock()
		key.Wipe()
		return ErrWrongKey
	}
	wrap, err := deriveAEAD(key, "custodia/tenant-key-wrap/v1")
	if err != nil {
		r.mu.Unlock()
		return err
	}
	r.key, r.wrap = key, wrap
	hooks := slices.Clone(r.hooks)
	r.mu.Unlock()
	for _, h := range hooks {
		go h()
	}
	return nil
}

// Seal drops the root key from memory.
func (r *Root) Seal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.key.Wipe()
	r.key, r.wrap = nil, nil
	r.resetLocked()
}

// wrapper returns the AEAD that wraps tenant keys and the root generation.
func (r *Root) wrapper() (cipher.AEAD, int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.key == nil {
		return nil, 0, ErrSealed
	}
	return r.wrap, r.cfg.Generation, nil
}

func deriveAEAD(key Secret, purpose string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, key, nil, purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("keys: derive %s: %w", purpose, err)
	}
	defer clear(k)
	return newGCM(k)
}

func newGCM(k []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("keys: aes: %w", err)
	}
	return cipher.NewGCM(b)
}

var verifierPlain = []byte("custodia root key verifier v1")

func makeVerifier(key Secret) ([]byte, error) {
	a, err := deriveAEAD(key, "custodia/root-verifier/v1")
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	return a.Seal(nonce, nonce, verifierPlain, nil), nil
}

func checkVerifier(key Secret, v []byte) bool {
	if len(key) != RootKeySize {
		return false
	}
	a, err := deriveAEAD(key, "custodia/root-verifier/v1")
	if err != nil || len(v) < a.NonceSize() {
		return false
	}
	pt, err := a.Open(nil, v[:a.NonceSize()], v[a.NonceSize():], nil)
	return err == nil && subtle.ConstantTimeCompare(pt, verifierPlain) == 1
}
