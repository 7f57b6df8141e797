package keys

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"github.com/custodia-project/custodia/internal/store"
)

// SealedMetaPrefix starts the names of installation values sealed under the
// root key (such as the audit-log signing key). Root rotation re-seals them.
const SealedMetaPrefix = "sealed."

func (r *Root) metaAEAD() (cipher.AEAD, error) {
	r.mu.RLock()
	key := r.key
	r.mu.RUnlock()
	if key == nil {
		return nil, ErrSealed
	}
	return deriveAEAD(key, "custodia/meta/v1")
}

func sealMetaWith(a cipher.AEAD, name string, plaintext []byte) []byte {
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	return a.Seal(nonce, nonce, plaintext, []byte(name))
}

func openMetaWith(a cipher.AEAD, name string, ct []byte) (Secret, error) {
	if len(ct) < a.NonceSize() {
		return nil, ErrBadCiphertext
	}
	pt, err := a.Open(nil, ct[:a.NonceSize()], ct[a.NonceSize():], []byte(name))
	if err != nil {
		return nil, ErrBadCiphertext
	}
	return pt, nil
}

// InsertSealedMeta stores value under name, sealed with the root key; it
// fails with store.ErrConflict when name exists.
func (r *Root) InsertSealedMeta(ctx context.Context, tx store.MetaTx, name string, value []byte) error {
	a, err := r.metaAEAD()
	if err != nil {
		return err
	}
	return tx.InsertMeta(ctx, SealedMetaPrefix+name, sealMetaWith(a, SealedMetaPrefix+name, value))
}

// OpenSealedMeta reads a value stored by InsertSealedMeta.
func (r *Root) OpenSealedMeta(ctx context.Context, tx store.MetaTx, name string) (Secret, error) {
	a, err := r.metaAEAD()
	if err != nil {
		return nil, err
	}
	ct, err := tx.GetMeta(ctx, SealedMetaPrefix+name)
	if err != nil {
		return nil, err
	}
	pt, err := openMetaWith(a, SealedMetaPrefix+name, ct)
	if err != nil {
		return nil, fmt.Errorf("keys: sealed value %s: %w", name, err)
	}
	return pt, nil
}

// resealMeta re-seals every sealed value from old to new root key, in tx.
func resealMeta(ctx context.Context, tx store.MetaTx, oldKey, newKey Secret) error {
	oldA, err := deriveAEAD(oldKey, "custodia/meta/v1")
	if err != nil {
		return err
	}
	newA, err := deriveAEAD(newKey, "custodia/meta/v1")
	if err != nil {
		return err
	}
	vals, err := tx.ListMeta(ctx, SealedMetaPrefix)
	if err != nil {
		return err
	}
	for name, ct := range vals {
		pt, err := openMetaWith(oldA, name, ct)
		if err != nil {
			return fmt.Errorf("keys: re-seal %s: %w", name, err)
		}
		err = tx.PutMeta(ctx, name, sealMetaWith(newA, name, pt))
		clear(pt)
		if err != nil {
			return err
		}
	}
	return nil
}
