package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/keys"
)

func operatorCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "operator",
		Short: "Initialize, unseal, seal and re-key the installation; manage operator tokens",
	}
	c.AddCommand(opInitCmd(e), opUnsealCmd(e), opSealCmd(e), opStatusCmd(e), opRotateRootCmd(e), opKeygenCmd(e), opTokenCmd(e))
	return c
}

func printStatus(w io.Writer, st keys.Status) {
	switch {
	case !st.Initialized:
		fmt.Fprintln(w, "Initialized: no  (run: custodia operator init)")
	case st.Sealed:
		fmt.Fprintf(w, "Initialized: yes\nSealed:      yes\nSeal type:   %s\n", st.Type)
		if st.Type == keys.SealShamir {
			fmt.Fprintf(w, "Progress:    %d of %d shares\n", st.Progress, st.Threshold)
		}
	default:
		fmt.Fprintf(w, "Initialized: yes\nSealed:      no\nSeal type:   %s\nGeneration:  %d\n", st.Type, st.Generation)
	}
}

func opInitCmd(e *env) *cobra.Command {
	var shares, threshold int
	c := &cobra.Command{
		Use:   "init",
		Short: "Create the root key, split into unseal shares, and the first operator token (shown once)",
		Long: `Initialize a new installation. The root key is split with Shamir's secret
sharing into --shares shares, of which --threshold rebuild it. The shares and
the first operator token are printed once and never stored: hand each share
to a different person. A server started with --root-key-file uses that key
instead and prints only the token.`,
		Args: exactArgs(0, "no arguments"),
	}
	mk := clientFlags(c, e)
	c.Flags().IntVar(&shares, "shares", 5, "number of unseal shares")
	c.Flags().IntVar(&threshold, "threshold", 3, "shares needed to unseal")
	c.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodPost, "/api/v1/sys/init", nil, map[string]int{"shares": shares, "threshold": threshold}, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			var r api.InitResponse
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			for i, s := range r.Shares {
				fmt.Fprintf(e.stdout, "Unseal share %d: %s\n", i+1, s)
			}
			fmt.Fprintf(e.stdout, "\nOperator token: %s\n(id %s, expires %s)\n\n", r.OperatorToken, r.TokenID, r.TokenExpires.Format(time.RFC3339))
			if r.SealType == keys.SealShamir {
				fmt.Fprintf(e.stdout, "The vault is sealed. Give %d of these %d shares with \"custodia operator unseal\".\n", r.Threshold, len(r.Shares))
				fmt.Fprintln(e.stdout, "They are shown only now and are not stored anywhere: hand each to a different person.")
			} else {
				fmt.Fprintln(e.stdout, "The vault is unsealed with the root key file. Keep that file away from the data directory and its backups.")
			}
			return nil
		})
	}
	return c
}

// readSecretLine reads one line from stdin, without echo on a terminal.
func readSecretLine(e *env, prompt string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		return strings.TrimSpace(string(b)), err
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func opUnsealCmd(e *env) *cobra.Command {
	var reset bool
	c := &cobra.Command{
		Use:   "unseal",
		Short: "Give one unseal share (read from the terminal without echo, or from stdin)",
		Long: `Give one unseal share. The share is read from standard input (without echo on a
terminal), never from an argument, so it stays out of shell history and the
process list. Repeat with other shares until the threshold is reached.`,
		Args: exactArgs(0, "no arguments (the share is read from stdin)"),
	}
	mk := clientFlags(c, e)
	c.Flags().BoolVar(&reset, "reset", false, "forget the shares given so far")
	c.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		body := api.UnsealRequest{Reset: reset}
		if !reset {
			share, err := readSecretLine(e, "Unseal share: ")
			if err != nil {
				return err
			}
			if share == "" {
				return usageErr("no share given on stdin")
			}
			body.Share = share
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodPost, "/api/v1/sys/unseal", nil, body, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			var st keys.Status
			if err := json.Unmarshal(raw, &st); err != nil {
				return err
			}
			printStatus(e.stdout, st)
			return nil
		})
	}
	return c
}

func opSealCmd(e *env) *cobra.Command {
	return statusCall(e, "seal", "Drop the root key from the server's memory: every data route answers 503 until unsealed",
		http.MethodPost, "/api/v1/sys/seal")
}

func opStatusCmd(e *env) *cobra.Command {
	return statusCall(e, "status", "Show whether the installation is initialized and sealed", http.MethodGet, "/api/v1/sys/seal-status")
}

// statusCall is a command that calls path and prints the seal status it
// answers.
func statusCall(e *env, use, short, method, path string) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: exactArgs(0, "no arguments")}
	mk := clientFlags(c, e)
	c.RunE = simpleCall(e, mk, method, path, func(raw json.RawMessage) error {
		var st keys.Status
		if err := json.Unmarshal(raw, &st); err != nil {
			return err
		}
		printStatus(e.stdout, st)
		return nil
	})
	return c
}

// simpleCall is a command that sends no body and prints the answer.
func simpleCall(e *env, mk clientMaker, method, path string, text func(json.RawMessage) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), method, path, nil, nil, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error { return text(raw) })
	}
}

func opRotateRootCmd(e *env) *cobra.Command {
	var shares, threshold int
	c := &cobra.Command{
		Use:   "rotate-root",
		Short: "Replace the root key and re-wrap every tenant key; prints the new shares once",
		Long: `Replace the root key. Every tenant key is re-wrapped under the new root key in
one transaction. For a Shamir installation new shares are printed once (the old
ones stop working); for a key-file installation the new key is printed once and
must replace the key file before the next start.`,
		Args: exactArgs(0, "no arguments"),
	}
	mk := clientFlags(c, e)
	c.Flags().IntVar(&shares, "shares", 0, "number of new shares (default: as before)")
	c.Flags().IntVar(&threshold, "threshold", 0, "new threshold (default: as before)")
	c.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		body := map[string]int{}
		if shares > 0 {
			body["shares"], body["threshold"] = shares, threshold
		}
		if err := cl.Do(c.Context(), http.MethodPost, "/api/v1/sys/rotate-root", nil, body, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			var r api.RotateRootResponse
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			for i, s := range r.Shares {
				fmt.Fprintf(e.stdout, "New unseal share %d: %s\n", i+1, s)
			}
			if r.NewRootKey != "" {
				fmt.Fprintf(e.stdout, "New root key (write it to the root key file before the next start):\n%s", r.NewRootKey)
			}
			fmt.Fprintf(e.stdout, "Root key generation %d. The previous shares or key no longer open this installation.\n", r.Generation)
			return nil
		})
	}
	return c
}

func opKeygenCmd(e *env) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "keygen",
		Short: "Write a new root key file (mode 0600) for --root-key-file",
		Long: `Write a new random root key to a file readable only by its owner. Keep it on
storage apart from the data directory and its backups (another volume, a
secrets mount), then start the server with --root-key-file.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageErr("--out is required")
			}
			k, err := keys.GenerateKey()
			if err != nil {
				return err
			}
			defer k.Wipe()
			if err := keys.WriteKeyFile(out, k); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Wrote a new root key to %s\n", out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "path of the new key file (must not exist)")
	return c
}

func opTokenCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "Create, list and revoke operator tokens"}

	create := &cobra.Command{Use: "create", Short: "Create an operator token (printed once)", Args: exactArgs(0, "no arguments")}
	mkCreate := clientFlags(create, e)
	var name, ttl string
	create.Flags().StringVar(&name, "name", "", "what the token is for")
	create.Flags().StringVar(&ttl, "ttl", "720h", "lifetime (at most 8760h)")
	create.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mkCreate()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodPost, "/api/v1/sys/tokens", nil, api.CreateTokenRequest{Name: name, TTL: ttl}, &raw); err != nil {
			return err
		}
		return output(e.stdout, cc, raw, func() error {
			var r api.CreateTokenResponse
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s\n(id %s, expires %s; shown only now)\n", r.Token, r.Info.ID, r.Info.ExpiresAt.Format(time.RFC3339))
			return nil
		})
	}

	list := &cobra.Command{Use: "list", Short: "List operator tokens", Args: exactArgs(0, "no arguments")}
	mkList := clientFlags(list, e)
	list.RunE = simpleCall(e, mkList, http.MethodGet, "/api/v1/sys/tokens", func(raw json.RawMessage) error {
		var r api.TokenList
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tEXPIRES\tREVOKED")
		for _, t := range r.Tokens {
			rev := "-"
			if !t.RevokedAt.IsZero() {
				rev = t.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.ExpiresAt.Format(time.RFC3339), rev)
		}
		return tw.Flush()
	})

	revoke := &cobra.Command{Use: "revoke ID", Short: "Revoke an operator token at once", Args: exactArgs(1, "a token ID")}
	mkRevoke := clientFlags(revoke, e)
	revoke.RunE = func(c *cobra.Command, args []string) error {
		cl, _, err := mkRevoke()
		if err != nil {
			return err
		}
		if err := cl.Do(c.Context(), http.MethodDelete, "/api/v1/sys/tokens/"+pathEscape(args[0]), nil, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Revoked %s\n", args[0])
		return nil
	}
	c.AddCommand(create, list, revoke)
	return c
}
