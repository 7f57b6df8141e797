// Package audit records who did what, when, from where and with what
// result. Every state change appends its event in the same transaction as
// the change (Append takes the caller's transaction), so a change is in the
// log exactly when it committed.
//
// It must never record a secret value, and people appear only by their
// stable pseudonymous IDs, so that erasing a person never breaks the log.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custodia-project/custodia/internal/fault"
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
	ev, err := eventOf(ctx, at, e)
	if err != nil {
		return err
	}
	// The tree may be extended at commit, after the caller's context has
	// ended: its work must not be cut short then.
	tctx := context.WithoutCancel(ctx)
	if err := tx.AppendAudit(ctx, ev, func(ev *store.AuditEvent) error { return addToTree(tctx, tx, ev) }); err != nil {
		return fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	return nil
}

// eventOf is the event Append stores for e, with the actor and request
// from ctx.
func eventOf(ctx context.Context, at time.Time, e Entry) (*store.AuditEvent, error) {
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
	// Every string is made valid UTF-8 before it is hashed: JSON carries
	// invalid bytes only as U+FFFD, so an entry holding them (a client's
	// User-Agent, cut mid-character or not) would fail verification once
	// exported.
	v := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	return &store.AuditEvent{
		LogID: v(e.Log), Time: at.UTC(), ActorType: v(src.ActorType), ActorID: v(src.ActorID),
		Action: v(e.Action), Target: v(e.Target), Result: v(e.Result),
		SourceIP: v(src.IP), UserAgent: truncate(v(src.UserAgent), 256), RequestID: v(src.RequestID), Details: details,
	}, nil
}

// AppendBoth records the same event in a tenant's log and in the operator
// log (whose copy names the tenant), as for break-glass, which both sides
// must see.
func AppendBoth(ctx context.Context, tx store.AuditTx, at time.Time, tenantID, action, target string, details map[string]any) error {
	if err := Append(ctx, tx, at, Entry{Log: tenantID, Action: action, Target: target, Details: details}); err != nil {
		return err
	}
	d := map[string]any{"tenant": tenantID}
	maps.Copy(d, details)
	return Append(ctx, tx, at, Entry{Log: store.OperatorLog, Action: action, Target: target, Details: d})
}

// Denied is the authz.deny entry of a refused request, in log (the
// caller's own: their tenant's, or the operator log): permission is what
// was refused on target in tenant, and more adds what only the refuser
// knows (a refusal's code, a credential's name). The route check and the
// vault's own refusals both build it here, so the log's readers find one
// shape.
func Denied(log, target, permission, tenant string, more map[string]any) Entry {
	details := map[string]any{}
	maps.Copy(details, more)
	details["permission"], details["tenant"] = permission, tenant
	return Entry{Log: log, Action: "authz.deny", Target: target, Result: ResultDenied, Details: details}
}

// TwoPersonCodes are the refusals of Custodia's two-person rules (nobody
// grants themselves a way to a secret, robot dual control). A refused
// attempt is itself a sign worth keeping, so the services that refuse
// them record each with RecordRefusal.
var TwoPersonCodes = []string{"self_grant", "self_revealable", "dual_control", "own_token", "dual_control_needed"}

// RecordRefusal records, when err is a refusal of one of TwoPersonCodes,
// an authz.deny entry in the tenant's log for permission on target, with
// the code and what more says, in a transaction of its own (the refused
// one rolled back). Its own failure is returned for the caller to log.
func RecordRefusal(ctx context.Context, s store.Store, at time.Time, tenantID, target, permission string, err error, more map[string]any) error {
	fe, ok := fault.As(err)
	if !ok || !slices.Contains(TwoPersonCodes, fe.Code) {
		return nil
	}
	d := map[string]any{"code": fe.Code}
	maps.Copy(d, more)
	return Record(ctx, s, at, Denied(tenantID, target, permission, tenantID, d))
}

// Record appends e in a transaction of its own, for events that change no
// state (a denial, a failed sign-in).
func Record(ctx context.Context, s store.Store, at time.Time, e Entry) error {
	return s.Update(ctx, func(tx store.Tx) error { return Append(ctx, tx, at, e) })
}

// truncate cuts valid UTF-8 s to at most n bytes, on a character
// boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
