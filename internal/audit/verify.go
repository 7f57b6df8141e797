package audit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Problem kinds found by Verify.
const (
	ProblemModified  = "modified"
	ProblemDropped   = "dropped"
	ProblemInserted  = "inserted"
	ProblemReordered = "reordered"
	ProblemRoot      = "root_mismatch"
	ProblemFormat    = "format"
)

// Problem is one finding. Seq is the entry it concerns (-1 for none).
type Problem struct {
	Seq     int64  `json:"seq"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// Report is the result of verifying an export.
type Report struct {
	Log         string `json:"log"`
	Origin      string `json:"origin"`
	Size        int64  `json:"size"`
	Root        string `json:"root"`
	Entries     int64  `json:"entries"`
	Pruned      int64  `json:"pruned"`
	Checkpoints int    `json:"checkpoints"`
	Uncovered   int64  `json:"uncovered"`
	// Newer counts pushed checkpoints larger than the export's newest;
	// NewestPushed is the largest size among them.
	Newer        int       `json:"newer_pushed,omitempty"`
	NewestPushed int64     `json:"newest_pushed_size,omitempty"`
	Problems     []Problem `json:"problems"`
}

// OK reports whether nothing is wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

const maxProblems = 100

func (r *Report) add(seq int64, kind, format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, Problem{Seq: seq, Kind: kind, Message: fmt.Sprintf(format, args...)})
	}
}

// memHashes is an in-memory tlog hash store.
type memHashes []tlog.Hash

func (m *memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(*m)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = (*m)[x]
	}
	return out, nil
}

// Verify checks an export offline against the log's public key (a note
// verifier key). It needs nothing else: it checks the checkpoint
// signatures, recomputes every leaf and the tree, and names the first entry
// that was modified, dropped, reordered or inserted. An error means the
// export could not be read at all; findings are in the report.
//
// pushed are further checkpoint notes kept elsewhere (the copies pushed off
// the box); those of this log must be consistent with the export too, and
// one larger than the export's newest means entries are missing.
func Verify(r io.Reader, publicKey string, pushed ...string) (*Report, error) {
	v, err := note.NewVerifier(publicKey)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("audit: read export: %w", err)
		}
		return nil, errors.New("audit: export is empty")
	}
	var h ExportHeader
	if err := strictUnmarshal(sc.Bytes(), &h); err != nil || h.Format != ExportFormat {
		return nil, errors.New("audit: not a custodia audit export (bad header line)")
	}
	rep := &Report{Log: h.Log, Origin: h.Origin, Problems: []Problem{}}
	open := func(msg string) (ParsedCheckpoint, error) {
		n, err := note.Open([]byte(msg), note.VerifierList(v))
		if err != nil {
			return ParsedCheckpoint{}, fmt.Errorf("checkpoint signature does not verify with the given key: %v", err)
		}
		c, err := ParseCheckpoint(n.Text)
		if err != nil {
			return c, err
		}
		if c.Origin != h.Origin {
			return c, fmt.Errorf("checkpoint is for %q, export for %q", c.Origin, h.Origin)
		}
		return c, nil
	}
	cp, err := open(h.Checkpoint)
	if err != nil {
		rep.add(-1, ProblemFormat, "%v", err)
		return rep, nil
	}
	rep.Size, rep.Root = cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:])
	rep.Checkpoints = 1
	// The header's log name is not signed; the origin is.
	if inst, _, _ := strings.Cut(strings.TrimPrefix(h.Origin, "custodia.audit/"), "/"); Origin(inst, h.Log) != h.Origin {
		rep.add(-1, ProblemFormat, "the header names log %q but the signed origin is %q", h.Log, h.Origin)
	}

	var earlier []ParsedCheckpoint
	var hashes memHashes
	// A span first reported missing may turn up later in the export: then
	// it was reordered, not dropped, and its problem is restated at the end.
	type gap struct {
		problem int
		lo, hi  int64
		late    map[int64]bool
	}
	var gaps []*gap
	expected := int64(0)
	treeOK := true
	for _, n := range pushed {
		c, err := open(n)
		if err != nil {
			continue // another log's, or not a checkpoint of this key
		}
		if c.Size > cp.Size {
			// Newer than the export: it cannot be checked here, but if the
			// export is fresh, entries were removed. Say so, don't judge.
			rep.Newer++
			rep.NewestPushed = max(rep.NewestPushed, c.Size)
			continue
		}
		earlier = append(earlier, c)
		rep.Checkpoints++
	}
	// Pruning erases the oldest entries only, and records itself.
	sawUnpruned, sawPruneRecord := false, false
	for pl := range parseLines(sc) {
		lineNo, ln := pl.lineNo, pl.line
		if pl.err != nil {
			rep.add(expected, ProblemFormat, "line %d is not a valid export line", lineNo)
			treeOK = false
			continue
		}
		if ln.Checkpoint != "" {
			if ln.Seq != nil || ln.LeafHash != "" || ln.Entry != nil || ln.Pruned {
				rep.add(-1, ProblemFormat, "line %d is both a checkpoint and an entry", lineNo)
				continue
			}
			c, err := open(ln.Checkpoint)
			if err != nil {
				rep.add(-1, ProblemFormat, "line %d: %v", lineNo, err)
				continue
			}
			earlier = append(earlier, c)
			rep.Checkpoints++
			continue
		}
		if ln.Seq == nil {
			rep.add(expected, ProblemFormat, "line %d has neither seq nor checkpoint", lineNo)
			continue
		}
		seq := *ln.Seq
		rep.Entries++
		switch {
		case seq > expected:
			if len(rep.Problems) < maxProblems {
				gaps = append(gaps, &gap{problem: len(rep.Problems), lo: expected, hi: seq - 1, late: map[int64]bool{}})
			}
			if seq == expected+1 {
				rep.add(expected, ProblemDropped, "entry %d is missing", expected)
			} else {
				rep.add(expected, ProblemDropped, "entries %d to %d are missing", expected, seq-1)
			}
			treeOK = false
		case seq < expected:
			var in *gap
			for _, g := range gaps {
				if seq >= g.lo && seq <= g.hi && !g.late[seq] {
					in = g
					break
				}
			}
			if in != nil {
				in.late[seq] = true
				rep.add(seq, ProblemReordered, "entry %d appears late, after entry %d", seq, expected-1)
			} else {
				rep.add(seq, ProblemReordered, "entry %d appears again after entry %d (reordered or inserted)", seq, expected-1)
			}
			treeOK = false
			continue
		}
		expected = seq + 1
		var given tlog.Hash
		if ln.LeafHash == "" {
			rep.add(seq, ProblemInserted, "entry %d is not in the tree: it was inserted", seq)
			treeOK = false
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(ln.LeafHash); err != nil || len(b) != tlog.HashSize {
			rep.add(seq, ProblemFormat, "entry %d: bad leaf hash", seq)
			treeOK = false
			continue
		} else {
			copy(given[:], b)
		}
		leaf := given
		switch {
		case ln.Pruned:
			rep.Pruned++
			if ln.Entry != nil {
				rep.add(seq, ProblemFormat, "entry %d is marked pruned but carries a body, which its leaf hash does not cover", seq)
			}
			if sawUnpruned {
				rep.add(seq, ProblemModified, "entry %d is marked pruned after unpruned entries, but pruning erases only the oldest entries: its body was removed", seq)
			}
		case ln.Entry == nil:
			rep.add(seq, ProblemFormat, "entry %d has no body and is not marked pruned", seq)
		default:
			sawUnpruned = true
			if ln.Entry.Action == "audit.prune" {
				sawPruneRecord = true
			}
			if ln.Entry.Seq != seq {
				rep.add(seq, ProblemReordered, "entry at position %d says it is entry %d", seq, ln.Entry.Seq)
			}
			got, err := pl.leaf, pl.hashErr
			if err != nil {
				rep.add(seq, ProblemFormat, "entry %d: %v", seq, err)
			} else if got != given {
				rep.add(seq, ProblemModified, "entry %d was modified: its content does not match its leaf hash", seq)
			}
			// The tree is built from what the entries say, so a leaf hash
			// forged to match an edited entry still breaks the root.
			leaf = got
		}
		if seq >= cp.Size {
			rep.Uncovered++
			continue
		}
		if treeOK {
			hs, err := tlog.StoredHashesForRecordHash(seq, leaf, &hashes)
			if err != nil {
				return nil, err
			}
			hashes = append(hashes, hs...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit: read export: %w", err)
	}
	for _, g := range gaps {
		n, late := g.hi-g.lo+1, int64(len(g.late))
		p := &rep.Problems[g.problem]
		switch {
		case late == 0:
		case !g.late[g.lo]:
			p.Message += fmt.Sprintf(" (%d of them appear later, out of order)", late)
		case n == 1:
			p.Kind, p.Message = ProblemReordered, fmt.Sprintf("entry %d is out of order: entry %d comes before it", g.lo, g.hi+1)
		case late == n:
			p.Kind, p.Message = ProblemReordered, fmt.Sprintf("entries %d to %d are out of order: entry %d comes before them", g.lo, g.hi, g.hi+1)
		default:
			p.Kind, p.Message = ProblemReordered, fmt.Sprintf("entries %d to %d are out of order: entry %d comes before them, and only %d of them come later", g.lo, g.hi, g.hi+1, late)
			first := g.lo
			for g.late[first] {
				first++
			}
			rep.add(first, ProblemDropped, "%d of entries %d to %d are missing, the first being entry %d", n-late, g.lo, g.hi, first)
		}
	}
	if rep.Pruned > 0 && !sawPruneRecord {
		rep.add(rep.Pruned-1, ProblemModified, "%d entries are marked pruned but no audit.prune entry records a pruning", rep.Pruned)
	}
	if expected < cp.Size {
		rep.add(expected, ProblemDropped, "the export ends at entry %d but the checkpoint covers %d entries", expected, cp.Size)
		treeOK = false
	}
	if !treeOK {
		return rep, nil
	}
	root, err := tlog.TreeHash(cp.Size, &hashes)
	if err != nil {
		return nil, err
	}
	if root != cp.Root && len(rep.Problems) == 0 {
		rep.add(-1, ProblemRoot, "the entries do not hash to the signed checkpoint's root: %s", localize(earlier, &hashes, cp.Size))
		return rep, nil
	}
	if root != cp.Root {
		return rep, nil // the entry problems above explain it
	}
	// Every earlier checkpoint must be a prefix of this tree (consistency).
	for _, c := range earlier {
		if c.Size > cp.Size {
			rep.add(-1, ProblemFormat, "an earlier checkpoint (size %d) is larger than the newest (%d)", c.Size, cp.Size)
			continue
		}
		if c.Size == 0 {
			continue
		}
		if r, err := tlog.TreeHash(c.Size, &hashes); err != nil || r != c.Root {
			rep.add(c.Size-1, ProblemRoot, "checkpoint of size %d is not consistent with the newest: history was rewritten before entry %d", c.Size, c.Size)
		}
	}
	return rep, nil
}

// localize names the span of entries in which the tree first diverges from
// the signed checkpoints.
func localize(earlier []ParsedCheckpoint, hashes *memHashes, size int64) string {
	sort.Slice(earlier, func(i, j int) bool { return earlier[i].Size < earlier[j].Size })
	good := int64(0)
	for _, c := range earlier {
		if c.Size == 0 || c.Size > size {
			continue
		}
		r, err := tlog.TreeHash(c.Size, hashes)
		if err == nil && r == c.Root {
			good = c.Size
			continue
		}
		return fmt.Sprintf("a leaf hash between entries %d and %d was altered", good, c.Size-1)
	}
	return fmt.Sprintf("a leaf hash between entries %d and %d was altered", good, size-1)
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// parsedLine is one export line, decoded and (for entries) hashed.
type parsedLine struct {
	lineNo  int
	line    ExportLine
	err     error
	leaf    tlog.Hash
	hashErr error
}

// parseLines decodes and hashes lines on every core while keeping their
// order: decoding and hashing are most of the cost of verifying a large
// export, and lines do not depend on each other. Entry lines are decoded
// leniently: unknown fields cannot change a verdict, because every leaf is
// recomputed from the known fields.
func parseLines(sc *bufio.Scanner) <-chan parsedLine {
	const batchLines = 512
	workers := max(1, runtime.GOMAXPROCS(0))
	type job struct {
		first int
		lines [][]byte
		out   chan []parsedLine
	}
	jobs := make(chan job, workers)
	order := make(chan chan []parsedLine, 2*workers)
	out := make(chan parsedLine, batchLines)
	for range workers {
		go func() {
			for j := range jobs {
				res := make([]parsedLine, len(j.lines))
				for i, b := range j.lines {
					p := &res[i]
					p.lineNo = j.first + i
					if p.err = json.Unmarshal(b, &p.line); p.err == nil && p.line.Entry != nil {
						p.leaf, p.hashErr = p.line.Entry.Hash()
					}
				}
				j.out <- res
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		lineNo := 2 // the header was line 1
		for {
			lines := make([][]byte, 0, batchLines)
			for len(lines) < batchLines && sc.Scan() {
				lines = append(lines, bytes.Clone(sc.Bytes()))
			}
			if len(lines) == 0 {
				return
			}
			j := job{first: lineNo, lines: lines, out: make(chan []parsedLine, 1)}
			lineNo += len(lines)
			order <- j.out
			jobs <- j
		}
	}()
	go func() {
		defer close(out)
		for ch := range order {
			for _, p := range <-ch {
				out <- p
			}
		}
	}()
	return out
}
