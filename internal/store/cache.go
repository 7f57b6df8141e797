package store

import "sync"

// Stamper is implemented by engines that see every change to their
// database (SQLite, whose data directory one process holds). Stamp returns
// a number that changes whenever a transaction that changed anything other
// than the append-only audit and lease tables commits, before that
// transaction's Update returns. ok is false when the engine cannot promise
// this (PostgreSQL: other nodes write), and nothing may then be cached.
type Stamper interface {
	Stamp() (stamp uint64, ok bool)
}

// ReadCache keeps values read from a store for as long as the store's
// stamp is unchanged, so that a hot read (a robot's token, a credential's
// sealed record) skips the database without ever serving what a committed
// change has made stale. Over a store that is not a Stamper it keeps
// nothing.
//
// Use: s := c.Stamp() before the read; after it, c.Put(k, v, s, cost).
// Reading the stamp first means a change that commits during the read
// leaves the value filed under the older stamp, which Get then refuses.
type ReadCache[K comparable, V any] struct {
	st      Stamper
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
	return &ReadCache[K, V]{st: st, maxCost: maxCost}
}

// Stamp returns the store's stamp to read under, and false when nothing
// read now may be cached.
func (c *ReadCache[K, V]) Stamp() (uint64, bool) {
	if c == nil || c.st == nil {
		return 0, false
	}
	return c.st.Stamp()
}

// Get returns k's value if it was read under the store's current stamp.
func (c *ReadCache[K, V]) Get(k K) (V, bool) {
	var zero V
	now, ok := c.Stamp()
	if !ok {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stamp != now {
		return zero, false
	}
	v, ok := c.m[k]
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
