package sqldb

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one forward-only schema step.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in order, with the dialect's
// types substituted.
func Migrations(d Dialect) ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migrations: bad file name %q", name)
		}
		body, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		sqlText := strings.NewReplacer("{{bytes}}", d.BytesType, "{{without_rowid}}", d.WithoutRowID).Replace(string(body))
		out = append(out, Migration{Version: v, Name: name, SQL: sqlText})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations: expected version %d, found %s", i+1, m.Name)
		}
	}
	return out, nil
}

// Migrate applies every pending migration in one transaction. It refuses a
// database whose schema is newer than this binary.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, now time.Time) error {
	ms, err := Migrations(d)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: migrate: begin: %w", d.Name, err)
	}
	defer func() { _ = tx.Rollback() }()
	if d.LockMigrations != nil {
		if err := d.LockMigrations(ctx, tx); err != nil {
			return fmt.Errorf("%s: migrate: lock: %w", d.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("%s: migrate: %w", d.Name, err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("%s: migrate: read version: %w", d.Name, err)
	}
	if current > len(ms) {
		return fmt.Errorf("%s: schema version %d, binary knows %d: %w", d.Name, current, len(ms), store.ErrSchemaTooNew)
	}
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("%s: migration %s: %w", d.Name, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, now.UnixMicro()); err != nil {
			return fmt.Errorf("%s: record migration %s: %w", d.Name, m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: migrate: commit: %w", d.Name, err)
	}
	return nil
}
