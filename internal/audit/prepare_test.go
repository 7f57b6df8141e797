package audit

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// FuzzPreparedLeaf: the leaf a prepared entry is hashed as, once numbered,
// is byte for byte the canonical encoding of the entry as stored (what
// verification recomputes), whatever its fields hold: quotes, HTML,
// invalid UTF-8, a log ID that looks like the sequence field.
func FuzzPreparedLeaf(f *testing.F) {
	f.Add("ten_1", "rbt_1", "crd_1", "curl/8", "payroll <run> & \"x\"", int64(0))
	f.Add(`a","seq":0,"time_us":1`, `\`, "", "\xff\xfe", `{"seq":0,}`, int64(1<<40))
	f.Add("", "", "", "", "", int64(-1))
	f.Fuzz(func(t *testing.T, log, actor, target, ua, detail string, seq int64) {
		ctx := WithSource(context.Background(), Source{ActorType: ActorRobot, ActorID: actor, IP: "127.0.0.1", UserAgent: ua, RequestID: "r1"})
		at := time.Unix(1700000000, 123456789)
		p, err := Prepare(ctx, at, Entry{Log: log, Action: "credential.fetch", Target: target,
			Details: map[string]any{"purpose": detail, "version": 3}})
		if err != nil {
			t.Fatal(err)
		}
		ev := *p.ev
		ev.Seq = seq
		want, err := LeafOf(&ev).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if got := p.leaf(seq); !bytes.Equal(got, want) {
			t.Fatalf("prepared leaf\n%s\nwant\n%s", got, want)
		}
	})
}
