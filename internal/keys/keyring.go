package keys

import (
	"context"
	"crypto/cipher"
	"crypto/hpke"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

// Record ciphertext layout:
//
//	0x01 | key version (uint32 BE) | nonce (12) | AES-256-GCM ciphertext+tag
//
// The associated data binds tenant, record kind, record ID and key version,
// so a ciphertext copied to another record, kind or tenant does not open.
const recordFormatV1 = 0x01

const recordHeaderLen = 1 + 4 + 12

// kindHPKEKey is the record kind of a tenant's sealed HPKE private key.
const kindHPKEKey = "keys.hpke"

// cacheTTL bounds how long another node's key changes (rotation,
// shredding) may go unnoticed by this one.
const cacheTTL = 10 * time.Second

// Keyring seals and opens tenant records with the tenants' data keys.
type Keyring struct {
	root *Root
	now  func() time.Time

	mu    sync.Mutex
	cache map[string]*tenantKeys
}

type tenantKeys struct {
	loaded   time.Time
	rootGen  int
	active   int
	versions map[int]*keyVersion
}

type keyVersion struct {
	state string
	aead  cipher.AEAD // nil when destroyed
	pub   []byte
}

// NewKeyring returns a keyring whose tenant keys are wrapped by root.
func NewKeyring(root *Root, now func() time.Time) *Keyring {
	k := &Keyring{root: root, now: now, cache: map[string]*tenantKeys{}}
	return k
}

// Forget drops every cached key (after sealing or shredding).
func (k *Keyring) Forget(tenantID string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if tenantID == "" {
		clear(k.cache)
		return
	}
	delete(k.cache, tenantID)
}

func aad(tenantID, kind, id string, version int) []byte {
	b := make([]byte, 0, 32+len(tenantID)+len(kind)+len(id))
	b = append(b, "custodia/record/v1"...)
	for _, s := range []string{tenantID, kind, id} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return binary.BigEndian.AppendUint32(b, uint32(version))
}

func wrapAAD(tenantID string, version int) []byte {
	return aad(tenantID, "keys.tenant-key", "", version)
}

// CreateTenantKeys creates version 1 of a new tenant's keys in tx.
func (k *Keyring) CreateTenantKeys(ctx context.Context, tx store.KeyTx, tenantID string) error {
	return k.addVersion(ctx, tx, tenantID, 1)
}

func (k *Keyring) addVersion(ctx context.Context, tx store.KeyTx, tenantID string, version int) error {
	wrap, gen, err := k.root.wrapper()
	if err != nil {
		return err
	}
	dek := make([]byte, RootKeySize)
	_, _ = rand.Read(dek)
	defer clear(dek)
	nonce := make([]byte, wrap.NonceSize())
	_, _ = rand.Read(nonce)
	wrapped := wrap.Seal(nonce, nonce, dek, wrapAAD(tenantID, version))

	priv, err := submissionKEM.GenerateKey()
	if err != nil {
		return fmt.Errorf("keys: generate HPKE key: %w", err)
	}
	privBytes, err := priv.Bytes()
	if err != nil {
		return fmt.Errorf("keys: encode HPKE key: %w", err)
	}
	defer clear(privBytes)
	aead, err := newGCM(dek)
	if err != nil {
		return err
	}
	sealedPriv := sealWith(aead, tenantID, kindHPKEKey, strconv.Itoa(version), version, privBytes)
	now := k.now().UTC()
	err = tx.InsertTenantKey(ctx, &store.TenantKey{
		TenantID: tenantID, Version: version, State: store.KeyActive, Wrapped: wrapped, RootGeneration: gen,
		HPKEPublic: priv.PublicKey().Bytes(), HPKEPrivate: sealedPriv, CreatedAt: now,
	})
	if err != nil {
		return fmt.Errorf("keys: store tenant key: %w", err)
	}
	k.Forget(tenantID)
	return nil
}

func sealWith(a cipher.AEAD, tenantID, kind, id string, version int, plaintext []byte) []byte {
	out := make([]byte, recordHeaderLen, recordHeaderLen+len(plaintext)+a.Overhead())
	out[0] = recordFormatV1
	binary.BigEndian.PutUint32(out[1:5], uint32(version))
	_, _ = rand.Read(out[5:recordHeaderLen])
	return a.Seal(out, out[5:recordHeaderLen], plaintext, aad(tenantID, kind, id, version))
}

// CiphertextVersion returns the key version a ciphertext was sealed with.
func CiphertextVersion(ct []byte) (int, error) {
	if len(ct) < recordHeaderLen+16 || ct[0] != recordFormatV1 {
		return 0, ErrBadCiphertext
	}
	return int(binary.BigEndian.Uint32(ct[1:5])), nil
}

// cached returns the tenant's keys if they are cached, unwrapped under
// root generation gen, and fresh.
func (k *Keyring) cached(tenantID string, gen int) *tenantKeys {
	now := k.now()
	k.mu.Lock()
	tk := k.cache[tenantID]
	k.mu.Unlock()
	if tk != nil && tk.rootGen == gen && now.Sub(tk.loaded) < cacheTTL && now.Sub(tk.loaded) >= 0 {
		return tk
	}
	return nil
}

// OpenCached is Open without a transaction, for a tenant whose keys are
// cached and fresh; ok is false otherwise, and the caller then uses Open.
func (k *Keyring) OpenCached(tenantID, kind, id string, ct []byte) (pt Secret, ok bool, err error) {
	v, err := CiphertextVersion(ct)
	if err != nil {
		return nil, true, err
	}
	_, gen, err := k.root.wrapper()
	if err != nil {
		return nil, true, err
	}
	tk := k.cached(tenantID, gen)
	if tk == nil {
		return nil, false, nil
	}
	kv, err := tk.open(v)
	if err != nil {
		return nil, true, err
	}
	pt, err = k.openWith(kv.aead, tenantID, kind, id, v, ct)
	return pt, true, err
}

// load returns the tenant's keys, unwrapping them from tx when the cache
// is cold or stale.
func (k *Keyring) load(ctx context.Context, tx store.KeyTx, tenantID string) (*tenantKeys, error) {
	wrap, gen, err := k.root.wrapper()
	if err != nil {
		return nil, err
	}
	if tk := k.cached(tenantID, gen); tk != nil {
		return tk, nil
	}
	now := k.now()
	rows, err := tx.ListTenantKeys(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("keys: load tenant keys: %w", err)
	}
	if len(rows) == 0 {
		return nil, ErrNoTenantKey
	}
	tk := &tenantKeys{loaded: now, rootGen: gen, versions: map[int]*keyVersion{}}
	for _, r := range rows {
		kv := &keyVersion{state: r.State, pub: r.HPKEPublic}
		if r.Wrapped != nil {
			if len(r.Wrapped) < wrap.NonceSize() {
				return nil, fmt.Errorf("keys: tenant key %d: %w", r.Version, ErrBadCiphertext)
			}
			dek, err := wrap.Open(nil, r.Wrapped[:wrap.NonceSize()], r.Wrapped[wrap.NonceSize():], wrapAAD(tenantID, r.Version))
			if err != nil {
				return nil, fmt.Errorf("keys: unwrap tenant key %d: %w", r.Version, ErrBadCiphertext)
			}
			kv.aead, err = newGCM(dek)
			clear(dek)
			if err != nil {
				return nil, err
			}
		}
		if r.State == store.KeyActive {
			tk.active = r.Version
		}
		tk.versions[r.Version] = kv
	}
	k.mu.Lock()
	k.cache[tenantID] = tk
	k.mu.Unlock()
	return tk, nil
}

// Seal encrypts plaintext for one record with the tenant's active key and
// returns the key version used and the ciphertext.
func (k *Keyring) Seal(ctx context.Context, tx store.KeyTx, tenantID, kind, id string, plaintext []byte) (int, []byte, error) {
	tk, err := k.load(ctx, tx, tenantID)
	if err != nil {
		return 0, nil, err
	}
	kv := tk.versions[tk.active]
	if kv == nil || kv.aead == nil {
		return 0, nil, ErrKeyDestroyed
	}
	return tk.active, sealWith(kv.aead, tenantID, kind, id, tk.active, plaintext), nil
}

// Open decrypts a record sealed by Seal for the same tenant, kind and ID.
func (k *Keyring) Open(ctx context.Context, tx store.KeyTx, tenantID, kind, id string, ct []byte) (Secret, error) {
	v, err := CiphertextVersion(ct)
	if err != nil {
		return nil, err
	}
	kv, err := k.version(ctx, tx, tenantID, v)
	if err != nil {
		return nil, err
	}
	return k.openWith(kv.aead, tenantID, kind, id, v, ct)
}

// version returns a key version that can still open records.
func (k *Keyring) version(ctx context.Context, tx store.KeyTx, tenantID string, v int) (*keyVersion, error) {
	tk, err := k.load(ctx, tx, tenantID)
	if err != nil {
		return nil, err
	}
	return tk.open(v)
}

// open returns key version v if it can still open records.
func (tk *tenantKeys) open(v int) (*keyVersion, error) {
	kv := tk.versions[v]
	if kv == nil {
		return nil, ErrBadCiphertext
	}
	if kv.aead == nil {
		return nil, ErrKeyDestroyed
	}
	return kv, nil
}

// KeyInfo describes one key version, without key material.
type KeyInfo struct {
	Version     int       `json:"version"`
	State       string    `json:"state"`
	CreatedAt   time.Time `json:"created_at"`
	DestroyedAt time.Time `json:"destroyed_at,omitzero"`
	// Records is how many of the tenant's records are sealed with it.
	Records int64 `json:"records"`
}

// Versions lists a tenant's key versions and the records under each.
func (k *Keyring) Versions(ctx context.Context, tx store.Tx, tenantID string) ([]KeyInfo, error) {
	rows, err := tx.ListTenantKeys(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	counts, err := tx.CountRecordsByVersion(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, KeyInfo{Version: r.Version, State: r.State, CreatedAt: r.CreatedAt, DestroyedAt: r.DestroyedAt, Records: counts[r.Version]})
	}
	return out, nil
}

// Rotate adds a new active key version in tx and retires the previous one.
// Records sealed with older versions still open; RewrapJob moves them.
func (k *Keyring) Rotate(ctx context.Context, tx store.Tx, tenantID string) (int, error) {
	rows, err := tx.ListTenantKeys(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, ErrNoTenantKey
	}
	last := rows[len(rows)-1]
	if last.Wrapped == nil {
		return 0, ErrKeyDestroyed
	}
	for _, r := range rows {
		if r.State == store.KeyActive {
			if err := tx.SetTenantKeyState(ctx, tenantID, r.Version, store.KeyRetired); err != nil {
				return 0, err
			}
		}
	}
	next := last.Version + 1
	if err := k.addVersion(ctx, tx, tenantID, next); err != nil {
		return 0, err
	}
	return next, nil
}

// Rewrap re-seals up to batch records of the tenant that are below the
// active version, in one transaction, and returns how many it moved.
// A record changed concurrently is left to its writer.
func (k *Keyring) Rewrap(ctx context.Context, s store.Store, tenantID string, batch int) (int, error) {
	moved := 0
	err := s.Update(ctx, func(tx store.Tx) error {
		moved = 0
		// Read the keys inside this transaction: a cached copy may predate
		// the rotation and name the old version as active.
		k.Forget(tenantID)
		tk, err := k.load(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		recs, err := tx.ListRecordsBelowVersion(ctx, tenantID, tk.active, batch)
		if err != nil {
			return err
		}
		for _, r := range recs {
			pt, err := k.Open(ctx, tx, tenantID, r.Kind, r.ID, r.Ciphertext)
			if err != nil {
				return fmt.Errorf("keys: rewrap %s/%s: %w", r.Kind, r.ID, err)
			}
			v, ct, err := k.Seal(ctx, tx, tenantID, r.Kind, r.ID, pt)
			pt.Wipe()
			if err != nil {
				return err
			}
			ok, err := tx.UpdateRecordCiphertext(ctx, &store.Record{TenantID: tenantID, Kind: r.Kind, ID: r.ID, KeyVersion: v, Ciphertext: ct}, r.KeyVersion)
			if err != nil {
				return err
			}
			if ok {
				moved++
			}
		}
		return nil
	})
	return moved, err
}

// Shred destroys every key version of the tenant in tx. Nothing sealed for
// the tenant can be opened afterwards, by this node or from a backup.
func (k *Keyring) Shred(ctx context.Context, tx store.KeyTx, tenantID string) error {
	if err := tx.DestroyTenantKeys(ctx, tenantID, k.now().UTC()); err != nil {
		return err
	}
	k.Forget(tenantID)
	return nil
}

// ---- sealed submissions (HPKE) ----

// The HPKE suite for sealed submissions: ML-KEM-768 + X25519 hybrid KEM,
// HKDF-SHA256, AES-256-GCM.
var (
	submissionKEM  = hpke.MLKEM768X25519()
	submissionKDF  = hpke.HKDFSHA256()
	submissionAEAD = hpke.AES256GCM()
)

// Sealed submission layout:
//
//	0x01 | key version (uint32 BE) | HPKE enc | ciphertext
//
// The HPKE info string binds the tenant ID and the key version.
const submissionFormatV1 = 0x01

func submissionInfo(tenantID string, version int) []byte {
	return aad(tenantID, "submission", "", version)
}

// PublicKey returns the tenant's active HPKE public key and its version.
func (k *Keyring) PublicKey(ctx context.Context, tx store.KeyTx, tenantID string) (int, []byte, error) {
	tk, err := k.load(ctx, tx, tenantID)
	if err != nil {
		return 0, nil, err
	}
	kv := tk.versions[tk.active]
	if kv == nil || kv.aead == nil {
		return 0, nil, ErrKeyDestroyed
	}
	return tk.active, kv.pub, nil
}

// SealSubmission encrypts plaintext to a tenant's HPKE public key. It needs
// no server state: a client that fetched the public key calls it.
func SealSubmission(tenantID string, version int, publicKey, plaintext []byte) ([]byte, error) {
	pk, err := submissionKEM.NewPublicKey(publicKey)
	if err != nil {
		return nil, fmt.Errorf("keys: tenant public key: %w", err)
	}
	ct, err := hpke.Seal(pk, submissionKDF, submissionAEAD, submissionInfo(tenantID, version), plaintext)
	if err != nil {
		return nil, fmt.Errorf("keys: seal submission: %w", err)
	}
	out := make([]byte, 5, 5+len(ct))
	out[0] = submissionFormatV1
	binary.BigEndian.PutUint32(out[1:5], uint32(version))
	return append(out, ct...), nil
}

// OpenSubmission decrypts a sealed submission made for the tenant.
func (k *Keyring) OpenSubmission(ctx context.Context, tx store.KeyTx, tenantID string, sealed []byte) (Secret, error) {
	if len(sealed) < 5 || sealed[0] != submissionFormatV1 {
		return nil, ErrBadCiphertext
	}
	version := int(binary.BigEndian.Uint32(sealed[1:5]))
	kv, err := k.version(ctx, tx, tenantID, version)
	if err != nil {
		return nil, err
	}
	rows, err := tx.ListTenantKeys(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	var sealedPriv []byte
	for _, r := range rows {
		if r.Version == version {
			sealedPriv = r.HPKEPrivate
		}
	}
	privBytes, err := k.openWith(kv.aead, tenantID, kindHPKEKey, strconv.Itoa(version), version, sealedPriv)
	if err != nil {
		return nil, err
	}
	defer privBytes.Wipe()
	priv, err := submissionKEM.NewPrivateKey(privBytes)
	if err != nil {
		return nil, fmt.Errorf("keys: HPKE private key: %w", ErrBadCiphertext)
	}
	pt, err := hpke.Open(priv, submissionKDF, submissionAEAD, submissionInfo(tenantID, version), sealed[5:])
	if err != nil {
		return nil, ErrBadCiphertext
	}
	return pt, nil
}

func (k *Keyring) openWith(a cipher.AEAD, tenantID, kind, id string, version int, ct []byte) (Secret, error) {
	v, err := CiphertextVersion(ct)
	if err != nil || v != version {
		return nil, ErrBadCiphertext
	}
	pt, err := a.Open(nil, ct[5:recordHeaderLen], ct[recordHeaderLen:], aad(tenantID, kind, id, v))
	if err != nil {
		return nil, ErrBadCiphertext
	}
	return pt, nil
}

// ---- root-key rotation ----

// RotateOptions choose the new root key's form; Type must match the
// installation's.
type RotateOptions = InitOptions

// RotateRoot replaces the root key: a new key (new shares, or the given key
// for a key-file installation) re-wraps every live tenant key in one
// transaction, then replaces the key in memory. inTx runs in the same
// transaction (for the audit event).
func (r *Root) RotateRoot(ctx context.Context, opt RotateOptions, inTx func(store.Tx) error) (*InitResult, error) {
	r.mu.RLock()
	cfg, oldWrap, oldKey := r.cfg, r.wrap, append(Secret{}, r.key...)
	r.mu.RUnlock()
	defer oldKey.Wipe()
	if oldWrap == nil {
		return nil, ErrSealed
	}
	if opt.Type == "" {
		opt.Type = cfg.Type
		if opt.Type == SealShamir && opt.Shares == 0 {
			opt.Shares, opt.Threshold = cfg.Shares, cfg.Threshold
		}
	}
	if opt.Type != cfg.Type {
		return nil, fmt.Errorf("%w: installation uses %s", ErrWrongSealType, cfg.Type)
	}
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("keys: rotate root: %w", err)
	}
	next := *cfg
	next.Generation++
	next.CreatedAt = r.now().UTC()
	key, res, err := newRootKey(opt, &next)
	if err != nil {
		return nil, err
	}
	newWrap, err := deriveAEAD(key, "custodia/tenant-key-wrap/v1")
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(&next)
	if err != nil {
		return nil, err
	}
	err = r.store.Update(ctx, func(tx store.Tx) error {
		live, err := tx.ListLiveTenantKeys(ctx)
		if err != nil {
			return err
		}
		for _, tk := range live {
			ns := oldWrap.NonceSize()
			if len(tk.Wrapped) < ns {
				return fmt.Errorf("keys: tenant %s key %d: %w", tk.TenantID, tk.Version, ErrBadCiphertext)
			}
			a := wrapAAD(tk.TenantID, tk.Version)
			dek, err := oldWrap.Open(nil, tk.Wrapped[:ns], tk.Wrapped[ns:], a)
			if err != nil {
				return fmt.Errorf("keys: tenant %s key %d: %w", tk.TenantID, tk.Version, ErrBadCiphertext)
			}
			nonce := make([]byte, ns)
			_, _ = rand.Read(nonce)
			wrapped := newWrap.Seal(nonce, nonce, dek, a)
			clear(dek)
			if err := tx.RewrapTenantKey(ctx, tk.TenantID, tk.Version, wrapped, next.Generation); err != nil {
				return err
			}
		}
		if err := resealMeta(ctx, tx, oldKey, key); err != nil {
			return err
		}
		if err := tx.PutMeta(ctx, metaSealConfig, raw); err != nil {
			return err
		}
		if inTx != nil {
			return inTx(tx)
		}
		return nil
	})
	if err != nil {
		key.Wipe()
		return nil, fmt.Errorf("keys: rotate root: %w", err)
	}
	r.mu.Lock()
	r.key.Wipe()
	r.cfg, r.key, r.wrap = &next, key, newWrap
	r.mu.Unlock()
	return res, nil
}

// SubmissionSuite names the HPKE suite of sealed submissions.
const SubmissionSuite = "HPKE-ML-KEM-768-X25519-HKDF-SHA256-AES-256-GCM"
