package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/postgres"
	"github.com/custodia-project/custodia/internal/store/postgres/pgtest"
	"github.com/custodia-project/custodia/internal/store/sqlite"
)

// Benchmarks for the audit log. The large-log ones build a log of
// CUSTODIA_BENCH_AUDIT_N entries (default 1,000,000) once per run.

func benchStores() map[string]func(b *testing.B) store.Store {
	return map[string]func(b *testing.B) store.Store{
		"sqlite": func(b *testing.B) store.Store {
			s, err := sqlite.Open(context.Background(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"postgres": func(b *testing.B) store.Store {
			s, err := postgres.Open(context.Background(), pgtest.URL(b), postgres.Options{MaxConns: 64})
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
}

func benchEntry(i int) audit.Entry {
	return audit.Entry{Log: "tnt_bench", Action: "credential.fetch", Target: "cred_" + strconv.Itoa(i%1000),
		Details: map[string]any{"lease": "5m", "purpose": "bank statement import"}}
}

// BenchmarkAppendConcurrent: each op is one state-change transaction that
// appends one audit entry (with its tree hashes), from 64 concurrent
// writers; on SQLite the engine commits them in groups, every commit
// fsynced. Reports entries/s.
func BenchmarkAppendConcurrent(b *testing.B) {
	for name, open := range benchStores() {
		for _, logs := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/logs=%d", name, logs), func(b *testing.B) {
				benchAppend(b, open, logs)
			})
		}
	}
}

// benchAppend appends b.N entries from 64 writers, spread over logs logs.
func benchAppend(b *testing.B, open func(*testing.B) store.Store, logs int) {
	{
		{
			s := open(b)
			defer s.Close()
			ctx := context.Background()
			const writers = 64
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						e := benchEntry(int(i))
						e.Log = fmt.Sprint("tnt_bench", i%int64(logs))
						err := s.Update(ctx, func(tx store.Tx) error {
							return audit.Append(ctx, tx, time.Now(), e)
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
		}
	}
}

func benchN() int {
	if v, err := strconv.Atoi(os.Getenv("CUSTODIA_BENCH_AUDIT_N")); err == nil && v > 0 {
		return v
	}
	return 1_000_000
}

var bigLog struct {
	once   sync.Once
	s      store.Store
	export []byte
	pub    string
	size   int64
	err    error
}

// buildBig appends n entries in large transactions and exports the log.
func buildBig(b *testing.B) {
	bigLog.once.Do(func() {
		dir, err := os.MkdirTemp("", "custodia-audit-bench")
		if err != nil {
			bigLog.err = err
			return
		}
		ctx := context.Background()
		s, err := sqlite.Open(ctx, dir)
		if err != nil {
			bigLog.err = err
			return
		}
		n := benchN()
		t0 := time.Now()
		for done := 0; done < n; {
			batch := min(10000, n-done)
			err := s.Update(ctx, func(tx store.Tx) error {
				for i := range batch {
					if err := audit.Append(ctx, tx, time.Now(), benchEntry(done+i)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				bigLog.err = err
				return
			}
			done += batch
		}
		fmt.Fprintf(os.Stderr, "built a %d-entry log in %v\n", n, time.Since(t0).Round(time.Millisecond))
		k, _ := keys.GenerateKey()
		root := keys.NewRoot(s, time.Now)
		if _, err := root.Init(ctx, keys.InitOptions{Type: keys.SealKeyFile, Key: k}, nil); err != nil {
			bigLog.err = err
			return
		}
		l := audit.NewLog(s, root, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
		var buf bytes.Buffer
		if err := l.ExportJSONL(ctx, &buf, "tnt_bench"); err != nil {
			bigLog.err = err
			return
		}
		bigLog.pub, bigLog.err = l.PublicKey(ctx)
		bigLog.s, bigLog.export, bigLog.size = s, buf.Bytes(), int64(n)
		fmt.Fprintf(os.Stderr, "export: %d MiB\n", buf.Len()>>20)
	})
	if bigLog.err != nil {
		b.Fatal(bigLog.err)
	}
}

// BenchmarkInclusionProof1M: inclusion proofs for entries spread over a
// 1,000,000-entry log, read from the database. "proof" is the proof alone;
// "served" is what the API's inclusion route does (proof, leaf hash and the
// root at that size), checked with tlog.
func BenchmarkInclusionProof1M(b *testing.B) {
	buildBig(b)
	ctx := context.Background()
	b.Run("proof", func(b *testing.B) {
		i := int64(0)
		for b.Loop() {
			seq := (i * 7919) % bigLog.size
			i++
			err := bigLog.s.View(ctx, func(tx store.Tx) error {
				_, err := audit.InclusionProof(ctx, tx, "tnt_bench", seq, bigLog.size)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("served", func(b *testing.B) {
		i := int64(0)
		for b.Loop() {
			seq := (i * 7919) % bigLog.size
			i++
			err := bigLog.s.View(ctx, func(tx store.Tx) error {
				p, err := audit.InclusionProof(ctx, tx, "tnt_bench", seq, bigLog.size)
				if err != nil {
					return err
				}
				leaf, err := audit.LeafHash(ctx, tx, "tnt_bench", seq)
				if err != nil {
					return err
				}
				th, err := audit.TreeHash(ctx, tx, "tnt_bench", bigLog.size)
				if err != nil {
					return err
				}
				return tlog.CheckRecord(p, bigLog.size, th, seq, leaf)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyExport1M: offline verification of a 1,000,000-entry
// export (parse, recompute every leaf and the tree, check the signature).
func BenchmarkVerifyExport1M(b *testing.B) {
	buildBig(b)
	b.SetBytes(int64(len(bigLog.export)))
	for b.Loop() {
		rep, err := audit.Verify(bytes.NewReader(bigLog.export), bigLog.pub)
		if err != nil || !rep.OK() || rep.Entries != bigLog.size {
			b.Fatalf("verify: %+v %v", rep, err)
		}
	}
}
