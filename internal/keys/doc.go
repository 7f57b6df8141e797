// Package keys owns Custodia's key hierarchy: the root key (kept only in
// memory, rebuilt from Shamir shares or read from a key file on other
// storage), the per-tenant data keys it wraps, the tenants' HPKE key pairs
// for sealed submissions, and the sealing of records with AES-256-GCM.
//
// It must never write the root key, or anything from which it could be
// rebuilt, to the store, a log or an error; and it must never return key
// material or plaintext inside an error.
package keys
