package vault

import (
	"strings"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

// A lease's ID carries the lifetime it was granted, in whole seconds, so a
// renewal without an increment can extend it by that however often the
// lease's expiry was rewritten; an ID that carries none (a lease granted
// before IDs did) reads as the default lifetime.
func TestLeaseIDCarriesGrantedTTL(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for ttl, want := range map[time.Duration]time.Duration{
		MinLease:                MinLease,
		1500 * time.Millisecond: 2 * time.Second,
		DefaultLease:            DefaultLease,
		30 * time.Minute:        30 * time.Minute,
		MaxLease:                MaxLease,
	} {
		id := newLeaseID(now, ttl)
		if !strings.HasPrefix(id, "lse_") || strings.Count(id, "-") != 1 {
			t.Errorf("newLeaseID(%s) = %q: want lse_, a time ID and one -", ttl, id)
		}
		if got := grantedTTL(id); got != want {
			t.Errorf("grantedTTL(newLeaseID(%s)) = %s, want %s", ttl, got, want)
		}
	}
	if a, b := newLeaseID(now, DefaultLease), newLeaseID(now, DefaultLease); a == b {
		t.Errorf("two leases granted at once share ID %q", a)
	}
	for _, id := range []string{store.NewTimeID("lse_", now), "lse_never", "lse_x-", "lse_x-0", "lse_x-3601", "lse_x-1e3", "lse_x-+60",
		"lse_x-99999999999999999999", "lse_x-5m"} {
		if got := grantedTTL(id); got != DefaultLease {
			t.Errorf("grantedTTL(%q) = %s, want the default %s", id, got, DefaultLease)
		}
	}
}
