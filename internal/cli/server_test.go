package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/server"
)

// A second server on a data directory in use stops at the directory's
// lock, before it reads the root key or touches the TLS files there.
func TestSecondServerStopsAtTheLock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := t.TempDir()
	startServer(ctx, t, data)
	// Without a certificate the second server would make one, and a
	// --dev server without its key would write a new one.
	for _, name := range []string{server.SelfSignedCert, server.SelfSignedKey, devKeyFile} {
		if err := os.Remove(filepath.Join(data, name)); err != nil {
			t.Fatal(err)
		}
	}
	out := &lockedBuffer{}
	code := Run(ctx, []string{"server", "--dev", "--data", data, "--listen", "127.0.0.1:0"},
		&env{stdin: strings.NewReader(""), stdout: out, stderr: out, getenv: func(string) string { return "" }})
	if code != ExitUnavailable || !strings.Contains(out.String(), "in use by another custodia process") {
		t.Fatalf("second server: exit %d, want %d and the lock's message:\n%s", code, ExitUnavailable, out.String())
	}
	for _, name := range []string{server.SelfSignedCert, server.SelfSignedKey, devKeyFile} {
		if _, err := os.Stat(filepath.Join(data, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the second server made %s (%v)", name, err)
		}
	}
}
