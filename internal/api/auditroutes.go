package api

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
)

// Checkpoint is a signed statement of a log's size and root.
type Checkpoint struct {
	Log       string    `json:"log"`
	Size      int64     `json:"size"`
	Root      string    `json:"root"`
	Note      string    `json:"note"`
	CreatedAt time.Time `json:"created_at"`
}

func checkpointView(c *store.AuditCheckpoint) Checkpoint {
	return Checkpoint{Log: c.LogID, Size: c.Size, Root: base64.StdEncoding.EncodeToString(c.Root), Note: c.Note, CreatedAt: c.CreatedAt}
}

type CheckpointList struct {
	Checkpoints []Checkpoint `json:"checkpoints"`
}

// InclusionProof proves an entry is in the tree of a given size.
type InclusionProof struct {
	Seq      int64    `json:"seq"`
	Size     int64    `json:"size"`
	LeafHash string   `json:"leaf_hash"`
	Root     string   `json:"root"`
	Proof    []string `json:"proof"`
}

// ConsistencyProof proves a smaller tree is a prefix of a larger one.
type ConsistencyProof struct {
	From     int64    `json:"from"`
	To       int64    `json:"to"`
	FromRoot string   `json:"from_root"`
	ToRoot   string   `json:"to_root"`
	Proof    []string `json:"proof"`
}

type PublicKeyNote struct {
	// PublicKey is the note verifier key for custodia audit verify --key.
	PublicKey string `json:"public_key"`
}

type PruneRequest struct {
	// Before: entries older than this time lose their bodies; their leaf
	// hashes stay, so every checkpoint still verifies.
	Before time.Time `json:"before"`
}

type PruneResponse struct {
	Pruned int64 `json:"pruned"`
}

// auditRoutes returns the routes of one kind of log: a tenant's (base with
// the {tenant} wildcard) or the operator log.
func auditRoutes(h *handlers, base, tenantParam, who string) []Route {
	logOf := func(r *http.Request) (string, error) {
		if tenantParam == "" {
			return store.OperatorLog, nil
		}
		return h.tenantID(r)
	}
	route := func(method, path string, perm authz.Permission, summary string, req, resp any, q []Param, fn func(http.ResponseWriter, *http.Request, string) error) Route {
		return Route{Method: method, Pattern: base + path, Perm: perm, TenantParam: tenantParam, Unsealed: true, Tag: "audit",
			Summary: summary + " (" + who + ")", Request: req, Response: resp, Query: q,
			Handler: func(w http.ResponseWriter, r *http.Request) error {
				logID, err := logOf(r)
				if err != nil {
					return err
				}
				return fn(w, r, logID)
			}}
	}
	// Entry bodies: a tenant's readers see their log, operators the
	// operator log. Checkpoints and proofs are hashes only: operators may
	// verify every log.
	read, proofs := authz.AuditRead, authz.AuditProofs
	if tenantParam == "" {
		read, proofs = authz.OperatorAuditRead, authz.OperatorAuditRead
	}
	export := route("GET", "/export", read, "Export the log: verifiable JSON Lines (default) or CSV", nil, nil,
		[]Param{{"format", "jsonl (default) or csv", "string"}}, h.auditExport)
	export.RawContentType = "application/x-ndjson"
	return []Route{
		route("GET", "/events", read, "List audit events", nil, AuditList{}, auditQuery, h.audit),
		route("GET", "/events/{seq}", read, "One audit event", nil, AuditEvent{}, nil, h.auditEvent),
		route("GET", "/checkpoint", proofs, "The newest signed checkpoint", nil, Checkpoint{}, nil, h.latestCheckpoint),
		route("POST", "/checkpoint", proofs, "Sign a checkpoint now (if the log grew) and return the newest", nil, Checkpoint{}, nil, h.checkpointNow),
		route("GET", "/checkpoints", proofs, "Stored checkpoints, oldest first",
			nil, CheckpointList{}, []Param{{"after", "only sizes above this", "integer"}, {"limit", "how many (max 1000)", "integer"}}, h.listCheckpoints),
		route("GET", "/proof/inclusion", proofs, "Inclusion proof of an entry in the tree of a size",
			nil, InclusionProof{}, []Param{{"seq", "the entry", "integer"}, {"size", "tree size (default: newest checkpoint)", "integer"}}, h.inclusion),
		route("GET", "/proof/consistency", proofs, "Consistency proof between two tree sizes",
			nil, ConsistencyProof{}, []Param{{"from", "smaller size", "integer"}, {"to", "larger size (default: newest checkpoint)", "integer"}}, h.consistency),
		export,
		route("POST", "/prune", authz.AuditManage, "Erase the bodies of entries older than a time, keeping their leaf hashes",
			PruneRequest{}, PruneResponse{}, nil, h.prune),
	}
}

func (h *handlers) auditPublicKey(w http.ResponseWriter, r *http.Request) error {
	vk, err := h.d.Audit.PublicKey(r.Context())
	if err != nil {
		return sealedOr(err)
	}
	WriteJSON(w, http.StatusOK, PublicKeyNote{PublicKey: vk})
	return nil
}

func sealedOr(err error) error {
	if errors.Is(err, keys.ErrSealed) {
		return fault.ErrSealed
	}
	if errors.Is(err, audit.ErrNoCheckpoint) {
		return fault.New(fault.NotFound, "no_checkpoint", "the log has no checkpoint yet")
	}
	if errors.Is(err, audit.ErrBeyondTree) {
		return fault.New(fault.Invalid, "beyond_tree", "the requested entry or size is outside the tree")
	}
	return err
}

func (h *handlers) auditEvent(w http.ResponseWriter, r *http.Request, logID string) error {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq < 0 {
		return fault.New(fault.Invalid, "invalid_seq", "seq must be a non-negative integer")
	}
	var evs []store.AuditEvent
	err = h.d.Store.View(r.Context(), func(tx store.Tx) error {
		var err error
		evs, err = tx.ListAudit(r.Context(), store.AuditFilter{LogID: logID, AfterSeq: seq - 1, Limit: 1})
		return err
	})
	if err != nil {
		return err
	}
	if len(evs) == 0 || evs[0].Seq != seq {
		return fault.New(fault.NotFound, "event_not_found", "no audit event %d", seq)
	}
	WriteJSON(w, http.StatusOK, eventView(&evs[0]))
	return nil
}

func (h *handlers) latestCheckpoint(w http.ResponseWriter, r *http.Request, logID string) error {
	c, err := h.d.Audit.Latest(r.Context(), logID)
	if err != nil {
		return sealedOr(err)
	}
	WriteJSON(w, http.StatusOK, checkpointView(c))
	return nil
}

func (h *handlers) checkpointNow(w http.ResponseWriter, r *http.Request, logID string) error {
	c, err := h.d.Audit.Checkpoint(r.Context(), logID)
	if err != nil {
		return sealedOr(err)
	}
	WriteJSON(w, http.StatusOK, checkpointView(c))
	return nil
}

func (h *handlers) listCheckpoints(w http.ResponseWriter, r *http.Request, logID string) error {
	after, err := queryInt(r, "after", 0)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 100)
	if err != nil {
		return err
	}
	var cs []store.AuditCheckpoint
	err = h.d.Store.View(r.Context(), func(tx store.Tx) error {
		var err error
		cs, err = tx.ListAuditCheckpoints(r.Context(), logID, int64(after), min(max(limit, 1), 1000))
		return err
	})
	if err != nil {
		return err
	}
	out := CheckpointList{Checkpoints: []Checkpoint{}}
	for i := range cs {
		out.Checkpoints = append(out.Checkpoints, checkpointView(&cs[i]))
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// sizeOr reads a tree size from the query, defaulting to the newest
// checkpoint's.
func (h *handlers) sizeOr(r *http.Request, name, logID string) (int64, error) {
	if s := r.URL.Query().Get(name); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return 0, fault.New(fault.Invalid, "invalid_query", "%s must be a positive integer", name)
		}
		return n, nil
	}
	c, err := h.d.Audit.Latest(r.Context(), logID)
	if err != nil {
		return 0, sealedOr(err)
	}
	return c.Size, nil
}

func hashes[T ~[]tlog.Hash](p T) []string {
	out := make([]string, len(p))
	for i, x := range p {
		out[i] = base64.StdEncoding.EncodeToString(x[:])
	}
	return out
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func (h *handlers) inclusion(w http.ResponseWriter, r *http.Request, logID string) error {
	seq, err := queryInt(r, "seq", -1)
	if err != nil {
		return err
	}
	size, err := h.sizeOr(r, "size", logID)
	if err != nil {
		return err
	}
	var out InclusionProof
	err = h.d.Store.View(r.Context(), func(tx store.Tx) error {
		if n, err := tx.AuditSize(r.Context(), logID); err != nil || size > n {
			return errors.Join(err, audit.ErrBeyondTree)
		}
		p, err := audit.InclusionProof(r.Context(), tx, logID, int64(seq), size)
		if err != nil {
			return err
		}
		leaf, err := audit.LeafHash(r.Context(), tx, logID, int64(seq))
		if err != nil {
			return err
		}
		root, err := audit.TreeHash(r.Context(), tx, logID, size)
		out = InclusionProof{Seq: int64(seq), Size: size, LeafHash: b64(leaf), Root: b64(root), Proof: hashes(p)}
		return err
	})
	if err != nil {
		return sealedOr(err)
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *handlers) consistency(w http.ResponseWriter, r *http.Request, logID string) error {
	from, err := queryInt(r, "from", 0)
	if err != nil {
		return err
	}
	to, err := h.sizeOr(r, "to", logID)
	if err != nil {
		return err
	}
	var out ConsistencyProof
	err = h.d.Store.View(r.Context(), func(tx store.Tx) error {
		if n, err := tx.AuditSize(r.Context(), logID); err != nil || to > n {
			return errors.Join(err, audit.ErrBeyondTree)
		}
		p, err := audit.ConsistencyProof(r.Context(), tx, logID, int64(from), to)
		if err != nil {
			return err
		}
		fr, err := audit.TreeHash(r.Context(), tx, logID, int64(from))
		if err != nil {
			return err
		}
		tr, err := audit.TreeHash(r.Context(), tx, logID, to)
		out = ConsistencyProof{From: int64(from), To: to, FromRoot: b64(fr), ToRoot: b64(tr), Proof: hashes(p)}
		return err
	})
	if err != nil {
		return sealedOr(err)
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *handlers) auditExport(w http.ResponseWriter, r *http.Request, logID string) error {
	format := r.URL.Query().Get("format")
	ctx := r.Context()
	switch format {
	case "", "jsonl":
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="audit-`+logID+`.jsonl"`)
		if err := h.d.Audit.ExportJSONL(ctx, w, logID); err != nil {
			return sealedOr(err)
		}
	case "csv":
		w.Header().Set("Content-Type", "text/csv")
		w.Header().Set("Content-Disposition", `attachment; filename="audit-`+logID+`.csv"`)
		if err := h.d.Audit.ExportCSV(ctx, w, logID); err != nil {
			return err
		}
	default:
		return fault.New(fault.Invalid, "invalid_format", "format must be jsonl or csv")
	}
	err := audit.Record(ctx, h.d.Store, h.d.Now(), audit.Entry{Log: logID, Action: "audit.export", Target: logID,
		Details: map[string]any{"format": map[bool]string{true: "csv", false: "jsonl"}[format == "csv"]}})
	// The export was delivered; a failure to record it is logged by the
	// server, as for any error after the response started.
	return err
}

func (h *handlers) prune(w http.ResponseWriter, r *http.Request, logID string) error {
	var req PruneRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	if req.Before.IsZero() {
		return fault.New(fault.Invalid, "missing_before", "before is required")
	}
	var n int64
	err := h.d.Store.Update(r.Context(), func(tx store.Tx) error {
		var err error
		n, err = audit.Prune(r.Context(), tx, h.d.Now(), logID, req.Before)
		return err
	})
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, PruneResponse{Pruned: n})
	return nil
}
