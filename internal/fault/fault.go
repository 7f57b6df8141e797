// Package fault is the error type that separates what a client may see from
// what is only logged. Domain packages return a *fault.Error for anything a
// caller did wrong; every other error is internal and reaches clients only
// as a generic message.
package fault

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the edge (HTTP status, CLI exit code).
type Kind int

const (
	Internal Kind = iota
	Invalid
	Unauthenticated
	Forbidden
	NotFound
	Conflict
	TooLarge
	RateLimited
	Unavailable // sealed, not ready, shutting down
	MethodNotAllowed
)

// Error carries a stable code and a message safe to show to the client. Err,
// if set, is the cause: logged, never shown.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a client-visible error.
func New(k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns a client-visible error with a hidden cause.
func Wrap(err error, k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// Annotate passes err on from a service's operation op: nil as nil, a
// client-visible *Error as it is, anything else (a storage failure) with
// pkg and op in front, for the server's log.
func Annotate(pkg, op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := As(err); ok {
		return err
	}
	return fmt.Errorf("%s: %s: %w", pkg, op, err)
}

// As finds a *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Common errors.
var (
	ErrUnauthenticated = New(Unauthenticated, "unauthenticated", "a valid token is required")
	ErrForbidden       = New(Forbidden, "forbidden", "this token may not do that")
	ErrSealed          = New(Unavailable, "sealed", "the vault is sealed; an operator must unseal it")
)
