// Package httpapi serves leadscore's HTTP listener: Prometheus metrics,
// health and readiness, and the read API for CRMs and operators.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sink"
)

// Leads reads lead states; *scorer.Scorer satisfies it.
type Leads interface {
	Lead(ctx context.Context, leadID string) (scorer.Stored, error)
	Model() *scorer.Model
}

// ReadyFunc reports nil when the service can do its work, or why not.
type ReadyFunc func(ctx context.Context) error

// LeadView is the JSON of GET /v1/leads/{id}.
type LeadView struct {
	LeadID      string    `json:"lead_id"`
	Score       float64   `json:"score"`      // combined, decayed to now
	Engagement  float64   `json:"engagement"` // decayed to now
	Fit         float64   `json:"fit"`
	Band        string    `json:"band"`
	Stage       string    `json:"stage"`
	Events      uint64    `json:"events"`
	FirstSeen   time.Time `json:"first_seen"`
	LastEventAt time.Time `json:"last_event_at"`
	// NextDecayChange is when decay alone will next move the band, if ever.
	NextDecayChange *time.Time              `json:"next_decay_change,omitempty"`
	Contributors    []ContributionView      `json:"top_contributors"`
	Changes         []ChangeView            `json:"recent_changes"`
	Transitions     []sink.TransitionRecord `json:"recent_transitions"`
}

// ContributionView is one rule's share of the engagement score, decayed to now.
type ContributionView struct {
	Rule   string  `json:"rule"`
	Points float64 `json:"points"`
}

// ChangeView is one event's effect on the score.
type ChangeView struct {
	At      time.Time `json:"at"`
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	Rules   []string  `json:"rules"`
	Delta   float64   `json:"delta"`
	Score   float64   `json:"score_after"`
}

// WithPProf adds Go's profiler under /debug/pprof/ to a Handler's mux.
func WithPProf(h http.Handler) http.Handler {
	mux := h.(*http.ServeMux)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// Handler returns the listener's routes.
func Handler(g prometheus.Gatherer, leads Leads, ready ReadyFunc, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET /v1/leads/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if id == "" || len(id) > 256 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "lead id must be 1 to 256 bytes"})
			return
		}
		st, err := leads.Lead(r.Context(), id)
		if err != nil {
			log.Error("read lead", zap.String("lead_id", id), zap.Error(err))
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "state store unavailable"})
			return
		}
		if !st.Found {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown lead", "lead_id": id})
			return
		}
		writeJSON(w, http.StatusOK, View(id, &st.State, leads.Model(), time.Now()))
	})
	return mux
}

// View turns a stored state into its API form, with scores as of now.
func View(id string, s *scorer.LeadState, m *scorer.Model, now time.Time) LeadView {
	score := m.ScoreAt(s, now)
	v := LeadView{LeadID: id, Score: round(score), Engagement: round(score - s.Fit), Fit: round(s.Fit),
		Band: s.Band, Stage: s.Stage, Events: s.Events, FirstSeen: s.FirstSeen, LastEventAt: s.LastEventAt,
		Contributors: []ContributionView{}, Changes: []ChangeView{}, Transitions: []sink.TransitionRecord{}}
	if t := m.NextChange(s); !t.IsZero() {
		v.NextDecayChange = &t
	}
	eng := s.Eng
	factor := 1.0
	if eng != 0 {
		factor = (score - s.Fit) / eng
	}
	top := slices.Clone(s.Top)
	sort.Slice(top, func(i, j int) bool { return math.Abs(top[i].Points) > math.Abs(top[j].Points) })
	for _, c := range top {
		v.Contributors = append(v.Contributors, ContributionView{Rule: c.Rule, Points: round(c.Points * factor)})
	}
	for i := len(s.Changes) - 1; i >= 0; i-- { // newest first
		c := s.Changes[i]
		v.Changes = append(v.Changes, ChangeView{At: c.At, EventID: c.EventID, Type: c.Type,
			Rules: append([]string{}, c.Rules...), Delta: round(c.Delta), Score: round(c.Score)})
	}
	for i := len(s.History) - 1; i >= 0; i-- {
		v.Transitions = append(v.Transitions, sink.Record(&s.History[i]))
	}
	return v
}

func round(f float64) float64 { return math.Round(f*100) / 100 }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

// Server runs the listener until ctx ends.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr now, so start-up fails early on a taken port.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
