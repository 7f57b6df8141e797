// Package sso signs tenant members in through their organisation's OpenID
// Connect provider: authorization code flow with PKCE (S256), a state and a
// nonce per attempt, and ID token verification by
// github.com/coreos/go-oidc/v3.
//
// It owns:
//   - a tenant's provider settings ([Config]) and their validation;
//   - discovery of the provider and a per-tenant cache of it ([Cache]);
//   - building the authorization request ([Provider.Start]) and turning the
//     provider's callback into a verified [Identity] ([Provider.ParseCallback],
//     [Provider.Finish], [FinishError]);
//   - the rule that members are matched only by a verified email, and how an
//     email is normalised for matching ([NormalizeEmail]).
//
// It does not touch storage and mounts no HTTP routes: the caller keeps the
// [Pending] login server-side (never in a client-readable place), looks it up
// by the browser's session on the callback, deletes it before calling Finish
// so that it is used once, and maps the returned identity to a member.
//
// Every error a client may see is a *fault.Error with a stable code (the
// Code... constants); the cause stays in Err for the log.
//
// The package must never log, or put into an error message, an access or ID
// token, an authorization code, the client secret, the PKCE verifier, the
// state or the nonce. It logs nothing itself; [Config], [Provider] and
// [Pending] print redacted through fmt and log/slog so a caller cannot leak
// them by accident.
//
// Discovery, the token exchange, the user info request and the key set fetch
// go to a URL a tenant administrator chose. The HTTP client is injected so the
// caller can enforce its egress policy there (for example a dialer that
// refuses private and link-local addresses); this package bounds every request
// in time and every response in size, but does not filter addresses.
package sso
