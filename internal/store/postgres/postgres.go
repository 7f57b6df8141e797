// Package postgres is the storage engine for more than one node: a primary
// for writes and optional read replicas, through pgx. Migrations run under a
// transaction-scoped advisory lock, so nodes that start together migrate
// once.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/custodia-project/custodia/internal/store/sqldb"
)

// migrationLockKey is an arbitrary constant shared by every node.
const migrationLockKey = 0x637573746f646961 // "custodia"

var dialect = sqldb.Dialect{
	Name:      "postgres",
	BytesType: "BYTEA",
	Begin:     "BEGIN",
	// Audit entries are written in multi-row statements at commit, and
	// numbered then under their log's row lock, which keeps writers' and
	// nodes' numbering consistent.
	DeferAudit: true,
	LockRows:   " FOR UPDATE",
	// The log's row is locked for the commit alone, so this node's
	// writers run side by side.
	NumberAtCommit: true,
	ExactInserts:   true,
	// Reads run under READ COMMITTED, statement by statement.
	AutocommitReads: true,
	// Several nodes write: the change stamp is a row every changing
	// transaction moves, and cached reads are confirmed against it.
	SharedStamp: true,
	IsUniqueViolation: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
	// Two writers (nodes) locking the same rows in opposite orders
	// deadlock; PostgreSQL aborts one, which then runs again.
	IsRetryable: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && (e.Code == "40P01" || e.Code == "40001")
	},
	LockMigrations: func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockKey))
		return err
	},
}

// Options tunes the connection pools.
type Options struct {
	// ReplicaURLs are read-only replicas; reads go to them in turn.
	ReplicaURLs []string
	// MaxConns bounds each pool (default 32).
	MaxConns int
	// Writers is how many group-commit writers this node runs, each on a
	// connection of its own (default 4, at most half of MaxConns).
	Writers int
}

// DefaultWriters is Options.Writers' default.
const DefaultWriters = 4

func (o Options) writers() int {
	if o.Writers > 0 {
		return o.Writers
	}
	return DefaultWriters
}

func poolSize(maxConns int) int {
	if maxConns <= 0 {
		return 32
	}
	return maxConns
}

// Open connects to the primary at url, applies migrations and opens the
// replicas.
func Open(ctx context.Context, url string, opt Options) (*sqldb.DB, error) {
	writer, err := openPool(ctx, url, opt.MaxConns)
	if err != nil {
		return nil, err
	}
	if err := sqldb.Migrate(ctx, writer, dialect, time.Now()); err != nil {
		writer.Close()
		return nil, err
	}
	closers := []func() error{}
	var readers []*sql.DB
	for i, u := range opt.ReplicaURLs {
		r, err := openPool(ctx, u, opt.MaxConns)
		if err != nil {
			for _, c := range closers {
				_ = c()
			}
			writer.Close()
			return nil, fmt.Errorf("postgres: replica %d: %w", i, err)
		}
		readers = append(readers, r)
		closers = append(closers, r.Close)
	}
	closers = append(closers, writer.Close)
	db := sqldb.New(writer, readers, dialect, closers...)
	// Group commit on this node: concurrent writes share a transaction
	// and its commit, over a few writers that each hold a connection (at
	// most half of the pool, which reads share). Audit entries are
	// numbered at commit under their log's row lock, so writers and nodes
	// number them consistently.
	db.EnableGroupCommit(min(opt.writers(), max(1, poolSize(opt.MaxConns)/2)))
	return db, nil
}

func openPool(ctx context.Context, url string, maxConns int) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx masks the password in parse errors.
		return nil, fmt.Errorf("postgres: database URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	maxConns = poolSize(maxConns)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: cannot reach %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	return db, nil
}
