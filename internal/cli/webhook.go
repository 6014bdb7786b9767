package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/webhook"
	"github.com/dubboreach/dubboreach/webhook/server"
)

// newWebhookCommand is `dubboreach webhook`: the mutating admission webhook and the
// node-label controller (webhook/server).
func newWebhookCommand() *cobra.Command {
	var (
		cf       clusterFlags
		o        server.Options
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Serve the mutating admission webhook that injects DUBBO_IP_TO_REGISTRY, and label nodes by pod-route state",
		Long: `Serve the mutating admission webhook. In namespaces labelled dubboreach.io/inject=enabled it
sets DUBBO_IP_TO_REGISTRY (and, for host addresses, DUBBO_PORT_TO_REGISTRY) on pod containers,
choosing the pod IP or the host IP by what the fabric reaches (see docs/webhook.md).

The same process keeps dubboreach.io/pod-route=published|missing on every Node (leader-elected).
With --inventory it serves from the file alone, without a cluster (no node labels).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError(fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel))
			}
			// JSON lines on stderr through slog: structured, and no extra logging dependency.
			log := logr.FromSlogHandler(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			ctrl.SetLogger(log)
			o.Log = log

			if o.MaxInFlight < 1 {
				return usageError(fmt.Errorf("--max-in-flight %d: want at least 1", o.MaxInFlight))
			}
			if o.RequestTimeout <= 0 {
				return usageError(fmt.Errorf("--request-timeout %s: want a positive duration such as 10s", o.RequestTimeout))
			}
			if o.ShutdownDelay < 0 {
				return usageError(fmt.Errorf("--shutdown-delay %s: want zero or a positive duration such as 10s", o.ShutdownDelay))
			}
			if o.Port < 1 || o.Port > 65535 {
				return usageError(fmt.Errorf("--port %d: want a port from 1 to 65535", o.Port))
			}
			if o.CertDir == "" {
				return usageError(errors.New("--cert-dir is empty: give the directory holding tls.crt and tls.key"))
			}
			var err error
			if o.Fabric, err = cf.loadFabric(); err != nil {
				return err
			}
			if cf.inventory != "" {
				if o.Inventory, err = cf.loadInventory(cmd.Context()); err != nil {
					return err
				}
				if o.LeaderElect {
					return usageError(errors.New("--leader-elect needs a cluster: drop it when serving from --inventory"))
				}
			} else {
				if o.RestConfig, err = cf.restConfig(); err != nil {
					return err
				}
				if o.BGPStatusNamespace = cf.bgpNamespace; o.BGPStatusNamespace == "" {
					o.BGPStatusNamespace = o.Namespace
				}
				if o.Fabric.Publish == routes.PublishBGP && o.BGPStatusNamespace == "" {
					return usageError(errors.New("the fabric says podRoutes.publish: bgp: pass --bgp-status-namespace (where `dubboreach publish` keeps ConfigMap and Lease dubboreach-bgp), --namespace, or set POD_NAMESPACE"))
				}
				if o.LeaderElect && o.Namespace == "" {
					return usageError(errors.New("--leader-elect needs the namespace for its Lease: pass --namespace or set POD_NAMESPACE"))
				}
			}
			if err := server.Run(cmd.Context(), o); err != nil {
				return fmt.Errorf("webhook: %w", err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	cf.register(fs)
	cf.registerBGP(fs)
	fs.StringVar(&o.Host, "host", "", "address the webhook server listens on (default: all)")
	fs.IntVar(&o.Port, "port", 9443, "HTTPS port of the webhook server")
	fs.StringVar(&o.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory with tls.crt and tls.key; a renewed certificate is picked up without restart")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "address of /healthz and /readyz (0 disables them)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect one replica to label nodes (all replicas answer admissions)")
	fs.StringVar(&o.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "the webhook's own namespace: never injected, holds the leader Lease (default $POD_NAMESPACE)")
	fs.BoolVar(&o.RequireRoutableNode, "require-routable-node", false, "in auto mode with only some nodes' pod routes published, inject the pod IP and require a node labelled dubboreach.io/pod-route=published instead of injecting the host IP")
	fs.IntVar(&o.MaxInFlight, "max-in-flight", webhook.DefaultMaxInFlight, "admission requests answered at once; more are answered 429 without reading them (bounds memory)")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", webhook.DefaultRequestTimeout, "deadline to read and answer one admission request (the API server waits at most the webhook's timeoutSeconds)")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", 0, "on SIGTERM, fail readiness and keep answering admissions this long before shutting down, so endpoints drop the pod first (the chart sets 10s)")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", false, "serve HTTP/2 too (off by default: HTTP/2 rapid reset, CVE-2023-44487)")
	fs.StringVar(&logLevel, "log-level", "info", "log level: "+strings.Join([]string{"debug", "info", "warn", "error"}, ", ")+" (JSON logs on stderr; debug logs every admission)")
	return cmd
}
