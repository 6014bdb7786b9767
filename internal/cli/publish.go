package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/bgp"
)

// newPublishCommand is `dubboreach publish`: the BGP speaker for podRoutes.publish: bgp
// (routes/bgp.Publish).
func newPublishCommand() *cobra.Command {
	var (
		cf           clusterFlags
		o            bgp.PublishOptions
		logLevel     string
		localAddress string
	)
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Announce every node's pod routes over BGP to the fabric's routers (podRoutes.publish: bgp)",
		Long: `Announce the pod routes of the cluster (pod CIDR or Calico block -> the node's address) over BGP
to the peers of the fabric file's spec.bgp, never anything outside spec.bgp.within, and withdraw
them as nodes leave or change (see docs/bgp.md).

With --leader-elect one replica speaks and the others stand by. The speaking replica keeps the
ConfigMap and Lease dubboreach-bgp in --namespace current: what its Established peers were sent,
which is what "published" means under publish: bgp for the webhook and the auditor.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError(fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel))
			}
			log := logr.FromSlogHandler(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			ctrl.SetLogger(log)
			o.Log = log

			if cf.inventory != "" {
				return usageError(errors.New("--inventory: publish follows a live cluster (nodes join and leave); give --kubeconfig or run in-cluster"))
			}
			if cf.fabric == "" {
				return usageError(errors.New("--fabric is required: publish reads its peers, ASN and within from the fabric file's spec.bgp"))
			}
			var err error
			if o.Fabric, err = cf.loadFabric(); err != nil {
				return err
			}
			if o.Fabric.Publish != routes.PublishBGP || o.Fabric.BGP == nil {
				return usageError(fmt.Errorf("%s: spec.podRoutes.publish is %q: publish needs publish: bgp and a spec.bgp block (docs/bgp.md)", cf.fabric, o.Fabric.Publish))
			}
			if localAddress != "" {
				a, err := netip.ParseAddr(localAddress)
				if err != nil {
					return usageError(fmt.Errorf("--local-address %q: want an IP address of this host", localAddress))
				}
				o.Speaker.LocalAddress = a
			}
			for _, d := range []struct {
				flag string
				v    time.Duration
			}{{"--status-lease", o.StatusLease}, {"--status-interval", o.StatusInterval}} {
				if d.v < time.Second {
					return usageError(fmt.Errorf("%s %v: want at least 1s", d.flag, d.v))
				}
			}
			if o.StatusInterval >= o.StatusLease {
				return usageError(fmt.Errorf("--status-interval %v is not shorter than --status-lease %v: every heartbeat would expire before the next", o.StatusInterval, o.StatusLease))
			}
			if o.Namespace == "" {
				return usageError(errors.New("--namespace is empty: the status objects and the leader Lease need one; pass --namespace or set POD_NAMESPACE"))
			}
			if o.Identity == "" {
				return usageError(errors.New("--identity is empty: pass --identity or set POD_NAME"))
			}
			if o.RestConfig, err = cf.restConfig(); err != nil {
				return err
			}
			if err := bgp.Publish(cmd.Context(), o); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	cf.register(fs)
	host, _ := os.Hostname()
	identity := os.Getenv("POD_NAME")
	if identity == "" {
		identity = host
	}
	fs.StringVar(&o.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "own namespace: holds the status objects (ConfigMap and Lease dubboreach-bgp) and the leader Lease (default $POD_NAMESPACE)")
	fs.StringVar(&o.Identity, "identity", identity, "this replica's name in the status Lease (default $POD_NAME, else the host name)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect one replica to speak; the others stand by (required with more than one replica)")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long a crashed leader holds the leader Lease before a standby speaks")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader retries renewing before it gives up speaking")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", 2*time.Second, "how often standbys try for the leader Lease")
	fs.DurationVar(&o.StatusLease, "status-lease", 10*time.Second, "how long one heartbeat of the status Lease counts: a dead speaker's routes read unpublished after this")
	fs.DurationVar(&o.StatusInterval, "status-interval", 2*time.Second, "how often the sessions are read and the status objects written")
	fs.DurationVar(&o.Speaker.ConnectRetry, "connect-retry", 5*time.Second, "how soon a failed or dropped BGP session is dialled again")
	fs.StringVar(&localAddress, "local-address", "", "source address of the BGP sessions (default: the kernel picks)")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "address of /healthz and /readyz (0 disables them)")
	fs.StringVar(&logLevel, "log-level", "info", "log level: "+strings.Join([]string{"debug", "info", "warn", "error"}, ", ")+" (JSON logs on stderr)")
	return cmd
}
