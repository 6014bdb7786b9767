package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/webhook"
)

// TestShutdownDelayDrains: once told to stop, the server fails readiness at once (so the
// Service's endpoints drop it) and keeps answering admissions until --shutdown-delay ends;
// only then does Run return. Without the delay, a rollout is a window in which the API
// server calls a webhook that is gone and applies the failure policy.
func TestShutdownDelayDrains(t *testing.T) {
	probe := freePort(t)
	// The delay only has to outlast the few polls below, also on a loaded machine under -race.
	const delay = 8 * time.Second
	addr, pool, _, stop := startStaticWith(t, func(o *Options) {
		o.HealthProbeBindAddress = fmt.Sprintf("127.0.0.1:%d", probe)
		o.ShutdownDelay = delay
	})
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", probe)
	eventually(t, "ready before the stop", func() error { return getOK(readyz) })

	stopped := make(chan error, 1)
	stopAt := time.Now()
	go func() { stopped <- stop() }()

	eventually(t, "readiness fails once stopping", func() error {
		if body, err := get(readyz); err == nil {
			return fmt.Errorf("still ready: %s", body)
		}
		return nil
	})
	body, err := get(readyz + "?verbose")
	require.Error(t, err)
	assert.Contains(t, body+err.Error(), "drain", "the failing check is the drain")

	client := newLoadClient(pool)
	defer client.CloseIdleConnections()
	require.NoError(t, admitOnce(client, "https://"+addr+webhook.Path, typicalReview(t), true),
		"admissions are still answered while draining")
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) %s after the stop, before the %s delay and while admissions were still being answered", err, time.Since(stopAt), delay)
	default:
	}
	select {
	case err := <-stopped:
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(stopAt), delay, "Run returns only after the delay")
	case <-time.After(delay + 60*time.Second):
		t.Fatal("Run did not return after the shutdown delay")
	}
}

func TestRunRefusesNegativeShutdownDelay(t *testing.T) {
	err := Run(context.Background(), Options{Inventory: &routes.Inventory{}, ShutdownDelay: -time.Second})
	require.ErrorContains(t, err, "shutdown delay -1s is negative")
}
