package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

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

	// Only the leader touches these. The writer connection is held for the
	// store's life so that prepared statements survive across batches.
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// maxStmts bounds the prepared-statement cache; further queries run
// unprepared. Preparing is a large share of a small statement's cost.
const maxStmts = 512

func (g *grouper) prepared(ctx context.Context, q string) *sql.Stmt {
	if st, ok := g.stmts[q]; ok {
		return st
	}
	if len(g.stmts) >= maxStmts {
		return nil
	}
	st, err := g.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	g.stmts[q] = st
	return st
}

func (g *grouper) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, st := range g.stmts {
		st.Close()
	}
	g.stmts = nil
	if g.conn != nil {
		return g.conn.Close()
	}
	return nil
}

// EnableGroupCommit makes Update batch concurrent calls, over writers
// group writers, each holding its own connection: one for SQLite (its one
// writer connection), several where transactions can run side by side
// (PostgreSQL numbers audit entries at commit so they barely wait on
// each other; Dialect.NumberAtCommit). See pickGroup for which writer a
// call joins.
func (db *DB) EnableGroupCommit(writers int) {
	db.groups = make([]*grouper, max(1, writers))
	for i := range db.groups {
		db.groups[i] = &grouper{}
	}
}

// spillAt is how many calls may wait for one writer before the next
// writer takes calls too: a few writers at once overlap long transactions
// (writes of credentials).
const spillAt = 16

// pickGroup returns the writer for a call. Appends (store.Appending: a
// fetch's lease and audit entry) are short, and a tenant's commits wait
// for each other on its audit log's row anyway, so they keep filling the
// first writer's transaction, whose commit they share. Other calls go to
// the first of the other writers with fewer than spillAt calls waiting,
// or else to the writer with the fewest.
func (db *DB) pickGroup(appending bool) *grouper {
	if len(db.groups) == 1 {
		return db.groups[0]
	}
	pending := func(g *grouper) int {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.pending)
	}
	if appending && pending(db.groups[0]) < maxGroup {
		return db.groups[0]
	}
	best, fewest := db.groups[0], pending(db.groups[0])
	for _, g := range db.groups[1:] {
		n := pending(g)
		if n < spillAt {
			return g
		}
		if n < fewest {
			best, fewest = g, n
		}
	}
	return best
}

func (db *DB) updateGrouped(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &groupCall{ctx: ctx, fn: fn, done: make(chan struct{})}
	g := db.pickGroup(store.IsAppending(ctx))
	g.mu.Lock()
	g.pending = append(g.pending, c)
	lead := !g.leading
	if lead {
		g.leading = true
	}
	g.mu.Unlock()
	if lead {
		db.lead(g)
	}
	<-c.done
	if c.pnc != nil {
		panic(c.pnc)
	}
	return c.err
}

// lead runs one batch, the one holding the caller's own call, then hands
// the lead to a new goroutine if calls are pending. Leading on would keep
// the caller (an HTTP request) waiting for other callers' batches for as
// long as load lasts: one request per busy period answered only at its end.
func (db *DB) lead(g *grouper) {
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
	db.runBatch(g, batch)
	g.mu.Lock()
	if len(g.pending) == 0 {
		g.leading = false
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	go db.lead(g)
}

func (db *DB) runBatch(g *grouper, batch []*groupCall) {
	finish := func(err error) {
		for _, c := range batch {
			if c.err == nil && c.pnc == nil {
				c.err = err
			}
			close(c.done)
		}
	}
	// The transaction outlives any one caller's context; each call's own
	// statements still use its context.
	if g.conn == nil {
		conn, err := db.writer.Conn(context.Background())
		if err != nil {
			finish(fmt.Errorf("%s: writer connection: %w", db.dialect.Name, err))
			return
		}
		g.conn, g.stmts = conn, map[string]*sql.Stmt{}
	}
	t := &tx{ex: g.conn, d: &db.dialect, prep: g.prepared, write: true}
	// First run the whole batch without savepoints (each costs two
	// statements). If a call fails, its error is final; the transaction is
	// rolled back and the rest run again, each in a savepoint. Calls may
	// therefore run twice; Update's contract says fn must have no effects
	// outside its transaction.
	err := db.attempt(t, batch, false)
	if errors.Is(err, errRetry) {
		rest := batch[:0:0]
		for _, c := range batch {
			if c.err == nil && c.pnc == nil {
				rest = append(rest, c)
			}
		}
		err = db.attempt(t, rest, true)
	}
	// A call that lost a race with another writer (a deadlock PostgreSQL
	// broke by aborting it) runs again, in a transaction of its own batch,
	// a few times: the writer it raced has committed or gone on by then.
	for range maxRaceRetries {
		if err != nil || db.dialect.IsRetryable == nil {
			break
		}
		again := batch[:0:0]
		for _, c := range batch {
			if c.pnc == nil && c.err != nil && db.dialect.IsRetryable(c.err) && c.ctx.Err() == nil {
				c.err = nil
				again = append(again, c)
			}
		}
		if len(again) == 0 {
			break
		}
		err = db.attempt(t, again, true)
	}
	failed := err != nil
	for _, c := range batch {
		failed = failed || c.err != nil || c.pnc != nil
	}
	if failed {
		g.checkConn()
	}
	finish(err)
}

// checkConn drops the held connection if it broke (pgx closes a connection
// whose query was cancelled), so that the next group opens a new one.
func (g *grouper) checkConn() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.conn.PingContext(ctx); err == nil {
		return
	}
	for _, st := range g.stmts {
		st.Close()
	}
	_ = g.conn.Close()
	g.conn, g.stmts = nil, nil
}

var errRetry = errors.New("retry with savepoints")

// maxRaceRetries bounds how often a call that lost a race runs again.
const maxRaceRetries = 3

// attempt runs calls in one transaction and commits it. Without savepoints
// it stops at the first failing call, rolls back and returns errRetry.
func (db *DB) attempt(t *tx, calls []*groupCall, savepoints bool) error {
	bg := context.Background()
	rollback := func() { _, _ = t.execQ(bg, "ROLLBACK") }
	if len(calls) == 0 {
		return nil
	}
	if db.dialect.DeferAudit {
		t.deferred = &deferredAudit{}
	}
	t.resetDeferred()
	if _, err := t.execQ(bg, db.dialect.Begin); err != nil {
		return fmt.Errorf("%s: begin: %w", db.dialect.Name, err)
	}
	ok := 0
	for _, c := range calls {
		c.err, c.pnc = nil, nil
		if err := c.ctx.Err(); err != nil {
			c.err = err
			if !savepoints {
				rollback()
				return errRetry
			}
			continue
		}
		if savepoints {
			// Deferred writes of earlier calls go out before the savepoint,
			// so rolling back to it discards only this call's.
			if err := t.flush(bg); err != nil {
				rollback()
				return err
			}
			// Each savepoint is released before the next: one name serves.
			if _, err := t.execQ(c.ctx, "SAVEPOINT g"); err != nil {
				c.err = fmt.Errorf("%s: savepoint: %w", db.dialect.Name, err)
				continue
			}
		}
		c.pnc, c.err = callSafely(c.fn, t)
		failed := c.err != nil || c.pnc != nil
		if !savepoints {
			if failed {
				rollback()
				if len(calls) == 1 {
					return nil // its own error is the answer
				}
				return errRetry
			}
			ok++
			continue
		}
		if failed {
			t.resetDeferred()
			if _, err := t.execQ(bg, "ROLLBACK TO g"); err != nil {
				rollback()
				return fmt.Errorf("%s: rollback to savepoint: %w", db.dialect.Name, err)
			}
		} else {
			ok++
		}
		if _, err := t.execQ(bg, "RELEASE g"); err != nil {
			rollback()
			return fmt.Errorf("%s: release savepoint: %w", db.dialect.Name, err)
		}
	}
	if ok == 0 {
		rollback()
		return nil
	}
	if err := t.flush(bg); err != nil {
		rollback()
		return err
	}
	if err := db.bumpShared(bg, t); err != nil {
		rollback()
		return err
	}
	_, err := t.execQ(bg, "COMMIT")
	db.stampAfter(t, err)
	if err != nil {
		rollback()
		return fmt.Errorf("%s: commit: %w", db.dialect.Name, err)
	}
	return nil
}

func callSafely(fn func(store.Tx) error, t store.Tx) (pnc any, err error) {
	defer func() {
		if p := recover(); p != nil {
			pnc = p
			err = errors.New("panic")
		}
	}()
	return nil, fn(t)
}
