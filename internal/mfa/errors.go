package mfa

import "errors"

var (
	// ErrInvalidCode is a TOTP code that is malformed or does not match
	// any step in the accepted window.
	ErrInvalidCode = errors.New("mfa: invalid code")
	// ErrReplayed is a TOTP code that matches, but for a step at or before
	// the last one accepted for this member.
	ErrReplayed = errors.New("mfa: code already used")

	// ErrInvalidSession is a passkey ceremony session blob that is
	// malformed, from another kind of ceremony, or from another relying
	// party configuration.
	ErrInvalidSession = errors.New("mfa: invalid passkey session")
	// ErrRejected is a browser response that failed WebAuthn verification
	// (challenge, origin, relying party, flags, signature, attestation...).
	ErrRejected = errors.New("mfa: passkey response rejected")
	// ErrUnknownCredential is an assertion made with a credential the
	// member does not own.
	ErrUnknownCredential = errors.New("mfa: unknown passkey")
	// ErrClonedAuthenticator means the authenticator's signature counter
	// did not increase: the private key may exist on two devices.
	ErrClonedAuthenticator = errors.New("mfa: passkey signature counter went backwards (possible cloned authenticator)")
)
