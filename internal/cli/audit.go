package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/audit"
)

// logFlags adds --tenant/--operator and returns the API base of the chosen
// log: with neither, the log of the token's own tenant (asked of the
// server with the client clientFlags made, which must run first).
func logFlags(c *cobra.Command) func() (string, error) {
	var tenant string
	var operator bool
	c.Flags().StringVar(&tenant, "tenant", "", "the tenant's log (ID or slug, or CUSTODIA_TENANT; default: your token's own tenant)")
	c.Flags().BoolVar(&operator, "operator", false, "the operator log")
	return func() (string, error) {
		if operator {
			if tenant != "" {
				return "", usageErr("give one of --tenant or --operator, not both")
			}
			return "/api/v1/audit/operator", nil
		}
		if tenant == "" {
			var err error
			if tenant, err = ownTenant(c, "give --tenant or --operator"); err != nil {
				return "", err
			}
		}
		return "/api/v1/tenants/" + pathEscape(tenant) + "/audit", nil
	}
}

func auditCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "audit",
		Short: "Read, export and verify the tamper-evident audit log",
		Long: `Every state change, sign-in, reveal, export and denial is an entry in a Merkle
tree (RFC 6962), one log per tenant and one for operators, with signed
checkpoints. "custodia audit export" writes a log with its checkpoint and public
key; "custodia audit verify" checks such a file offline with nothing but the
public key, and names the first entry that was modified, dropped, reordered or
inserted.`,
	}
	c.AddCommand(auditListCmd(e), auditShowCmd(e), auditExportCmd(e), auditVerifyCmd(e), auditCheckpointCmd(e),
		auditPublicKeyCmd(e), auditPruneCmd(e))
	return c
}

func auditListCmd(e *env) *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "List audit events of a tenant (--tenant) or of operators (--operator)", Args: exactArgs(0, "no arguments")}
	mk := clientFlags(list, e)
	base := logFlags(list)
	var action, actor, target, since, until string
	var after, limit int
	list.Flags().StringVar(&action, "action", "", "only this action")
	list.Flags().StringVar(&actor, "actor", "", "only this actor ID")
	list.Flags().StringVar(&target, "target", "", "only this target")
	list.Flags().StringVar(&since, "since", "", "only events at or after this RFC 3339 time")
	list.Flags().StringVar(&until, "until", "", "only events before this RFC 3339 time")
	list.Flags().IntVar(&after, "after", -1, "events after this sequence number")
	list.Flags().IntVar(&limit, "limit", 100, "page size (max 1000)")
	list.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		b, err := base()
		if err != nil {
			return err
		}
		q := url.Values{"after": {strconv.Itoa(after)}, "limit": {strconv.Itoa(limit)}}
		for k, v := range map[string]string{"action": action, "actor": actor, "target": target, "since": since, "until": until} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodGet, b+"/events", q, nil, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			var r api.AuditList
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tRESULT")
			for _, ev := range r.Events {
				if ev.Pruned {
					fmt.Fprintf(tw, "%d\t%s\t(pruned)\t\t\t\n", ev.Seq, ev.Time.Format(time.RFC3339))
					continue
				}
				fmt.Fprintf(tw, "%d\t%s\t%s:%s\t%s\t%s\t%s\n", ev.Seq, ev.Time.Format(time.RFC3339), ev.ActorType, ev.ActorID, ev.Action, ev.Target, ev.Result)
			}
			if r.Next != nil {
				fmt.Fprintf(tw, "(more: --after %d)\n", *r.Next)
			}
			return tw.Flush()
		})
	}
	return list
}

func auditShowCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "show SEQ", Short: "Show one audit event with an inclusion proof in the newest checkpoint", Args: exactArgs(1, "an entry's sequence number")}
	mk := clientFlags(c, e)
	base := logFlags(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		if _, err := strconv.ParseUint(args[0], 10, 63); err != nil {
			return usageErr("SEQ must be a non-negative integer")
		}
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		b, err := base()
		if err != nil {
			return err
		}
		var ev json.RawMessage
		if err := cl.Do(c.Context(), http.MethodGet, b+"/events/"+args[0], nil, nil, &ev); err != nil {
			return err
		}
		var proof json.RawMessage
		perr := cl.Do(c.Context(), http.MethodGet, b+"/proof/inclusion", url.Values{"seq": {args[0]}}, nil, &proof)
		if cc.Output == "json" {
			out := map[string]json.RawMessage{"event": ev}
			if perr == nil {
				out["inclusion"] = proof
			}
			return printJSON(e.stdout, out)
		}
		var v any
		_ = json.Unmarshal(ev, &v)
		if err := printJSON(e.stdout, v); err != nil {
			return err
		}
		var p api.InclusionProof
		if perr == nil && json.Unmarshal(proof, &p) == nil {
			fmt.Fprintf(e.stdout, "In the tree of size %d (root %s): leaf %s, proof of %d hashes.\n", p.Size, p.Root, p.LeafHash, len(p.Proof))
		} else {
			fmt.Fprintln(e.stdout, "Not yet covered by a checkpoint.")
		}
		return nil
	}
	return c
}

func auditExportCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "export",
		Short: "Export a log: verifiable JSON Lines (with checkpoint and public key) or CSV",
		Args:  exactArgs(0, "no arguments"),
	}
	mk := clientFlags(c, e)
	base := logFlags(c)
	var format, out string
	c.Flags().StringVar(&format, "format", "jsonl", "jsonl (verifiable) or csv")
	c.Flags().StringVar(&out, "out", "", "file to write (default: standard output)")
	c.RunE = func(c *cobra.Command, args []string) error {
		if format != "jsonl" && format != "csv" {
			return usageErr("--format must be jsonl or csv")
		}
		cl, _, err := mk()
		if err != nil {
			return err
		}
		b, err := base()
		if err != nil {
			return err
		}
		var w io.Writer = e.stdout
		var f *os.File
		if out != "" {
			if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
				return err
			}
			w = f
		}
		err = cl.Download(c.Context(), b+"/export", url.Values{"format": {format}}, w)
		if f != nil {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(out)
			}
		}
		return err
	}
	return c
}

// readKey takes a key string or @FILE.
func readKey(s string) (string, error) {
	if name, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	return strings.TrimSpace(s), nil
}

func auditVerifyCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "verify [EXPORT_FILE]",
		Short: "Verify an export offline with the public key, or the live log with --server",
		Long: `Verify an audit export. Offline (EXPORT_FILE, or - for stdin) it needs only the
public key (--key KEY or --key @FILE, from "custodia audit public-key"): it checks
every checkpoint's signature, recomputes every leaf and the tree, checks that
earlier checkpoints are prefixes of the newest, and names the first entry that
was modified, dropped, reordered or inserted.

With --server (and --tenant or --operator) it exports the live log and verifies
it the same way. Without --key the key is fetched from the server, which then
only proves the log is consistent with what the server signs; pass the key you
recorded earlier to check against it.

Exit code 0 when the log verifies, 1 when it does not.`,
		Args: cobra.MaximumNArgs(1),
	}
	mk := clientFlags(c, e)
	base := logFlags(c)
	var key, pushedFile string
	var live bool
	c.Flags().StringVar(&key, "key", "", "public key (note verifier key), or @FILE")
	c.Flags().BoolVar(&live, "server", false, "verify the live log on the server")
	c.Flags().StringVar(&pushedFile, "checkpoints", "", "file of checkpoints pushed off the box (--audit-checkpoint-file): each must agree with the log")
	c.RunE = func(c *cobra.Command, args []string) error {
		var in io.Reader
		if live {
			if len(args) != 0 {
				return usageErr("--server takes no EXPORT_FILE")
			}
			cl, _, err := mk()
			if err != nil {
				return err
			}
			b, err := base()
			if err != nil {
				return err
			}
			if key == "" {
				var pk api.PublicKeyNote
				if err := cl.Do(c.Context(), http.MethodGet, "/api/v1/audit/public-key", nil, nil, &pk); err != nil {
					return err
				}
				key = pk.PublicKey
				fmt.Fprintln(e.stderr, "note: using the public key the server reports; pass --key to check against a key you recorded")
			}
			var buf bytes.Buffer
			if err := cl.Download(c.Context(), b+"/export", url.Values{"format": {"jsonl"}}, &buf); err != nil {
				return err
			}
			in = &buf
		} else {
			if len(args) != 1 {
				return usageErr("give an EXPORT_FILE (or --server)")
			}
			if key == "" {
				return usageErr("--key is required to verify offline")
			}
			if args[0] == "-" {
				in = e.stdin
			} else {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
		}
		k, err := readKey(key)
		if err != nil {
			return usageErr("--key: %v", err)
		}
		pushed, err := readPushed(pushedFile)
		if err != nil {
			return usageErr("--checkpoints: %v", err)
		}
		rep, err := audit.Verify(in, k, pushed...)
		if err != nil {
			return &exitError{code: ExitError, err: err}
		}
		var cc struct{ Output string }
		cc.Output, _ = c.Flags().GetString("output")
		if cc.Output == "json" {
			if err := printJSON(e.stdout, rep); err != nil {
				return err
			}
		} else {
			printReport(e, rep)
		}
		if !rep.OK() {
			return &exitError{code: ExitError, err: fmt.Errorf("audit log does NOT verify: %s", rep.Problems[0].Message)}
		}
		return nil
	}
	return c
}

func printReport(e *env, r *audit.Report) {
	fmt.Fprintf(e.stdout, "Log:         %s\nOrigin:      %s\nCheckpoint:  size %d, root %s\nEntries:     %d (%d pruned, %d after the checkpoint)\nCheckpoints: %d checked\n",
		r.Log, r.Origin, r.Size, r.Root, r.Entries, r.Pruned, r.Uncovered, r.Checkpoints)
	if r.Newer > 0 {
		fmt.Fprintf(e.stdout, "Note:        %d pushed checkpoints are newer than this export (up to %d entries); if the export is fresh, entries were removed\n", r.Newer, r.NewestPushed)
	}
	if r.OK() && r.Uncovered > 0 {
		fmt.Fprintf(e.stdout, "Result:      OK up to entry %d; the %d entries after it are not yet covered by a signed checkpoint\n", r.Size-1, r.Uncovered)
		return
	}
	if r.OK() {
		fmt.Fprintln(e.stdout, "Result:      OK: every entry matches the signed tree")
		return
	}
	fmt.Fprintln(e.stdout, "Result:      FAILED")
	for _, p := range r.Problems {
		if p.Seq >= 0 {
			fmt.Fprintf(e.stdout, "  entry %d: %s: %s\n", p.Seq, p.Kind, p.Message)
		} else {
			fmt.Fprintf(e.stdout, "  %s: %s\n", p.Kind, p.Message)
		}
	}
}

func auditCheckpointCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "checkpoint", Short: "Show the newest signed checkpoint (--now signs one first)", Args: exactArgs(0, "no arguments")}
	mk := clientFlags(c, e)
	base := logFlags(c)
	var now bool
	c.Flags().BoolVar(&now, "now", false, "sign a checkpoint of the current size first")
	c.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		b, err := base()
		if err != nil {
			return err
		}
		method := http.MethodGet
		if now {
			method = http.MethodPost
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), method, b+"/checkpoint", nil, nil, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			var cp api.Checkpoint
			if err := json.Unmarshal(raw, &cp); err != nil {
				return err
			}
			fmt.Fprint(e.stdout, cp.Note)
			return nil
		})
	}
	return c
}

func auditPublicKeyCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "public-key", Short: "Print the public key that verifies every audit checkpoint", Args: exactArgs(0, "no arguments")}
	mk := clientFlags(c, e)
	c.RunE = simpleCall(e, mk, http.MethodGet, "/api/v1/audit/public-key", func(raw json.RawMessage) error {
		var pk api.PublicKeyNote
		if err := json.Unmarshal(raw, &pk); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, pk.PublicKey)
		return nil
	})
	return c
}

func auditPruneCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "prune",
		Short: "Erase the bodies of entries older than --before (their leaf hashes stay, proofs still verify)",
		Args:  exactArgs(0, "no arguments"),
	}
	mk := clientFlags(c, e)
	base := logFlags(c)
	var before string
	c.Flags().StringVar(&before, "before", "", "RFC 3339 time: entries older than this lose their bodies")
	c.RunE = func(c *cobra.Command, args []string) error {
		t, err := time.Parse(time.RFC3339, before)
		if err != nil {
			return usageErr("--before must be an RFC 3339 time, such as 2026-01-01T00:00:00Z")
		}
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		b, err := base()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodPost, b+"/prune", nil, api.PruneRequest{Before: t}, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			var r api.PruneResponse
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Pruned %d entries.\n", r.Pruned)
			return nil
		})
	}
	return c
}

// readPushed reads checkpoint notes from a file written by
// --audit-checkpoint-file (JSON lines with a "note"), if path is set.
func readPushed(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var notes []string
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var v struct {
			Note string `json:"note"`
		}
		if err := json.Unmarshal(line, &v); err != nil || v.Note == "" {
			return nil, fmt.Errorf("line %d is not a pushed checkpoint", i+1)
		}
		notes = append(notes, v.Note)
	}
	return notes, nil
}
