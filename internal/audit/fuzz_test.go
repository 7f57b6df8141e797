package audit_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/store"
)

// FuzzVerify feeds the export parser mutations of a genuine export (12
// entries, checkpoints at 4, 9 and 12, the first two entries pruned). Verify
// must never panic, and whatever it calls OK must be genuine: the signed
// checkpoint is one the log signed, every entry it covers is present, and
// every entry body in the input that the checkpoint covers is the genuine
// one (equal canonical encoding). Bodies may be missing only as pruned
// lines, as a prefix recorded by an audit.prune entry.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f, engines[0])
	fx.append(tenantLog, 0, 4)
	fx.checkpoint(tenantLog)
	fx.append(tenantLog, 4, 9)
	fx.checkpoint(tenantLog)
	fx.append(tenantLog, 9, 12)
	var genuine [][]byte // canonical leaf bytes by seq, before pruning
	for _, ev := range fx.events(tenantLog) {
		b, err := audit.LeafOf(&ev).Bytes()
		if err != nil {
			f.Fatal(err)
		}
		genuine = append(genuine, b)
	}
	err := fx.db.Update(fx.ctx, func(tx store.Tx) error {
		_, err := audit.Prune(fx.ctx, tx, time.Now(), tenantLog, fx.events(tenantLog)[2].Time)
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	// The audit.prune entry that records the pruning.
	for _, ev := range fx.events(tenantLog)[len(genuine):] {
		b, err := audit.LeafOf(&ev).Bytes()
		if err != nil {
			f.Fatal(err)
		}
		genuine = append(genuine, b)
	}
	good := fx.export(tenantLog)
	vk := fx.publicKey()
	roots := map[int64]string{} // every checkpoint the log signed
	for _, c := range fx.pushed.cps {
		roots[c.Size] = base64.StdEncoding.EncodeToString(c.Root)
	}
	if rep := fx.verify(good); !rep.OK() || rep.Size != 13 || rep.Pruned != 2 || len(roots) != 3 {
		f.Fatalf("seed export: %+v, %d checkpoints", rep, len(roots))
	}

	lines := func() [][]byte {
		ls := bytes.Split(bytes.TrimSuffix(bytes.Clone(good), []byte("\n")), []byte("\n"))
		for i := range ls {
			ls[i] = bytes.Clone(ls[i])
		}
		return ls
	}
	join := func(ls [][]byte) []byte { return append(bytes.Join(ls, []byte("\n")), '\n') }
	f.Add(good)
	f.Add(bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")))
	f.Add(good[:len(good)/2])
	{
		ls := lines()
		i, j := lineOf(f, ls, 5), lineOf(f, ls, 8)
		ls[i], ls[j] = ls[j], ls[i]
		f.Add(join(ls))
	}
	{
		ls := lines()
		i := lineOf(f, ls, 6)
		f.Add(join(append(ls[:i], ls[i+1:]...)))
	}
	{
		ls := lines()
		i := lineOf(f, ls, 6)
		f.Add(join(append(ls[:i+1], append([][]byte{ls[i]}, ls[i+1:]...)...)))
	}
	{
		ls := lines()
		editEntry(f, ls, lineOf(f, ls, 7), func(ln *audit.ExportLine) { ln.Pruned = true; ln.Entry.Action = "forged" })
		f.Add(join(ls))
	}
	{
		ls := lines()
		editEntry(f, ls, lineOf(f, ls, 7), func(ln *audit.ExportLine) { ln.Entry.Target = "forged" })
		f.Add(join(ls))
	}
	{
		// The header carries the checkpoint of size 4; the rest uncovered.
		ls := lines()
		var older audit.ExportLine
		if err := json.Unmarshal(ls[1], &older); err != nil || older.Checkpoint == "" {
			f.Fatalf("line 2 is not a checkpoint: %s", ls[1])
		}
		editHeader(f, ls, func(h *audit.ExportHeader) { h.Checkpoint = older.Checkpoint })
		f.Add(join(append(ls[:1], ls[3:]...)))
	}
	f.Add([]byte(`{"format":"custodia-audit-export/v1"}` + "\n" + `{"seq":0}` + "\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := audit.Verify(bytes.NewReader(data), vk)
		if err != nil {
			if rep != nil {
				t.Fatalf("both a report and an error (%v)", err)
			}
			return
		}
		if rep == nil {
			t.Fatal("neither a report nor an error")
		}
		if !rep.OK() {
			if len(rep.Problems) > 100 {
				t.Fatalf("%d problems, more than the cap", len(rep.Problems))
			}
			return
		}
		if root, ok := roots[rep.Size]; !ok || root != rep.Root {
			t.Fatalf("OK with a checkpoint the log never signed: size %d root %s", rep.Size, rep.Root)
		}
		if rep.Log != tenantLog {
			t.Fatalf("OK for log %q, want %q", rep.Log, tenantLog)
		}
		if rep.Entries-rep.Uncovered != rep.Size || rep.Pruned > rep.Size {
			t.Fatalf("OK with %d entries (%d uncovered, %d pruned) for size %d", rep.Entries, rep.Uncovered, rep.Pruned, rep.Size)
		}
		// Every covered entry body a reader of the input would see is the
		// genuine one.
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 16<<20)
		sc.Scan() // header
		for sc.Scan() {
			var ln audit.ExportLine
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ln); err != nil {
				t.Fatalf("OK but a line does not decode: %v: %q", err, sc.Bytes())
			}
			if ln.Entry == nil {
				continue
			}
			if ln.Seq == nil {
				t.Fatalf("OK with a body on a line without seq: %q", sc.Bytes())
			}
			if *ln.Seq >= rep.Size {
				continue // uncovered: not vouched for, and reported as such
			}
			b, err := ln.Entry.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, genuine[*ln.Seq]) {
				t.Fatalf("OK with a forged body for entry %d:\n got %s\nwant %s", *ln.Seq, b, genuine[*ln.Seq])
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	})
}
