// Package identity owns the people and robots of a tenant: members and
// their roles, invitations, passwords, second factors (TOTP, recovery
// codes, passkeys), single sign-on, sign-in with its protections, browser
// sessions, and API tokens for people and robots.
//
// It must never store a password, token, TOTP secret or recovery code in
// the clear (tokens and codes as hashes, second factors sealed under the
// tenant's key), never write one to a log or an audit entry, and never
// tell a caller whether an account exists.
package identity
