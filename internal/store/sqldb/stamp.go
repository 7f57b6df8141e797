package sqldb

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

// Change stamps. Every committed transaction that wrote a table outside
// stampExempt moves the stamp before its callers return, so a value read
// from the database while the stamp was S is still current for as long as
// the stamp is S (store.Stamper). Which tables a transaction wrote is read
// off its statements' text, so no write method can forget to say so; a
// statement that is not plainly an INSERT, UPDATE or DELETE of a named
// table counts as a write to all.
//
// SoleWriter engines (SQLite) keep the stamp in memory: this process sees
// every change. SharedStamp engines (PostgreSQL, written by several nodes)
// keep it in the database's change_stamp row, which such a transaction
// increments just before its COMMIT; the row lock orders those commits,
// and the new value is visible exactly when the change is. DB.stamp is
// then the newest value this process has seen, a value cached under it is
// served only provisionally, and ConfirmStamp checks it against the row
// (store.Confirmer).

// Two stamps move. The whole stamp (Stamp) moves on a change to any table
// outside stampExempt; the access stamp (AccessStamp) only on a change to
// a table outside stampExempt and vaultTables. Authentication and tenant
// lookups read none of vaultTables, so their caches keep to the access
// stamp and stay warm while credentials are written. SharedStamp engines
// keep one stamp, which serves as both.

// moves says which stamps a statement or transaction moves.
type moves uint8

const (
	movesWhole  moves = 1 << iota // Stamp
	movesAccess                   // AccessStamp
	movesBoth   = movesWhole | movesAccess
)

// vaultTables are the credential vault's own: credentials, their versions
// and the sealed records (credential secrets, share links, members' second
// factors, SSO client secrets). No cache over the access stamp may read
// them; TestAccessStampSpansAuthentication checks that authentication
// reads none. Nothing may cascade from them into other tables (no ON
// DELETE CASCADE, no trigger): a statement is classed by the table it
// names.
var vaultTables = map[string]bool{
	"credentials":         true,
	"credential_versions": true,
	"records":             true,
}

// stampExempt are the append-only tables that no cached read depends on:
// a robot's fetch writes only these (and the audit log's signed
// checkpoints follow fetches), so fetches leave caches warm.
var stampExempt = map[string]bool{
	"audit_events":      true,
	"audit_hashes":      true,
	"audit_logs":        true,
	"audit_checkpoints": true,
	"leases":            true,
	"change_stamp":      true,
}

// noteWrite notes which stamps q may move. Reads (View) cannot, and are
// not looked at.
func (t *tx) noteWrite(q string) {
	if t.dirty == movesBoth || !t.write || !(t.d.SoleWriter || t.d.SharedStamp) {
		return
	}
	t.dirty |= writesStamped(q)
}

// writesStamped says which stamps q may move: none for a read or a write
// of a stampExempt table, the whole stamp for a write of a vault table,
// both for anything else.
func writesStamped(q string) moves {
	q = strings.TrimLeft(q, " \t\r\n")
	word := func() string {
		i := strings.IndexAny(q, " \t\r\n(")
		if i < 0 {
			i = len(q)
		}
		w := q[:i]
		q = strings.TrimLeft(q[i:], " \t\r\n")
		return strings.ToUpper(w)
	}
	switch word() {
	case "SELECT", "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE":
		return 0
	case "INSERT":
		if word() != "INTO" {
			return movesBoth
		}
	case "UPDATE":
	case "DELETE":
		if word() != "FROM" {
			return movesBoth
		}
	default:
		return movesBoth
	}
	switch table := strings.ToLower(word()); {
	case stampExempt[table]:
		return 0
	case vaultTables[table]:
		return movesWhole
	}
	return movesBoth
}

// Stamp implements store.Stamper: where the engine is the database's only
// writer (SoleWriter), and where the stamp is shared (SharedStamp) and
// reads go to the database that holds it, not to replicas that may lag
// behind it.
func (db *DB) Stamp() (stamp uint64, ok bool) {
	if !db.dialect.SoleWriter && !db.StampLags() {
		return 0, false
	}
	return db.stamp.Load(), true
}

// AccessStamp implements store.AccessStamper: the access stamp where the
// engine is the database's only writer, else the one stamp.
func (db *DB) AccessStamp() (stamp uint64, ok bool) {
	if !db.dialect.SoleWriter {
		return db.Stamp()
	}
	return db.accessStamp.Load(), true
}

// StampLags implements store.Confirmer: other processes change the
// database (SharedStamp), and this one reads from it rather than from
// replicas.
func (db *DB) StampLags() bool {
	return db.dialect.SharedStamp && len(db.readers) == 1 && db.readers[0] == db.writer
}

// ConfirmStamp implements store.Confirmer: nil if the database's stamp, read
// after the call begins, is stamp. Concurrent calls share one read.
func (db *DB) ConfirmStamp(ctx context.Context, stamp uint64) error {
	if !db.StampLags() {
		return nil
	}
	r := db.stampReads.join(db)
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.err != nil {
		return r.err
	}
	if r.n != stamp {
		return store.ErrStale
	}
	return nil
}

// learn raises the stamp this process has seen to n.
func (db *DB) learn(n uint64) {
	for {
		old := db.stamp.Load()
		if n <= old || db.stamp.CompareAndSwap(old, n) {
			return
		}
	}
}

// bumpShared moves the database's stamp in t, as its last statement before
// COMMIT, if t wrote a stamped table (SharedStamp).
func (db *DB) bumpShared(ctx context.Context, t *tx) error {
	if t.dirty == 0 || !db.dialect.SharedStamp {
		return nil
	}
	var n int64
	if err := t.ex.QueryRowContext(ctx, `UPDATE change_stamp SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&n); err != nil {
		return fmt.Errorf("%s: move the change stamp: %w", db.dialect.Name, err)
	}
	t.bumped = uint64(n)
	return nil
}

// stampAfter moves the stamp this process sees if t wrote a stamped table.
// It runs after COMMIT, with COMMIT's error, and before any caller of the
// transaction returns. A SoleWriter's stamp moves whatever COMMIT returned
// (a failed commit may still have written); a SharedStamp process learns
// the value t moved the database's to only if t surely committed, since a
// value it learned would otherwise vouch for reads made before the change.
func (db *DB) stampAfter(t *tx, commitErr error) {
	if t.dirty == 0 {
		return
	}
	switch {
	case db.dialect.SoleWriter:
		if t.dirty&movesAccess != 0 {
			db.accessStamp.Add(1)
		}
		db.stamp.Add(1)
	case db.dialect.SharedStamp && commitErr == nil && t.bumped != 0:
		db.learn(t.bumped)
	}
	t.dirty, t.bumped = 0, 0
}

// stampReads gathers ConfirmStamp calls: each waits for the next read of
// the database's stamp that begins after it joined, and one read serves
// every call that joined before it began.
type stampReads struct {
	mu      sync.Mutex
	next    *stampRead // the read not begun yet, which callers join
	running bool
}

type stampRead struct {
	done chan struct{}
	n    uint64
	err  error
}

func (s *stampReads) join(db *DB) *stampRead {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == nil {
		s.next = &stampRead{done: make(chan struct{})}
	}
	r := s.next
	if !s.running {
		s.running = true
		go s.run(db)
	}
	return r
}

// run reads the stamp for as long as callers are waiting for a read.
func (s *stampReads) run(db *DB) {
	for {
		s.mu.Lock()
		r := s.next
		s.next = nil
		if r == nil {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var n int64
		if err := db.writer.QueryRowContext(ctx, `SELECT n FROM change_stamp WHERE id = 1`).Scan(&n); err != nil {
			r.err = fmt.Errorf("%s: read the change stamp: %w", db.dialect.Name, err)
		} else {
			r.n = uint64(n)
			db.learn(r.n)
		}
		cancel()
		close(r.done)
	}
}
