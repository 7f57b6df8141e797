package store

import (
	"context"
	"errors"
	"sync"
)

// Stamper is implemented by engines that can say when a value read from
// them may have gone stale. Stamp returns a number that changes whenever a
// transaction that changed anything other than the append-only audit and
// lease tables commits. ok is false when nothing read now may be cached.
//
// On SQLite, whose data directory one process holds, the stamp moves
// before the changing transaction's Update returns, so a value read under
// the current stamp is current. Engines that other processes write too
// (PostgreSQL nodes sharing a database) are Confirmers: their stamp is the
// newest this process has seen, and a value cached under it is served only
// provisionally (see Confirm).
type Stamper interface {
	Stamp() (stamp uint64, ok bool)
}

// AccessStamper is a Stamper that keeps a second, narrower stamp as well:
// AccessStamp moves whenever a transaction that changed anything but the
// append-only tables and the vault's own (credentials, their versions and
// sealed records) commits. Authentication and tenant lookups read none of
// the vault's tables, so caches of them (NewAccessCache) stay warm while
// credentials are written. An engine that keeps one stamp returns it here
// too, as every Confirmer does.
type AccessStamper interface {
	Stamper
	AccessStamp() (stamp uint64, ok bool)
}

// Confirmer is a Stamper whose stamp may lag other processes' changes.
type Confirmer interface {
	Stamper
	// StampLags reports whether the stamp may lag; when false, Stamp is
	// the whole truth and nothing needs confirming.
	StampLags() bool
	// ConfirmStamp reports whether stamp is still the database's own,
	// from a read that begins after the call does: ErrStale if not.
	ConfirmStamp(ctx context.Context, stamp uint64) error
}

// lags reports whether s is a Confirmer whose stamp may lag.
func lags(s any) (Confirmer, bool) {
	cf, ok := s.(Confirmer)
	return cf, ok && cf.StampLags()
}

// ErrStale: a value served provisionally from a read cache had gone stale
// by the time it was confirmed. The request is to be run again without
// caches (the server does this itself).
var ErrStale = errors.New("store: cached read went stale")

// Confirm collects the stamps of what a request was served provisionally
// from read caches over a Confirmer store. A request that carries one
// (WithConfirm) may be served cached values, and must confirm them
// (ConfirmReads) before any of its effects: every Update of a Confirmer
// store confirms first, and the server confirms a request that ends in an
// error before answering it. Without a Confirm in the context, caches over
// a Confirmer serve nothing.
type Confirm struct {
	mu    sync.Mutex
	used  bool   // something was served and not confirmed since
	stamp uint64 // what it was read under
	mixed bool   // served under two stamps: it cannot all be current
}

type confirmKey struct{}

// WithConfirm returns ctx carrying a new Confirm: its request may be served
// cached values that it confirms before acting on them.
func WithConfirm(ctx context.Context) context.Context {
	return context.WithValue(ctx, confirmKey{}, &Confirm{})
}

// ConfirmFrom returns ctx's Confirm, or nil.
func ConfirmFrom(ctx context.Context) *Confirm {
	c, _ := ctx.Value(confirmKey{}).(*Confirm)
	return c
}

// note records that a value filed under stamp was served.
func (c *Confirm) note(stamp uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used && c.stamp != stamp {
		c.mixed = true
	}
	c.used, c.stamp = true, stamp
}

// ConfirmReads confirms what ctx's request was served provisionally from
// caches over s: nil if nothing was, or if the database's stamp is still
// the one it was read under; ErrStale otherwise (and for good: a stale
// request stays stale). Engines call it before every Update.
func ConfirmReads(ctx context.Context, s Store) error {
	c := ConfirmFrom(ctx)
	cf, ok := lags(s)
	if c == nil || !ok {
		return nil
	}
	c.mu.Lock()
	used, stamp, mixed := c.used, c.stamp, c.mixed
	c.mu.Unlock()
	switch {
	case !used:
		return nil
	case mixed:
		return ErrStale
	}
	if err := cf.ConfirmStamp(ctx, stamp); err != nil {
		if errors.Is(err, ErrStale) {
			c.mu.Lock()
			c.mixed = true
			c.mu.Unlock()
		}
		return err
	}
	c.mu.Lock()
	if c.stamp == stamp && !c.mixed {
		c.used = false
	}
	c.mu.Unlock()
	return nil
}

// ReadCache keeps values read from a store for as long as the store's
// stamp is unchanged, so that a hot read (a robot's token, a credential's
// sealed record) skips the database without ever serving what a committed
// change has made stale. Over a store that is not a Stamper it keeps
// nothing; over a Confirmer it serves only requests that will confirm what
// they were served (Confirm).
//
// Use: s := c.Stamp() before the read; after it, c.Put(k, v, s, cost).
// Reading the stamp first means a change that commits during the read
// leaves the value filed under the older stamp, which Get then refuses.
type ReadCache[K comparable, V any] struct {
	st      Stamper
	lags    bool // st is a Confirmer
	access  bool // keep to st's access stamp (NewAccessCache)
	maxCost int

	mu    sync.Mutex
	stamp uint64 // the stamp every entry was read under
	m     map[K]V
	cost  int
}

// NewReadCache returns a cache over s holding values of total cost at most
// maxCost (the caller's unit, typically bytes).
func NewReadCache[K comparable, V any](s Store, maxCost int) *ReadCache[K, V] {
	st, _ := s.(Stamper)
	_, lag := lags(s)
	return &ReadCache[K, V]{st: st, lags: lag, maxCost: maxCost}
}

// NewAccessCache is NewReadCache for values read only from tables outside
// the vault's (credentials, credential versions, sealed records): it keeps
// them while only those change (AccessStamper). Authentication and tenant
// lookups qualify; anything that reads a credential or a record does not.
func NewAccessCache[K comparable, V any](s Store, maxCost int) *ReadCache[K, V] {
	c := NewReadCache[K, V](s, maxCost)
	c.access = true
	return c
}

// Stamp returns the store's stamp to read under, and false when nothing
// read now may be cached.
func (c *ReadCache[K, V]) Stamp() (uint64, bool) {
	if c == nil || c.st == nil {
		return 0, false
	}
	if as, ok := c.st.(AccessStamper); ok && c.access {
		return as.AccessStamp()
	}
	return c.st.Stamp()
}

// Get returns k's value if it was read under the store's current stamp.
// Over a Confirmer it serves only a request carrying a Confirm, and notes
// the stamp there for the request to confirm.
func (c *ReadCache[K, V]) Get(ctx context.Context, k K) (V, bool) {
	var zero V
	var cf *Confirm
	if c != nil && c.lags {
		if cf = ConfirmFrom(ctx); cf == nil {
			return zero, false
		}
	}
	now, ok := c.Stamp()
	if !ok {
		return zero, false
	}
	c.mu.Lock()
	if c.stamp != now {
		c.mu.Unlock()
		return zero, false
	}
	v, ok := c.m[k]
	c.mu.Unlock()
	if ok && cf != nil {
		cf.note(now)
	}
	return v, ok
}

// Put files v, read under stamp (from Stamp, taken before the read).
// Entries read under an older stamp are dropped; v is dropped if it is
// older than what the cache holds. When the cost bound is reached the
// cache starts over.
func (c *ReadCache[K, V]) Put(k K, v V, stamp uint64, cost int) {
	if c == nil || c.st == nil || cost > c.maxCost {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case stamp < c.stamp:
		return
	case stamp > c.stamp || c.m == nil || c.cost+cost > c.maxCost:
		c.m, c.cost, c.stamp = map[K]V{}, 0, stamp
	}
	if _, ok := c.m[k]; !ok {
		c.cost += cost
	}
	c.m[k] = v
}
