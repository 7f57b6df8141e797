// Package audit records who did what, when, from where and with what
// result. Every state change appends its event in the same transaction as
// the change (Append takes the caller's transaction), so a change is in the
// log exactly when it committed.
//
// It must never record a secret value, and people appear only by their
// stable pseudonymous IDs, so that erasing a person never breaks the log.
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

// Actor types.
const (
	ActorOperator  = "operator"
	ActorPerson    = "person"
	ActorRobot     = "robot"
	ActorDevice    = "device"
	ActorSystem    = "system"
	ActorAnonymous = "anonymous"
)

// Results.
const (
	ResultOK     = "ok"
	ResultDenied = "denied"
	ResultFailed = "failed"
)

// Source is who is acting and from where; the edge puts it in the context.
type Source struct {
	ActorType string
	ActorID   string
	IP        string
	UserAgent string
	RequestID string
}

type sourceKey struct{}

// WithSource returns ctx carrying src.
func WithSource(ctx context.Context, src Source) context.Context {
	return context.WithValue(ctx, sourceKey{}, src)
}

// SourceFrom returns the source in ctx, or the system actor.
func SourceFrom(ctx context.Context) Source {
	if s, ok := ctx.Value(sourceKey{}).(Source); ok {
		return s
	}
	return Source{ActorType: ActorSystem, ActorID: "custodia"}
}

// Entry is what a domain package says happened.
type Entry struct {
	// Log is the tenant ID, or store.OperatorLog.
	Log    string
	Action string
	Target string
	Result string
	// Details are non-secret facts (IDs, versions, counts, reasons).
	Details map[string]any
}

// Append records e in tx, with the actor and request from ctx.
func Append(ctx context.Context, tx store.AuditTx, at time.Time, e Entry) error {
	p, err := Prepare(ctx, at, e)
	if err != nil {
		return err
	}
	return p.Append(ctx, tx)
}

// Prepared is an entry encoded ahead of the transaction that appends it.
// A hot path (a robot's fetch) prepares its entry before Update, so that
// the writer, which commits for every caller, only numbers and hashes it.
type Prepared struct {
	ev     *store.AuditEvent
	action string
	// head and tail are the leaf's canonical encoding (Leaf.Bytes) before
	// and after its sequence number, which is known only when appending.
	head, tail []byte
}

// seqField is where the sequence number sits in a leaf's encoding of
// sequence number 0: the log's ID, a JSON string, comes before it, and a
// quote inside a JSON string is always escaped, so the first match is it.
const seqField = `,"seq":0,`

// Prepare encodes e, at at, with the actor and request from ctx, for
// Prepared.Append.
func Prepare(ctx context.Context, at time.Time, e Entry) (*Prepared, error) {
	src := SourceFrom(ctx)
	if e.Result == "" {
		e.Result = ResultOK
	}
	details := []byte("{}")
	if len(e.Details) > 0 {
		var err error
		if details, err = json.Marshal(e.Details); err != nil {
			return nil, fmt.Errorf("audit: encode details: %w", err)
		}
	}
	ev := &store.AuditEvent{
		LogID: e.Log, Time: at.UTC(), ActorType: src.ActorType, ActorID: src.ActorID,
		Action: e.Action, Target: e.Target, Result: e.Result,
		SourceIP: src.IP, UserAgent: truncate(src.UserAgent, 256), RequestID: src.RequestID, Details: details,
	}
	b, err := LeafOf(ev).Bytes()
	if err != nil {
		return nil, err
	}
	i := bytes.Index(b, []byte(seqField))
	if i < 0 {
		return nil, fmt.Errorf("audit: leaf encoding without its sequence number")
	}
	at0 := i + len(seqField) - len("0,")
	return &Prepared{ev: ev, action: e.Action, head: b[:at0], tail: b[at0+1:]}, nil
}

// leaf is the canonical encoding of the prepared entry numbered seq.
func (p *Prepared) leaf(seq int64) []byte {
	b := make([]byte, 0, len(p.head)+20+len(p.tail))
	b = append(b, p.head...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, p.tail...)
}

// Append appends the prepared entry in tx. It may run more than once (a
// group commit runs a call again after another call failed).
func (p *Prepared) Append(ctx context.Context, tx store.AuditTx) error {
	ev := *p.ev
	// The tree may be extended at commit, after the caller's context has
	// ended: its work must not be cut short then.
	tctx := context.WithoutCancel(ctx)
	if err := tx.AppendAudit(ctx, &ev, func(ev *store.AuditEvent) error { return addToTree(tctx, tx, ev, p.leaf(ev.Seq)) }); err != nil {
		return fmt.Errorf("audit: append %s: %w", p.action, err)
	}
	return nil
}

// Record appends e in a transaction of its own, for events that change no
// state (a denial, a failed sign-in).
func Record(ctx context.Context, s store.Store, at time.Time, e Entry) error {
	return s.Update(ctx, func(tx store.Tx) error { return Append(ctx, tx, at, e) })
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
