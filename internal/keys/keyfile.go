package keys

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// GenerateKey returns a new random root key.
func GenerateKey() (Secret, error) {
	k := make(Secret, RootKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

// EncodeKey renders a key as written to a key file.
func EncodeKey(k Secret) string { return base64.StdEncoding.EncodeToString(k) + "\n" }

// ReadKeyFile reads a root key file (base64 or hex text, or 32 raw bytes).
// It refuses a file that other users can read.
func ReadKeyFile(path string) (Secret, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("root key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("root key file %s has mode %#o: other users can read it; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("root key file: %w", err)
	}
	defer clear(b)
	if k, err := ParseKey(b); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("root key file %s: not a %d-byte key in base64, hex or raw form", path, RootKeySize)
}

// ParseKey decodes a key in base64, hex or raw form.
func ParseKey(b []byte) (Secret, error) {
	if len(b) == RootKeySize {
		return append(Secret{}, b...), nil
	}
	s := strings.TrimSpace(string(b))
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == RootKeySize {
		return k, nil
	}
	if k, err := hex.DecodeString(s); err == nil && len(k) == RootKeySize {
		return k, nil
	}
	return nil, errors.New("keys: not a root key")
}

// WriteKeyFile writes a new key file readable only by its owner. It never
// overwrites an existing file.
func WriteKeyFile(path string, k Secret) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("root key file: %w", err)
	}
	if _, err := f.WriteString(EncodeKey(k)); err != nil {
		f.Close()
		return fmt.Errorf("root key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("root key file: %w", err)
	}
	return f.Close()
}
