package cli

import (
	"errors"
	"slices"
	"testing"

	"github.com/spf13/pflag"

	"github.com/custodia-project/custodia/internal/access"
)

// parseDecide parses args as review decide does and returns its decisions.
func parseDecide(args []string) ([]access.LineDecision, []string, error) {
	fs := pflag.NewFlagSet("decide", pflag.ContinueOnError)
	var df decideFlags
	df.register(fs)
	fs.StringP("output", "o", "text", "")
	if err := fs.Parse(attachLines(fs, args)); err != nil {
		return nil, nil, err
	}
	ds, err := df.decisions()
	return ds, fs.Args(), err
}

func TestReviewDecideFlags(t *testing.T) {
	k := func(seq int, note string) access.LineDecision {
		return access.LineDecision{Seq: seq, Decision: access.Keep, Note: note}
	}
	r := func(seq int, note string) access.LineDecision {
		return access.LineDecision{Seq: seq, Decision: access.Revoke, Note: note}
	}
	for _, tc := range []struct {
		name string
		args []string
		want []access.LineDecision
	}{
		{"ok/one line, the old form", []string{"rev_1", "--line", "4", "--keep", "--note", "still needed"}, []access.LineDecision{k(4, "still needed")}},
		{"ok/old form, revoke first", []string{"--revoke", "--line", "4", "rev_1"}, []access.LineDecision{r(4, "")}},
		{"ok/lists after the flags", []string{"rev_1", "--keep", "5,1,2", "--revoke", "3", "--note", "q"}, []access.LineDecision{k(1, "q"), k(2, "q"), r(3, "q"), k(5, "q")}},
		{"ok/lists with =", []string{"rev_1", "--keep=1", "--revoke=0"}, []access.LineDecision{r(0, ""), k(1, "")}},
		{"ok/repeated --line", []string{"rev_1", "--line", "1=keep", "--line", "3=revoke"}, []access.LineDecision{k(1, ""), r(3, "")}},
		{"ok/bare lines and a list", []string{"rev_1", "--line", "2,6", "--revoke", "--keep", "1"}, []access.LineDecision{k(1, ""), r(2, ""), r(6, "")}},
		{"ok/same decision twice counts once", []string{"rev_1", "--keep", "1", "--line", "1=keep"}, []access.LineDecision{k(1, "")}},
		{"ok/a note that looks like a flag", []string{"rev_1", "--note", "--keep", "--revoke", "7"}, []access.LineDecision{r(7, "--keep")}},
		{"ok/-o before the lists", []string{"-o", "json", "rev_1", "--keep", "1"}, []access.LineDecision{k(1, "")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, args, err := parseDecide(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("decisions %v, want %v", got, tc.want)
			}
			if !slices.Equal(args, []string{"rev_1"}) {
				t.Errorf("arguments %q, want the review ID alone", args)
			}
		})
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"fail/nothing to decide", []string{"rev_1"}},
		{"fail/bare --keep without --line", []string{"rev_1", "--keep"}},
		{"fail/--line without a decision", []string{"rev_1", "--line", "4"}},
		{"fail/both bare", []string{"rev_1", "--line", "0", "--keep", "--revoke"}},
		{"fail/kept and revoked", []string{"rev_1", "--keep", "1,2", "--revoke", "2"}},
		{"fail/unknown decision", []string{"rev_1", "--line", "1=maybe"}},
		{"fail/negative line", []string{"rev_1", "--line", "-1=keep"}},
		{"fail/not a number", []string{"rev_1", "--keep=one"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseDecide(tc.args)
			if err == nil {
				t.Fatal("no error")
			}
			var ee *exitError
			if errors.As(err, &ee) && ee.code != ExitUsage {
				t.Errorf("exit code %d, want %d", ee.code, ExitUsage)
			}
		})
	}
}
