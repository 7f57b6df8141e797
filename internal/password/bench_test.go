package password

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func BenchmarkHash(b *testing.B) {
	h := newHasher(b, DefaultParams(), 0)
	pw := []byte("correct horse battery staple")
	for b.Loop() {
		if _, err := h.Hash(b.Context(), pw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	h := newHasher(b, DefaultParams(), 0)
	pw := []byte("correct horse battery staple")
	stored, err := h.Hash(b.Context(), pw)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _, err := h.Verify(b.Context(), stored, pw); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkFloodBadSignins sends 1,000 concurrent sign-ins with wrong
// passwords at a Hasher with DefaultParams and the default bound, as a
// credential-stuffing burst would. It reports the peak heap in use while they
// run (sampled every millisecond), the median and 99th percentile latency
// of the sign-ins that were served, and the share refused at once with
// ErrBusy. The served ones wait behind up to 64 × 3 queued callers, so their
// latency is mostly queueing; the refused ones return in microseconds.
func BenchmarkFloodBadSignins(b *testing.B) {
	const flood = 1000
	h := newHasher(b, DefaultParams(), 0)
	stored, err := h.Hash(b.Context(), []byte("the real password"))
	if err != nil {
		b.Fatal(err)
	}
	var (
		peak      uint64
		served    []time.Duration
		busy, all int
	)
	for b.Loop() {
		runtime.GC()
		stop := make(chan struct{})
		sampled := make(chan uint64)
		go func() {
			var ms runtime.MemStats
			var hi uint64
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				runtime.ReadMemStats(&ms)
				hi = max(hi, ms.HeapInuse)
				select {
				case <-stop:
					sampled <- hi
					return
				case <-t.C:
				}
			}
		}()

		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range flood {
			wg.Go(func() {
				pw := []byte{'w', 'r', 'o', 'n', 'g', byte(i), byte(i >> 8)}
				<-start
				t0 := time.Now()
				ok, _, err := h.Verify(b.Context(), stored, pw)
				d := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				all++
				switch {
				case errors.Is(err, ErrBusy):
					busy++
				case err != nil || ok:
					b.Errorf("Verify = %v, %v", ok, err)
				default:
					served = append(served, d)
				}
			})
		}
		close(start)
		wg.Wait()
		close(stop)
		peak = max(peak, <-sampled)
	}
	slices.Sort(served)
	pct := func(p int) float64 {
		n := len(served)
		if n == 0 {
			return 0
		}
		return float64(served[(n*p+99)/100-1]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
	b.ReportMetric(pct(50), "p50-ms")
	b.ReportMetric(pct(99), "p99-ms")
	b.ReportMetric(100*float64(busy)/float64(all), "busy-%")
}

// BenchmarkStrength estimates passwords of the lengths a vault stores: a
// person's passphrase, a generated 24-character one, and a 1 KiB random
// secret (an API key), whose estimate is bounded by its prefix.
func BenchmarkStrength(b *testing.B) {
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	long := make([]byte, 1024)
	for i := range long {
		long[i] = alnum[(i*7919+i*i*31)%len(alnum)]
	}
	for _, c := range []struct{ name, pw string }{
		{"passphrase", "plum Vortex harbour 93 quietly"},
		{"generated24", "q7Vd-Mx2p-RkT9-w4Lz-Hc8N"},
		{"weak100", strings.Repeat("password", 13)[:100]},
		{"random1KiB", string(long)},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				Strength(c.pw, "Banco Santander", "alice@example.com")
			}
		})
	}
}
