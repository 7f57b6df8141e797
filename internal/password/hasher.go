package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/semaphore"

	"github.com/custodia-project/custodia/internal/fault"
)

// ErrBusy is returned, wrapped, when a Hasher already has as many callers
// waiting for a slot as it allows. The caller should answer at once
// (HTTP 503) rather than retry in a loop. It is a *fault.Error, so it reaches
// clients with its code and message.
var ErrBusy = fault.New(fault.Unavailable, "password_busy", "too many sign-ins are in progress; try again in a moment")

// defaultMemoryBudget is what NewHasher aims to spend on hashing at once when
// not told how many hashes to run: 64 MiB, which is 3 hashes with
// DefaultParams. More would not make sign-ins faster on a small server:
// argon2 is CPU-bound, so extra concurrent hashes only share the same cores.
const defaultMemoryBudget = 64 << 10 // KiB

// queueFactor is how many callers may wait per slot before ErrBusy.
const queueFactor = 64

// maxSlots stops a configuration mistake from disabling the bound.
const maxSlots = 1024

// Hasher hashes and verifies passwords with argon2id and bounds how many
// hashes run at once.
//
// Peak memory: argon2id allocates Params.Memory for each hash, so at most
// maxConcurrent × Params.Memory is live for hashing at any moment (about
// 57 MiB with DefaultParams and the default bound of 3), plus up to
// 64 × maxConcurrent queued callers holding nothing but their goroutine and
// request. A stored hash whose memory cost is higher than the Hasher's takes
// as many slots as it needs, so the bound holds for it too; one that needs
// more than all slots runs alone. That bounds the live memory; the heap
// is larger, because the garbage collector lets the buffers of finished
// hashes linger until its next cycle (GOGC). BenchmarkFloodBadSignins, 1,000
// concurrent sign-ins against the default Hasher, peaked at 160 to 200 MiB
// of heap in use in our runs: budget three to four times the bound, or set
// GOMEMLIMIT so the collector runs sooner.
//
// A Hasher is safe for concurrent use.
type Hasher struct {
	params   Params
	slots    int64
	maxQueue int64
	sem      *semaphore.Weighted
	waiting  atomic.Int64
	dummy    string

	// testOnlyHashStarted, if set, is called in a slot just before argon2id
	// runs, and the function it returns just after, so tests can count and
	// hold hashes in flight.
	testOnlyHashStarted func() (finished func())
}

// NewHasher returns a Hasher that makes new hashes with p and runs at most
// maxConcurrent hashes at once. If maxConcurrent is zero or less, it is
// 64 MiB divided by p.Memory, and at least 1: 3 with DefaultParams. Up to
// 64 × maxConcurrent more callers wait for a slot; further callers get
// ErrBusy.
func NewHasher(p Params, maxConcurrent int) (*Hasher, error) {
	if err := p.validate(testOnlyAllowWeak); err != nil {
		return nil, err
	}
	if maxConcurrent <= 0 {
		maxConcurrent = min(max(1, int(defaultMemoryBudget/p.Memory)), maxSlots)
	}
	if maxConcurrent > maxSlots {
		return nil, fmt.Errorf("password: %d concurrent hashes is more than the maximum of %d", maxConcurrent, maxSlots)
	}
	h := &Hasher{
		params:   p,
		slots:    int64(maxConcurrent),
		maxQueue: int64(maxConcurrent) * queueFactor,
		sem:      semaphore.NewWeighted(int64(maxConcurrent)),
	}
	// The dummy is a hash of nothing in particular with the current params;
	// verifying against it costs exactly what verifying a real, current hash
	// costs, and no password can match it except by finding a preimage.
	salt, key := make([]byte, p.SaltLen), make([]byte, p.KeyLen)
	rand.Read(salt)
	rand.Read(key)
	h.dummy = encodePHC(p, salt, key)
	return h, nil
}

// Hash returns a PHC string of password with a new random salt. It waits for
// a slot; if ctx ends first it returns an error wrapping ctx.Err(), and if
// too many callers are already waiting, one wrapping ErrBusy.
func (h *Hasher) Hash(ctx context.Context, password []byte) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	rand.Read(salt)
	release, err := h.acquire(ctx, 1)
	if err != nil {
		return "", fmt.Errorf("password: hash: %w", err)
	}
	defer release()
	key := h.derive(password, salt, h.params, h.params.KeyLen)
	return encodePHC(h.params, salt, key), nil
}

// Verify reports whether password matches the PHC string encoded, comparing
// in constant time. rehash is true when the password matches and the stored
// hash is weaker than what this Hasher makes now (less memory, fewer passes,
// or a shorter salt or key): the caller should then store Hash(password).
// A different thread count alone does not ask for a rehash.
//
// A malformed encoded is an error wrapping ErrMalformed; waiting for a slot
// fails as in Hash. A wrong password is ok == false with a nil error.
func (h *Hasher) Verify(ctx context.Context, encoded string, password []byte) (ok, rehash bool, err error) {
	p, salt, want, err := ParsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	release, err := h.acquire(ctx, h.weight(p.Memory))
	if err != nil {
		return false, false, fmt.Errorf("password: verify: %w", err)
	}
	defer release()
	got := h.derive(password, salt, p, p.KeyLen)
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && h.weaker(p), nil
}

// Dummy does the work of a Verify against a hash with this Hasher's
// parameters that no password matches, and discards the result. Call it when
// a sign-in names an account that does not exist (or has no password), so
// that the answer takes as long as for a real account with a wrong password
// and response times do not reveal which accounts exist. It waits for a slot
// like Verify and returns the same errors, which the caller should handle as
// it handles Verify's.
func (h *Hasher) Dummy(ctx context.Context, password []byte) error {
	_, _, err := h.Verify(ctx, h.dummy, password)
	return err
}

func (h *Hasher) derive(password, salt []byte, p Params, keyLen uint32) []byte {
	if h.testOnlyHashStarted != nil {
		defer h.testOnlyHashStarted()()
	}
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, keyLen)
}

// weight is how many slots a hash of memory KiB takes, so that the memory
// bound holds for stored hashes more expensive than the current params.
func (h *Hasher) weight(memory uint32) int64 {
	w := (int64(memory) + int64(h.params.Memory) - 1) / int64(h.params.Memory)
	return min(max(w, 1), h.slots)
}

func (h *Hasher) weaker(stored Params) bool {
	cur := h.params
	return stored.Memory < cur.Memory || stored.Time < cur.Time ||
		stored.SaltLen < cur.SaltLen || stored.KeyLen < cur.KeyLen
}

// acquire waits for n slots. The queue bound is checked only when the caller
// would have to wait, so an idle Hasher never refuses.
func (h *Hasher) acquire(ctx context.Context, n int64) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("waiting for a hashing slot: %w", err)
	}
	release = func() { h.sem.Release(n) }
	if h.sem.TryAcquire(n) {
		return release, nil
	}
	if h.waiting.Add(1) > h.maxQueue {
		h.waiting.Add(-1)
		return nil, ErrBusy
	}
	defer h.waiting.Add(-1)
	if err := h.sem.Acquire(ctx, n); err != nil {
		return nil, fmt.Errorf("waiting for a hashing slot: %w", err)
	}
	return release, nil
}
