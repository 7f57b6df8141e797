package store

import (
	"strings"
	"testing"
	"time"
)

func TestNewTimeID(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	// Times a millisecond apart, across a carry of every digit, and far
	// apart: IDs sort as their times do.
	for _, d := range []time.Duration{0, time.Millisecond, 31 * time.Millisecond, 32 * time.Millisecond, time.Second,
		time.Hour, 24 * time.Hour, 365 * 24 * time.Hour, 100 * 365 * 24 * time.Hour} {
		id := NewTimeID("lse_", t0.Add(d))
		if len(id) != len("lse_")+26 || !strings.HasPrefix(id, "lse_") {
			t.Fatalf("NewTimeID = %q: want lse_ and 26 characters", id)
		}
		if strings.Trim(id[4:], sortable) != "" {
			t.Fatalf("NewTimeID = %q: characters outside %q", id, sortable)
		}
		if id <= prev {
			t.Fatalf("NewTimeID at +%v = %q sorts before %q", d, id, prev)
		}
		prev = id
		seen[id] = true
	}
	// The same millisecond: the random part tells them apart.
	for range 1000 {
		id := NewTimeID("lse_", t0)
		if seen[id] {
			t.Fatalf("NewTimeID repeated %q", id)
		}
		seen[id] = true
	}
	// A time before 1970 is clamped to the epoch rather than wrapping
	// to the far future.
	if id, zero := NewTimeID("x", time.Unix(-5, 0)), NewTimeID("x", time.Unix(0, 0)); id[:11] != zero[:11] {
		t.Fatalf("NewTimeID before the epoch = %q, want the epoch's %q", id, zero)
	}
}
