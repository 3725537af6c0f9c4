package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadscore/leadscore/internal/httpapi"
	"github.com/leadscore/leadscore/sink"
)

// cannedLead is what GET /v1/leads/mrx answers, built from the API's own
// type so that a change to the contract breaks this test.
func cannedLead(now time.Time) httpapi.LeadView {
	at := now.Add(-3 * time.Hour).UTC().Truncate(time.Second)
	next := now.Add(6*24*time.Hour + 10*time.Hour + 30*time.Minute)
	return httpapi.LeadView{
		LeadID: "mrx", Score: 16, Engagement: 11, Fit: 5, Band: "hot", Stage: "sql", Events: 5,
		FirstSeen: at.Add(-4 * time.Minute), LastEventAt: at, NextDecayChange: &next,
		Contributors: []httpapi.ContributionView{{Rule: "site-visit", Points: 5}, {Rule: "pricing-page", Points: 4}, {Rule: "careers-page", Points: -2}},
		Changes: []httpapi.ChangeView{
			{At: at, EventID: "x-site_visit_booked", Type: "site_visit_booked", Rules: []string{"site-visit"}, Delta: 5, Score: 16},
			{At: at.Add(-time.Minute), EventID: "x-chat_message", Type: "chat_message", Rules: []string{"chat"}, Delta: 2, Score: 11},
		},
		Transitions: []sink.TransitionRecord{
			{TransitionID: "fdc5645ada6829a7dd93b691d699c8fe", LeadID: "mrx", Kind: "band", From: "warm", To: "hot", Score: 16,
				OccurredAt: at, CauseEventID: "x-site_visit_booked", CauseEventType: "site_visit_booked",
				CauseRules: []string{"site-visit"}, RulesVersion: "c997182533f0"},
			{TransitionID: "0a1b", LeadID: "mrx", Kind: "stage", From: "mql", To: "sql", Score: 16,
				OccurredAt: at, CauseEventID: "x-site_visit_booked", CauseEventType: "site_visit_booked",
				CauseRules: []string{"site-visit"}, RulesVersion: "c997182533f0"},
		},
	}
}

// fakeLeadscore answers /v1/leads/{id} as leadscore does: mrx is known,
// broken fails as when Redis is down, every other lead is unknown.
func fakeLeadscore(t *testing.T, now time.Time) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/leads/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch id := r.PathValue("id"); id {
		case "mrx", "with/slash":
			_ = json.NewEncoder(w).Encode(cannedLead(now))
		case "broken":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"state store unavailable"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "unknown lead", "lead_id": id})
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestLeadViewJSONContract(t *testing.T) {
	// explain reads these keys; a server that renamed one would show blanks.
	b, err := json.Marshal(cannedLead(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"band", "engagement", "events", "first_seen", "fit", "last_event_at", "lead_id", "next_decay_change",
		"recent_changes", "recent_transitions", "score", "stage", "top_contributors"}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, want) {
		t.Errorf("LeadView JSON keys %q, want %q", got, want)
	}
}

func TestExplain(t *testing.T) {
	srv := fakeLeadscore(t, time.Now())
	for _, args := range [][]string{
		{"explain", "mrx", "--api", srv.URL, "--config", defaultYAML},
		{"explain", "--api", srv.URL + "/", "--config", defaultYAML, "mrx"},                          // flags first, a trailing slash
		{"explain", "--config", defaultYAML, "--api", strings.TrimPrefix(srv.URL, "http://"), "mrx"}, // no scheme
	} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		out := stdout.String()
		for _, want := range []string{
			"lead mrx (times in ",
			"  score   16 = engagement 11 + fit 5\n",
			"  band    hot\n",
			"  stage   sql\n",
			"  decay   in 6d 10h: hot → warm (", // the band order comes from --config
			"\nTop contributors (engagement points each rule still gives, decayed to now):\n",
			"  careers-page  −2  ░░░░░░░░░░\n",
			"  site_visit_booked  site-visit  +5 → 16\n",
			"  band   warm → hot  score 16  ← site_visit_booked (site-visit), event x-site_visit_booked\n",
			"  stage  mql → sql   score 16  ← site_visit_booked (site-visit), event x-site_visit_booked\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, out)
			}
		}
	}
}

func TestExplainEscapesTheLeadID(t *testing.T) {
	srv := fakeLeadscore(t, time.Now())
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"explain", "with/slash", "--api", srv.URL}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
}

func TestExplainErrors(t *testing.T) {
	srv := fakeLeadscore(t, time.Now())
	notLeadscore := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notLeadscore.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown lead", []string{"explain", "nobody", "--api", srv.URL},
			"unknown lead nobody: leadscore at " + srv.URL + " has seen no event for it"},
		{"store down", []string{"explain", "broken", "--api", srv.URL},
			"leadscore at " + srv.URL + " answered 503 Service Unavailable: state store unavailable"},
		{"not leadscore", []string{"explain", "mrx", "--api", notLeadscore.URL},
			notLeadscore.URL + " answered 404 Not Found for lead mrx: is --api pointing at leadscore?"},
		{"connection refused", []string{"explain", "mrx", "--api", refused},
			"no leadscore answers at " + refused + " (connection refused): start one with `leadscore run` or `leadscore dev`, or point --api at it"},
		{"no lead", []string{"explain", "--api", srv.URL}, "explain: name one lead id (1 to 256 bytes)"},
		{"two leads", []string{"explain", "a", "b"}, "explain: name one lead id (1 to 256 bytes)"},
		{"bad --config", []string{"explain", "mrx", "--config", "/nonexistent.yaml"}, "read config: open /nonexistent.yaml: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v\nwant  %s", err, tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("output on error:\n%s", stdout.String())
			}
		})
	}
}

func TestExplainUnknownLeadExitsOne(t *testing.T) {
	srv := fakeLeadscore(t, time.Now())
	code, stdout, stderr := leadscore(t, "explain", "nobody", "--api", srv.URL)
	if code != 1 || !strings.Contains(stderr, "leadscore: unknown lead nobody") || stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestAPIFromAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		":9000":          "http://127.0.0.1:9000",
		"0.0.0.0:80":     "http://127.0.0.1:80",
		"[::]:80":        "http://127.0.0.1:80",
		"[::1]:80":       "http://[::1]:80",
		"nonsense":       "fallback",
	} {
		if got := apiFromAddr(addr, "fallback"); got != want {
			t.Errorf("apiFromAddr(%q) = %q, want %q", addr, got, want)
		}
	}
}
