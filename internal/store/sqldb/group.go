package sqldb

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/custodia-project/custodia/internal/store"
)

// Group commit: with a single writer connection (SQLite), each commit costs
// an fsync. Concurrent Update calls are therefore gathered into one
// transaction; each runs inside its own savepoint, so a call that fails is
// rolled back alone and the others still commit, and every caller returns
// only after the shared commit is durable. A call's changes are never
// visible to a reader before its Update returns an error or nil — they
// become visible at the shared commit.

// maxGroup bounds how many calls share one transaction.
const maxGroup = 256

type groupCall struct {
	ctx  context.Context
	fn   func(store.Tx) error
	err  error
	pnc  any
	done chan struct{}
}

type grouper struct {
	mu      sync.Mutex
	pending []*groupCall
	leading bool
}

// EnableGroupCommit makes Update batch concurrent calls (for engines with
// one writer connection).
func (db *DB) EnableGroupCommit() { db.group = &grouper{} }

func (db *DB) updateGrouped(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &groupCall{ctx: ctx, fn: fn, done: make(chan struct{})}
	g := db.group
	g.mu.Lock()
	g.pending = append(g.pending, c)
	lead := !g.leading
	if lead {
		g.leading = true
	}
	g.mu.Unlock()
	if lead {
		db.lead()
	}
	<-c.done
	if c.pnc != nil {
		panic(c.pnc)
	}
	return c.err
}

// lead runs batches until no call is pending.
func (db *DB) lead() {
	g := db.group
	for {
		g.mu.Lock()
		n := min(len(g.pending), maxGroup)
		if n == 0 {
			g.leading = false
			g.mu.Unlock()
			return
		}
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.mu.Unlock()
		db.runBatch(batch)
	}
}

func (db *DB) runBatch(batch []*groupCall) {
	finish := func(err error) {
		for _, c := range batch {
			if c.err == nil && c.pnc == nil {
				c.err = err
			}
			close(c.done)
		}
	}
	// The transaction outlives any one caller's context; each call's own
	// queries still use its context.
	sqlTx, err := db.writer.BeginTx(context.Background(), nil)
	if err != nil {
		finish(fmt.Errorf("%s: begin: %w", db.dialect.Name, err))
		return
	}
	t := &tx{tx: sqlTx, d: &db.dialect}
	ok := 0
	for i, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			continue
		}
		sp := fmt.Sprintf("g%d", i)
		if _, err := sqlTx.Exec("SAVEPOINT " + sp); err != nil {
			c.err = fmt.Errorf("%s: savepoint: %w", db.dialect.Name, err)
			continue
		}
		c.err, c.pnc = callSafely(c.fn, t)
		if c.err != nil || c.pnc != nil {
			if _, err := sqlTx.Exec("ROLLBACK TO " + sp); err != nil {
				_ = sqlTx.Rollback()
				finish(fmt.Errorf("%s: rollback to savepoint: %w", db.dialect.Name, err))
				return
			}
		} else {
			ok++
		}
		if _, err := sqlTx.Exec("RELEASE " + sp); err != nil {
			_ = sqlTx.Rollback()
			finish(fmt.Errorf("%s: release savepoint: %w", db.dialect.Name, err))
			return
		}
	}
	if ok == 0 {
		_ = sqlTx.Rollback()
		finish(nil)
		return
	}
	if err := sqlTx.Commit(); err != nil {
		finish(fmt.Errorf("%s: commit: %w", db.dialect.Name, err))
		return
	}
	finish(nil)
}

func callSafely(fn func(store.Tx) error, t store.Tx) (err error, pnc any) {
	defer func() {
		if p := recover(); p != nil {
			pnc = p
			err = errors.New("panic")
		}
	}()
	return fn(t), nil
}
