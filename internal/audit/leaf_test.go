package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

// Whatever bytes a client sends, the leaf of the event Append stores
// survives what verification does to an exported entry: decode it, encode
// it again. Were it not, the entry would fail verification.
func FuzzLeafRoundTrip(f *testing.F) {
	f.Add("ten_1", int64(0), "credential.fetch", "crd_1", "rbt", `,"seq":0,`, "10.0.0.1", "go/1.0", "lease", "monthly")
	f.Add(`log"with,"seq":0,quotes`, int64(1)<<62, "a", "", "", "", "", "\u2028", "", "")
	f.Add("", int64(9), "x", "y\xfe", "z", "\x00\xff", "bad\xff", "r\xc3", `"`, `\`)
	f.Fuzz(func(t *testing.T, log string, seq int64, action, target, actor, ip, ua, rid, k, v string) {
		ctx := WithSource(context.Background(), Source{ActorType: ActorRobot, ActorID: actor, IP: ip, UserAgent: ua, RequestID: rid})
		e := Entry{Log: log, Action: action, Target: target}
		if k != "" {
			e.Details = map[string]any{k: v, "n": seq}
		}
		ev, err := eventOf(ctx, time.Unix(1_800_000_000, 123_456_000), e)
		if err != nil {
			t.Fatal(err)
		}
		ev.Seq = seq
		want, err := LeafOf(ev).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var l Leaf
		if err := json.Unmarshal(want[len(leafPrefix):], &l); err != nil {
			t.Fatal(err)
		}
		if again, err := l.Bytes(); err != nil || !bytes.Equal(again, want) {
			t.Fatalf("leaf after a JSON round trip\n%s\nwant\n%s", again, want)
		}
	})
}
