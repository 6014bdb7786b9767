package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder until the webhook component lands; the file is owned by its implementation.
func newWebhookCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "webhook",
		Short:  "(not built yet)",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return usageError(errors.New("webhook is not built yet"))
		},
	}
}
