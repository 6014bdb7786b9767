package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/measure"
	"github.com/dubboreach/dubboreach/registry/server"
)

// auditProbeFlags plug the measurements of `dubboreach probe` into the long-running auditor
// (registry/measure): the API on --listen, the metrics on /metrics, the verdicts from a hook,
// the measurements beside the verdicts in the dashboard.
type auditProbeFlags struct {
	tokenFile string
	ttl       time.Duration
}

func (p *auditProbeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&p.tokenFile, "probe-token-file", "", "file holding the bearer token probes send with --report-to (re-read at each report); without it reports are refused")
	fs.DurationVar(&p.ttl, "probe-ttl", measure.DefaultTTL, "how long a probe's measurement counts after it was received")
}

// apply adds the measurements API, metrics and verdict hook to o. Without --listen there is
// nowhere to take reports: --probe-token-file is then an error.
func (p *auditProbeFlags) apply(o *server.Options) error {
	if p.ttl <= 0 {
		return usageError(fmt.Errorf("--probe-ttl %s: want a positive duration, e.g. 15m", p.ttl))
	}
	if o.Listen == "" {
		if p.tokenFile != "" {
			return usageError(errors.New("--probe-token-file takes probe reports on --listen: give --listen too"))
		}
		return nil
	}
	store := measure.NewStore(measure.Options{TTL: p.ttl})
	var latest atomic.Pointer[registry.Result]
	metrics := measure.NewMetrics(store, latest.Load)
	h, err := measure.NewHandler(measure.HandlerOptions{Store: store, TokenFile: p.tokenFile, Latest: latest.Load, Metrics: metrics, Log: o.Log})
	if err != nil {
		return usageError(fmt.Errorf("--probe-token-file: %w", err))
	}
	if o.Handlers == nil {
		o.Handlers = map[string]http.Handler{}
	}
	for pattern, hh := range h.Routes() {
		o.Handlers[pattern] = hh
	}
	o.Hooks = append(o.Hooks, func(_ context.Context, r *registry.Result) { latest.Store(r) })
	o.Collectors = append(o.Collectors, metrics)
	o.Measurements = store // the dashboard shows them beside the verdicts
	return nil
}
