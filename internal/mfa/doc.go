// Package mfa owns Custodia's second factors as pure domain logic: TOTP
// enrolment and verification, one-time recovery codes, and WebAuthn passkey
// ceremonies. It has no storage access: every function returns what the
// caller must persist (a TOTP secret, the last accepted TOTP step, recovery
// code hashes, passkey credentials and ceremony sessions), and takes back
// what the caller stored. Time is passed in; randomness comes from
// crypto/rand.
//
// It must never log, print or put into an error a TOTP secret, a TOTP code,
// a recovery code or an otpauth:// URL (which carries the secret); secrets
// it returns are typed so that fmt and slog print [REDACTED]. It must never
// return a recovery code in a form that could be stored in the clear: only
// the salted hashes are meant for storage, the codes are shown to the member
// once.
//
// Errors are sentinels (ErrInvalidCode, ErrReplayed, ErrRejected, ...)
// wrapped with the operation. They are for logs and for errors.Is; a client
// must only ever see one generic "second factor not accepted" message, so
// that it cannot tell a replay from a wrong code or an unknown passkey.
package mfa
