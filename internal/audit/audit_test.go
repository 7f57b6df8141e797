package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/postgres"
	"github.com/custodia-project/custodia/internal/store/postgres/pgtest"
	"github.com/custodia-project/custodia/internal/store/sqldb"
	"github.com/custodia-project/custodia/internal/store/sqlite"
)

// engine opens a fresh, empty store.
type engine struct {
	name string
	open func(t testing.TB) *sqldb.DB
}

var engines = []engine{
	{"sqlite", func(t testing.TB) *sqldb.DB {
		db, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return db
	}},
	{"postgres", func(t testing.TB) *sqldb.DB {
		db, err := postgres.Open(context.Background(), pgtest.URL(t), postgres.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}},
}

// forEachEngine runs fn once per storage engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { fn(t, e) })
	}
}

// clock is a movable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// pushed records every checkpoint the log pushes off the box.
type pushed struct {
	mu  sync.Mutex
	cps []store.AuditCheckpoint
}

func (p *pushed) Push(_ context.Context, c *store.AuditCheckpoint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cps = append(p.cps, *c)
	return nil
}

// fixture is a store with an unsealed root key and the audit log service.
type fixture struct {
	t      testing.TB
	ctx    context.Context
	db     *sqldb.DB
	root   *keys.Root
	log    *audit.Log
	clock  *clock
	pushed *pushed
}

const tenantLog = "tnt_0123456789abcdef"

func newFixture(t testing.TB, e engine) *fixture {
	t.Helper()
	ctx := context.Background()
	db := e.open(t)
	t.Cleanup(func() { db.Close() })
	// Nanoseconds on the clock check that the leaf (microseconds) is
	// computed the same way at append and at export.
	c := &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 123456789, time.UTC)}
	root := keys.NewRoot(db, c.Now)
	k, err := keys.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Init(ctx, keys.InitOptions{Type: keys.SealKeyFile, Key: k}, nil); err != nil {
		t.Fatal(err)
	}
	p := &pushed{}
	l := audit.NewLog(db, root, c.Now, slog.New(slog.NewTextHandler(io.Discard, nil)), p)
	return &fixture{t: t, ctx: ctx, db: db, root: root, log: l, clock: c, pushed: p}
}

var (
	actions = []string{"secret.write", "secret.read", "tenant.suspend", "robot.token.create", "person.login", "secret.delete"}
	results = []string{audit.ResultOK, audit.ResultOK, audit.ResultDenied, audit.ResultFailed}
)

// entry returns the i-th entry of a varied, deterministic sequence.
func entry(logID string, i int) (audit.Source, audit.Entry) {
	src := audit.Source{ActorType: audit.ActorPerson, ActorID: fmt.Sprintf("psn_%04d", i%7), IP: fmt.Sprintf("192.0.2.%d", i%250),
		UserAgent: "custodia-test/1.0 (<&> \"quoted\" ünïcødé)", RequestID: fmt.Sprintf("req-%d", i)}
	if i%5 == 0 {
		src = audit.Source{ActorType: audit.ActorRobot, ActorID: fmt.Sprintf("rbt_%d", i)}
	}
	e := audit.Entry{Log: logID, Action: actions[i%len(actions)], Target: fmt.Sprintf("secret/app-%d", i%9), Result: results[i%len(results)]}
	switch i % 4 {
	case 1:
		e.Details = map[string]any{"version": i, "reason": "rotation <scheduled> & \"due\""}
	case 2:
		e.Details = map[string]any{"nested": map[string]any{"ids": []any{i, i + 1}, "ok": true}, "note": "日本語"}
	case 3:
		e.Details = map[string]any{"empty": map[string]any{}, "n": nil}
	}
	if i%3 == 0 {
		e.Result = "" // Append fills in ok
	}
	return src, e
}

// append adds entries [from, to) to logID, one per minute, in one
// transaction (one fsync keeps the tests quick).
func (f *fixture) append(logID string, from, to int) {
	f.t.Helper()
	err := f.db.Update(f.ctx, func(tx store.Tx) error {
		for i := from; i < to; i++ {
			src, e := entry(logID, i)
			f.clock.Add(time.Minute)
			if err := audit.Append(audit.WithSource(f.ctx, src), tx, f.clock.Now(), e); err != nil {
				return fmt.Errorf("append %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) checkpoint(logID string) *store.AuditCheckpoint {
	f.t.Helper()
	c, err := f.log.Checkpoint(f.ctx, logID)
	if err != nil {
		f.t.Fatalf("checkpoint: %v", err)
	}
	return c
}

func (f *fixture) export(logID string) []byte {
	f.t.Helper()
	var b bytes.Buffer
	if err := f.log.ExportJSONL(f.ctx, &b, logID); err != nil {
		f.t.Fatalf("export: %v", err)
	}
	return b.Bytes()
}

func (f *fixture) publicKey() string {
	f.t.Helper()
	vk, err := f.log.PublicKey(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return vk
}

func (f *fixture) verify(export []byte) *audit.Report {
	f.t.Helper()
	rep, err := audit.Verify(bytes.NewReader(export), f.publicKey())
	if err != nil {
		f.t.Fatalf("verify: %v", err)
	}
	return rep
}

// exec runs SQL directly on the database, as an attacker with write access
// would.
func (f *fixture) exec(q string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Writer().ExecContext(f.ctx, q, args...); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

func (f *fixture) count(q string, args ...any) int64 {
	f.t.Helper()
	var n int64
	if err := f.db.Writer().QueryRowContext(f.ctx, q, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// events returns the stored events of logID.
func (f *fixture) events(logID string) []store.AuditEvent {
	f.t.Helper()
	var evs []store.AuditEvent
	err := f.db.View(f.ctx, func(tx store.Tx) error {
		var err error
		evs, err = tx.ListAudit(f.ctx, store.AuditFilter{LogID: logID, AfterSeq: -1, Limit: 10000})
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

// exportLines splits an export into its decoded lines (the header first).
func exportLines(t testing.TB, export []byte) (audit.ExportHeader, []audit.ExportLine) {
	t.Helper()
	var h audit.ExportHeader
	var out []audit.ExportLine
	sc := bufio.NewScanner(bytes.NewReader(export))
	sc.Buffer(nil, 16<<20)
	for i := 0; sc.Scan(); i++ {
		if i == 0 {
			if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
				t.Fatalf("header: %v", err)
			}
			continue
		}
		var ln audit.ExportLine
		if err := json.Unmarshal(sc.Bytes(), &ln); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		out = append(out, ln)
	}
	return h, out
}

func wantOK(t testing.TB, rep *audit.Report) {
	t.Helper()
	if !rep.OK() {
		t.Fatalf("report not OK: %+v", rep.Problems)
	}
}

func TestRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		// What a client sends is recorded as valid UTF-8, so that the
		// entry still verifies once exported: a User-Agent cut in the
		// middle of a character, an invalid byte, a target holding one.
		t.Run("ok/invalid UTF-8 from a client", func(t *testing.T) {
			f := newFixture(t, e)
			for i, src := range []audit.Source{
				{ActorType: audit.ActorAnonymous, UserAgent: "x" + strings.Repeat("é", 300)},
				{ActorType: audit.ActorRobot, ActorID: "rbt_\xff", UserAgent: "bad\xff", IP: "127.0.0.1", RequestID: "r\xc3"},
			} {
				err := f.db.Update(f.ctx, func(tx store.Tx) error {
					return audit.Append(audit.WithSource(f.ctx, src), tx, f.clock.Now(), audit.Entry{Log: tenantLog, Action: "auth.signin",
						Target: fmt.Sprintf("t\xfe%d", i), Result: audit.ResultFailed, Details: map[string]any{"why": "x\xffy"}})
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			f.checkpoint(tenantLog)
			wantOK(t, f.verify(f.export(tenantLog)))
			for _, ev := range f.events(tenantLog) {
				for _, s := range []string{ev.ActorID, ev.Target, ev.UserAgent, ev.RequestID, string(ev.Details)} {
					if !utf8.ValidString(s) {
						t.Errorf("stored %q is not valid UTF-8", s)
					}
				}
				if len(ev.UserAgent) > 256 {
					t.Errorf("user agent of %d bytes", len(ev.UserAgent))
				}
			}
		})
		t.Run("ok/one checkpoint", func(t *testing.T) {
			f := newFixture(t, e)
			f.append(tenantLog, 0, 50)
			cp := f.checkpoint(tenantLog)
			if cp.Size != 50 {
				t.Fatalf("checkpoint size %d, want 50", cp.Size)
			}
			if again := f.checkpoint(tenantLog); again.Note != cp.Note {
				t.Fatal("a checkpoint of an unchanged log signed a new note")
			}
			rep := f.verify(f.export(tenantLog))
			wantOK(t, rep)
			if rep.Entries != 50 || rep.Size != 50 || rep.Pruned != 0 || rep.Uncovered != 0 || rep.Checkpoints != 1 || rep.Log != tenantLog {
				t.Fatalf("report %+v", rep)
			}
			if !strings.HasPrefix(rep.Origin, "custodia.audit/") || !strings.HasSuffix(rep.Origin, "/"+tenantLog) {
				t.Fatalf("origin %q", rep.Origin)
			}
			if n := f.count(`SELECT COUNT(*) FROM audit_hashes WHERE log_id = $1`, tenantLog); n != tlog.StoredHashCount(50) {
				t.Fatalf("%d stored hashes, want %d", n, tlog.StoredHashCount(50))
			}
			// The entries read back are the ones appended.
			evs := f.events(tenantLog)
			for i, ev := range evs {
				src, want := entry(tenantLog, i)
				if want.Result == "" {
					want.Result = audit.ResultOK
				}
				if ev.Seq != int64(i) || ev.Action != want.Action || ev.Target != want.Target || ev.Result != want.Result ||
					ev.ActorID != src.ActorID || ev.RequestID != src.RequestID {
					t.Fatalf("event %d = %+v, want %+v from %+v", i, ev, want, src)
				}
			}
		})
		t.Run("ok/earlier checkpoints are carried and consistent", func(t *testing.T) {
			f := newFixture(t, e)
			f.append(tenantLog, 0, 50)
			first := f.checkpoint(tenantLog)
			f.append(tenantLog, 50, 73)
			second := f.checkpoint(tenantLog)
			f.append(tenantLog, 73, 80)
			exp := f.export(tenantLog) // checkpoints 80 itself
			rep := f.verify(exp)
			wantOK(t, rep)
			if rep.Size != 80 || rep.Entries != 80 || rep.Checkpoints != 3 {
				t.Fatalf("report %+v", rep)
			}
			h, lines := exportLines(t, exp)
			var earlier []string
			for _, ln := range lines {
				if ln.Checkpoint != "" {
					earlier = append(earlier, ln.Checkpoint)
				}
			}
			if len(earlier) != 2 || earlier[0] != first.Note || earlier[1] != second.Note {
				t.Fatalf("earlier checkpoints %q, want the notes of sizes 50 and 73", earlier)
			}
			if len(f.pushed.cps) != 3 || f.pushed.cps[2].Note != h.Checkpoint {
				t.Fatalf("pushed %d checkpoints; the newest is not the export's", len(f.pushed.cps))
			}
			if h.PublicKey != f.publicKey() {
				t.Fatal("the header's public key is not the log's")
			}
		})
		t.Run("ok/export while sealed leaves later entries uncovered", func(t *testing.T) {
			f := newFixture(t, e)
			f.append(tenantLog, 0, 20)
			f.checkpoint(tenantLog)
			vk := f.publicKey()
			f.append(tenantLog, 20, 25)
			f.root.Seal()
			if _, err := f.log.Checkpoint(f.ctx, tenantLog); !errors.Is(err, keys.ErrSealed) {
				t.Fatalf("checkpoint while sealed: %v, want ErrSealed", err)
			}
			var b bytes.Buffer
			if err := f.log.ExportJSONL(f.ctx, &b, tenantLog); err != nil {
				t.Fatal(err)
			}
			rep, err := audit.Verify(&b, vk)
			if err != nil {
				t.Fatal(err)
			}
			wantOK(t, rep)
			if rep.Size != 20 || rep.Entries != 25 || rep.Uncovered != 5 {
				t.Fatalf("report %+v, want size 20, 25 entries, 5 uncovered", rep)
			}
		})
		t.Run("ok/csv", func(t *testing.T) {
			f := newFixture(t, e)
			f.append(tenantLog, 0, 12)
			var b bytes.Buffer
			if err := f.log.ExportCSV(f.ctx, &b, tenantLog); err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(&b).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 13 || recs[0][0] != "seq" || recs[12][0] != "11" || recs[12][4] != actions[11%len(actions)] {
				t.Fatalf("csv: %d rows, last %q", len(recs), recs[len(recs)-1])
			}
		})
		t.Run("fail/empty log has no checkpoint", func(t *testing.T) {
			f := newFixture(t, e)
			if _, err := f.log.Checkpoint(f.ctx, tenantLog); !errors.Is(err, audit.ErrNoCheckpoint) {
				t.Fatalf("checkpoint of an empty log: %v", err)
			}
			if err := f.log.ExportJSONL(f.ctx, io.Discard, tenantLog); !errors.Is(err, audit.ErrNoCheckpoint) {
				t.Fatalf("export of an empty log: %v", err)
			}
		})
		t.Run("fail/logs are separate", func(t *testing.T) {
			f := newFixture(t, e)
			f.append(tenantLog, 0, 10)
			f.append(store.OperatorLog, 0, 4)
			a, b := f.verify(f.export(tenantLog)), f.verify(f.export(store.OperatorLog))
			wantOK(t, a)
			wantOK(t, b)
			if a.Size != 10 || b.Size != 4 || a.Origin == b.Origin {
				t.Fatalf("reports %+v and %+v", a, b)
			}
			// One log's export does not verify as another's: splice the
			// operator log's header onto the tenant's entries.
			ta, tb := f.export(tenantLog), f.export(store.OperatorLog)
			spliced := append(bytes.Clone(tb[:bytes.IndexByte(tb, '\n')+1]), ta[bytes.IndexByte(ta, '\n')+1:]...)
			if rep := f.verify(spliced); rep.OK() {
				t.Fatalf("the operator log's checkpoint verified the tenant's entries: %+v", rep)
			}
		})
	})
}

// mth is an independent RFC 6962 Merkle tree hash (section 2.1), written
// from the RFC rather than from tlog.
func mth(leaves [][]byte) []byte {
	h := rfc6962.DefaultHasher
	switch n := len(leaves); n {
	case 0:
		return h.EmptyRoot()
	case 1:
		return h.HashLeaf(leaves[0])
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		return h.HashChildren(mth(leaves[:k]), mth(leaves[k:]))
	}
}

func proofBytes[T ~[]tlog.Hash](p T) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = bytes.Clone(p[i][:])
	}
	return out
}

func TestProofs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		f := newFixture(t, e)
		const size = 50
		f.append(tenantLog, 0, size)
		var leaves [][]byte
		for _, ev := range f.events(tenantLog) {
			b, err := audit.LeafOf(&ev).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			leaves = append(leaves, b)
		}
		hasher := rfc6962.DefaultHasher
		rootOf := func(n int64) tlog.Hash {
			var h tlog.Hash
			copy(h[:], mth(leaves[:n]))
			return h
		}
		view := func(fn func(tx store.Tx) error) {
			t.Helper()
			if err := f.db.View(f.ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		sizes := []int64{1, 2, 3, 7, 8, 9, 16, 17, 31, 32, 33, 49, 50}

		t.Run("ok/tree and leaf hashes match RFC 6962", func(t *testing.T) {
			view(func(tx store.Tx) error {
				for _, n := range sizes {
					got, err := audit.TreeHash(f.ctx, tx, tenantLog, n)
					if err != nil {
						return err
					}
					if got != rootOf(n) {
						t.Errorf("tree hash of size %d differs from RFC 6962", n)
					}
				}
				for seq := range int64(size) {
					got, err := audit.LeafHash(f.ctx, tx, tenantLog, seq)
					if err != nil {
						return err
					}
					if !bytes.Equal(got[:], hasher.HashLeaf(leaves[seq])) {
						t.Errorf("leaf hash of %d differs from RFC 6962", seq)
					}
				}
				return nil
			})
		})
		t.Run("ok/inclusion", func(t *testing.T) {
			view(func(tx store.Tx) error {
				for _, n := range sizes {
					root := rootOf(n)
					for _, seq := range []int64{0, n / 2, n - 1, min(17, n-1)} {
						p, err := audit.InclusionProof(f.ctx, tx, tenantLog, seq, n)
						if err != nil {
							return fmt.Errorf("inclusion %d in %d: %w", seq, n, err)
						}
						leaf := tlog.RecordHash(leaves[seq])
						if err := tlog.CheckRecord(p, n, root, seq, leaf); err != nil {
							t.Errorf("tlog: inclusion of %d in %d: %v", seq, n, err)
						}
						pb := proofBytes(p)
						if err := proof.VerifyInclusion(hasher, uint64(seq), uint64(n), hasher.HashLeaf(leaves[seq]), pb, root[:]); err != nil {
							t.Errorf("merkle: inclusion of %d in %d: %v", seq, n, err)
						}
						// The same proof does not prove another entry.
						other := (seq + 1) % n
						if other != seq {
							if tlog.CheckRecord(p, n, root, seq, tlog.RecordHash(leaves[other])) == nil ||
								proof.VerifyInclusion(hasher, uint64(seq), uint64(n), hasher.HashLeaf(leaves[other]), pb, root[:]) == nil {
								t.Errorf("proof of %d in %d also proves entry %d", seq, n, other)
							}
						}
						if len(pb) > 0 {
							pb[len(pb)/2][0] ^= 1
							p[len(p)/2][0] ^= 1
							if tlog.CheckRecord(p, n, root, seq, leaf) == nil ||
								proof.VerifyInclusion(hasher, uint64(seq), uint64(n), hasher.HashLeaf(leaves[seq]), pb, root[:]) == nil {
								t.Errorf("a corrupted proof of %d in %d verified", seq, n)
							}
						}
					}
				}
				return nil
			})
		})
		t.Run("ok/consistency", func(t *testing.T) {
			view(func(tx store.Tx) error {
				for _, m := range sizes {
					for _, n := range []int64{m, m + 1, 32, 33, size} {
						if n < m || n > size {
							continue
						}
						p, err := audit.ConsistencyProof(f.ctx, tx, tenantLog, m, n)
						if err != nil {
							return fmt.Errorf("consistency %d to %d: %w", m, n, err)
						}
						rm, rn := rootOf(m), rootOf(n)
						if err := tlog.CheckTree(p, n, rn, m, rm); err != nil {
							t.Errorf("tlog: consistency %d to %d: %v", m, n, err)
						}
						pb := proofBytes(p)
						if err := proof.VerifyConsistency(hasher, uint64(m), uint64(n), pb, rm[:], rn[:]); err != nil {
							t.Errorf("merkle: consistency %d to %d: %v", m, n, err)
						}
						if m < n && m > 1 {
							// A different older tree is not consistent.
							wrong := rootOf(m - 1)
							if tlog.CheckTree(p, n, rn, m, wrong) == nil ||
								proof.VerifyConsistency(hasher, uint64(m), uint64(n), pb, wrong[:], rn[:]) == nil {
								t.Errorf("consistency %d to %d accepted the root of size %d", m, n, m-1)
							}
						}
					}
				}
				return nil
			})
		})
		t.Run("fail/outside the tree", func(t *testing.T) {
			view(func(tx store.Tx) error {
				for _, c := range []struct{ seq, n int64 }{{5, 5}, {-1, 5}, {0, 0}} {
					if _, err := audit.InclusionProof(f.ctx, tx, tenantLog, c.seq, c.n); !errors.Is(err, audit.ErrBeyondTree) {
						t.Errorf("inclusion of %d in %d: %v, want ErrBeyondTree", c.seq, c.n, err)
					}
				}
				for _, c := range []struct{ m, n int64 }{{0, 5}, {6, 5}, {-1, 5}} {
					if _, err := audit.ConsistencyProof(f.ctx, tx, tenantLog, c.m, c.n); !errors.Is(err, audit.ErrBeyondTree) {
						t.Errorf("consistency %d to %d: %v, want ErrBeyondTree", c.m, c.n, err)
					}
				}
				// Past the stored tree the hashes are missing: an error, never
				// a proof.
				if p, err := audit.InclusionProof(f.ctx, tx, tenantLog, 3, size+7); err == nil {
					t.Errorf("inclusion in a tree larger than the log: %d hashes, no error", len(p))
				}
				if p, err := audit.ConsistencyProof(f.ctx, tx, tenantLog, 3, size+7); err == nil {
					t.Errorf("consistency to a tree larger than the log: %d hashes, no error", len(p))
				}
				return nil
			})
		})
	})
}

func TestPrune(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		f := newFixture(t, e)
		f.append(tenantLog, 0, 30)
		f.checkpoint(tenantLog)
		// Entry i was appended at start + (i+1) minutes.
		cut := f.events(tenantLog)[12].Time
		prune := func(before time.Time) int64 {
			t.Helper()
			var n int64
			err := f.db.Update(f.ctx, func(tx store.Tx) error {
				var err error
				n, err = audit.Prune(f.ctx, tx, time.Now(), tenantLog, before)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		t.Run("ok/nothing older", func(t *testing.T) {
			if n := prune(f.events(tenantLog)[0].Time); n != 0 {
				t.Fatalf("pruned %d entries before the first", n)
			}
		})
		t.Run("ok/prune keeps the tree", func(t *testing.T) {
			if n := prune(cut); n != 12 {
				t.Fatalf("pruned %d, want 12", n)
			}
			if n := prune(cut); n != 0 {
				t.Fatalf("pruning again pruned %d", n)
			}
			exp := f.export(tenantLog)
			rep := f.verify(exp)
			wantOK(t, rep)
			// 30 entries and the audit.prune entry that records the pruning.
			if rep.Pruned != 12 || rep.Entries != 31 || rep.Size != 31 {
				t.Fatalf("report %+v", rep)
			}
			_, lines := exportLines(t, exp)
			for _, ln := range lines {
				if ln.Seq == nil {
					continue
				}
				if pruned := *ln.Seq < 12; ln.Pruned != pruned || (ln.Entry == nil) != pruned || ln.LeafHash == "" {
					t.Fatalf("line of entry %d: pruned=%v body=%v leaf=%q", *ln.Seq, ln.Pruned, ln.Entry != nil, ln.LeafHash)
				}
			}
			for _, ev := range f.events(tenantLog)[:12] {
				if !ev.Pruned || ev.Action != "" || ev.ActorID != "" || string(ev.Details) != "{}" {
					t.Fatalf("pruned event %d keeps its body: %+v", ev.Seq, ev)
				}
			}
		})
		t.Run("ok/later checkpoints and proofs after pruning", func(t *testing.T) {
			f.append(tenantLog, 30, 41)
			if c := f.checkpoint(tenantLog); c.Size != 42 {
				t.Fatalf("checkpoint size %d", c.Size)
			}
			rep := f.verify(f.export(tenantLog))
			wantOK(t, rep)
			// Checkpoints at 30, 31 (the export above) and 42.
			if rep.Pruned != 12 || rep.Size != 42 || rep.Checkpoints != 3 {
				t.Fatalf("report %+v", rep)
			}
			err := f.db.View(f.ctx, func(tx store.Tx) error {
				root, err := audit.TreeHash(f.ctx, tx, tenantLog, 42)
				if err != nil {
					return err
				}
				leaf, err := audit.LeafHash(f.ctx, tx, tenantLog, 3)
				if err != nil {
					return err
				}
				p, err := audit.InclusionProof(f.ctx, tx, tenantLog, 3, 42)
				if err != nil {
					return err
				}
				return tlog.CheckRecord(p, 42, root, 3, leaf)
			})
			if err != nil {
				t.Fatalf("inclusion proof of a pruned entry: %v", err)
			}
		})
		t.Run("fail/a pruned body cannot be restored", func(t *testing.T) {
			// Undoing a prune with invented content is a modification.
			f.exec(`UPDATE audit_events SET pruned = 0, action = 'secret.read', actor_type = 'person', actor_id = 'psn_0001'
				WHERE log_id = $1 AND seq = 5`, tenantLog)
			rep := f.verify(f.export(tenantLog))
			if rep.OK() || rep.Problems[0].Seq != 5 || rep.Problems[0].Kind != audit.ProblemModified {
				t.Fatalf("report %+v, want modified at 5", rep.Problems)
			}
		})
	})
}

func TestAppendAtomic(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		boom := errors.New("boom")
		hashes := func(f *fixture) int64 {
			return f.count(`SELECT COUNT(*) FROM audit_hashes WHERE log_id = $1`, tenantLog)
		}
		t.Run("ok/failed update leaves nothing", func(t *testing.T) {
			f := newFixture(t, e)
			f.append(tenantLog, 0, 7)
			before := hashes(f)
			err := f.db.Update(f.ctx, func(tx store.Tx) error {
				for i := range 3 {
					if err := audit.Append(f.ctx, tx, f.clock.Now(), audit.Entry{Log: tenantLog, Action: fmt.Sprint("doomed.", i)}); err != nil {
						return err
					}
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("update: %v", err)
			}
			if n := f.count(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1`, tenantLog); n != 7 {
				t.Fatalf("%d events after a failed update, want 7", n)
			}
			if n := hashes(f); n != before || n != tlog.StoredHashCount(7) {
				t.Fatalf("%d hashes after a failed update, want %d", n, before)
			}
			if n := f.count(`SELECT size FROM audit_logs WHERE log_id = $1`, tenantLog); n != 7 {
				t.Fatalf("log size %d after a failed update, want 7", n)
			}
			f.append(tenantLog, 7, 8)
			if evs := f.events(tenantLog); evs[len(evs)-1].Seq != 7 || strings.HasPrefix(evs[len(evs)-1].Action, "doomed") {
				t.Fatalf("next append: %+v", evs[len(evs)-1])
			}
			rep := f.verify(f.export(tenantLog))
			wantOK(t, rep)
			if rep.Size != 8 {
				t.Fatalf("report %+v", rep)
			}
		})
		t.Run("ok/first append of a new log rolled back", func(t *testing.T) {
			f := newFixture(t, e)
			err := f.db.Update(f.ctx, func(tx store.Tx) error {
				if err := audit.Append(f.ctx, tx, f.clock.Now(), audit.Entry{Log: tenantLog, Action: "doomed"}); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatal(err)
			}
			if n := f.count(`SELECT COUNT(*) FROM audit_logs WHERE log_id = $1`, tenantLog) + hashes(f); n != 0 {
				t.Fatalf("a failed first append left %d rows", n)
			}
			f.append(tenantLog, 0, 1)
			wantOK(t, f.verify(f.export(tenantLog)))
		})
		t.Run("ok/concurrent updates, some failing", func(t *testing.T) {
			// On SQLite concurrent updates share one transaction (group
			// commit); a failing one must roll back alone.
			f := newFixture(t, e)
			const workers, each = 8, 12
			var wg sync.WaitGroup
			var mu sync.Mutex
			committed := 0
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						fail := (w+i)%3 == 0
						err := f.db.Update(f.ctx, func(tx store.Tx) error {
							if err := audit.Append(f.ctx, tx, f.clock.Now(), audit.Entry{Log: tenantLog, Action: "concurrent",
								Details: map[string]any{"w": w, "i": i, "fail": fail}}); err != nil {
								return err
							}
							if fail {
								return boom
							}
							return nil
						})
						if fail != errors.Is(err, boom) || (!fail && err != nil) {
							t.Errorf("worker %d update %d: %v", w, i, err)
						}
						if err == nil {
							mu.Lock()
							committed++
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			n := int64(committed)
			if got := f.count(`SELECT COUNT(*) FROM audit_events WHERE log_id = $1`, tenantLog); got != n {
				t.Fatalf("%d events, %d committed updates", got, n)
			}
			if got := hashes(f); got != tlog.StoredHashCount(n) {
				t.Fatalf("%d hashes, want %d for %d entries", got, tlog.StoredHashCount(n), n)
			}
			for _, ev := range f.events(tenantLog) {
				if bytes.Contains(ev.Details, []byte(`"fail":true`)) {
					t.Fatalf("a failed update's entry committed: %s", ev.Details)
				}
			}
			rep := f.verify(f.export(tenantLog))
			wantOK(t, rep)
			if rep.Size != n || rep.Entries != n {
				t.Fatalf("report %+v, want %d entries", rep, n)
			}
		})
	})
}

// leafHashOf is the base64 leaf hash of l.
func leafHashOf(t testing.TB, l audit.Leaf) string {
	t.Helper()
	h, err := l.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(h[:])
}
