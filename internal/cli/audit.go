package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder until the audit component lands; the file is owned by its implementation.
func newAuditCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "audit",
		Short:  "(not built yet)",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return usageError(errors.New("audit is not built yet"))
		},
	}
}
