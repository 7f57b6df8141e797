package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custodia-project/custodia/internal/store"
)

// Each log is an RFC 6962 Merkle tree whose leaves are the entries'
// canonical encodings. The tree's stored hashes (tlog's layout) live in the
// database beside the entries and are written in the entry's transaction.

// leafPrefix versions the canonical encoding.
const leafPrefix = "custodia-audit-leaf-v1\n"

// Leaf is the canonical, hashed form of an entry. Its JSON encoding (Go's,
// with this field order) prefixed by leafPrefix is the Merkle leaf.
type Leaf struct {
	Log       string          `json:"log"`
	Seq       int64           `json:"seq"`
	TimeUS    int64           `json:"time_us"`
	ActorType string          `json:"actor_type"`
	ActorID   string          `json:"actor_id"`
	Action    string          `json:"action"`
	Target    string          `json:"target"`
	Result    string          `json:"result"`
	SourceIP  string          `json:"source_ip"`
	UserAgent string          `json:"user_agent"`
	RequestID string          `json:"request_id"`
	Details   json.RawMessage `json:"details"`
}

// LeafOf returns the canonical form of a stored event.
func LeafOf(e *store.AuditEvent) Leaf {
	d := json.RawMessage(e.Details)
	if len(d) == 0 {
		d = json.RawMessage("{}")
	}
	return Leaf{Log: e.LogID, Seq: e.Seq, TimeUS: e.Time.UnixMicro(), ActorType: e.ActorType, ActorID: e.ActorID,
		Action: e.Action, Target: e.Target, Result: e.Result, SourceIP: e.SourceIP, UserAgent: e.UserAgent,
		RequestID: e.RequestID, Details: d}
}

// Bytes is the leaf's canonical encoding.
func (l Leaf) Bytes() ([]byte, error) {
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("audit: encode leaf: %w", err)
	}
	return append([]byte(leafPrefix), b...), nil
}

// Hash is the leaf's Merkle hash.
func (l Leaf) Hash() (tlog.Hash, error) {
	b, err := l.Bytes()
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.RecordHash(b), nil
}

// HashReader reads a log's stored hashes from a transaction.
func HashReader(ctx context.Context, tx store.AuditTx, logID string) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		raw, err := tx.ReadAuditHashes(ctx, logID, idx)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(raw))
		for i, b := range raw {
			if len(b) != tlog.HashSize {
				return nil, fmt.Errorf("audit: stored hash %d of %s has %d bytes", idx[i], logID, len(b))
			}
			copy(out[i][:], b)
		}
		return out, nil
	})
}

// addToTree stores the tree hashes that entry e adds.
func addToTree(ctx context.Context, tx store.AuditTx, e *store.AuditEvent) error {
	leaf := LeafOf(e)
	b, err := leaf.Bytes()
	if err != nil {
		return err
	}
	hs, err := tlog.StoredHashes(e.Seq, b, HashReader(ctx, tx, e.LogID))
	if err != nil {
		return fmt.Errorf("audit: tree hashes for %s/%d: %w", e.LogID, e.Seq, err)
	}
	raw := make([][]byte, len(hs))
	for i := range hs {
		raw[i] = hs[i][:]
	}
	return tx.PutAuditHashes(ctx, e.LogID, tlog.StoredHashIndex(0, e.Seq), raw)
}

// TreeHash is the root of a log's first n entries.
func TreeHash(ctx context.Context, tx store.AuditTx, logID string, n int64) (tlog.Hash, error) {
	return tlog.TreeHash(n, HashReader(ctx, tx, logID))
}

// LeafHash is the stored leaf hash of entry seq.
func LeafHash(ctx context.Context, tx store.AuditTx, logID string, seq int64) (tlog.Hash, error) {
	hs, err := HashReader(ctx, tx, logID).ReadHashes([]int64{tlog.StoredHashIndex(0, seq)})
	if err != nil {
		return tlog.Hash{}, err
	}
	return hs[0], nil
}

// ErrBeyondTree is a proof request past the log's size.
var ErrBeyondTree = errors.New("audit: beyond the tree")

// InclusionProof proves entry seq is in the tree of size n.
func InclusionProof(ctx context.Context, tx store.AuditTx, logID string, seq, n int64) (tlog.RecordProof, error) {
	if seq < 0 || seq >= n {
		return nil, ErrBeyondTree
	}
	return tlog.ProveRecord(n, seq, HashReader(ctx, tx, logID))
}

// ConsistencyProof proves the tree of size m is a prefix of that of size n.
func ConsistencyProof(ctx context.Context, tx store.AuditTx, logID string, m, n int64) (tlog.TreeProof, error) {
	if m < 1 || m > n {
		return nil, ErrBeyondTree
	}
	return tlog.ProveTree(n, m, HashReader(ctx, tx, logID))
}

// Prune erases the bodies of the log's oldest entries, up to the first one
// at or after before, and records the pruning in the log itself, in tx.
// Verification accepts pruned entries only as such a recorded prefix.
func Prune(ctx context.Context, tx store.AuditTx, at time.Time, logID string, before time.Time) (int64, error) {
	n, err := tx.PruneAudit(ctx, logID, before)
	if err != nil || n == 0 {
		return 0, err
	}
	return n, Append(ctx, tx, at, Entry{Log: logID, Action: "audit.prune", Target: logID,
		Details: map[string]any{"before": before.UTC(), "pruned": n}})
}
