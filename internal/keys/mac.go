package keys

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/custodia-project/custodia/internal/store"
)

// KindMACKey is the record kind of a tenant's MAC keys.
const KindMACKey = "keys.mac"

// MACKeySize is the length of a MAC key, in bytes.
const MACKeySize = 32

// MACTx is what MACKey needs of a transaction.
type MACTx interface {
	store.KeyTx
	store.RecordTx
}

// MACKey returns the tenant's secret key for purpose (such as keyed
// password fingerprints), creating it in tx on first use.
//
// The key is random, not derived from a data key: data keys rotate, and a
// MAC key must stay the same for values computed under it to stay
// comparable. It is kept as a record sealed under the tenant's keyring, so
// key rotation re-wraps it like any record and shredding the tenant
// destroys it. Of concurrent first uses exactly one key is kept; the
// others read it. The caller wipes the key when done.
func (k *Keyring) MACKey(ctx context.Context, tx MACTx, tenantID, purpose string) (Secret, error) {
	if purpose == "" {
		return nil, errors.New("keys: MAC key needs a purpose")
	}
	rec, err := tx.GetRecord(ctx, tenantID, KindMACKey, purpose)
	if errors.Is(err, store.ErrNotFound) {
		key := make(Secret, MACKeySize)
		_, _ = rand.Read(key)
		v, ct, err := k.Seal(ctx, tx, tenantID, KindMACKey, purpose, key)
		if err != nil {
			key.Wipe()
			return nil, err
		}
		now := k.now().UTC()
		ok, err := tx.InsertRecord(ctx, &store.Record{TenantID: tenantID, Kind: KindMACKey, ID: purpose, KeyVersion: v, Ciphertext: ct,
			CreatedAt: now, UpdatedAt: now})
		if err != nil {
			key.Wipe()
			return nil, fmt.Errorf("keys: store MAC key: %w", err)
		}
		if ok {
			return key, nil
		}
		// Another transaction created it first: use that one.
		key.Wipe()
		rec, err = tx.GetRecord(ctx, tenantID, KindMACKey, purpose)
		if err != nil {
			return nil, fmt.Errorf("keys: read MAC key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("keys: read MAC key: %w", err)
	}
	key, err := k.Open(ctx, tx, tenantID, KindMACKey, purpose, rec.Ciphertext)
	if err != nil {
		return nil, err
	}
	if len(key) != MACKeySize {
		key.Wipe()
		return nil, ErrBadCiphertext
	}
	return key, nil
}
