// Package sqldb is the SQL shared by Custodia's storage engines. The engines
// (sqlite, postgres) open their connections, describe their dialect and then
// hand both to New; every query here runs unchanged on both, with $N
// placeholders.
//
// It must never interpret what it stores: ciphertexts and hashes are opaque.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

// Dialect is what differs between engines.
type Dialect struct {
	Name string
	// IsUniqueViolation reports whether err is a unique-constraint failure.
	IsUniqueViolation func(error) bool
	// IsRetryable reports whether err only says the transaction lost a
	// race (a deadlock broken by aborting it, a serialization failure):
	// the call is then run again. Nil where writers cannot race.
	IsRetryable func(error) bool
	// BytesType is the column type for byte strings.
	BytesType string
	// WithoutRowID ends CREATE TABLE for tables clustered by primary key.
	WithoutRowID string
	// Begin starts a group-commit transaction on the held connection.
	Begin string
	// DeferAudit numbers audit entries in the transaction and writes them
	// at commit. With one writer (SQLite) nothing else can append; with
	// several (PostgreSQL nodes), LockRows must be set so that the log's
	// row stays locked until commit once read.
	DeferAudit bool
	// NumberAtCommit (with DeferAudit and LockRows) numbers a
	// transaction's audit entries only at commit, so the log's row is
	// locked for the commit alone and several writers can run their
	// transactions side by side (deferred.go).
	NumberAtCommit bool
	// LockRows is appended to a SELECT that must lock the rows it reads
	// until commit (" FOR UPDATE"); "" where the single writer makes it
	// needless.
	LockRows string
	// LockMigrations, when set, takes a lock held until tx ends so that two
	// nodes starting at once do not both migrate.
	LockMigrations func(ctx context.Context, tx *sql.Tx) error
	// PrepareReads keeps read statements prepared on each reader
	// connection (for engines where parsing SQL is a large share of a
	// small query's cost, as in SQLite; pgx caches its own).
	PrepareReads bool
	// AutocommitReads runs View's statements on one connection without
	// BEGIN and COMMIT. Under READ COMMITTED (PostgreSQL's default) each
	// statement of a transaction takes its own snapshot anyway, so a
	// read-only transaction adds two round trips and no guarantee.
	AutocommitReads bool
	// SoleWriter: this process is the database's only writer (SQLite's
	// data directory is locked), so DB.Stamp can promise to see every
	// change.
	SoleWriter bool
	// SharedStamp: other processes write the database too (PostgreSQL
	// nodes), so the change stamp lives in it (the change_stamp row, moved
	// by every transaction that changed a stamped table, just before its
	// COMMIT); DB.Stamp is then the newest this process has seen, and a
	// value cached under it must be confirmed (store.Confirmer).
	SharedStamp bool
	// RowsPerInsert bounds the rows of one multi-row insert (default 32).
	RowsPerInsert int
	// BareParams writes a multi-row insert's parameters as bare "?",
	// bound by position, instead of "$1", "$2"...: modernc's SQLite looks
	// every numbered or named parameter up by name when binding, a cost
	// that grows with the square of a statement's parameters.
	BareParams bool
	// ExactInserts writes the rows left over after full multi-row inserts
	// in one statement of exactly that many rows, rather than in the fixed
	// sizes 8, 4, 2, 1: for engines whose driver keeps many statements
	// prepared (pgx), where each statement is a round trip.
	ExactInserts bool
}

// DB implements store.Store over a writer and a reader pool, which may be
// the same *sql.DB.
type DB struct {
	writer  *sql.DB
	readers []*sql.DB
	next    atomic.Uint64
	dialect Dialect
	closers []func() error
	// groups are the group-commit writers (EnableGroupCommit).
	groups []*grouper
	// stmts are read statements prepared on the reader pools, by pool
	// and query (PrepareReads).
	stmts  sync.Map // stmtKey -> *sql.Stmt or preparing
	nstmt  atomic.Int64
	bg     sync.WaitGroup // statements being prepared
	bgMu   sync.Mutex     // orders bg.Add before Close's bg.Wait
	closed bool
	// stamp counts committed writes to stamped tables, or with
	// SharedStamp is the newest database stamp seen (stamp.go).
	stamp atomic.Uint64
	// accessStamp counts committed writes to stamped tables other than
	// the vault's (SoleWriter; stamp.go).
	accessStamp atomic.Uint64
	// stampReads gathers concurrent confirmations into shared reads of
	// the database's stamp (SharedStamp).
	stampReads stampReads
}

type stmtKey struct {
	pool *sql.DB
	q    string
}

// readStmt returns pool's prepared statement for q, or nil to run q
// unprepared this time (the cache is full, preparing failed, or q is being
// prepared). It never waits for a connection: the caller holds one of the
// pool's connections already, and preparing on the pool needs another, so
// with every connection held by a transaction that is preparing, waiting
// would deadlock. The first use of q therefore starts preparing it in the
// background; later uses find it ready.
func (db *DB) readStmt(pool *sql.DB, q string) *sql.Stmt {
	k := stmtKey{pool, q}
	if v, ok := db.stmts.Load(k); ok {
		st, _ := v.(*sql.Stmt) // nil while preparing, or after a failure
		return st
	}
	if db.nstmt.Load() >= maxStmts {
		return nil
	}
	if _, loaded := db.stmts.LoadOrStore(k, preparing{}); loaded {
		return nil
	}
	db.nstmt.Add(1)
	db.bgMu.Lock()
	defer db.bgMu.Unlock()
	if db.closed {
		return nil
	}
	db.bg.Add(1)
	go func() {
		defer db.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := pool.PrepareContext(ctx, q)
		if err != nil {
			return // the marker stays: q runs unprepared from now on
		}
		db.stmts.Store(k, st)
	}()
	return nil
}

// preparing marks a read statement being prepared, or one that could not
// be.
type preparing struct{}

// executor is what a transaction runs statements on: a *sql.Tx, or the
// group-commit writer connection inside an explicit BEGIN.
type executor interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var _ store.Store = (*DB)(nil)

// New wraps open connections: one writer and any number of read pools
// (replicas), used in turn; with none, reads go to the writer. closers run
// on Close, in order.
func New(writer *sql.DB, readers []*sql.DB, d Dialect, closers ...func() error) *DB {
	if len(readers) == 0 {
		readers = []*sql.DB{writer}
	}
	return &DB{writer: writer, readers: readers, dialect: d, closers: closers}
}

// AddCloser adds fn to what Close runs, after the connections are closed.
func (db *DB) AddCloser(fn func() error) { db.closers = append(db.closers, fn) }

func (db *DB) reader() *sql.DB {
	if len(db.readers) == 1 {
		return db.readers[0]
	}
	return db.readers[db.next.Add(1)%uint64(len(db.readers))]
}

func (db *DB) Engine() string { return db.dialect.Name }

// Writer exposes the writer pool to the engine's own tests.
func (db *DB) Writer() *sql.DB { return db.writer }

func (db *DB) Ping(ctx context.Context) error {
	if err := db.writer.PingContext(ctx); err != nil {
		return fmt.Errorf("%s: ping: %w", db.dialect.Name, err)
	}
	for i, r := range db.readers {
		if r == db.writer {
			continue
		}
		if err := r.PingContext(ctx); err != nil {
			return fmt.Errorf("%s: ping reader %d: %w", db.dialect.Name, i, err)
		}
	}
	return nil
}

func (db *DB) Close() error {
	var errs []error
	db.bgMu.Lock()
	db.closed = true
	db.bgMu.Unlock()
	db.bg.Wait()
	db.stmts.Range(func(k, v any) bool {
		if st, ok := v.(*sql.Stmt); ok {
			errs = append(errs, st.Close())
		}
		db.stmts.Delete(k)
		return true
	})
	for _, g := range db.groups {
		errs = append(errs, g.close())
	}
	for _, c := range db.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

func (db *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	// What the caller's request was served from caches provisionally is
	// confirmed before it can have an effect (store.Confirm).
	if err := store.ConfirmReads(ctx, db); err != nil {
		return err
	}
	if len(db.groups) > 0 {
		return db.updateGrouped(ctx, fn)
	}
	return db.run(ctx, db.writer, false, fn)
}

func (db *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	return db.run(ctx, db.reader(), true, fn)
}

func (db *DB) run(ctx context.Context, pool *sql.DB, readOnly bool, fn func(store.Tx) error) (err error) {
	if readOnly && db.dialect.AutocommitReads {
		conn, err := pool.Conn(ctx)
		if err != nil {
			return fmt.Errorf("%s: reader connection: %w", db.dialect.Name, err)
		}
		defer conn.Close()
		return fn(&tx{ex: conn, d: &db.dialect, readOnly: true})
	}
	sqlTx, err := pool.BeginTx(ctx, &sql.TxOptions{ReadOnly: readOnly})
	if err != nil {
		return fmt.Errorf("%s: begin: %w", db.dialect.Name, err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = sqlTx.Rollback()
			panic(p)
		}
	}()
	t := &tx{ex: sqlTx, d: &db.dialect, write: !readOnly}
	if readOnly && db.dialect.PrepareReads {
		t.prep = func(ctx context.Context, q string) *sql.Stmt {
			if st := db.readStmt(pool, q); st != nil {
				return sqlTx.StmtContext(ctx, st)
			}
			return nil
		}
	}
	if err := fn(t); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := db.bumpShared(ctx, t); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	err = sqlTx.Commit()
	db.stampAfter(t, err)
	if err != nil {
		return fmt.Errorf("%s: commit: %w", db.dialect.Name, err)
	}
	return nil
}

// tx implements store.Tx.
type tx struct {
	ex executor
	d  *Dialect
	// readOnly marks a read run outside a transaction (AutocommitReads):
	// a statement that is not a SELECT is a programming error.
	readOnly bool
	// prep, when set, returns a prepared statement for a query (nil to run
	// it unprepared).
	prep func(ctx context.Context, q string) *sql.Stmt
	// hashes caches audit tree hashes read or written in this transaction
	// (appending reads the tree's right edge, which the previous append
	// wrote). It must be dropped whenever work in the transaction is
	// rolled back.
	hashes map[string]map[int64][]byte
	// deferred, when set, holds audit writes until the next flush.
	deferred *deferredAudit
	// dirty: the stamps this transaction's statements may move (stamp.go).
	dirty moves
	// bumped is the database stamp this transaction moved to
	// (SharedStamp), learned once it commits.
	bumped uint64
	// write marks a read-write transaction (Update).
	write bool
	// numbering: late audit entries are being numbered (deferred.go).
	numbering bool
}

// lockRows is the dialect's row-locking suffix for a SELECT in a write
// transaction, and "" in a read.
func (t *tx) lockRows() string {
	if t.write {
		return t.d.LockRows
	}
	return ""
}

func (t *tx) cacheHash(logID string, idx int64, h []byte) {
	if t.hashes == nil {
		t.hashes = map[string]map[int64][]byte{}
	}
	m := t.hashes[logID]
	if m == nil {
		m = map[int64][]byte{}
		t.hashes[logID] = m
	}
	m[idx] = h
}

// mustRead refuses, in a read run outside a transaction, any statement but
// a SELECT: a View that writes is a programming error, which a read-only
// transaction would have refused.
func (t *tx) mustRead(q string) {
	if t.readOnly && !strings.HasPrefix(strings.TrimSpace(q), "SELECT") {
		panic(fmt.Sprintf("sqldb: %s: a write in a read-only View: %.60s", t.d.Name, strings.TrimSpace(q)))
	}
}

// execQ runs q; a write that changed no row (an UPDATE or DELETE that
// matched nothing) does not move the change stamp.
func (t *tx) execQ(ctx context.Context, q string, args ...any) (res sql.Result, err error) {
	t.mustRead(q)
	defer func() {
		if err == nil {
			if n, nerr := res.RowsAffected(); nerr == nil && n == 0 {
				return
			}
		}
		t.noteWrite(q)
	}()
	if t.prep != nil {
		if st := t.prep(ctx, q); st != nil {
			return st.ExecContext(ctx, args...)
		}
	}
	return t.ex.ExecContext(ctx, q, args...)
}

func (t *tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	t.mustRead(q)
	t.noteWrite(q)
	if t.prep != nil {
		if st := t.prep(ctx, q); st != nil {
			return st.QueryContext(ctx, args...)
		}
	}
	return t.ex.QueryContext(ctx, q, args...)
}

func (t *tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	t.mustRead(q)
	t.noteWrite(q)
	if t.prep != nil {
		if st := t.prep(ctx, q); st != nil {
			return st.QueryRowContext(ctx, args...)
		}
	}
	return t.ex.QueryRowContext(ctx, q, args...)
}

var _ store.Tx = (*tx)(nil)

func (t *tx) exec(ctx context.Context, op, q string, args ...any) (sql.Result, error) {
	res, err := t.execQ(ctx, q, args...)
	if err != nil {
		return nil, t.wrap(op, err)
	}
	return res, nil
}

func (t *tx) wrap(op string, err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %s: %w", t.d.Name, op, store.ErrNotFound)
	case t.d.IsUniqueViolation(err):
		return fmt.Errorf("%s: %s: %w", t.d.Name, op, store.ErrConflict)
	}
	return fmt.Errorf("%s: %s: %w", t.d.Name, op, err)
}

// mustAffect turns "no row matched" into ErrNotFound.
func (t *tx) mustAffect(op string, res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return t.wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %s: %w", t.d.Name, op, store.ErrNotFound)
	}
	return nil
}

// Times are stored as Unix microseconds; zero time is 0.
func toMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func limitOr(n, def, max int) int {
	if n <= 0 {
		return def
	}
	return min(n, max)
}

// ---- meta ----

func (t *tx) GetMeta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := t.queryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if err != nil {
		return nil, t.wrap("get meta "+key, err)
	}
	return v, nil
}

func (t *tx) PutMeta(ctx context.Context, key string, value []byte) error {
	_, err := t.exec(ctx, "put meta "+key,
		`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

func (t *tx) ListMeta(ctx context.Context, prefix string) (map[string][]byte, error) {
	rows, err := t.query(ctx, `SELECT key, value FROM meta WHERE substr(key, 1, $1) = $2`, len(prefix), prefix)
	if err != nil {
		return nil, t.wrap("list meta", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, t.wrap("list meta", err)
		}
		out[k] = v
	}
	return out, t.wrapNil("list meta", rows.Err())
}

func (t *tx) InsertMeta(ctx context.Context, key string, value []byte) error {
	_, err := t.exec(ctx, "insert meta "+key, `INSERT INTO meta (key, value) VALUES ($1, $2)`, key, value)
	return err
}

// ---- tenants ----

const tenantCols = `id, slug, name, status, created_at, updated_at`

func scanTenant(s interface{ Scan(...any) error }) (store.Tenant, error) {
	var x store.Tenant
	var c, u int64
	err := s.Scan(&x.ID, &x.Slug, &x.Name, &x.Status, &c, &u)
	x.CreatedAt, x.UpdatedAt = fromMicros(c), fromMicros(u)
	return x, err
}

func (t *tx) CreateTenant(ctx context.Context, x *store.Tenant) error {
	_, err := t.exec(ctx, "create tenant",
		`INSERT INTO tenants (`+tenantCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		x.ID, x.Slug, x.Name, x.Status, toMicros(x.CreatedAt), toMicros(x.UpdatedAt))
	return err
}

func (t *tx) getTenant(ctx context.Context, where string, arg string) (*store.Tenant, error) {
	x, err := scanTenant(t.queryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE `+where+` = $1`, arg))
	if err != nil {
		return nil, t.wrap("get tenant", err)
	}
	return &x, nil
}

func (t *tx) GetTenant(ctx context.Context, id string) (*store.Tenant, error) {
	return t.getTenant(ctx, "id", id)
}

func (t *tx) GetTenantBySlug(ctx context.Context, slug string) (*store.Tenant, error) {
	return t.getTenant(ctx, "slug", slug)
}

func (t *tx) ListTenants(ctx context.Context, p store.Page) ([]store.Tenant, error) {
	rows, err := t.query(ctx,
		`SELECT `+tenantCols+` FROM tenants WHERE id > $1 ORDER BY id LIMIT $2`, p.After, limitOr(p.Limit, 100, 1000))
	if err != nil {
		return nil, t.wrap("list tenants", err)
	}
	return collect(t, "list tenants", rows, scanTenant)
}

func (t *tx) SetTenantStatus(ctx context.Context, id, status string, at time.Time) error {
	res, err := t.exec(ctx, "set tenant status",
		`UPDATE tenants SET status = $1, updated_at = $2 WHERE id = $3`, status, toMicros(at), id)
	if err != nil {
		return err
	}
	return t.mustAffect("set tenant status", res)
}

func collect[T any](t *tx, op string, rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		x, err := scan(rows)
		if err != nil {
			return nil, t.wrap(op, err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, t.wrap(op, err)
	}
	return out, nil
}

// ---- tenant keys ----

const keyCols = `tenant_id, version, state, wrapped_key, root_generation, hpke_public, hpke_private, created_at, destroyed_at`

func scanKey(s interface{ Scan(...any) error }) (store.TenantKey, error) {
	var k store.TenantKey
	var c, d int64
	err := s.Scan(&k.TenantID, &k.Version, &k.State, &k.Wrapped, &k.RootGeneration, &k.HPKEPublic, &k.HPKEPrivate, &c, &d)
	k.CreatedAt, k.DestroyedAt = fromMicros(c), fromMicros(d)
	return k, err
}

func (t *tx) InsertTenantKey(ctx context.Context, k *store.TenantKey) error {
	_, err := t.exec(ctx, "insert tenant key",
		`INSERT INTO tenant_keys (`+keyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		k.TenantID, k.Version, k.State, k.Wrapped, k.RootGeneration, k.HPKEPublic, k.HPKEPrivate,
		toMicros(k.CreatedAt), toMicros(k.DestroyedAt))
	return err
}

func (t *tx) ListTenantKeys(ctx context.Context, tenantID string) ([]store.TenantKey, error) {
	rows, err := t.query(ctx,
		`SELECT `+keyCols+` FROM tenant_keys WHERE tenant_id = $1 ORDER BY version`, tenantID)
	if err != nil {
		return nil, t.wrap("list tenant keys", err)
	}
	return collect(t, "list tenant keys", rows, scanKey)
}

func (t *tx) ListLiveTenantKeys(ctx context.Context) ([]store.TenantKey, error) {
	rows, err := t.query(ctx,
		`SELECT `+keyCols+` FROM tenant_keys WHERE wrapped_key IS NOT NULL ORDER BY tenant_id, version`)
	if err != nil {
		return nil, t.wrap("list live tenant keys", err)
	}
	return collect(t, "list live tenant keys", rows, scanKey)
}

func (t *tx) SetTenantKeyState(ctx context.Context, tenantID string, version int, state string) error {
	res, err := t.exec(ctx, "set tenant key state",
		`UPDATE tenant_keys SET state = $1 WHERE tenant_id = $2 AND version = $3 AND wrapped_key IS NOT NULL`,
		state, tenantID, version)
	if err != nil {
		return err
	}
	return t.mustAffect("set tenant key state", res)
}

func (t *tx) RewrapTenantKey(ctx context.Context, tenantID string, version int, wrapped []byte, gen int) error {
	res, err := t.exec(ctx, "rewrap tenant key",
		`UPDATE tenant_keys SET wrapped_key = $1, root_generation = $2
		 WHERE tenant_id = $3 AND version = $4 AND wrapped_key IS NOT NULL`, wrapped, gen, tenantID, version)
	if err != nil {
		return err
	}
	return t.mustAffect("rewrap tenant key", res)
}

func (t *tx) DestroyTenantKeys(ctx context.Context, tenantID string, at time.Time) error {
	_, err := t.exec(ctx, "destroy tenant keys",
		`UPDATE tenant_keys SET state = $1, wrapped_key = NULL, hpke_private = NULL, destroyed_at = $2
		 WHERE tenant_id = $3 AND wrapped_key IS NOT NULL`, store.KeyDestroyed, toMicros(at), tenantID)
	return err
}

// ---- records ----

const recordCols = `tenant_id, kind, id, key_version, ciphertext, created_at, updated_at`

func scanRecord(s interface{ Scan(...any) error }) (store.Record, error) {
	var r store.Record
	var c, u int64
	err := s.Scan(&r.TenantID, &r.Kind, &r.ID, &r.KeyVersion, &r.Ciphertext, &c, &u)
	r.CreatedAt, r.UpdatedAt = fromMicros(c), fromMicros(u)
	return r, err
}

func (t *tx) PutRecord(ctx context.Context, r *store.Record) error {
	_, err := t.exec(ctx, "put record",
		`INSERT INTO records (`+recordCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		 ON CONFLICT (tenant_id, kind, id) DO UPDATE SET
		   key_version = excluded.key_version, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
		r.TenantID, r.Kind, r.ID, r.KeyVersion, r.Ciphertext, toMicros(r.CreatedAt), toMicros(r.UpdatedAt))
	return err
}

func (t *tx) GetRecord(ctx context.Context, tenantID, kind, id string) (*store.Record, error) {
	r, err := scanRecord(t.queryRow(ctx,
		`SELECT `+recordCols+` FROM records WHERE tenant_id = $1 AND kind = $2 AND id = $3`, tenantID, kind, id))
	if err != nil {
		return nil, t.wrap("get record", err)
	}
	return &r, nil
}

func (t *tx) DeleteRecord(ctx context.Context, tenantID, kind, id string) error {
	res, err := t.exec(ctx, "delete record",
		`DELETE FROM records WHERE tenant_id = $1 AND kind = $2 AND id = $3`, tenantID, kind, id)
	if err != nil {
		return err
	}
	return t.mustAffect("delete record", res)
}

func (t *tx) ListRecordsBelowVersion(ctx context.Context, tenantID string, version, limit int) ([]store.Record, error) {
	rows, err := t.query(ctx,
		`SELECT `+recordCols+` FROM records WHERE tenant_id = $1 AND key_version < $2
		 ORDER BY kind, id LIMIT $3`, tenantID, version, limitOr(limit, 100, 10000))
	if err != nil {
		return nil, t.wrap("list records below version", err)
	}
	return collect(t, "list records below version", rows, scanRecord)
}

func (t *tx) CountRecordsByVersion(ctx context.Context, tenantID string) (map[int]int64, error) {
	rows, err := t.query(ctx,
		`SELECT key_version, COUNT(*) FROM records WHERE tenant_id = $1 GROUP BY key_version`, tenantID)
	if err != nil {
		return nil, t.wrap("count records", err)
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var v int
		var n int64
		if err := rows.Scan(&v, &n); err != nil {
			return nil, t.wrap("count records", err)
		}
		out[v] = n
	}
	return out, t.wrapNil("count records", rows.Err())
}

func (t *tx) wrapNil(op string, err error) error {
	if err == nil {
		return nil
	}
	return t.wrap(op, err)
}

func (t *tx) UpdateRecordCiphertext(ctx context.Context, r *store.Record, fromVersion int) (bool, error) {
	res, err := t.exec(ctx, "update record ciphertext",
		`UPDATE records SET key_version = $1, ciphertext = $2
		 WHERE tenant_id = $3 AND kind = $4 AND id = $5 AND key_version = $6`,
		r.KeyVersion, r.Ciphertext, r.TenantID, r.Kind, r.ID, fromVersion)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, t.wrap("update record ciphertext", err)
	}
	return n == 1, nil
}

// ---- operator tokens ----

const tokenCols = `id, name, token_hash, created_at, expires_at, revoked_at, last_used_at`

func scanToken(s interface{ Scan(...any) error }) (store.OperatorToken, error) {
	var x store.OperatorToken
	var c, e, r, l int64
	err := s.Scan(&x.ID, &x.Name, &x.Hash, &c, &e, &r, &l)
	x.CreatedAt, x.ExpiresAt, x.RevokedAt, x.LastUsedAt = fromMicros(c), fromMicros(e), fromMicros(r), fromMicros(l)
	return x, err
}

func (t *tx) InsertOperatorToken(ctx context.Context, x *store.OperatorToken) error {
	_, err := t.exec(ctx, "insert operator token",
		`INSERT INTO operator_tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		x.ID, x.Name, x.Hash, toMicros(x.CreatedAt), toMicros(x.ExpiresAt), toMicros(x.RevokedAt), toMicros(x.LastUsedAt))
	return err
}

func (t *tx) GetOperatorTokenByHash(ctx context.Context, hash []byte) (*store.OperatorToken, error) {
	x, err := scanToken(t.queryRow(ctx,
		`SELECT `+tokenCols+` FROM operator_tokens WHERE token_hash = $1`, hash))
	if err != nil {
		return nil, t.wrap("get operator token", err)
	}
	return &x, nil
}

func (t *tx) ListOperatorTokens(ctx context.Context) ([]store.OperatorToken, error) {
	rows, err := t.query(ctx, `SELECT `+tokenCols+` FROM operator_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, t.wrap("list operator tokens", err)
	}
	return collect(t, "list operator tokens", rows, scanToken)
}

func (t *tx) RevokeOperatorToken(ctx context.Context, id string, at time.Time) error {
	res, err := t.exec(ctx, "revoke operator token",
		`UPDATE operator_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, toMicros(at), id)
	if err != nil {
		return err
	}
	return t.mustAffect("revoke operator token", res)
}

// ---- audit ----

const auditCols = `log_id, seq, at, actor_type, actor_id, action, target, result, source_ip, user_agent, request_id, details, pruned`

func scanAudit(s interface{ Scan(...any) error }) (store.AuditEvent, error) {
	var e store.AuditEvent
	var at int64
	var details string
	var pruned int
	err := s.Scan(&e.LogID, &e.Seq, &at, &e.ActorType, &e.ActorID, &e.Action, &e.Target, &e.Result,
		&e.SourceIP, &e.UserAgent, &e.RequestID, &details, &pruned)
	e.Time, e.Pruned = fromMicros(at), pruned != 0
	e.Details = []byte(details)
	return e, err
}

func (t *tx) AppendAudit(ctx context.Context, e *store.AuditEvent, then func(*store.AuditEvent) error) error {
	if t.deferred != nil {
		return t.appendDeferred(ctx, e, then)
	}
	if err := t.appendNow(ctx, e); err != nil {
		return err
	}
	if then != nil {
		return then(e)
	}
	return nil
}

func (t *tx) appendNow(ctx context.Context, e *store.AuditEvent) error {
	// The upsert takes the log's row lock until commit, so sequence numbers
	// are dense and ordered by commit even with concurrent writers.
	var size int64
	err := t.queryRow(ctx,
		`INSERT INTO audit_logs (log_id, size) VALUES ($1, 1)
		 ON CONFLICT (log_id) DO UPDATE SET size = audit_logs.size + 1
		 RETURNING size`, e.LogID).Scan(&size)
	if err != nil {
		return t.wrap("append audit", err)
	}
	e.Seq = size - 1
	details := string(e.Details)
	if details == "" {
		details = "{}"
	}
	_, err = t.exec(ctx, "append audit",
		`INSERT INTO audit_events (`+auditCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0)`,
		e.LogID, e.Seq, toMicros(e.Time), e.ActorType, e.ActorID, e.Action, e.Target, e.Result,
		e.SourceIP, e.UserAgent, e.RequestID, details)
	return err
}

func (t *tx) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	q := `SELECT ` + auditCols + ` FROM audit_events WHERE log_id = $1 AND seq > $2`
	args := []any{f.LogID, f.AfterSeq}
	add := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(" AND %s $%d", cond, len(args))
	}
	if f.Action != "" {
		add("action =", f.Action)
	}
	if f.ActorID != "" {
		add("actor_id =", f.ActorID)
	}
	if f.Target != "" {
		add("target =", f.Target)
	}
	if !f.Since.IsZero() {
		add("at >=", toMicros(f.Since))
	}
	if !f.Until.IsZero() {
		add("at <", toMicros(f.Until))
	}
	args = append(args, limitOr(f.Limit, 100, 10000))
	q += fmt.Sprintf(" ORDER BY seq LIMIT $%d", len(args))
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, t.wrap("list audit", err)
	}
	return collect(t, "list audit", rows, scanAudit)
}

func (t *tx) AuditSize(ctx context.Context, logID string) (int64, error) {
	if err := t.numberPending(ctx); err != nil {
		return 0, err
	}
	if t.deferred != nil {
		if n, ok := t.deferred.sizes[logID]; ok {
			return n, nil
		}
	}
	var n int64
	err := t.queryRow(ctx, `SELECT size FROM audit_logs WHERE log_id = $1`, logID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, t.wrap("audit size", err)
	}
	return n, nil
}

// ---- jobs ----

const jobCols = `id, kind, tenant_id, state, total, done, error, created_at, updated_at`

func scanJob(s interface{ Scan(...any) error }) (store.Job, error) {
	var j store.Job
	var c, u int64
	err := s.Scan(&j.ID, &j.Kind, &j.TenantID, &j.State, &j.Total, &j.Done, &j.Error, &c, &u)
	j.CreatedAt, j.UpdatedAt = fromMicros(c), fromMicros(u)
	return j, err
}

func (t *tx) InsertJob(ctx context.Context, j *store.Job) error {
	_, err := t.exec(ctx, "insert job",
		`INSERT INTO jobs (`+jobCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		j.ID, j.Kind, j.TenantID, j.State, j.Total, j.Done, j.Error, toMicros(j.CreatedAt), toMicros(j.UpdatedAt))
	return err
}

func (t *tx) UpdateJob(ctx context.Context, j *store.Job) error {
	res, err := t.exec(ctx, "update job",
		`UPDATE jobs SET state = $1, total = $2, done = $3, error = $4, updated_at = $5 WHERE id = $6`,
		j.State, j.Total, j.Done, j.Error, toMicros(j.UpdatedAt), j.ID)
	if err != nil {
		return err
	}
	return t.mustAffect("update job", res)
}

func (t *tx) GetJob(ctx context.Context, id string) (*store.Job, error) {
	j, err := scanJob(t.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`, id))
	if err != nil {
		return nil, t.wrap("get job", err)
	}
	return &j, nil
}

func (t *tx) ListJobs(ctx context.Context, tenantID string, limit int) ([]store.Job, error) {
	q := `SELECT ` + jobCols + ` FROM jobs`
	args := []any{}
	if tenantID != "" {
		q += ` WHERE tenant_id = $1`
		args = append(args, tenantID)
	}
	args = append(args, limitOr(limit, 50, 1000))
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT $%d`, len(args))
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, t.wrap("list jobs", err)
	}
	return collect(t, "list jobs", rows, scanJob)
}

func (t *tx) ReadAuditHashes(ctx context.Context, logID string, idx []int64) ([][]byte, error) {
	if err := t.numberPending(ctx); err != nil {
		return nil, err
	}
	out := make([][]byte, len(idx))
	// Hashes this transaction wrote or read are cached, and deferred ones
	// are always there, so only misses go to the database.
	cached := t.hashes[logID]
	pos := make(map[int64][]int, len(idx))
	var b strings.Builder
	args := []any{logID}
	for i, x := range idx {
		if h := cached[x]; h != nil {
			out[i] = h
			continue
		}
		if _, dup := pos[x]; !dup {
			args = append(args, x)
			if len(args) > 2 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", len(args))
		}
		pos[x] = append(pos[x], i)
	}
	if len(pos) == 0 {
		return out, nil
	}
	rows, err := t.query(ctx, `SELECT idx, hash FROM audit_hashes WHERE log_id = $1 AND idx IN (`+b.String()+`)`, args...)
	if err != nil {
		return nil, t.wrap("read audit hashes", err)
	}
	defer rows.Close()
	for rows.Next() {
		var x int64
		var h []byte
		if err := rows.Scan(&x, &h); err != nil {
			return nil, t.wrap("read audit hashes", err)
		}
		for _, i := range pos[x] {
			out[i] = h
		}
		t.cacheHash(logID, x, h)
	}
	if err := rows.Err(); err != nil {
		return nil, t.wrap("read audit hashes", err)
	}
	for _, h := range out {
		if h == nil {
			return nil, fmt.Errorf("%s: read audit hashes of %s: %w", t.d.Name, logID, store.ErrNotFound)
		}
	}
	return out, nil
}

func (t *tx) PutAuditHashes(ctx context.Context, logID string, start int64, hashes [][]byte) error {
	if len(hashes) == 0 {
		return nil
	}
	if t.deferred != nil {
		for i, h := range hashes {
			t.deferred.hashes = append(t.deferred.hashes, hashRow{logID, start + int64(i), h})
			t.cacheHash(logID, start+int64(i), h)
		}
		return nil
	}
	var b strings.Builder
	args := make([]any, 0, 3*len(hashes))
	for i, h := range hashes {
		if i > 0 {
			b.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&b, "($%d, $%d, $%d)", n+1, n+2, n+3)
		args = append(args, logID, start+int64(i), h)
	}
	_, err := t.exec(ctx, "put audit hashes", `INSERT INTO audit_hashes (log_id, idx, hash) VALUES `+b.String(), args...)
	if err != nil {
		return err
	}
	for i, h := range hashes {
		t.cacheHash(logID, start+int64(i), h)
	}
	return nil
}

func (t *tx) PutAuditCheckpoint(ctx context.Context, c *store.AuditCheckpoint) error {
	_, err := t.exec(ctx, "put audit checkpoint",
		`INSERT INTO audit_checkpoints (log_id, size, root, note, created_at) VALUES ($1, $2, $3, $4, $5)`,
		c.LogID, c.Size, c.Root, c.Note, toMicros(c.CreatedAt))
	return err
}

func scanCheckpoint(s interface{ Scan(...any) error }) (store.AuditCheckpoint, error) {
	var c store.AuditCheckpoint
	var at int64
	err := s.Scan(&c.LogID, &c.Size, &c.Root, &c.Note, &at)
	c.CreatedAt = fromMicros(at)
	return c, err
}

func (t *tx) LatestAuditCheckpoint(ctx context.Context, logID string) (*store.AuditCheckpoint, error) {
	c, err := scanCheckpoint(t.queryRow(ctx,
		`SELECT log_id, size, root, note, created_at FROM audit_checkpoints WHERE log_id = $1 ORDER BY size DESC LIMIT 1`, logID))
	if err != nil {
		return nil, t.wrap("latest audit checkpoint", err)
	}
	return &c, nil
}

func (t *tx) ListAuditCheckpoints(ctx context.Context, logID string, afterSize int64, limit int) ([]store.AuditCheckpoint, error) {
	rows, err := t.query(ctx,
		`SELECT log_id, size, root, note, created_at FROM audit_checkpoints WHERE log_id = $1 AND size > $2 ORDER BY size LIMIT $3`,
		logID, afterSize, limitOr(limit, 100, 100000))
	if err != nil {
		return nil, t.wrap("list audit checkpoints", err)
	}
	return collect(t, "list audit checkpoints", rows, scanCheckpoint)
}

func (t *tx) ListAuditLogs(ctx context.Context) ([]store.AuditLog, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	rows, err := t.query(ctx,
		`SELECT l.log_id, l.size, COALESCE((SELECT MAX(c.size) FROM audit_checkpoints c WHERE c.log_id = l.log_id), 0)
		 FROM audit_logs l ORDER BY l.log_id`)
	if err != nil {
		return nil, t.wrap("list audit logs", err)
	}
	return collect(t, "list audit logs", rows, func(s interface{ Scan(...any) error }) (store.AuditLog, error) {
		var l store.AuditLog
		err := s.Scan(&l.LogID, &l.Size, &l.Checkpointed)
		return l, err
	})
}

func (t *tx) PruneAudit(ctx context.Context, logID string, before time.Time) (int64, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	res, err := t.exec(ctx, "prune audit",
		`UPDATE audit_events SET actor_type = '', actor_id = '', action = '', target = '', result = '',
		   source_ip = '', user_agent = '', request_id = '', details = '{}', pruned = 1
		 WHERE log_id = $1 AND pruned = 0 AND seq < COALESCE(
		   (SELECT MIN(seq) FROM audit_events WHERE log_id = $1 AND at >= $2),
		   (SELECT size FROM audit_logs WHERE log_id = $1), 0)`, logID, toMicros(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, t.wrap("prune audit", err)
	}
	return n, nil
}
