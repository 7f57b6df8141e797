// Package api is Custodia's native HTTP JSON API: the route table, the
// handlers, strict request decoding, the one error renderer and the OpenAPI
// document generated from the route table.
//
// Handlers return errors; Render turns them into
// {"error":{"code":"...","message":"..."}} so that clients never see SQL,
// crypto or other internal text. Authentication, authorization and the seal
// gate are applied by the server from each route's declaration, never by a
// handler.
package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
)

// Handler serves a request and returns an error for Render.
type Handler func(w http.ResponseWriter, r *http.Request) error

// Param documents a query parameter.
type Param struct {
	Name        string
	Description string
	Type        string // "string", "integer", "boolean"
}

// Route is one entry of the route table: everything the server needs to
// mount, guard and document it.
type Route struct {
	Method  string
	Pattern string // net/http pattern path, e.g. /api/v1/tenants/{tenant}
	// Perm is the permission a caller needs; authz.Public for none.
	Perm authz.Permission
	// TenantParam names the path wildcard holding the tenant, if any.
	TenantParam string
	// Unsealed routes answer 503 while the vault is sealed.
	Unsealed bool
	Summary  string
	Tag      string
	// Request and Response are zero values of the body types (nil for none),
	// for the OpenAPI document.
	Request  any
	Response any
	Status   int // success status; 200 when zero
	Query    []Param
	// Raw routes (health, metrics) are not JSON and not in OpenAPI's
	// JSON content.
	RawContentType string
	// Quiet routes (health probes, scrapes) are access-logged at debug
	// level so probes do not flood the log.
	Quiet bool
	// Vault routes speak HashiCorp Vault's dialect (the /v1 API): the
	// token may come in X-Vault-Token, errors are {"errors":[...]}, and the
	// tenant is the calling token's own.
	Vault bool
	// Confirms marks a hot read (a robot's fetch) whose every success ends
	// in a write (its lease): on engines shared by several nodes it may be
	// served from this node's caches provisionally, since that write
	// confirms them first; the server runs it again without caches when
	// they had gone stale (store.Confirm), on its body read whole first.
	Confirms bool
	Handler  Handler
}

// confirms marks rt as Confirms.
func confirms(rt Route) Route {
	rt.Confirms = true
	return rt
}

// ErrorBody is the one error shape.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the code and message of an error.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// Status maps an error kind to an HTTP status.
func Status(k fault.Kind) int {
	switch k {
	case fault.Invalid:
		return http.StatusBadRequest
	case fault.Unauthenticated:
		return http.StatusUnauthorized
	case fault.Forbidden:
		return http.StatusForbidden
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Conflict:
		return http.StatusConflict
	case fault.TooLarge:
		return http.StatusRequestEntityTooLarge
	case fault.RateLimited:
		return http.StatusTooManyRequests
	case fault.Unavailable:
		return http.StatusServiceUnavailable
	case fault.MethodNotAllowed:
		return http.StatusMethodNotAllowed
	}
	return http.StatusInternalServerError
}

// Public converts any error to what a client may see: a *fault.Error as it
// is, anything else as a generic internal error.
func Public(err error) *fault.Error {
	if fe, ok := fault.As(err); ok {
		return fe
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fault.New(fault.TooLarge, "body_too_large", "request body exceeds %d bytes", mbe.Limit)
	}
	return fault.New(fault.Internal, "internal", "internal error; the request ID identifies it in the server log")
}

// Render writes err in the error shape and logs what the client does not
// see.
func Render(w http.ResponseWriter, r *http.Request, log *slog.Logger, requestID string, err error) {
	fe := Public(err)
	status := Status(fe.Kind)
	logError(r, log, requestID, status, fe, err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="custodia"`)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: fe.Code, Message: fe.Message, RequestID: requestID}})
}

// logError logs what a client does not see of an error: the whole of an
// internal one, the cause of a refusal.
func logError(r *http.Request, log *slog.Logger, requestID string, status int, fe *fault.Error, err error) {
	if status >= 500 && fe.Kind == fault.Internal {
		log.ErrorContext(r.Context(), "request failed", "request_id", requestID, "err", err)
	} else if fe.Err != nil {
		log.InfoContext(r.Context(), "request refused", "request_id", requestID, "code", fe.Code, "cause", fe.Err)
	}
}

// RenderVault writes err as Vault does ({"errors":["..."]}, a bare 404 for
// what does not exist), so that stock Vault clients understand it. Like
// Vault it answers 403 to a missing or bad token and 400 to a failed
// check-and-set.
func RenderVault(w http.ResponseWriter, r *http.Request, log *slog.Logger, requestID string, err error) {
	fe := Public(err)
	status := Status(fe.Kind)
	switch fe.Kind {
	case fault.Unauthenticated:
		status = http.StatusForbidden
	case fault.Conflict:
		status = http.StatusBadRequest
	}
	logError(r, log, requestID, status, fe, err)
	msgs := []string{fe.Message}
	switch {
	case fe.Kind == fault.NotFound && fe.Code != NoRoute:
		msgs = []string{}
	case fe.Kind == fault.Unauthenticated || fe.Kind == fault.Forbidden:
		msgs = []string{"permission denied", fe.Message}
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	// Vault's shape has no room for Custodia's error code: it travels in
	// a header, for scripts and logs.
	w.Header().Set("X-Custodia-Error", fe.Code)
	WriteJSON(w, status, VaultErrors{Errors: msgs})
}

// NoRoute is the code of a path no route serves. Under /v1 it keeps its
// message, as Vault's "no handler for route" does; a 404 for a secret that
// does not exist is bare, which Vault clients read as "not found".
const NoRoute = "no_route"

// VaultErrors is Vault's error shape.
type VaultErrors struct {
	Errors []string `json:"errors"`
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// Decode reads exactly one JSON object into v: the content type must be
// JSON, unknown fields, wrong types and trailing data are refused, and the
// body size is capped by the server before this runs.
func Decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return fault.New(fault.Invalid, "unsupported_media_type", "request body must be application/json")
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return fault.New(fault.Invalid, "empty_body", "a JSON request body is required")
		}
		return fault.Wrap(err, fault.Invalid, "malformed_json", "request body is not valid: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fault.New(fault.Invalid, "malformed_json", "request body must hold exactly one JSON object")
	}
	return nil
}

// describeJSONError names what was wrong without echoing the input.
func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error"
	case errors.As(err, &te):
		if te.Field != "" {
			return "wrong type for field " + te.Field
		}
		return "wrong type"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	}
	const unknown = "json: unknown field "
	if s := err.Error(); len(s) > len(unknown) && s[:len(unknown)] == unknown {
		return "unknown field " + s[len(unknown):]
	}
	return "cannot decode"
}
