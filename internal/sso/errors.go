package sso

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/custodia-project/custodia/internal/fault"
)

// Stable codes of the *fault.Error values this package returns.
const (
	CodeConfigInvalid    = "sso_config_invalid"     // Invalid: a Config setting, or the provider's metadata, is unusable
	CodeUnavailable      = "sso_unavailable"        // Unavailable: discovery failed, or the provider reported a temporary failure
	CodeIssuerMismatch   = "sso_issuer_mismatch"    // discovery or the callback named another issuer
	CodeInvalidCallback  = "sso_invalid_callback"   // Invalid: the callback lacks a code or repeats a parameter
	CodeStateMismatch    = "sso_state_mismatch"     // Invalid: the callback does not belong to this pending login
	CodeExpired          = "sso_expired"            // Unauthenticated: the pending login is older than PendingTTL
	CodeExchangeFailed   = "sso_exchange_failed"    // Unauthenticated (refused) or Unavailable (unreachable): the code could not be redeemed
	CodeInvalidToken     = "sso_invalid_token"      // Unauthenticated: the ID token or the user info failed verification
	CodeEmailNotVerified = "sso_email_not_verified" // Forbidden: no email, or the provider does not vouch for it
	CodeAccessDenied     = "sso_access_denied"      // Forbidden: the user or the provider refused at the provider
	CodeProviderError    = "sso_provider_error"     // Unauthenticated: the provider answered the authorization request with another error
	CodePrivateAddress   = "sso_private_address"    // Invalid: the issuer resolves to a non-public address (see ErrPrivateAddress)
)

// ErrEmailNotVerified is the cause (reachable with errors.Is) of the
// CodeEmailNotVerified fault: members are matched only by an email the
// provider marks as verified, so a sign-in without one is refused.
var ErrEmailNotVerified = errors.New("sso: email missing or not verified")

// FinishError maps the error a provider put on the redirect (RFC 6749
// section 4.1.2.1: the error and error_description query parameters) to a
// client-visible fault. Both arguments are untrusted: they reach only the
// hidden cause, quoted and truncated, never the client message.
func FinishError(errCode, desc string) error {
	cause := fmt.Errorf("sso: provider returned error %s: %s", quoteTrunc(errCode, 64), quoteTrunc(desc, 256))
	switch errCode {
	case "access_denied":
		return fault.Wrap(cause, fault.Forbidden, CodeAccessDenied, "sign-in was cancelled or refused at the identity provider")
	case "temporarily_unavailable", "server_error":
		return fault.Wrap(cause, fault.Unavailable, CodeUnavailable, "the identity provider is unavailable; try again later")
	default:
		return fault.Wrap(cause, fault.Unauthenticated, CodeProviderError, "the identity provider refused the sign-in request")
	}
}

// quoteTrunc makes untrusted text safe for a single log line.
func quoteTrunc(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strconv.QuoteToASCII(s)
}
