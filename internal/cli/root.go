// Package cli holds dubboreach's cobra commands. Each command is a thin layer over a package
// (routes, webhook, registry): it parses flags, loads inputs, calls the package and maps the
// result to output and exit code.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/dubboreach/dubboreach/internal/version"
)

// Exit codes, part of the CLI contract.
const (
	ExitOK       = 0 // everything reachable / no findings
	ExitFindings = 1 // something is not reachable, or a scan is incomplete
	ExitUsage    = 2 // bad flags, bad input files, no cluster to read
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// usageError marks an error as a usage or configuration error (exit 2).
func usageError(err error) error { return &exitError{code: ExitUsage, err: err} }

// errFindings makes the command exit 1 without printing anything more.
var errFindings = &exitError{code: ExitFindings}

// NewRootCommand builds the dubboreach command tree.
func NewRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "dubboreach",
		Short:         "Make Dubbo registrations of Kubernetes pods reachable from outside the cluster, and prove it",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(
		newRoutesCommand(),
		newCheckCommand(),
		newVersionCommand(),
	)
	root.AddCommand(extraCommands()...)
	return root
}

// Run executes the command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "dubboreach:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors (unknown command, bad arguments) are usage errors.
	fmt.Fprintln(stderr, "dubboreach:", err)
	return ExitUsage
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
			return nil
		},
	}
}
