// Package pgtest gives tests a private PostgreSQL schema on the local
// server.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// DefaultURL is the local test server that .ci/run starts.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns a database URL whose search_path is a fresh schema, dropped
// when the test ends. The server comes from CUSTODIA_TEST_POSTGRES_URL, or
// DefaultURL. When it cannot be reached the test skips, unless CI is set:
// in CI a missing PostgreSQL is a failure, never a skip.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("CUSTODIA_TEST_POSTGRES_URL")
	if base == "" {
		base = DefaultURL
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL unreachable in CI (%v); PostgreSQL tests must run in CI", err)
		}
		t.Skipf("PostgreSQL unreachable, skipping outside CI: %v", err)
	}
	schema := "custodia_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
