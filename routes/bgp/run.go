package bgp

import (
	"context"
	"time"

	"github.com/dubboreach/dubboreach/routes"
)

// RunOptions tune Run.
type RunOptions struct {
	// StatusInterval is how often the Adj-RIB-Outs are read and Report called (default 2s):
	// the bound on how stale "published" is, on top of the reader's own delay.
	StatusInterval time.Duration
	// Report receives every status; it must not keep the speaker waiting for long.
	Report func(*Status)
}

// Run keeps the announcements equal to the store's routes until ctx ends: every change of the
// store is synced at once (a burst of node events is one Sync, the store coalesces them), and
// a failed Sync is retried on the next status tick.
func (s *Speaker) Run(ctx context.Context, store *routes.Store, opt RunOptions) {
	if opt.StatusInterval <= 0 {
		opt.StatusInterval = 2 * time.Second
	}
	tick := time.NewTicker(opt.StatusInterval)
	defer tick.Stop()
	dirty := true
	for {
		if dirty {
			res, err := s.Sync(store.Table().Routes)
			dirty = err != nil
			if err != nil {
				s.log.Error(err, "syncing BGP announcements; retrying")
			} else if res.Announced+res.Withdrawn > 0 {
				s.log.Info("BGP announcements synced", "announced", res.Announced, "withdrawn", res.Withdrawn, "kept", res.Kept, "skipped", res.Skipped)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-store.Changed():
			dirty = true
			continue
		case <-tick.C:
		}
		if opt.Report != nil {
			st, err := s.Status()
			if err != nil {
				s.log.Error(err, "reading BGP status")
			}
			opt.Report(st)
		}
	}
}
