package dashboard

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/registry"
)

func TestFixesWithoutFixMode(t *testing.T) {
	s := newServer(t, 0)
	var p fixesPage
	require.Equal(t, http.StatusOK, s.get(t, "/api/v1/fixes", &p))
	assert.False(t, p.Enabled, "no --fix: the page hides the section")
	assert.Empty(t, p.Fixes)
}

func TestFixesNewestFirstBoundedAndValidated(t *testing.T) {
	log := NewFixLog(3)
	base := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	for i := range 5 {
		log.Add(FixEntry{At: base.Add(time.Duration(i) * time.Minute), Mode: "disable", Op: "create", Result: "applied",
			Provider: fmt.Sprintf("10.244.2.%d:20880", i), Reason: strings.Repeat("x", 2000)})
	}
	mux := http.NewServeMux()
	Register(mux, Options{Holder: registry.NewHolder(), Fixes: log, Context: t.Context()})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s := &server{Server: srv}

	var p fixesPage
	require.Equal(t, http.StatusOK, s.get(t, "/api/v1/fixes", &p))
	assert.True(t, p.Enabled)
	var got []string
	for _, f := range p.Fixes {
		got = append(got, f.Provider)
		assert.Len(t, f.Reason, 1024+len("…"), "registry-derived text is bounded")
	}
	assert.Equal(t, []string{"10.244.2.4:20880", "10.244.2.3:20880", "10.244.2.2:20880"}, got, "the last 3, newest first")

	require.Equal(t, http.StatusOK, s.get(t, "/api/v1/fixes?limit=1", &p))
	assert.Len(t, p.Fixes, 1)

	for _, bad := range []struct{ query, param string }{{"limit=0", "limit"}, {"limit=501", "limit"}, {"limit=x", "limit"}, {"sort=at", "sort"}} {
		var e apiError
		assert.Equal(t, http.StatusBadRequest, s.get(t, "/api/v1/fixes?"+bad.query, &e), bad.query)
		assert.Equal(t, bad.param, e.Parameter, bad.query)
		assert.NotEmpty(t, e.Error)
	}
}
