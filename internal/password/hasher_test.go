package password

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/custodia-project/custodia/internal/fault"
)

func newHasher(t testing.TB, p Params, maxConcurrent int) *Hasher {
	t.Helper()
	h, err := NewHasher(p, maxConcurrent)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNewHasher(t *testing.T) {
	t.Run("ok/default-bound-from-memory", func(t *testing.T) {
		h := newHasher(t, DefaultParams(), 0)
		if h.slots != 3 || h.maxQueue != 3*queueFactor {
			t.Fatalf("slots, queue = %d, %d; want 3, %d", h.slots, h.maxQueue, 3*queueFactor)
		}
	})
	t.Run("ok/default-bound-for-large-memory", func(t *testing.T) {
		p := DefaultParams()
		p.Memory = 256 << 10
		if h := newHasher(t, p, -1); h.slots != 1 {
			t.Fatalf("slots = %d, want 1", h.slots)
		}
	})
	t.Run("ok/default-bound-capped", func(t *testing.T) {
		p := weakParams()
		p.Memory = 8
		if h := newHasher(t, p, 0); h.slots != maxSlots {
			t.Fatalf("slots = %d, want %d", h.slots, maxSlots)
		}
	})
	t.Run("ok/explicit-bound", func(t *testing.T) {
		if h := newHasher(t, DefaultParams(), 7); h.slots != 7 || h.maxQueue != 7*queueFactor {
			t.Fatalf("slots, queue = %d, %d", h.slots, h.maxQueue)
		}
	})
	t.Run("ok/dummy-uses-current-params", func(t *testing.T) {
		h := newHasher(t, DefaultParams(), 0)
		p, _, _, err := ParsePHC(h.dummy)
		if err != nil || p != DefaultParams() {
			t.Fatalf("dummy params = %+v, %v", p, err)
		}
	})
	t.Run("fail/bound-too-large", func(t *testing.T) {
		if _, err := NewHasher(DefaultParams(), maxSlots+1); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("fail/invalid-params", func(t *testing.T) {
		p := weakParams()
		p.Threads = 0
		if _, err := NewHasher(p, 1); err == nil {
			t.Fatal("accepted zero threads")
		}
		p = DefaultParams()
		p.Memory = 4 << 20
		if _, err := NewHasher(p, 1); err == nil {
			t.Fatal("accepted 4 GiB")
		}
	})
}

func TestHashVerify(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name     string
		params   Params
		password []byte
	}{
		{"ok/default-params", DefaultParams(), []byte("correct horse battery staple")},
		{"ok/weak-params", weakParams(), []byte("correct horse battery staple")},
		{"ok/empty", weakParams(), []byte{}},
		{"ok/nul-and-invalid-utf8", weakParams(), []byte("a\x00b\xff\xfe")},
		{"ok/long", weakParams(), []byte(strings.Repeat("passphrase ", 1000))},
		{"ok/multi-lane", Params{Memory: 256, Time: 2, Threads: 4, SaltLen: 32, KeyLen: 64}, []byte("pässwörd")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHasher(t, tt.params, 2)
			enc, err := h.Hash(ctx, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			p, salt, key, err := ParsePHC(enc)
			if err != nil {
				t.Fatal(err)
			}
			if p != tt.params || len(salt) != int(tt.params.SaltLen) || len(key) != int(tt.params.KeyLen) {
				t.Fatalf("hash has params %+v, want %+v", p, tt.params)
			}
			if strings.Contains(enc, string(tt.password)) && len(tt.password) > 0 {
				t.Fatal("hash contains the password")
			}
			ok, rehash, err := h.Verify(ctx, enc, tt.password)
			if err != nil || !ok || rehash {
				t.Fatalf("Verify(right) = %v, %v, %v; want true, false, nil", ok, rehash, err)
			}
			wrong := append([]byte("x"), tt.password...)
			ok, rehash, err = h.Verify(ctx, enc, wrong)
			if err != nil || ok || rehash {
				t.Fatalf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
			enc2, err := h.Hash(ctx, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if enc2 == enc {
				t.Fatal("two hashes of the same password are equal: salt not random")
			}
		})
	}
	t.Run("fail/wrong-password-one-bit", func(t *testing.T) {
		h := newHasher(t, weakParams(), 1)
		enc, err := h.Hash(ctx, []byte("correct horse battery staple"))
		if err != nil {
			t.Fatal(err)
		}
		ok, _, err := h.Verify(ctx, enc, []byte("correct horse battery stapld"))
		if err != nil || ok {
			t.Fatalf("Verify = %v, %v", ok, err)
		}
	})
	t.Run("fail/tampered-key", func(t *testing.T) {
		h := newHasher(t, weakParams(), 1)
		enc, err := h.Hash(ctx, []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		p, salt, key, _ := ParsePHC(enc)
		key[0] ^= 1
		ok, _, err := h.Verify(ctx, encodePHC(p, salt, key), []byte("pw"))
		if err != nil || ok {
			t.Fatalf("Verify = %v, %v", ok, err)
		}
	})
}

func TestVerifyMalformed(t *testing.T) {
	h := newHasher(t, weakParams(), 1)
	var started atomic.Int64
	h.testOnlyHashStarted = func() func() { started.Add(1); return func() {} }
	for _, s := range []string{
		"",
		"plaintext-password",
		"$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA",
		"$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ISO7kkvFzh19GM8qB7patN3C3Y9HHsjlVTfEZ9T600Y",
		"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$",
	} {
		t.Run("fail/"+s, func(t *testing.T) {
			ok, rehash, err := h.Verify(t.Context(), s, []byte("pw"))
			if !errors.Is(err, ErrMalformed) || ok || rehash {
				t.Fatalf("Verify = %v, %v, %v; want ErrMalformed", ok, rehash, err)
			}
		})
	}
	if n := started.Load(); n != 0 {
		t.Fatalf("%d hashes ran for malformed input", n)
	}
}

func TestRehash(t *testing.T) {
	ctx := t.Context()
	base := Params{Memory: 128, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32}
	with := func(f func(*Params)) Params {
		p := base
		f(&p)
		return p
	}
	tests := []struct {
		name   string
		stored Params
		rehash bool
	}{
		{"ok/same", base, false},
		{"ok/stronger-memory", with(func(p *Params) { p.Memory = 256 }), false},
		{"ok/stronger-time", with(func(p *Params) { p.Time = 3 }), false},
		{"ok/longer-salt-and-key", with(func(p *Params) { p.SaltLen, p.KeyLen = 32, 64 }), false},
		{"ok/fewer-threads-only", with(func(p *Params) { p.Threads = 1 }), false},
		{"ok/more-threads-only", with(func(p *Params) { p.Threads = 4 }), false},
		{"fail/less-memory", with(func(p *Params) { p.Memory = 64 }), true},
		{"fail/fewer-passes", with(func(p *Params) { p.Time = 1 }), true},
		{"fail/shorter-salt", with(func(p *Params) { p.SaltLen = 8 }), true},
		{"fail/shorter-key", with(func(p *Params) { p.KeyLen = 16 }), true},
		{"fail/stronger-memory-but-fewer-passes", with(func(p *Params) { p.Memory, p.Time = 1024, 1 }), true},
	}
	cur := newHasher(t, base, 2)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A Hasher may not make 8-byte salts; build stored hashes by hand.
			salt := make([]byte, tt.stored.SaltLen)
			key := cur.derive([]byte("pw"), salt, tt.stored, tt.stored.KeyLen)
			enc := encodePHC(tt.stored, salt, key)

			ok, rehash, err := cur.Verify(ctx, enc, []byte("pw"))
			if err != nil || !ok || rehash != tt.rehash {
				t.Fatalf("Verify = %v, %v, %v; want true, %v, nil", ok, rehash, err, tt.rehash)
			}
			ok, rehash, err = cur.Verify(ctx, enc, []byte("not pw"))
			if err != nil || ok || rehash {
				t.Fatalf("Verify(wrong) = %v, %v, %v; want false, false, nil: no rehash without the password", ok, rehash, err)
			}
		})
	}
}

// gate holds every hash that starts in a Hasher until opened, and counts
// hashes in flight.
type gate struct {
	open           chan struct{}
	entered        chan struct{}
	inflight, peak atomic.Int64
	startedTotal   atomic.Int64
	openOnce       sync.Once
}

func hold(t *testing.T, h *Hasher, capacity int) *gate {
	g := &gate{open: make(chan struct{}), entered: make(chan struct{}, capacity)}
	h.testOnlyHashStarted = func() func() {
		n := g.inflight.Add(1)
		for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
		}
		g.startedTotal.Add(1)
		g.entered <- struct{}{}
		<-g.open
		return func() { g.inflight.Add(-1) }
	}
	t.Cleanup(g.release)
	return g
}

func (g *gate) release() { g.openOnce.Do(func() { close(g.open) }) }

// waitFor yields until cond holds; the test's own timeout catches a hang.
func waitFor(cond func() bool) {
	for !cond() {
		runtime.Gosched()
	}
}

func TestConcurrencyBound(t *testing.T) {
	const slots, callers = 3, 60
	h := newHasher(t, weakParams(), slots)
	stored, err := h.Hash(t.Context(), []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	g := hold(t, h, callers)

	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			var err error
			switch i % 3 {
			case 0:
				_, err = h.Hash(t.Context(), []byte("pw"))
			case 1:
				_, _, err = h.Verify(t.Context(), stored, []byte("wrong"))
			case 2:
				err = h.Dummy(t.Context(), []byte("pw"))
			}
			errs <- err
		}()
	}
	for range slots {
		<-g.entered
	}
	// Every other caller is queued, none is hashing: the bound holds at
	// saturation, not just on average.
	waitFor(func() bool { return h.waiting.Load() == callers-slots || g.inflight.Load() > slots })
	if n := g.inflight.Load(); n != slots {
		t.Fatalf("%d hashes in flight with %d queued; want %d", n, callers-slots, slots)
	}
	g.release()
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if p := g.peak.Load(); p != slots {
		t.Fatalf("peak in flight = %d, want %d", p, slots)
	}
	if n := g.startedTotal.Load(); n != callers {
		t.Fatalf("%d hashes ran, want %d", n, callers)
	}
	if n := h.waiting.Load(); n != 0 {
		t.Fatalf("%d still counted as waiting", n)
	}
}

// A stored hash that needs more memory than the Hasher's params takes more
// slots, so maxConcurrent × Memory bounds memory for it too.
func TestConcurrencyBoundWeighted(t *testing.T) {
	const slots = 3
	h := newHasher(t, weakParams(), slots)
	heavy := weakParams()
	heavy.Memory = 2*weakParams().Memory + 1 // needs 3 slots
	hh := newHasher(t, heavy, 1)
	stored, err := hh.Hash(t.Context(), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}

	g := hold(t, h, 8)
	light := make(chan error, 1)
	go func() { _, err := h.Hash(t.Context(), []byte("pw")); light <- err }()
	<-g.entered

	heavyDone := make(chan error, 1)
	go func() {
		ok, _, err := h.Verify(t.Context(), stored, []byte("pw"))
		if err == nil && !ok {
			err = errors.New("heavy hash did not verify")
		}
		heavyDone <- err
	}()
	// Two slots are free, but the heavy hash needs three: it must queue.
	waitFor(func() bool { return h.waiting.Load() == 1 || g.inflight.Load() > 1 })
	if n := g.inflight.Load(); n != 1 {
		t.Fatalf("%d in flight, want 1", n)
	}
	g.release()
	if err := <-light; err != nil {
		t.Fatal(err)
	}
	if err := <-heavyDone; err != nil {
		t.Fatal(err)
	}
	if p := g.peak.Load(); p != 1 {
		t.Fatalf("peak in flight = %d: the heavy hash ran beside another", p)
	}
}

func TestCancelWhileQueued(t *testing.T) {
	h := newHasher(t, weakParams(), 1)
	g := hold(t, h, 4)
	first := make(chan error, 1)
	go func() { _, err := h.Hash(t.Context(), []byte("pw")); first <- err }()
	<-g.entered

	ops := map[string]func(ctx context.Context) error{
		"hash":   func(ctx context.Context) error { _, err := h.Hash(ctx, []byte("pw")); return err },
		"verify": func(ctx context.Context) error { _, _, err := h.Verify(ctx, h.dummy, []byte("pw")); return err },
		"dummy":  func(ctx context.Context) error { return h.Dummy(ctx, []byte("pw")) },
	}
	for name, op := range ops {
		t.Run("fail/"+name+"/cancelled-while-queued", func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- op(ctx) }()
			waitFor(func() bool { return h.waiting.Load() == 1 || g.inflight.Load() > 1 })
			if n := g.inflight.Load(); n != 1 {
				t.Fatalf("%d in flight, want 1", n)
			}
			cancel()
			err := <-done
			if !errors.Is(err, context.Canceled) || errors.Is(err, ErrBusy) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if n := h.waiting.Load(); n != 0 {
				t.Fatalf("waiting = %d after cancel", n)
			}
		})
	}
	g.release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := g.startedTotal.Load(); n != 1 {
		t.Fatalf("%d hashes ran; cancelled callers must not hash", n)
	}

	t.Run("fail/already-cancelled-on-idle-hasher", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for name, op := range ops {
			if err := op(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("%s: err = %v, want context.Canceled", name, err)
			}
		}
	})
}

func TestBusy(t *testing.T) {
	h := newHasher(t, weakParams(), 1)
	h.maxQueue = 4
	g := hold(t, h, 8)
	results := make(chan error, 5)
	go func() { _, err := h.Hash(t.Context(), []byte("pw")); results <- err }()
	<-g.entered
	for range h.maxQueue {
		go func() { _, err := h.Hash(t.Context(), []byte("pw")); results <- err }()
	}
	waitFor(func() bool { return h.waiting.Load() == h.maxQueue || g.inflight.Load() > 1 })
	if n := g.inflight.Load(); n != 1 {
		t.Fatalf("%d in flight, want 1", n)
	}

	ops := map[string]func() error{
		"hash":   func() error { _, err := h.Hash(t.Context(), []byte("pw")); return err },
		"verify": func() error { _, _, err := h.Verify(t.Context(), h.dummy, []byte("pw")); return err },
		"dummy":  func() error { return h.Dummy(t.Context(), []byte("pw")) },
	}
	for name, op := range ops {
		t.Run("fail/"+name+"/queue-full", func(t *testing.T) {
			err := op()
			if !errors.Is(err, ErrBusy) {
				t.Fatalf("err = %v, want ErrBusy", err)
			}
			fe, ok := fault.As(err)
			if !ok || fe.Code != "password_busy" || fe.Kind != fault.Unavailable {
				t.Fatalf("fault = %+v", fe)
			}
		})
	}
	if n := h.waiting.Load(); n != h.maxQueue {
		t.Fatalf("waiting = %d after refusals, want %d", n, h.maxQueue)
	}
	g.release()
	for range 1 + h.maxQueue {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	t.Run("ok/accepts-again-after-drain", func(t *testing.T) {
		if _, err := h.Hash(t.Context(), []byte("pw")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDummy(t *testing.T) {
	h := newHasher(t, weakParams(), 1)
	var started atomic.Int64
	h.testOnlyHashStarted = func() func() { started.Add(1); return func() {} }
	for _, pw := range []string{"", "pw", "correct horse battery staple"} {
		if err := h.Dummy(t.Context(), []byte(pw)); err != nil {
			t.Fatal(err)
		}
		if ok, _, _ := h.Verify(t.Context(), h.dummy, []byte(pw)); ok {
			t.Fatal("a password matched the dummy hash")
		}
	}
	if n := started.Load(); n != 6 {
		t.Fatalf("%d hashes ran, want 6: Dummy must do a Verify's work", n)
	}
}
