package keys

import "errors"

var (
	ErrSealed             = errors.New("keys: vault is sealed")
	ErrNotInitialized     = errors.New("keys: vault is not initialized")
	ErrAlreadyInitialized = errors.New("keys: vault is already initialized")
	ErrAlreadyUnsealed    = errors.New("keys: vault is already unsealed")
	// ErrBadShare is a share that is malformed or does not belong to this
	// installation's current root key.
	ErrBadShare = errors.New("keys: unseal share not recognized")
	// ErrWrongKey is a root key that does not match the data.
	ErrWrongKey = errors.New("keys: root key does not match this data directory")
	// ErrWrongSealType means the installation is unsealed another way
	// (shares versus key file).
	ErrWrongSealType = errors.New("keys: wrong unseal method for this installation")
	// ErrKeyDestroyed means the key that sealed a record was destroyed
	// (crypto-shredding): the record can never be opened again.
	ErrKeyDestroyed = errors.New("keys: key destroyed")
	// ErrBadCiphertext is a ciphertext that is malformed, tampered with, or
	// bound to another record or tenant.
	ErrBadCiphertext = errors.New("keys: ciphertext cannot be opened")
	ErrNoTenantKey   = errors.New("keys: tenant has no key")
)
