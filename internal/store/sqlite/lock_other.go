//go:build !unix

package sqlite

// LockName is the file in the data directory that the server holding the
// database keeps locked (on Unix).
const LockName = "custodia.lock"

// lockDir does nothing where flock is unavailable: run one server per data
// directory.
func lockDir(string) (func() error, error) { return func() error { return nil }, nil }
