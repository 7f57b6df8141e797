package sqldb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/custodia-project/custodia/internal/store"
)

// Deferred audit writes. Under group commit a transaction numbers audit
// entries itself and writes them, with their tree hashes and the logs'
// new sizes, as a few multi-row statements just before COMMIT instead of
// three statements per entry. It reads a log's size once, locking the
// log's row until commit where other writers exist (PostgreSQL nodes), so
// numbering stays dense and in commit order. Any read of the audit tables
// inside the transaction flushes first, so reads always see the
// transaction's own appends.
//
// With Dialect.NumberAtCommit (PostgreSQL) entries are numbered only at
// flush, and their tree hashes computed then (AppendAudit's then): one
// statement per log reserves the entries' places and locks the log's row,
// from there to the commit only, so a node's several writers, and other
// nodes, wait on each other only while committing.
//
// New leases (one per robot fetch, beside its audit entry) are deferred
// the same way: every statement on the leases table flushes first. A
// lease's ID is random, so its insert cannot conflict at flush time.

type deferredAudit struct {
	sizes  map[string]int64 // next seq per log touched in this transaction
	events []store.AuditEvent
	hashes []hashRow
	leases []store.Lease
	// late are entries not numbered yet (Dialect.NumberAtCommit), in
	// append order.
	late []lateEntry
}

type lateEntry struct {
	e    *store.AuditEvent
	then func(*store.AuditEvent) error
}

type hashRow struct {
	log  string
	idx  int64
	hash []byte
}

// flushEvery bounds how much a transaction holds before writing.
const flushEvery = 512

// resetDeferred forgets everything deferred and cached (after a rollback):
// the sizes known afterwards are the stored ones.
func (t *tx) resetDeferred() {
	if t.deferred != nil {
		t.deferred = &deferredAudit{}
	}
	t.hashes = nil
}

func (t *tx) appendDeferred(ctx context.Context, e *store.AuditEvent, then func(*store.AuditEvent) error) error {
	d := t.deferred
	if t.d.NumberAtCommit {
		d.late = append(d.late, lateEntry{e, then})
		if len(d.late) >= flushEvery {
			return t.flush(ctx)
		}
		return nil
	}
	if err := t.number(ctx, e); err != nil {
		return err
	}
	if then != nil {
		if err := then(e); err != nil {
			return err
		}
	}
	if len(d.events) >= flushEvery {
		return t.flush(ctx)
	}
	return nil
}

// number gives e the next place in its log and queues it for writing.
func (t *tx) number(ctx context.Context, e *store.AuditEvent) error {
	d := t.deferred
	size, err := t.logSize(ctx, e.LogID)
	if err != nil {
		return err
	}
	e.Seq = size
	d.sizes[e.LogID] = size + 1
	d.events = append(d.events, *e)
	return nil
}

// logSize is the next seq of log in this transaction. The first time it
// reads the log's size, locking the log's row until commit where other
// writers exist.
func (t *tx) logSize(ctx context.Context, log string) (int64, error) {
	d := t.deferred
	if size, ok := d.sizes[log]; ok {
		return size, nil
	}
	if t.d.LockRows != "" {
		// The row must exist to be locked: two writers appending the
		// log's first entry then queue on it like any other.
		if _, err := t.exec(ctx, "append audit", `INSERT INTO audit_logs (log_id, size) VALUES ($1, 0) ON CONFLICT (log_id) DO NOTHING`,
			log); err != nil {
			return 0, err
		}
	}
	var size int64
	if err := t.queryRow(ctx, `SELECT size FROM audit_logs WHERE log_id = $1`+t.d.LockRows, log).Scan(&size); err != nil {
		if err := t.wrap("append audit", err); !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
		size = 0
	}
	if d.sizes == nil {
		d.sizes = map[string]int64{}
	}
	d.sizes[log] = size
	return size, nil
}

// numberLate numbers the entries appended since the last flush
// (NumberAtCommit) and runs each entry's then, in append order. It locks
// the logs' rows first, in log order, so that two writers never wait on
// each other's locks in a cycle. It is flush's first step.
func (t *tx) numberLate(ctx context.Context) error {
	d := t.deferred
	if len(d.late) == 0 {
		return nil
	}
	late := d.late
	d.late = nil
	counts := map[string]int64{}
	var logs []string
	for _, l := range late {
		if counts[l.e.LogID] == 0 {
			logs = append(logs, l.e.LogID)
		}
		counts[l.e.LogID]++
	}
	slices.Sort(logs)
	if d.sizes == nil {
		d.sizes = map[string]int64{}
	}
	for _, log := range logs {
		// One statement locks the log's row until commit and reserves
		// the entries' places: the stored size is then already the new
		// one (flush does not write it again).
		var size int64
		err := t.queryRow(ctx, `INSERT INTO audit_logs (log_id, size) VALUES ($1, $2)
			ON CONFLICT (log_id) DO UPDATE SET size = audit_logs.size + excluded.size RETURNING size`, log, counts[log]).Scan(&size)
		if err != nil {
			return t.wrap("append audit", err)
		}
		d.sizes[log] = size - counts[log]
	}
	t.numbering = true
	defer func() { t.numbering = false }()
	for _, l := range late {
		if err := t.number(ctx, l.e); err != nil {
			return err
		}
		if l.then != nil {
			if err := l.then(l.e); err != nil {
				return err
			}
		}
	}
	return nil
}

// numberPending numbers late entries before a read of the audit log
// (other than then's own reads of tree hashes, while numbering).
func (t *tx) numberPending(ctx context.Context) error {
	if t.deferred == nil || len(t.deferred.late) == 0 || t.numbering {
		return nil
	}
	return t.flush(ctx)
}

// insertLeaseDeferred holds l until the next flush.
func (t *tx) insertLeaseDeferred(ctx context.Context, l *store.Lease) error {
	d := t.deferred
	d.leases = append(d.leases, *l)
	if len(d.leases) >= flushEvery {
		return t.flush(ctx)
	}
	return nil
}

// flush writes what is deferred. It is a no-op for engines that do not
// defer.
func (t *tx) flush(ctx context.Context) error {
	d := t.deferred
	if d == nil || (len(d.events) == 0 && len(d.hashes) == 0 && len(d.sizes) == 0 && len(d.leases) == 0 && len(d.late) == 0) {
		return nil
	}
	if t.numbering {
		panic("sqldb: an audit entry's then read the audit log")
	}
	if err := t.numberLate(ctx); err != nil {
		return err
	}
	err := insertRows(ctx, t, "insert lease", `INSERT INTO leases (`+leaseCols+`) VALUES `, leaseColCount, "", len(d.leases),
		func(i int, args []any) []any { return leaseArgs(&d.leases[i], args) })
	if err != nil {
		return err
	}
	const eventCols = 12
	err = insertRows(ctx, t, "append audit", `INSERT INTO audit_events (`+auditCols+`) VALUES `, eventCols, ", 0", len(d.events),
		func(i int, args []any) []any {
			e := &d.events[i]
			details := string(e.Details)
			if details == "" {
				details = "{}"
			}
			return append(args, e.LogID, e.Seq, toMicros(e.Time), e.ActorType, e.ActorID, e.Action, e.Target, e.Result,
				e.SourceIP, e.UserAgent, e.RequestID, details)
		})
	if err != nil {
		return err
	}
	err = insertRows(ctx, t, "put audit hashes", `INSERT INTO audit_hashes (log_id, idx, hash) VALUES `, 3, "", len(d.hashes),
		func(i int, args []any) []any {
			h := &d.hashes[i]
			return append(args, h.log, h.idx, h.hash)
		})
	if err != nil {
		return err
	}
	// Where entries are numbered at commit the sizes were stored as they
	// were reserved (numberLate).
	if !t.d.NumberAtCommit {
		for log, size := range d.sizes {
			if _, err := t.exec(ctx, "append audit",
				`INSERT INTO audit_logs (log_id, size) VALUES ($1, $2) ON CONFLICT (log_id) DO UPDATE SET size = excluded.size`,
				log, size); err != nil {
				return err
			}
		}
	}
	// Sizes stay known; they are now also the stored ones.
	t.deferred = &deferredAudit{sizes: d.sizes}
	return nil
}

// rowsPerInsert is the largest row count of a multi-row insert unless the
// dialect sets its own (Dialect.RowsPerInsert). Row counts are taken from
// a few fixed sizes, so that few statement texts, each kept prepared, do
// (with Dialect.ExactInserts the rest is one statement of any size).
const rowsPerInsert = 32

// insertSizes are the row counts insertRows uses below the largest.
var insertSizes = []int{8, 4, 2, 1}

// insertRows inserts n rows, as few statements as the fixed sizes allow.
func insertRows(ctx context.Context, t *tx, op, prefix string, cols int, extra string, n int, row func(i int, args []any) []any) error {
	stmt := func(rows int) string {
		var b strings.Builder
		b.WriteString(prefix)
		for r := range rows {
			if r > 0 {
				b.WriteString(", ")
			}
			placeholders(&b, r*cols, cols, extra, t.d.BareParams)
		}
		return b.String()
	}
	most := t.d.RowsPerInsert
	if most <= 0 {
		most = rowsPerInsert
	}
	sizes := append([]int{most}, insertSizes...)
	if t.d.ExactInserts && n%most != 0 {
		sizes = []int{most, n % most} // the rest in one statement
	}
	args := make([]any, 0, cols*most)
	i := 0
	for _, size := range sizes {
		if size > most {
			continue
		}
		q := ""
		for ; i+size <= n; i += size {
			if q == "" {
				q = stmt(size)
			}
			args = args[:0]
			for r := range size {
				args = row(i+r, args)
			}
			if _, err := t.exec(ctx, op, q, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// placeholders writes "($n+1, ..., $n+k<extra>)", or "(?, ..., ?<extra>)"
// when bare.
func placeholders(b *strings.Builder, n, k int, extra string, bare bool) {
	b.WriteByte('(')
	for j := 1; j <= k; j++ {
		if j > 1 {
			b.WriteString(", ")
		}
		if bare {
			b.WriteByte('?')
		} else {
			fmt.Fprintf(b, "$%d", n+j)
		}
	}
	b.WriteString(extra)
	b.WriteByte(')')
}
