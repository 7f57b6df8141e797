package keys

import "log/slog"

// Secret is sensitive bytes that must not reach a log: it prints as
// [REDACTED] through fmt and slog.
type Secret []byte

func (Secret) String() string                 { return "[REDACTED]" }
func (Secret) GoString() string               { return "[REDACTED]" }
func (Secret) LogValue() slog.Value           { return slog.StringValue("[REDACTED]") }
func (s Secret) MarshalText() ([]byte, error) { return []byte("[REDACTED]"), nil }

// Wipe overwrites the bytes. Go may have copied them elsewhere; this only
// shortens the life of this copy.
func (s Secret) Wipe() { clear(s) }
