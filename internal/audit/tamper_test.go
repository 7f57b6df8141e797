package audit_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/store"
)

// The tamper tests play an attacker who can write to the database but does
// not hold the root key (so cannot sign checkpoints): each edits the tables
// directly, then the log is exported and verified as an auditor would.

const bodyCols = `at, actor_type, actor_id, action, target, result, source_ip, user_agent, request_id, details`

// setBody overwrites the body of entry seq with ev's.
func (f *fixture) setBody(seq int64, ev store.AuditEvent) {
	f.t.Helper()
	f.exec(`UPDATE audit_events SET at = $1, actor_type = $2, actor_id = $3, action = $4, target = $5, result = $6,
		source_ip = $7, user_agent = $8, request_id = $9, details = $10 WHERE log_id = $11 AND seq = $12`,
		ev.Time.UnixMicro(), ev.ActorType, ev.ActorID, ev.Action, ev.Target, ev.Result, ev.SourceIP, ev.UserAgent, ev.RequestID,
		string(ev.Details), tenantLog, seq)
}

// forge returns entry seq as stored, edited to say something else.
func (f *fixture) forge(seq int64) store.AuditEvent {
	f.t.Helper()
	ev := f.events(tenantLog)[seq]
	ev.Action, ev.Target, ev.Details = "secret.read", "secret/nobody-read-this", []byte(`{"forged":true}`)
	return ev
}

func (f *fixture) setHash(idx int64, h tlog.Hash) {
	f.t.Helper()
	f.exec(`UPDATE audit_hashes SET hash = $1 WHERE log_id = $2 AND idx = $3`, h[:], tenantLog, idx)
}

// rewriteTree replaces the log's stored hashes with those of its current
// entries, as an attacker who knows the (public) tree layout would.
func (f *fixture) rewriteTree() {
	f.t.Helper()
	f.exec(`DELETE FROM audit_hashes WHERE log_id = $1`, tenantLog)
	var all []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = all[x]
		}
		return out, nil
	})
	for _, ev := range f.events(tenantLog) {
		b, err := audit.LeafOf(&ev).Bytes()
		if err != nil {
			f.t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(ev.Seq, b, r)
		if err != nil {
			f.t.Fatal(err)
		}
		all = append(all, hs...)
	}
	for i, h := range all {
		f.exec(`INSERT INTO audit_hashes (log_id, idx, hash) VALUES ($1, $2, $3)`, tenantLog, int64(i), h[:])
	}
}

func (f *fixture) checkpoints() int64 {
	f.t.Helper()
	return f.count(`SELECT COUNT(*) FROM audit_checkpoints WHERE log_id = $1`, tenantLog)
}

var between = regexp.MustCompile(`between entries (\d+) and (\d+)`)

// wantFirst checks that the report's first problem is kind at seq.
func wantFirst(t *testing.T, rep *audit.Report, kind string, seq int64) {
	t.Helper()
	if rep.OK() {
		t.Fatalf("tampering not detected: %+v", rep)
	}
	if p := rep.Problems[0]; p.Kind != kind || p.Seq != seq {
		t.Fatalf("first problem %+v, want %s at %d (all: %+v)", p, kind, seq, rep.Problems)
	}
}

// wantLocalized checks that a root mismatch names a span holding seq, no
// wider than width.
func wantLocalized(t *testing.T, rep *audit.Report, seq, width int64) {
	t.Helper()
	for _, p := range rep.Problems {
		if p.Kind != audit.ProblemRoot {
			continue
		}
		m := between.FindStringSubmatch(p.Message)
		if m == nil {
			t.Fatalf("root mismatch names no span: %q", p.Message)
		}
		lo, _ := strconv.ParseInt(m[1], 10, 64)
		hi, _ := strconv.ParseInt(m[2], 10, 64)
		if seq < lo || seq > hi || hi-lo+1 > width {
			t.Fatalf("root mismatch names entries %d to %d, want a span of at most %d holding %d: %q", lo, hi, width, seq, p.Message)
		}
		return
	}
	t.Fatalf("no root mismatch in %+v", rep.Problems)
}

func TestTamperDatabase(t *testing.T) {
	// Every case starts from 50 entries checkpointed every 10 entries (or
	// only at 50 when sparse).
	cases := []struct {
		name   string
		sparse bool
		tamper func(t *testing.T, f *fixture)
		check  func(t *testing.T, f *fixture, rep *audit.Report)
	}{
		{name: "ok/untouched", check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantOK(t, rep)
			if rep.Size != 50 || rep.Entries != 50 || rep.Checkpoints != 5 {
				t.Fatalf("report %+v", rep)
			}
		}},
		{name: "fail/edit a row", tamper: func(t *testing.T, f *fixture) {
			f.exec(`UPDATE audit_events SET action = 'secret.read', target = 'secret/other', details = '{"forged":true}'
				WHERE log_id = $1 AND seq = 17`, tenantLog)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemModified, 17)
		}},
		{name: "fail/edit only the time", tamper: func(t *testing.T, f *fixture) {
			f.exec(`UPDATE audit_events SET at = at + 1 WHERE log_id = $1 AND seq = 17`, tenantLog)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemModified, 17)
		}},
		{name: "fail/delete a row", tamper: func(t *testing.T, f *fixture) {
			f.exec(`DELETE FROM audit_events WHERE log_id = $1 AND seq = 17`, tenantLog)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemDropped, 17)
			if rep.Entries != 49 {
				t.Fatalf("%d entries", rep.Entries)
			}
		}},
		{name: "fail/delete the first row", tamper: func(t *testing.T, f *fixture) {
			f.exec(`DELETE FROM audit_events WHERE log_id = $1 AND seq = 0`, tenantLog)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemDropped, 0)
		}},
		{name: "fail/swap the bodies of two rows", tamper: func(t *testing.T, f *fixture) {
			evs := f.events(tenantLog)
			f.setBody(17, evs[30])
			f.setBody(30, evs[17])
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemModified, 17)
			if len(rep.Problems) < 2 || rep.Problems[1].Kind != audit.ProblemModified || rep.Problems[1].Seq != 30 {
				t.Fatalf("second problem is not entry 30 modified: %+v", rep.Problems)
			}
		}},
		{name: "fail/swap the sequence numbers of two rows", tamper: func(t *testing.T, f *fixture) {
			f.exec(`UPDATE audit_events SET seq = -1 WHERE log_id = $1 AND seq = 17`, tenantLog)
			f.exec(`UPDATE audit_events SET seq = 17 WHERE log_id = $1 AND seq = 30`, tenantLog)
			f.exec(`UPDATE audit_events SET seq = 30 WHERE log_id = $1 AND seq = -1`, tenantLog)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemModified, 17)
		}},
		{name: "fail/mark a row pruned in the middle", tamper: func(t *testing.T, f *fixture) {
			// Pruning erases only a recorded prefix, so a body erased in the
			// middle is an edit.
			f.exec(`UPDATE audit_events SET action = '', target = '', details = '{}', pruned = 1 WHERE log_id = $1 AND seq = 17`, tenantLog)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemModified, 17)
		}},
		{name: "fail/mark the oldest rows pruned without recording it", tamper: func(t *testing.T, f *fixture) {
			f.exec(`UPDATE audit_events SET action = '', target = '', details = '{}', pruned = 1 WHERE log_id = $1 AND seq < 5`, tenantLog)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemModified, 4)
		}},
		{name: "fail/insert a row past the end", tamper: func(t *testing.T, f *fixture) {
			ev := f.forge(49)
			f.exec(`INSERT INTO audit_events (log_id, seq, `+bodyCols+`, pruned) VALUES ($1, 50, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0)`,
				tenantLog, ev.Time.UnixMicro(), ev.ActorType, ev.ActorID, ev.Action, ev.Target, ev.Result, ev.SourceIP, ev.UserAgent, ev.RequestID, string(ev.Details))
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemInserted, 50)
			if f.checkpoints() != 5 {
				t.Fatal("the export signed a checkpoint over the inserted row")
			}
		}},
		{name: "fail/edit a row and recompute its leaf hash", sparse: true, tamper: func(t *testing.T, f *fixture) {
			ev := f.forge(17)
			f.setBody(17, ev)
			h, err := audit.LeafOf(&ev).Hash()
			if err != nil {
				t.Fatal(err)
			}
			f.setHash(tlog.StoredHashIndex(0, 17), h)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemRoot, -1)
			wantLocalized(t, rep, 17, 50)
		}},
		{name: "fail/edit a row and recompute its leaf hash, localized by earlier checkpoints", tamper: func(t *testing.T, f *fixture) {
			ev := f.forge(17)
			f.setBody(17, ev)
			h, err := audit.LeafOf(&ev).Hash()
			if err != nil {
				t.Fatal(err)
			}
			f.setHash(tlog.StoredHashIndex(0, 17), h)
			// Later appends build on the stored (original) interior hashes,
			// so the next signed checkpoint does not absorb the forgery.
			f.append(tenantLog, 50, 53)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemRoot, -1)
			wantLocalized(t, rep, 17, 10)
			if rep.Size != 53 {
				t.Fatalf("newest checkpoint %d, want 53", rep.Size)
			}
		}},
		{name: "fail/truncate the tail with the old checkpoint still newest", tamper: func(t *testing.T, f *fixture) {
			f.exec(`DELETE FROM audit_events WHERE log_id = $1 AND seq >= 45`, tenantLog)
			f.exec(`DELETE FROM audit_hashes WHERE log_id = $1 AND idx >= $2`, tenantLog, tlog.StoredHashIndex(0, 45))
			f.exec(`UPDATE audit_logs SET size = 45 WHERE log_id = $1`, tenantLog)
			// The log shrank: no new checkpoint is signed, the newest stays 50.
			c := f.checkpoint(tenantLog)
			if c.Size != 50 || f.checkpoints() != 5 {
				t.Fatalf("after truncation the newest checkpoint is %d (%d stored)", c.Size, f.checkpoints())
			}
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemDropped, 45)
			if rep.Size != 50 || rep.Entries != 45 || f.checkpoints() != 5 {
				t.Fatalf("report %+v, %d checkpoints", rep, f.checkpoints())
			}
		}},
		{name: "fail/truncate the tail and grow past it again", tamper: func(t *testing.T, f *fixture) {
			f.exec(`DELETE FROM audit_events WHERE log_id = $1 AND seq >= 45`, tenantLog)
			f.exec(`DELETE FROM audit_hashes WHERE log_id = $1 AND idx >= $2`, tenantLog, tlog.StoredHashIndex(0, 45))
			f.exec(`UPDATE audit_logs SET size = 45 WHERE log_id = $1`, tenantLog)
			// Honest traffic resumes; the node signs size 56 over the
			// rewritten tail, which no earlier checkpoint agrees with.
			f.append(tenantLog, 100, 111)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			// The node refuses to sign a tree that does not extend its
			// newest checkpoint, so the export is checked against size 50.
			if rep.Size != 50 || f.checkpoints() != 5 {
				t.Fatalf("newest checkpoint %d (%d stored), want 50 and no new one", rep.Size, f.checkpoints())
			}
			if rep.OK() || rep.Problems[0].Kind != audit.ProblemRoot {
				t.Fatalf("report %+v, want a root mismatch first", rep.Problems)
			}
		}},
		{name: "fail/rewrite an entry and the whole tree, then let the node sign", tamper: func(t *testing.T, f *fixture) {
			f.setBody(17, f.forge(17))
			f.rewriteTree()
			f.append(tenantLog, 50, 55)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			// The node refuses to sign the forged tree; against its newest
			// good checkpoint (50) the damage is localized to 10..19.
			if rep.Size != 50 {
				t.Fatalf("newest checkpoint %d, want 50", rep.Size)
			}
			if rep.OK() || rep.Problems[0].Kind != audit.ProblemRoot || !strings.Contains(rep.Problems[0].Message, "between entries 10 and 19") {
				t.Fatalf("report %+v, want a root mismatch localized to 10..19", rep.Problems)
			}
		}},
		{name: "fail/rewrite the tree and delete the stored checkpoints: caught by a pushed checkpoint", tamper: func(t *testing.T, f *fixture) {
			f.setBody(17, f.forge(17))
			f.rewriteTree()
			f.exec(`DELETE FROM audit_checkpoints WHERE log_id = $1`, tenantLog)
			f.append(tenantLog, 50, 55)
		}, check: func(t *testing.T, f *fixture, rep *audit.Report) {
			// A known limit: with every stored checkpoint gone the export
			// alone cannot tell, because the node signed the forged tree
			// (Checkpoint signs whatever the stored tree says). An auditor
			// who kept a checkpoint pushed off the box adds it as a line.
			if !rep.OK() || rep.Size != 55 || rep.Checkpoints != 1 {
				t.Fatalf("the export alone: %+v; if this now fails, the limit is lifted: update this case", rep)
			}
			exp := f.export(tenantLog)
			off, _ := json.Marshal(audit.ExportLine{Checkpoint: f.pushed.cps[4].Note}) // size 50
			withPushed := append(append(bytes.Clone(exp), off...), '\n')
			wantFirst(t, f.verify(withPushed), audit.ProblemRoot, 49)
		}},
	}
	forEachEngine(t, func(t *testing.T, e engine) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f := newFixture(t, e)
				for n := 10; n <= 50; n += 10 {
					f.append(tenantLog, n-10, n)
					if !c.sparse || n == 50 {
						f.checkpoint(tenantLog)
					}
				}
				if c.tamper != nil {
					c.tamper(t, f)
				}
				c.check(t, f, f.verify(f.export(tenantLog)))
			})
		}
		t.Run("fail/insert a row past the end and grow the log", func(t *testing.T) {
			// Without the row's tree hashes the node cannot checkpoint the
			// grown log, so it refuses to export rather than sign.
			f := newFixture(t, e)
			f.append(tenantLog, 0, 20)
			f.checkpoint(tenantLog)
			ev := f.forge(19)
			f.exec(`INSERT INTO audit_events (log_id, seq, `+bodyCols+`, pruned) VALUES ($1, 20, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0)`,
				tenantLog, ev.Time.UnixMicro(), ev.ActorType, ev.ActorID, ev.Action, ev.Target, ev.Result, ev.SourceIP, ev.UserAgent, ev.RequestID, string(ev.Details))
			f.exec(`UPDATE audit_logs SET size = 21 WHERE log_id = $1`, tenantLog)
			var b bytes.Buffer
			if err := f.log.ExportJSONL(f.ctx, &b, tenantLog); err == nil {
				t.Fatalf("export signed a checkpoint over a row with no tree hashes:\n%s", b.Bytes())
			}
			if f.checkpoints() != 1 {
				t.Fatalf("%d checkpoints", f.checkpoints())
			}
		})
	})
}

// goodExport is a verified export of 50 entries with checkpoints at 20, 35
// and 50.
func goodExport(t *testing.T, e engine) (*fixture, []byte) {
	t.Helper()
	f := newFixture(t, e)
	f.append(tenantLog, 0, 20)
	f.checkpoint(tenantLog)
	f.append(tenantLog, 20, 35)
	f.checkpoint(tenantLog)
	f.append(tenantLog, 35, 50)
	exp := f.export(tenantLog)
	wantOK(t, f.verify(exp))
	return f, exp
}

// lineOf returns the index in lines of entry seq.
func lineOf(t testing.TB, lines [][]byte, seq int64) int {
	t.Helper()
	want := fmt.Sprintf(`{"seq":%d,`, seq)
	for i, l := range lines {
		if bytes.HasPrefix(l, []byte(want)) {
			return i
		}
	}
	t.Fatalf("no line for entry %d", seq)
	return -1
}

// editEntry decodes line i, lets fn change it and encodes it back.
func editEntry(t testing.TB, lines [][]byte, i int, fn func(*audit.ExportLine)) {
	t.Helper()
	var ln audit.ExportLine
	if err := json.Unmarshal(lines[i], &ln); err != nil {
		t.Fatal(err)
	}
	fn(&ln)
	b, err := json.Marshal(ln)
	if err != nil {
		t.Fatal(err)
	}
	lines[i] = b
}

func editHeader(t testing.TB, lines [][]byte, fn func(*audit.ExportHeader)) {
	t.Helper()
	var h audit.ExportHeader
	if err := json.Unmarshal(lines[0], &h); err != nil {
		t.Fatal(err)
	}
	fn(&h)
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	lines[0] = b
}

func TestTamperExport(t *testing.T) {
	otherKey := func(t *testing.T) string {
		_, vk, err := note.GenerateKey(rand.Reader, "someone-else")
		if err != nil {
			t.Fatal(err)
		}
		return vk
	}
	cases := []struct {
		name string
		// edit changes the export's lines (the header is lines[0]).
		edit func(t *testing.T, lines [][]byte) [][]byte
		// key, when set, is the public key to verify with.
		key   func(t *testing.T) string
		check func(t *testing.T, rep *audit.Report)
	}{
		{name: "ok/untouched", check: func(t *testing.T, rep *audit.Report) {
			wantOK(t, rep)
			if rep.Entries != 50 || rep.Size != 50 || rep.Checkpoints != 3 {
				t.Fatalf("report %+v", rep)
			}
		}},
		{name: "ok/insignificant whitespace and escapes", edit: func(t *testing.T, lines [][]byte) [][]byte {
			// JSON that decodes to the same entry is the same entry.
			i := lineOf(t, lines, 9)
			lines[i] = bytes.Replace(lines[i], []byte(`"details":{`), []byte(`"details": {`), 1)
			lines[i] = bytes.Replace(lines[i], []byte(`"action":"s`), []byte(`"action":"\u0073`), 1)
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantOK(t, rep) }},
		{name: "ok/an older checkpoint in the header leaves later entries uncovered", edit: func(t *testing.T, lines [][]byte) [][]byte {
			var older audit.ExportLine
			if err := json.Unmarshal(lines[1], &older); err != nil || older.Checkpoint == "" {
				t.Fatalf("line 2 is not an earlier checkpoint: %s", lines[1])
			}
			editHeader(t, lines, func(h *audit.ExportHeader) { h.Checkpoint = older.Checkpoint })
			// Drop the earlier checkpoints (20 and 35), as an export made
			// at size 20 would have none.
			return append(lines[:1], lines[3:]...)
		}, check: func(t *testing.T, rep *audit.Report) {
			wantOK(t, rep)
			if rep.Size != 20 || rep.Entries != 50 || rep.Uncovered != 30 {
				t.Fatalf("report %+v, want size 20 with 30 entries uncovered", rep)
			}
		}},
		{name: "fail/edit an entry field", edit: func(t *testing.T, lines [][]byte) [][]byte {
			editEntry(t, lines, lineOf(t, lines, 17), func(ln *audit.ExportLine) { ln.Entry.ActorID = "psn_innocent" })
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemModified, 17) }},
		{name: "fail/edit the details", edit: func(t *testing.T, lines [][]byte) [][]byte {
			editEntry(t, lines, lineOf(t, lines, 17), func(ln *audit.ExportLine) { ln.Entry.Details = json.RawMessage(`{"version":1}`) })
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemModified, 17) }},
		{name: "fail/edit a leaf hash", edit: func(t *testing.T, lines [][]byte) [][]byte {
			editEntry(t, lines, lineOf(t, lines, 17), func(ln *audit.ExportLine) {
				ln.LeafHash = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
			})
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemModified, 17) }},
		{name: "fail/edit an entry and its leaf hash", edit: func(t *testing.T, lines [][]byte) [][]byte {
			editEntry(t, lines, lineOf(t, lines, 17), func(ln *audit.ExportLine) {
				ln.Entry.Action = "secret.read"
				ln.LeafHash = leafHashOf(t, *ln.Entry)
			})
			return lines
		}, check: func(t *testing.T, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemRoot, -1)
			wantLocalized(t, rep, 17, 20)
		}},
		{name: "fail/delete an entry line", edit: func(t *testing.T, lines [][]byte) [][]byte {
			i := lineOf(t, lines, 17)
			return append(lines[:i], lines[i+1:]...)
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemDropped, 17) }},
		{name: "fail/delete the last lines", edit: func(t *testing.T, lines [][]byte) [][]byte {
			return lines[:len(lines)-3]
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemDropped, 47) }},
		{name: "fail/swap two entry lines", edit: func(t *testing.T, lines [][]byte) [][]byte {
			i, j := lineOf(t, lines, 17), lineOf(t, lines, 30)
			lines[i], lines[j] = lines[j], lines[i]
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemReordered, 17) }},
		{name: "fail/swap two adjacent entry lines", edit: func(t *testing.T, lines [][]byte) [][]byte {
			i := lineOf(t, lines, 17)
			lines[i], lines[i+1] = lines[i+1], lines[i]
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemReordered, 17) }},
		{name: "fail/move a line later and delete another", edit: func(t *testing.T, lines [][]byte) [][]byte {
			// 17 moved after 30, 18 gone: 17 is out of order, 18 dropped.
			i := lineOf(t, lines, 17)
			moved := lines[i]
			lines = append(lines[:i], lines[i+2:]...)
			j := lineOf(t, lines, 30)
			return append(lines[:j+1], append([][]byte{moved}, lines[j+1:]...)...)
		}, check: func(t *testing.T, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemReordered, 17)
			for _, p := range rep.Problems {
				if p.Kind == audit.ProblemDropped && p.Seq == 18 {
					return
				}
			}
			t.Fatalf("entry 18 is not reported dropped: %+v", rep.Problems)
		}},
		{name: "fail/duplicate an entry line", edit: func(t *testing.T, lines [][]byte) [][]byte {
			i := lineOf(t, lines, 17)
			return append(lines[:i+1], append([][]byte{lines[i]}, lines[i+1:]...)...)
		}, check: func(t *testing.T, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemReordered, 17)
			if rep.Entries != 51 {
				t.Fatalf("%d entries", rep.Entries)
			}
		}},
		{name: "fail/renumber an entry", edit: func(t *testing.T, lines [][]byte) [][]byte {
			editEntry(t, lines, lineOf(t, lines, 17), func(ln *audit.ExportLine) { ln.Entry.Seq = 18 })
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemReordered, 17) }},
		{name: "fail/an entry line without its leaf hash", edit: func(t *testing.T, lines [][]byte) [][]byte {
			editEntry(t, lines, lineOf(t, lines, 17), func(ln *audit.ExportLine) { ln.LeafHash = "" })
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemInserted, 17) }},
		{name: "fail/marking an entry pruned in the middle", edit: func(t *testing.T, lines [][]byte) [][]byte {
			editEntry(t, lines, lineOf(t, lines, 17), func(ln *audit.ExportLine) { ln.Pruned, ln.Entry = true, nil })
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemModified, 17) }},
		{name: "fail/mark an entry pruned and forge its body", edit: func(t *testing.T, lines [][]byte) [][]byte {
			// The body of a pruned line is not hashed, so it must not be
			// there at all.
			editEntry(t, lines, lineOf(t, lines, 17), func(ln *audit.ExportLine) {
				ln.Pruned = true
				ln.Entry.Action, ln.Entry.ActorID = "tenant.shred", "psn_innocent"
			})
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemFormat, 17) }},
		{name: "fail/a checkpoint line carrying a forged entry", edit: func(t *testing.T, lines [][]byte) [][]byte {
			// A line that is both a checkpoint and an entry must not pass
			// as a checkpoint while a reader sees the entry.
			var cl audit.ExportLine
			if err := json.Unmarshal(lines[1], &cl); err != nil || cl.Checkpoint == "" {
				t.Fatalf("line 2 is not a checkpoint: %s", lines[1])
			}
			i := lineOf(t, lines, 17)
			extra := [][]byte{bytes.Clone(lines[i])}
			editEntry(t, extra, 0, func(ln *audit.ExportLine) {
				ln.Checkpoint = cl.Checkpoint
				ln.Entry.Action = "tenant.shred"
			})
			return append(lines[:i+1], append(extra, lines[i+1:]...)...)
		}, check: func(t *testing.T, rep *audit.Report) {
			if rep.OK() {
				t.Fatalf("a checkpoint line with a forged entry verified: %+v", rep)
			}
		}},
		{name: "fail/change the checkpoint note text", edit: func(t *testing.T, lines [][]byte) [][]byte {
			editHeader(t, lines, func(h *audit.ExportHeader) { h.Checkpoint = strings.Replace(h.Checkpoint, "\n50\n", "\n49\n", 1) })
			return lines
		}, check: func(t *testing.T, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemFormat, -1)
			if !strings.Contains(rep.Problems[0].Message, "signature") {
				t.Fatalf("problem %+v does not name the signature", rep.Problems[0])
			}
		}},
		{name: "fail/change an earlier checkpoint", edit: func(t *testing.T, lines [][]byte) [][]byte {
			lines[1] = bytes.Replace(lines[1], []byte(`\n20\n`), []byte(`\n21\n`), 1)
			return lines
		}, check: func(t *testing.T, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemFormat, -1)
			if rep.Checkpoints != 2 {
				t.Fatalf("%d checkpoints counted, want 2", rep.Checkpoints)
			}
		}},
		{name: "fail/change the header's log", edit: func(t *testing.T, lines [][]byte) [][]byte {
			editHeader(t, lines, func(h *audit.ExportHeader) { h.Log = "tnt_someoneelse00000" })
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemFormat, -1) }},
		{name: "fail/change the header's origin", edit: func(t *testing.T, lines [][]byte) [][]byte {
			editHeader(t, lines, func(h *audit.ExportHeader) { h.Origin += "x" })
			return lines
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemFormat, -1) }},
		{name: "fail/garbage line", edit: func(t *testing.T, lines [][]byte) [][]byte {
			i := lineOf(t, lines, 17)
			return append(lines[:i], append([][]byte{[]byte(`{"seq":17,"leaf_hash":"AAAA","entry":{"bogus":1}}`)}, lines[i+1:]...)...)
		}, check: func(t *testing.T, rep *audit.Report) { wantFirst(t, rep, audit.ProblemFormat, 17) }},
		{name: "fail/another public key", key: otherKey, check: func(t *testing.T, rep *audit.Report) {
			wantFirst(t, rep, audit.ProblemFormat, -1)
			if !strings.Contains(rep.Problems[0].Message, "signature") {
				t.Fatalf("problem %+v does not name the signature", rep.Problems[0])
			}
		}},
	}
	forEachEngine(t, func(t *testing.T, e engine) {
		f, good := goodExport(t, e)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				lines := bytes.Split(bytes.TrimSuffix(bytes.Clone(good), []byte("\n")), []byte("\n"))
				for i := range lines {
					lines[i] = bytes.Clone(lines[i])
				}
				if c.edit != nil {
					lines = c.edit(t, lines)
				}
				key := f.publicKey()
				if c.key != nil {
					key = c.key(t)
				}
				rep, err := audit.Verify(bytes.NewReader(append(bytes.Join(lines, []byte("\n")), '\n')), key)
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				c.check(t, rep)
			})
		}
	})
	t.Run("fail/unreadable", func(t *testing.T) {
		_, vk, _ := note.GenerateKey(rand.Reader, "k")
		for name, in := range map[string]string{
			"empty":            "",
			"not json":         "hello\n",
			"wrong format":     `{"format":"something-else/v1"}` + "\n",
			"unknown field":    `{"format":"custodia-audit-export/v1","extra":1}` + "\n",
			"line too long":    `{"format":"custodia-audit-export/v1","log":"` + strings.Repeat("a", 17<<20) + `"}`,
			"header truncated": `{"format":"custodia-audit-`,
		} {
			if rep, err := audit.Verify(strings.NewReader(in), vk); err == nil {
				t.Errorf("%s: no error, report %+v", name, rep)
			}
		}
		if _, err := audit.Verify(strings.NewReader("{}"), "not a key"); err == nil {
			t.Error("a bad public key was accepted")
		}
	})
}
