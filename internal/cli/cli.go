// Package cli is the custodia command: the server and the client
// subcommands, grouped by noun. cmd/custodia only calls Main.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/custodia-project/custodia/internal/client"
	"github.com/custodia-project/custodia/internal/config"
)

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3".
var Version = "dev"

// Exit codes, documented in docs/operator-guide.md.
const (
	ExitOK          = 0
	ExitError       = 1 // server or internal error
	ExitUsage       = 2 // bad flags or arguments, invalid configuration
	ExitAuth        = 3 // missing, invalid or insufficient token
	ExitNotFound    = 4
	ExitConflict    = 5 // already exists, already initialized, wrong state
	ExitUnavailable = 6 // sealed, not ready, unreachable
	ExitInvalid     = 7 // the server refused the input
)

// exitError carries an exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ae *client.Error
	if errors.As(err, &ae) {
		switch {
		case ae.Status == 401 || ae.Status == 403:
			return ExitAuth
		case ae.Status == 404:
			return ExitNotFound
		case ae.Status == 409:
			return ExitConflict
		case ae.Status == 503:
			return ExitUnavailable
		case ae.Status >= 400 && ae.Status < 500:
			return ExitInvalid
		}
	}
	return ExitError
}

// env is the process environment, replaceable in tests.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// Main runs the command line and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
}

// Run runs one command line.
func Run(ctx context.Context, args []string, e *env) int {
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(e.stderr, "custodia:", err)
	var ae *client.Error
	if errors.As(err, &ae) && ae.RequestID != "" {
		fmt.Fprintln(e.stderr, "request ID:", ae.RequestID)
	}
	return exitCode(err)
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "custodia",
		Short: "Custodia: a multi-tenant data-protection vault",
		Long: `Custodia keeps small businesses' bank, tax-portal and payroll logins, signing
certificates, device readings and personal data safe, and proves it.

Start a server with "custodia server --data DIR", then initialize and unseal it
with "custodia operator init" and "custodia operator unseal".`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(
		serverCmd(e),
		versionCmd(e),
		operatorCmd(e),
		tenantCmd(e),
		auditCmd(e),
		jobCmd(e),
		loginCmd(e),
		logoutCmd(e),
		whoamiCmd(e),
		memberCmd(e),
		robotCmd(e),
		tokenCmd(e),
		grantCmd(e),
		requestCmd(e),
		reviewCmd(e),
		policyCmd(e),
		mfaCmd(e),
		sessionCmd(e),
		notificationCmd(e),
		credCmd(e),
		breakGlassCmd(e),
		shareCmd(e),
		certCmd(e),
		leaseCmd(e),
	)
	// Unknown subcommands and wrong argument counts are usage errors.
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Args == nil && c.HasSubCommands() {
			c.Args = func(c *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usageErr("unknown command %q for %q", args[0], c.CommandPath())
				}
				return nil
			}
		}
		if !c.Runnable() && c.HasSubCommands() {
			c.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr("%s takes %s (see --help)", c.CommandPath(), names)
		}
		return nil
	}
}

// clientKey holds a command's client in its context once clientFlags made
// it.
type clientKey struct{}

// clientFlags gives a command the client flags and returns a function that
// builds the client and output settings when the command runs.
func clientFlags(c *cobra.Command, e *env) func() (*client.Client, *config.Client, error) {
	cc := config.RegisterClient(c.Flags())
	return func() (*client.Client, *config.Client, error) {
		if err := config.Resolve(c.Flags(), e.getenv); err != nil {
			return nil, nil, &exitError{code: ExitUsage, err: err}
		}
		if err := cc.Validate(); err != nil {
			return nil, nil, &exitError{code: ExitUsage, err: err}
		}
		if cc.InsecureSkipVerify {
			fmt.Fprintln(e.stderr, "WARNING: --insecure-skip-verify: the server's identity is not checked")
		}
		cl, err := client.New(client.Options{Addr: cc.Addr, Token: cc.Token, CACert: cc.CACert, InsecureSkipVerify: cc.InsecureSkipVerify})
		if err != nil {
			return nil, nil, &exitError{code: ExitUsage, err: err}
		}
		// The command's tenant, when not given, is asked of the server
		// with this client (tenantFlag).
		c.SetContext(context.WithValue(c.Context(), clientKey{}, cl))
		return cl, cc, nil
	}
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// output prints raw JSON in json mode, or calls text otherwise.
func output(w io.Writer, cc *config.Client, raw json.RawMessage, text func() error) error {
	if cc.Output == "json" {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		return printJSON(w, v)
	}
	return text()
}

func versionCmd(e *env) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "json" {
				return printJSON(e.stdout, map[string]string{"version": Version})
			}
			fmt.Fprintln(e.stdout, "custodia", Version)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "text", "output format: text or json")
	return c
}

var _ = pflag.ContinueOnError
