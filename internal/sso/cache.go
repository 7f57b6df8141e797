package sso

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sync"
	"time"
)

// DefaultCacheTTL is how long a discovered provider is reused when NewCache
// is given no TTL. Key rotation does not need a shorter one: go-oidc refetches
// the key set when it meets an unknown key ID.
const DefaultCacheTTL = time.Hour

// Cache keeps one discovered Provider per tenant so discovery is not repeated
// on every sign-in. An entry is reused while it is younger than the TTL and
// was built from the same Config (compared by a fingerprint that covers every
// field, the secret included); otherwise discovery runs again and replaces it.
// Failed discoveries are not cached. It is safe for concurrent use.
type Cache struct {
	client *http.Client
	ttl    time.Duration

	mu      sync.Mutex
	entries map[string]cacheEntry // by tenant ID
}

type cacheEntry struct {
	fingerprint [sha256.Size]byte
	provider    *Provider
	created     time.Time
}

// NewCache returns a cache whose providers use client (see NewProvider) and
// live for ttl (DefaultCacheTTL if ttl <= 0).
func NewCache(client *http.Client, ttl time.Duration) *Cache {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	return &Cache{client: client, ttl: ttl, entries: make(map[string]cacheEntry)}
}

// Provider returns the tenant's provider for cfg, discovering it if the cache
// has none fresh at now for this exact cfg.
func (c *Cache) Provider(ctx context.Context, tenantID string, cfg Config, now time.Time) (*Provider, error) {
	fp := cfg.fingerprint()
	c.mu.Lock()
	e, ok := c.entries[tenantID]
	c.mu.Unlock()
	if ok && e.fingerprint == fp && now.Sub(e.created) < c.ttl && !now.Before(e.created) {
		return e.provider, nil
	}

	// Discover without the lock: one slow provider must not hold up
	// every other tenant. Two concurrent misses for one tenant both
	// discover, and the later result wins; both are correct.
	p, err := NewProvider(ctx, cfg, c.client)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.entries[tenantID] = cacheEntry{fingerprint: fp, provider: p, created: now}
	c.mu.Unlock()
	return p, nil
}

// Forget drops the tenant's entry, for when its configuration is deleted or
// the tenant is suspended.
func (c *Cache) Forget(tenantID string) {
	c.mu.Lock()
	delete(c.entries, tenantID)
	c.mu.Unlock()
}
