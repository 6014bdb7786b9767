package probe

import (
	"context"
	"net/netip"
	"time"

	"github.com/dubboreach/dubboreach/registry/dubbo"
	"github.com/dubboreach/dubboreach/registry/zk"
)

// Report is one probe run: the document of `probe -o json` and the body a probe sends to the
// auditor (docs/probe.md).
type Report struct {
	// Vantage names where the probe ran (set when reporting).
	Vantage    string    `json:"vantage,omitempty"`
	MeasuredAt time.Time `json:"measuredAt"`
	// Complete: the registry was read in full and every address found was probed.
	Complete bool `json:"complete"`
	// Missing lists the registry paths not read (escaped).
	Missing      []string      `json:"missing"`
	Summary      Summary       `json:"summary"`
	Measurements []Measurement `json:"measurements"`
}

// Summary counts the measurements by result, and the registrations not probed by why.
type Summary struct {
	Addresses   int            `json:"addresses"`
	Results     map[Result]int `json:"results"`
	Hostnames   int            `json:"hostnames"`
	NoPort      int            `json:"noPort"`
	Unparseable int            `json:"unparseable"`
	Excluded    int            `json:"excluded"`
	Truncated   int            `json:"truncated"`
}

// OK says every probed address answered and nothing was left out by accident (the CLI's exit 0).
func (r *Report) OK() bool {
	if !r.Complete {
		return false
	}
	for i := range r.Measurements {
		if !r.Measurements[i].Result.OK() {
			return false
		}
	}
	return true
}

// RunOptions say what to read and how to probe.
type RunOptions struct {
	Scan       zk.Config
	Only       []netip.Prefix
	MaxTargets int
	Probe      Options
}

// Run reads the registry once, probes every provider address in it and reports.
func Run(ctx context.Context, o RunOptions) (*Report, error) {
	snap, err := zk.Once(ctx, o.Scan)
	if err != nil {
		return nil, err
	}
	plan := Targets(snap, o.Only, o.MaxTargets)
	r := &Report{MeasuredAt: time.Now().UTC(), Missing: []string{}}
	for _, m := range snap.Missing {
		r.Missing = append(r.Missing, dubbo.Display(m.Path))
	}
	r.Measurements = Probe(ctx, plan.Targets, o.Probe)
	r.Complete = snap.Complete && plan.Truncated == 0
	r.Summary = summarize(plan, r.Measurements)
	return r, nil
}

func summarize(p Plan, ms []Measurement) Summary {
	s := Summary{Addresses: len(ms), Results: map[Result]int{}, Hostnames: p.Hostnames, NoPort: p.NoPort,
		Unparseable: p.Unparseable, Excluded: p.Excluded, Truncated: p.Truncated}
	for i := range ms {
		s.Results[ms[i].Result]++
	}
	return s
}
