package cli

import "github.com/spf13/cobra"

// extraCommands returns the long-running components' commands (webhook, audit, probe, publish). Each lives in
// its own file; this list is the one place that wires them in.
func extraCommands() []*cobra.Command {
	return []*cobra.Command{newWebhookCommand(), newAuditCommand(), newProbeCommand(), newPublishCommand()}
}
