// Package sqlite is the embedded storage engine: one SQLite file in the data
// directory, in WAL mode, with a single writer connection (SQLite allows one
// writer at a time; queuing in Go is cheaper than SQLITE_BUSY retries) and a
// pool of read-only connections. Every commit is fsynced (synchronous=FULL) so
// an acknowledged write survives a crash.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/custodia-project/custodia/internal/store/sqldb"
)

// FileName is the database file inside the data directory.
const FileName = "custodia.db"

// ErrLocked: another process holds the data directory.
var ErrLocked = errors.New("data directory locked")

var dialect = sqldb.Dialect{
	Name:         "sqlite",
	BytesType:    "BLOB",
	WithoutRowID: " WITHOUT ROWID",
	Begin:        "BEGIN IMMEDIATE",
	DeferAudit:   true,
	PrepareReads: true,
	SoleWriter:   true, // the data directory is locked (lockDir)
	// Parameters bound by position: by name, binding is quadratic in a
	// statement's parameters (see Dialect.BareParams).
	BareParams: true,
	IsUniqueViolation: func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
}

// Open opens (creating if needed) the database in dir and applies
// migrations.
func Open(ctx context.Context, dir string) (*sqldb.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create data directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	db, err := open(ctx, dir)
	if err != nil {
		unlock()
		return nil, err
	}
	db.AddCloser(unlock)
	return db, nil
}

func open(ctx context.Context, dir string) (*sqldb.DB, error) {
	path := filepath.Join(dir, FileName)
	dsn := func(extra url.Values) string {
		v := url.Values{}
		// temp_store(MEMORY): a multi-row insert keeps a statement journal
		// (to undo itself alone on a constraint failure); in a temporary
		// file that cost a system call per page. secure_delete(ON):
		// deleted content (a destroyed or pruned version's sealed record,
		// an erased credential) is overwritten with zeros, not left in
		// freed pages for anyone holding the file and the root key.
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "temp_store(MEMORY)",
			"secure_delete(ON)"} {
			v.Add("_pragma", p)
		}
		for k, vs := range extra {
			v[k] = append(v[k], vs...)
		}
		return "file:" + path + "?" + v.Encode()
	}
	// The writer checkpoints on its own only past backstopPages; the
	// checkpointer below keeps the log short without holding up commits.
	writer, err := sql.Open("sqlite", dsn(url.Values{"_txlock": {"immediate"},
		"_pragma": {fmt.Sprintf("wal_autocheckpoint(%d)", backstopPages)}}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// Every write goes through one connection that group commit holds;
	// the second is for migrations and maintenance (and busy_timeout
	// serializes them).
	writer.SetMaxOpenConns(2)
	writer.SetMaxIdleConns(2)
	writer.SetConnMaxIdleTime(0)
	if err := sqldb.Migrate(ctx, writer, dialect, time.Now()); err != nil {
		writer.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: restrict database file mode: %w", err)
	}
	// mmap lets readers share the OS page cache instead of copying pages in
	// with a system call each (proof reads touch scattered pages).
	reader, err := sql.Open("sqlite", dsn(url.Values{"_pragma": {"query_only(1)", "mmap_size(1073741824)", "cache_size(-16384)"}}))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open reader: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0)*2)
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	stop := checkpointer(writer)
	db := sqldb.New(writer, []*sql.DB{reader}, dialect, stop, reader.Close, writer.Close)
	db.EnableGroupCommit(1) // SQLite has one writer
	return db, nil
}

// Checkpoints copy the write-ahead log back into the database file. Left
// to SQLite they run inside the commit that crosses the log's threshold,
// holding up that commit and every write queued behind it (with its own
// fsync of the database file). A goroutine does them instead, PASSIVE
// (never blocking the writer or readers) every checkpointEvery on the
// writer pool's spare connection; the writer's own threshold stays as a
// backstop should the log outgrow backstopPages pages anyway.
const (
	checkpointEvery = 100 * time.Millisecond
	backstopPages   = 16384 // 64 MiB of 4 KiB pages
)

// checkpointer starts the checkpoint goroutine and returns what stops it
// (and waits for it).
func checkpointer(writer *sql.DB) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_, _ = writer.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	return func() error {
		cancel()
		<-done
		return nil
	}
}
