package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"

	"github.com/dubboreach/dubboreach/registry/measure"
	"github.com/dubboreach/dubboreach/registry/probe"
	"github.com/dubboreach/dubboreach/registry/zk"
)

type probeFlags struct {
	zk, zkRoot, servicesRoot, authFile string
	connectTimeout                     time.Duration
	only                               []string
	output                             string
	concurrency                        int
	timeout                            time.Duration
	rate                               float64
	maxTargets                         int
	reportTo, vantage, tokenFile       string
}

func newProbeCommand() *cobra.Command {
	var f probeFlags
	cmd := &cobra.Command{
		Use:   "probe --zk HOST:PORT[,...][/chroot]",
		Short: "Measure from here whether each registered Dubbo provider answers",
		Long: `Read the provider registrations from ZooKeeper (as 'audit' does) and measure, from the
machine this runs on, whether each distinct provider address:port answers: a TCP connect, then
for dubbo:// a Dubbo heartbeat (answered by the provider's exchange layer, never by the
application) and for tri:// the HTTP/2 connection preface (answered by a SETTINGS frame).
Nothing else is sent. Only IP addresses the registry lists are contacted, only within --only
when given; host names are never resolved. See docs/probe.md.

Exit status: 0 when every probed provider answered and the registry was read in full, 1 when a
provider did not answer (refused, timeout, unreachable, wrong answer) or the run is incomplete,
2 on a usage or configuration error, or when --report-to was given and the auditor did not
take the report (the results are printed first).

With --report-to the results also go to the auditor (POST /api/v1/measurements/VANTAGE, with
the bearer token from --token-file), which shows them beside its verdicts and flags where
they disagree.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runProbe(cmd, &f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.zk, "zk", "", "ZooKeeper connection string: host:port[,host:port...][/chroot] (required)")
	fs.StringVar(&f.zkRoot, "zk-root", "/dubbo", "root of Dubbo's interface-level registrations")
	fs.StringVar(&f.servicesRoot, "services-root", "/services", "root of application-level (Curator service discovery) instances")
	fs.StringVar(&f.authFile, "zk-auth-file", "", "file holding ZooKeeper digest credentials user:password (default: $"+zkAuthEnv+")")
	fs.DurationVar(&f.connectTimeout, "zk-connect-timeout", 15*time.Second, "how long to wait for a ZooKeeper session")
	fs.StringSliceVar(&f.only, "only", nil, "probe only addresses within these CIDRs (comma list or repeated); default all")
	fs.StringVarP(&f.output, "output", "o", "table", "output format: table|json")
	fs.IntVar(&f.concurrency, "concurrency", 64, fmt.Sprintf("addresses probed at once (at most %d)", probe.MaxConcurrency))
	fs.DurationVar(&f.timeout, "timeout", 3*time.Second, "time allowed to each address for connect and handshake")
	fs.Float64Var(&f.rate, "rate", 200, "new connections per second at most (0: no bound beyond --concurrency)")
	fs.IntVar(&f.maxTargets, "max-addresses", probe.DefaultMaxTargets, "distinct addresses probed at most; beyond, the run is incomplete")
	fs.StringVar(&f.reportTo, "report-to", "", "auditor base URL to send the results to, e.g. http://dubboreach-audit.dubboreach:8080")
	fs.StringVar(&f.vantage, "vantage", "", "name of where this probe runs, as the auditor shows it (e.g. outside-dc1); required with --report-to")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token the auditor expects (its --probe-token-file); required with --report-to")
	return cmd
}

// reporter checks the reporting flags; nil without --report-to.
func (f *probeFlags) reporter() (*probe.Reporter, error) {
	if f.reportTo == "" {
		if f.vantage != "" || f.tokenFile != "" {
			return nil, errors.New("--vantage and --token-file go with --report-to URL (the auditor to send the results to)")
		}
		return nil, nil
	}
	u, err := probe.ParseReportURL(f.reportTo)
	if err != nil {
		return nil, err
	}
	if f.vantage == "" {
		return nil, errors.New("--report-to needs --vantage NAME: where this probe runs, e.g. --vantage outside-dc1")
	}
	if err := measure.ValidVantage(f.vantage); err != nil {
		return nil, fmt.Errorf("--vantage: %w", err)
	}
	if f.tokenFile == "" {
		return nil, errors.New("--report-to needs --token-file FILE: the bearer token the auditor expects (its --probe-token-file)")
	}
	tok, err := probe.ReadTokenFile(f.tokenFile)
	if err != nil {
		return nil, err
	}
	return &probe.Reporter{URL: u, Vantage: f.vantage, Token: tok, Client: &http.Client{Timeout: 30 * time.Second}}, nil
}

func runProbe(cmd *cobra.Command, f *probeFlags) error {
	if f.zk == "" {
		return usageError(errors.New("--zk is required: the ZooKeeper connection string, e.g. --zk zk-0.zk:2181,zk-1.zk:2181"))
	}
	if _, _, err := zk.ParseServers(f.zk); err != nil {
		return usageError(err)
	}
	if f.output != "table" && f.output != "json" {
		return usageError(fmt.Errorf("-o %q is not a format; use table or json", f.output))
	}
	if f.concurrency < 1 || f.concurrency > probe.MaxConcurrency {
		return usageError(fmt.Errorf("--concurrency %d: want 1..%d", f.concurrency, probe.MaxConcurrency))
	}
	if f.timeout <= 0 {
		return usageError(fmt.Errorf("--timeout %s: want a positive duration, e.g. 3s", f.timeout))
	}
	if f.rate < 0 {
		return usageError(fmt.Errorf("--rate %g: want 0 (no bound) or a positive number of connections per second", f.rate))
	}
	if f.maxTargets < 1 {
		return usageError(fmt.Errorf("--max-addresses %d: want at least 1", f.maxTargets))
	}
	for _, r := range []string{f.zkRoot, f.servicesRoot} {
		if !strings.HasPrefix(r, "/") {
			return usageError(fmt.Errorf("%q is not an absolute ZooKeeper path", r))
		}
	}
	only, err := probe.ParseOnly(f.only)
	if err != nil {
		return usageError(err)
	}
	auth, err := zk.AuthFromFile(f.authFile, zkAuthEnv)
	if err != nil {
		return usageError(err)
	}
	rp, err := f.reporter()
	if err != nil {
		return usageError(err)
	}
	rep, err := probe.Run(cmd.Context(), probe.RunOptions{
		Scan: zk.Config{Options: zk.Options{Servers: f.zk, Auth: auth, Log: logr.Discard()}, ZKRoot: f.zkRoot,
			ServicesRoot: f.servicesRoot, ConnectTimeout: f.connectTimeout},
		Only: only, MaxTargets: f.maxTargets,
		Probe: probe.Options{Concurrency: f.concurrency, Timeout: f.timeout, Rate: f.rate},
	})
	if err != nil {
		return usageError(err)
	}
	w := cmd.OutOrStdout()
	if f.output == "json" {
		err = writeJSON(w, rep)
	} else {
		err = writeProbeTable(w, f.zk, rep)
	}
	if err != nil {
		return err
	}
	if rp != nil {
		ack, err := rp.Send(cmd.Context(), rep)
		if err != nil {
			return usageError(err)
		}
		judged := ""
		if !ack.Judged {
			judged = " (no verdicts yet: its first scan has not finished)"
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "reported %d measurement(s) to %s as %s: %d contradict the auditor's verdicts%s\n",
			ack.Accepted, rp.URL.Redacted(), rp.Vantage, ack.Contradictions, judged)
	}
	if !rep.OK() {
		return errFindings
	}
	return nil
}

func writeProbeTable(w io.Writer, servers string, r *probe.Report) error {
	state := "complete"
	if !r.Complete {
		state = fmt.Sprintf("INCOMPLETE: %d path(s) not read, %d address(es) beyond --max-addresses", len(r.Missing), r.Summary.Truncated)
	}
	s := r.Summary
	fmt.Fprintf(w, "ZooKeeper %s: %s\n", servers, state)
	var counts []string
	for _, res := range probe.Results {
		if n := s.Results[res]; n > 0 {
			counts = append(counts, fmt.Sprintf("%s %d", res, n))
		}
	}
	fmt.Fprintf(w, "Addresses probed: %d (%s); not probed: %d host name(s), %d without port, %d unparseable, %d outside --only\n\n",
		s.Addresses, dash(strings.Join(counts, ", ")), s.Hostnames, s.NoPort, s.Unparseable, s.Excluded)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tPROTOCOL\tRESULT\tMS\tREGISTRATIONS\tSERVICES\tDETAIL")
	for _, m := range r.Measurements {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%d\t%s\t%s\n", hostPortString(m.Address, m.Port), dash(m.Protocol), m.Result, m.Millis,
			m.Registrations, dash(strings.Join(m.Services, ",")), m.Detail)
	}
	return tw.Flush()
}
