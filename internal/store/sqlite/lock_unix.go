//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockName is the file in the data directory that the server holding the
// database keeps locked.
const LockName = "custodia.lock"

// lockDir takes an exclusive lock on dir for this process's life (or until
// the returned release runs). One process owns a data directory: group
// commit numbers audit entries on the assumption that nothing else appends,
// and the caches that trust the store's change stamps (sqldb.DB.Stamp) see
// only this process's writes.
func lockDir(dir string) (release func() error, err error) {
	f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("sqlite: %w: %s is in use by another custodia process (one server per data directory)", ErrLocked, dir)
		}
		return nil, fmt.Errorf("sqlite: lock data directory: %w", err)
	}
	return f.Close, nil // closing the file releases the lock
}
