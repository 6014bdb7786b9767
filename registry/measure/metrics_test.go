package measure_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/measure"
	"github.com/dubboreach/dubboreach/registry/probe"
)

func TestMetrics(t *testing.T) {
	var latest *registry.Result
	s := measure.NewStore(measure.Options{})
	m := measure.NewMetrics(s, func() *registry.Result { return latest })
	assert.Equal(t, map[string]float64{
		"dubboreach_probe_reports_total{outcome=accepted}": 0, "dubboreach_probe_reports_total{outcome=invalid}": 0,
		"dubboreach_probe_reports_total{outcome=unauthorized}": 0, "dubboreach_probe_reports_total{outcome=refused}": 0,
	}, gather(t, m), "no vantage: no per-vantage series")

	require.NoError(t, s.Put("outside-dc1", time.Time{}, []probe.Measurement{ms("10.131.73.9", 20880, probe.Timeout), ms("10.131.10.5", 20880, probe.Answered)}))
	require.NoError(t, s.Put("inside", time.Time{}, []probe.Measurement{ms("10.131.73.9", 20880, probe.Answered)}))
	got := gather(t, m)
	assert.Equal(t, 1.0, got["dubboreach_probe_measurements{result=timeout,vantage=outside-dc1}"])
	assert.Equal(t, 1.0, got["dubboreach_probe_measurements{result=answered,vantage=outside-dc1}"])
	assert.Equal(t, 0.0, got["dubboreach_probe_measurements{result=refused,vantage=outside-dc1}"])
	assert.Equal(t, 1.0, got["dubboreach_probe_measurements{result=answered,vantage=inside}"])
	assert.Equal(t, 0.0, got["dubboreach_probe_contradictions{vantage=outside-dc1}"], "no verdicts yet")
	assert.Len(t, got, 4+2*len(probe.Results)+2)

	latest = fieldCase()
	got = gather(t, m)
	assert.Equal(t, 2.0, got["dubboreach_probe_contradictions{vantage=outside-dc1}"], "reachable but timeout; unreachable but answered")
	assert.Equal(t, 0.0, got["dubboreach_probe_contradictions{vantage=inside}"], "inside answered where the verdict is reachable")
}
