package audit

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custodia-project/custodia/internal/store"
)

// ExportFormat names the JSON Lines export format.
const ExportFormat = "custodia-audit-export/v1"

// An export is JSON Lines: a header, then earlier checkpoints, then every
// entry in order:
//
//	{"format":"custodia-audit-export/v1","log":...,"origin":...,"public_key":...,"checkpoint":"<signed note>"}
//	{"checkpoint":"<signed note of an earlier size>"}
//	{"seq":0,"leaf_hash":"<base64>","entry":{...Leaf...}}
//	{"seq":1,"leaf_hash":"<base64>","pruned":true}
//
// The leaf hashes are the stored ones; the verifier recomputes each from its
// entry, so an edited entry is named even when the checkpoint still holds.

// ExportHeader is the first line.
type ExportHeader struct {
	Format     string `json:"format"`
	Log        string `json:"log"`
	Origin     string `json:"origin"`
	PublicKey  string `json:"public_key"`
	Checkpoint string `json:"checkpoint"`
	ExportedAt string `json:"exported_at"`
}

// ExportLine is any later line.
type ExportLine struct {
	Checkpoint string `json:"checkpoint,omitempty"`
	Seq        *int64 `json:"seq,omitempty"`
	LeafHash   string `json:"leaf_hash,omitempty"`
	Entry      *Leaf  `json:"entry,omitempty"`
	Pruned     bool   `json:"pruned,omitempty"`
}

// maxEarlierCheckpoints bounds how many earlier checkpoints an export
// carries (evenly spread), for consistency checks and to localize damage.
const maxEarlierCheckpoints = 1000

const exportPage = 5000

// ExportJSONL writes the log as a verifiable export. It checkpoints first
// (when unsealed) so that every entry is covered.
func (l *Log) ExportJSONL(ctx context.Context, w io.Writer, logID string) error {
	if !l.root.Sealed() {
		_, err := l.Checkpoint(ctx, logID)
		switch {
		case errors.Is(err, ErrTampered):
			// Export what is stored against the last good checkpoint, so
			// that verification shows what changed.
			l.log.Error("audit log tampered: exporting against the newest good checkpoint", "log", logID, "err", err)
		case err != nil && !errors.Is(err, ErrNoCheckpoint):
			return err
		}
	}
	cp, err := l.Latest(ctx, logID)
	if err != nil {
		return err
	}
	vk, err := l.PublicKey(ctx)
	if err != nil {
		return err
	}
	pc, err := note.Open([]byte(cp.Note), note.VerifierList(mustVerifier(vk)))
	if err != nil {
		return fmt.Errorf("audit: stored checkpoint does not verify: %w", err)
	}
	parsed, err := ParseCheckpoint(pc.Text)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(ExportHeader{Format: ExportFormat, Log: logID, Origin: parsed.Origin, PublicKey: vk,
		Checkpoint: cp.Note, ExportedAt: l.now().UTC().Format(time.RFC3339)}); err != nil {
		return err
	}
	var cps []store.AuditCheckpoint
	if err := l.store.View(ctx, func(tx store.Tx) error {
		var err error
		cps, err = tx.ListAuditCheckpoints(ctx, logID, 0, 100000)
		return err
	}); err != nil {
		return err
	}
	step := max(1, len(cps)/maxEarlierCheckpoints)
	for i := 0; i < len(cps); i += step {
		if cps[i].Size < cp.Size {
			if err := enc.Encode(ExportLine{Checkpoint: cps[i].Note}); err != nil {
				return err
			}
		}
	}
	err = l.eachEntry(ctx, logID, func(e *store.AuditEvent, leaf []byte) error {
		seq := e.Seq
		line := ExportLine{Seq: &seq, Pruned: e.Pruned}
		if leaf != nil {
			line.LeafHash = base64.StdEncoding.EncodeToString(leaf)
		}
		if !e.Pruned {
			lf := LeafOf(e)
			line.Entry = &lf
		}
		return enc.Encode(line)
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

func mustVerifier(vk string) note.Verifier {
	v, err := note.NewVerifier(vk)
	if err != nil {
		return badVerifier{}
	}
	return v
}

type badVerifier struct{}

func (badVerifier) Name() string            { return "" }
func (badVerifier) KeyHash() uint32         { return 0 }
func (badVerifier) Verify(_, _ []byte) bool { return false }

// eachEntry calls fn for every stored entry in order, with its stored leaf
// hash (nil if the tree has none for it).
func (l *Log) eachEntry(ctx context.Context, logID string, fn func(*store.AuditEvent, []byte) error) error {
	after := int64(-1)
	for {
		var evs []store.AuditEvent
		var leaves [][]byte
		err := l.store.View(ctx, func(tx store.Tx) error {
			var err error
			evs, err = tx.ListAudit(ctx, store.AuditFilter{LogID: logID, AfterSeq: after, Limit: exportPage})
			if err != nil || len(evs) == 0 {
				return err
			}
			idx := make([]int64, len(evs))
			for i := range evs {
				idx[i] = tlog.StoredHashIndex(0, evs[i].Seq)
			}
			leaves, err = tx.ReadAuditHashes(ctx, logID, idx)
			if errors.Is(err, store.ErrNotFound) {
				// Some entry has no leaf hash: find which, one by one.
				leaves = make([][]byte, len(evs))
				for i := range idx {
					h, err := tx.ReadAuditHashes(ctx, logID, idx[i:i+1])
					if err == nil {
						leaves[i] = h[0]
					} else if !errors.Is(err, store.ErrNotFound) {
						return err
					}
				}
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
		for i := range evs {
			if err := fn(&evs[i], leaves[i]); err != nil {
				return err
			}
		}
		if len(evs) < exportPage {
			return nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// ExportCSV writes entries as CSV for people and spreadsheets. It is not
// verifiable; use the JSON Lines export for evidence.
func (l *Log) ExportCSV(ctx context.Context, w io.Writer, logID string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"seq", "time", "actor_type", "actor_id", "action", "target", "result", "source_ip", "user_agent", "request_id", "details", "pruned"}); err != nil {
		return err
	}
	err := l.eachEntry(ctx, logID, func(e *store.AuditEvent, _ []byte) error {
		return cw.Write([]string{strconv.FormatInt(e.Seq, 10), e.Time.Format(time.RFC3339Nano), e.ActorType, e.ActorID, e.Action,
			e.Target, e.Result, e.SourceIP, e.UserAgent, e.RequestID, string(e.Details), strconv.FormatBool(e.Pruned)})
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
