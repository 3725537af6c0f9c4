package explain

import (
	"strings"
	"testing"
	"time"

	"github.com/leadscore/leadscore/internal/httpapi"
	"github.com/leadscore/leadscore/sink"
)

var t0 = time.Date(2026, 12, 3, 18, 42, 1, 0, time.UTC)

func mrx() *httpapi.LeadView {
	next := t0.Add(6*24*time.Hour + 10*time.Hour + 30*time.Second)
	return &httpapi.LeadView{
		LeadID: "mrx", Score: 16.5, Engagement: 11.5, Fit: 5, Band: "hot", Stage: "sql", Events: 5,
		FirstSeen: t0.Add(-4 * time.Minute), LastEventAt: t0, NextDecayChange: &next,
		Contributors: []httpapi.ContributionView{{Rule: "site-visit", Points: 5}, {Rule: "pricing-page", Points: 4},
			{Rule: "careers-page", Points: -2.5}, {Rule: "chat", Points: 2}},
		Changes: []httpapi.ChangeView{
			{At: t0, EventID: "x-5", Type: "site_visit_booked", Rules: []string{"site-visit"}, Delta: 5, Score: 16.5},
			{At: t0.Add(-time.Minute), EventID: "x-4", Type: "chat_message", Rules: []string{"chat"}, Delta: 2, Score: 11.5},
			{At: t0.Add(-2 * time.Minute), EventID: "x-3", Type: "page_view", Rules: []string{"page-view", "careers-page"}, Delta: -1.5, Score: 9.5},
			{At: t0.Add(-3 * time.Minute), EventID: "x-2", Type: "email_open", Rules: nil, Delta: 0, Score: 11},
		},
		Transitions: []sink.TransitionRecord{
			{Kind: "band", From: "warm", To: "hot", Score: 16.5, OccurredAt: t0, CauseEventID: "x-5",
				CauseEventType: "site_visit_booked", CauseRules: []string{"site-visit"}},
			{Kind: "stage", From: "mql", To: "sql", Score: 16.5, OccurredAt: t0, CauseEventID: "x-5",
				CauseEventType: "site_visit_booked", CauseRules: []string{"site-visit"}},
			{Kind: "band", From: "hot", To: "warm", Score: 12, OccurredAt: t0.Add(-time.Hour), CauseEventID: "decay@1",
				CauseEventType: "decay"},
		},
	}
}

func TestLead(t *testing.T) {
	var b strings.Builder
	err := Lead(&b, mrx(), LeadOptions{Now: t0.Add(3 * time.Hour), Bands: []string{"cold", "warm", "hot"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `lead mrx (times in UTC)
  score   16.5 = engagement 11.5 + fit 5
  band    hot
  stage   sql
  events  5, first 2026-12-03 18:38:01, last 2026-12-03 18:42:01 (3h ago)
  decay   in 6d 7h: hot → warm (2026-12-10 04:42:31)

Top contributors (engagement points each rule still gives, decayed to now):
  site-visit      +5  ████████████████████████
  pricing-page    +4  ███████████████████
  careers-page  −2.5  ░░░░░░░░░░░░
  chat            +2  ██████████

Recent score changes (newest first):
  2026-12-03 18:42:01  site_visit_booked  site-visit                 +5 → 16.5
  2026-12-03 18:41:01  chat_message       chat                       +2 → 11.5
  2026-12-03 18:40:01  page_view          page-view, careers-page  −1.5 → 9.5
  2026-12-03 18:39:01  email_open         no rule                     0 → 11

Recent transitions (newest first):
  2026-12-03 18:42:01  band   warm → hot  score 16.5  ← site_visit_booked (site-visit), event x-5
  2026-12-03 18:42:01  stage  mql → sql   score 16.5  ← site_visit_booked (site-visit), event x-5
  2026-12-03 17:42:01  band   hot → warm  score   12  ← decay, no new event
`
	if got := b.String(); got != want {
		t.Errorf("Lead output:\n%s\nwant:\n%s", got, want)
	}
}

func TestLeadBare(t *testing.T) {
	// A lead with only a fit score: nothing decays, nothing to list.
	v := &httpapi.LeadView{LeadID: "l-1", Score: 5, Fit: 5, Band: "warm", Stage: "lead", Events: 1,
		FirstSeen: t0, LastEventAt: t0}
	var b strings.Builder
	paris := time.FixedZone("CET", 3600)
	if err := Lead(&b, v, LeadOptions{Now: t0.Add(20 * time.Second), Loc: paris}); err != nil {
		t.Fatal(err)
	}
	want := `lead l-1 (times in CET, UTC+01:00)
  score   5 = engagement 0 + fit 5
  band    warm
  stage   lead
  events  1, first 2026-12-03 19:42:01, last 2026-12-03 19:42:01 (just now)
  decay   will not change the band by itself
`
	if got := b.String(); got != want {
		t.Errorf("Lead output:\n%s\nwant:\n%s", got, want)
	}
}

func TestDecayChange(t *testing.T) {
	bands := []string{"cold", "warm", "hot"}
	tests := []struct {
		name       string
		band       string
		engagement float64
		in         time.Duration
		bands      []string
		want       string
	}{
		{"falls a band", "hot", 10, 6*24*time.Hour + 10*time.Hour, bands, "in 6d 10h: hot → warm"},
		{"negative engagement rises", "cold", -8, 90 * time.Minute, bands, "in 1h 30m: cold → warm"},
		{"whole days", "warm", 3, 48 * time.Hour, bands, "in 2d: warm → cold"},
		{"minutes", "warm", 3, 5 * time.Minute, bands, "in 5m: warm → cold"},
		{"due", "warm", 3, -time.Second, bands, "now: warm → cold"},
		{"bands unknown", "hot", 10, time.Hour, nil, "in 1h: leaves hot"},
		{"band not in the config", "scorching", 10, time.Hour, bands, "in 1h: leaves scorching"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := t0.Add(tt.in)
			v := &httpapi.LeadView{Band: tt.band, Engagement: tt.engagement, NextDecayChange: &next}
			if got := decayChange(v, LeadOptions{Now: t0, Bands: tt.bands}); got != tt.want {
				t.Errorf("decayChange = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWords(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{num(16), "16"}, {num(16.499), "16.5"}, {num(-0.001), "0"}, {num(-3), "−3"},
		{signed(2), "+2"}, {signed(-2), "−2"}, {signed(0), "0"},
		{span(30 * 24 * time.Hour), "30 days"}, {span(24 * time.Hour), "1 day"}, {span(25 * time.Hour), "1 day 1 hour"},
		{span(90 * time.Second), "1 minute 30 seconds"},
		{per(24 * time.Hour), "per day"}, {per(time.Hour), "per hour"}, {per(7 * 24 * time.Hour), "per 7 days"},
		{per(26 * time.Hour), "per 1 day 2 hours"},
		{short(30 * time.Second), "under a minute"}, {short(time.Hour), "1h"}, {short(61 * time.Minute), "1h 1m"},
		{short(24*time.Hour + 59*time.Minute), "1d"},
		{quote("pricing"), "pricing"}, {quote("/docs/a-b_c.html"), "/docs/a-b_c.html"}, {quote("a b"), `"a b"`}, {quote(""), `""`},
		{orList([]string{"a"}), "a"}, {orList([]string{"a", "b", "c"}), "a, b or c"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
