package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/scorer"
)

func TestPProfOnlyWhenAsked(t *testing.T) {
	c := config.Default()
	m, err := scorer.NewModel(c.Rules, c.State.DedupeWindow, c.State.History)
	if err != nil {
		t.Fatal(err)
	}
	sc := scorer.New(m, scorer.NewMemStore())
	ready := func(context.Context) error { return nil }
	for _, tt := range []struct {
		pprof bool
		want  int
	}{{false, http.StatusNotFound}, {true, http.StatusOK}} {
		h := Handler(prometheus.NewRegistry(), sc, ready, zap.NewNop())
		if tt.pprof {
			h = WithPProf(h)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
		if rec.Code != tt.want {
			t.Errorf("pprof %v: GET /debug/pprof/ = %d, want %d", tt.pprof, rec.Code, tt.want)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/leads/nobody", nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("unknown lead = %d, want 404", rec.Code)
		}
	}
}
