package scorer

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/events"
)

// testRules is a model that uses every feature, small enough to reason about.
const testRules = `
half_life: 10d
rules:
  - {name: open, type: email_open, points: 1, cap: {points: 3, per: 1d}}
  - {name: first-open, type: email_open, points: 2, first_time_only: true}
  - {name: pricing, type: page_view, points: 5, conditions: [{property: url, prefix: /pricing}]}
  - {name: long-read, type: page_view, points: 2, conditions: [{property: duration_s, gte: 60}]}
  - {name: blog, type: page_view, points: 1, conditions: [{property: url, glob: "/blog/*"}]}
  - {name: region, type: page_view, points: 1, conditions: [{property: region, in: [emea, apac]}]}
  - {name: no-referrer, type: page_view, points: 1, conditions: [{property: referrer, exists: false}, {property: url, equals: /}]}
  - {name: careers, type: page_view, points: -10, conditions: [{property: url, prefix: /careers}]}
  - {name: usage-limit, type: product_usage, points: 4, when: {limit_reached: "true"}}
  - {name: trial, type: trial_signup, points: 3}
  - {name: offer, type: upgrade_offer_opened, points: 1}
  - {name: webinar, type: webinar_registration, points: 3}
  - {name: vp, type: "*", score: fit, points: 10, conditions: [{property: job_title, glob: "*VP*"}]}
  - {name: big-company, type: identify, score: fit, points: 5, conditions: [{property: employees, gte: 200}]}
bands:
  - {name: cold}
  - {name: warm, min: 10, exit: 7}
  - {name: hot, min: 20, exit: 16}
stages:
  - {name: lead}
  - {name: mql, from: [lead, recycled], min_score: 10}
  - name: pql
    from: [lead, mql, recycled]
    enter_when:
      - {on_rules: [usage-limit]}
      - {on_events: [upgrade_offer_opened], recent_events: [trial_signup], within: 14d}
  - {name: sql, from: [mql, pql], on_events: [sales_accepted], enter_when: [{min_score: 15, recent_events: [webinar_registration], within: 7d}]}
  - {name: recycled, from: [mql, pql, sql], on_events: [sales_rejected]}
`

func testModel(t testing.TB) *Model {
	t.Helper()
	r, err := config.ParseRules([]byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel(r, 32, 8)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// at builds an event at t0 plus d.
func at(d time.Duration, id, typ string, props ...string) *events.Event {
	e := ev(id, typ, props...)
	e.OccurredAt = t0.Add(d)
	return e
}

// run applies events in order to a new lead and returns the state and the
// transitions as "kind from>to".
func run(m *Model, evs ...*events.Event) (LeadState, []string) {
	var st LeadState
	in := inputs(evs...)
	ts := m.Apply("L", &st, false, in, make([]Outcome, len(in)), nil)
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s %s>%s", t.Kind, t.From, t.To))
	}
	return st, out
}

const day = 24 * time.Hour

func TestConditions(t *testing.T) {
	m := testModel(t)
	tests := []struct {
		props []string
		want  float64
	}{
		{[]string{"url", "/pricing/enterprise"}, 5},           // prefix
		{[]string{"url", "/pricin"}, 0},                       // not the prefix
		{[]string{"url", "/blog/decay"}, 1},                   // glob
		{[]string{"url", "/blog/a/b"}, 0},                     // * stops at /
		{[]string{"duration_s", "60"}, 2},                     // gte, equal
		{[]string{"duration_s", "59.9"}, 0},                   // gte, below
		{[]string{"duration_s", "a minute"}, 0},               // not a number
		{[]string{"region", "emea"}, 1},                       // in
		{[]string{"region", "amer"}, 0},                       // not in
		{[]string{"url", "/"}, 1},                             // exists: false and equals
		{[]string{"url", "/", "referrer", "google"}, 0},       // exists: false fails
		{[]string{"url", "/pricing", "duration_s", "120"}, 7}, // several rules add
		{[]string{"url", "/careers/open-roles"}, -10},         // negative rule
	}
	for _, tt := range tests {
		st, _ := run(m, at(0, "1", "page_view", tt.props...))
		if st.Eng != tt.want {
			t.Errorf("page_view %v scored %v, want %v", tt.props, st.Eng, tt.want)
		}
	}
}

func TestFirstTimeOnlyAndCaps(t *testing.T) {
	m := testModel(t)
	var evs []*events.Event
	// A flood: 20 opens on day 0, 20 on day 1, all on the same lead.
	for d := 0; d < 2; d++ {
		for i := 0; i < 20; i++ {
			evs = append(evs, at(time.Duration(d)*day+time.Duration(i)*time.Minute, fmt.Sprintf("o%d-%d", d, i), "email_open"))
		}
	}
	st, _ := run(m, evs...)
	// 2 for the first open ever, then 3 a day from the capped rule (the
	// first three opens of each day), each decayed to the last event.
	ref := day + 19*time.Minute
	want := 0.0
	for _, c := range []struct {
		at  time.Duration
		pts float64
	}{{0, 3}, {time.Minute, 1}, {2 * time.Minute, 1}, {day, 1}, {day + time.Minute, 1}, {day + 2*time.Minute, 1}} {
		want += c.pts * math.Exp2(-float64(ref-c.at)/float64(10*day))
	}
	if got := m.ScoreAt(&st, t0.Add(ref)); math.Abs(got-want) > 1e-9 {
		t.Errorf("flood scored %v, want %v (first-time 2 + cap 3/day, decayed)", got, want)
	}
	// An open arriving two windows late is not scored by the capped rule.
	late := inputs(at(-2*day, "late", "email_open"))
	late[0].Offset = 100
	before := st.Eng
	m.Apply("L", &st, true, late, make([]Outcome, 1), nil)
	if st.Eng != before {
		t.Errorf("a late open changed the score: %v -> %v", before, st.Eng)
	}
}

func TestFitFollowsLatestAttributes(t *testing.T) {
	m := testModel(t)
	st, tr := run(m,
		at(0, "1", "identify", "job_title", "SVP Sales", "employees", "500"),
		at(time.Hour, "2", "identify", "job_title", "Intern"),
	)
	if st.Fit != 5 {
		t.Errorf("fit = %v, want 5 (big company; no longer a VP)", st.Fit)
	}
	// Fit 15 makes the lead warm and an MQL; as an intern (fit 5) it cools.
	if want := "[band cold>warm stage lead>mql band warm>cold]"; fmt.Sprint(tr) != want {
		t.Errorf("transitions = %v, want %s", tr, want)
	}
	// Fit does not decay.
	if got := m.ScoreAt(&st, st.Clock.Add(365*day)); got != 5 {
		t.Errorf("fit a year later = %v, want 5", got)
	}
}

// TestDecayIsOrderIndependent applies the same events in many orders: the
// final score must be the same (bands and transitions may differ on the way).
func TestDecayIsOrderIndependent(t *testing.T) {
	m := testModel(t)
	var evs []*events.Event
	for i := 0; i < 40; i++ {
		props := []string{"url", []string{"/pricing", "/blog/x", "/careers"}[i%3], "duration_s", fmt.Sprint(30 * (i % 4))}
		evs = append(evs, at(time.Duration(i*7)*time.Hour, fmt.Sprint(i), "page_view", props...))
	}
	want, _ := run(m, evs...)
	rng := rand.New(rand.NewSource(1))
	for trial := 0; trial < 20; trial++ {
		shuffled := append([]*events.Event(nil), evs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got, _ := run(m, shuffled...)
		if math.Abs(got.Eng-want.Eng) > 1e-9 || !got.Ref.Equal(want.Ref) {
			t.Fatalf("order %d: score %v at %v, want %v at %v", trial, got.Eng, got.Ref, want.Eng, want.Ref)
		}
	}
}

func TestHysteresisStopsFlapping(t *testing.T) {
	m := testModel(t)
	// Enter warm at 10, leave below 7: a lead hovering 8..11 stays warm.
	evs := []*events.Event{
		at(0, "a", "page_view", "url", "/pricing"), // 5
		at(0, "b", "page_view", "url", "/pricing"), // 10: warm
		at(0, "c", "page_view", "url", "/careers"), // 0: cold
		at(0, "d", "page_view", "url", "/pricing"), // 5
		at(0, "e", "page_view", "url", "/pricing"), // 10: warm
		at(0, "f", "page_view", "url", "/blog/x"),  // 11
		at(0, "g", "page_view", "url", "/careers"), // 1: cold
		at(0, "h", "webinar_registration"),         // 4
		at(0, "i", "page_view", "url", "/pricing"), // 9: still cold (enter at 10)
		at(0, "j", "page_view", "url", "/blog/y"),  // 10: warm
	}
	_, tr := run(m, evs...)
	want := "[band cold>warm stage lead>mql band warm>cold band cold>warm band warm>cold band cold>warm]"
	if fmt.Sprint(tr) != want {
		t.Errorf("transitions:\n got %v\nwant %s", tr, want)
	}
	// Now hover: 8, 11, 8, 11 — between exit 7 and enter 10 nothing happens.
	st, _ := run(m, append(evs,
		at(0, "k", "email_open"), at(0, "l", "email_open"), // 10 + 2 (first) + 1 = 13
		at(0, "m", "page_view", "url", "/careers"), // 3: cold
	)...)
	if st.Band != "cold" {
		t.Errorf("band = %s", st.Band)
	}
	hover := []*events.Event{at(0, "x1", "page_view", "url", "/pricing"), at(0, "x2", "page_view", "url", "/blog/z")}
	st2, tr2 := run(m, hover...) // 5, 6: cold throughout
	if st2.Band != "cold" || len(tr2) != 0 {
		t.Errorf("hover below enter: %s %v", st2.Band, tr2)
	}
}

func TestBandHysteresisDownInto(t *testing.T) {
	m := testModel(t)
	// hot (enter 20, exit 16) falling to 8: below hot's exit, above warm's exit 7: warm.
	for _, tt := range []struct {
		cur   int
		score float64
		want  int
	}{
		{2, 17, 2}, {2, 16, 2}, {2, 15.9, 1}, {2, 8, 1}, {2, 6.9, 0}, {1, 7, 1}, {1, 6.9, 0},
		{0, 9.9, 0}, {0, 10, 1}, {0, 25, 2}, {1, 19.9, 1}, {1, 20, 2},
	} {
		if got := m.bandFor(tt.cur, tt.score); got != tt.want {
			t.Errorf("bandFor(%d, %v) = %d, want %d", tt.cur, tt.score, got, tt.want)
		}
	}
}

func TestStageGraph(t *testing.T) {
	m := testModel(t)
	tests := []struct {
		name  string
		evs   []*events.Event
		stage string
		want  string
	}{
		{"score makes an MQL", []*events.Event{at(0, "1", "page_view", "url", "/pricing"), at(0, "2", "page_view", "url", "/pricing")},
			"mql", "[band cold>warm stage lead>mql]"},
		{"a usage limit makes a PQL straight from lead", []*events.Event{at(0, "1", "product_usage", "limit_reached", "true")},
			"pql", "[stage lead>pql]"},
		{"an upgrade offer within 14 days of a trial makes a PQL", []*events.Event{at(0, "1", "trial_signup"), at(13*day, "2", "upgrade_offer_opened")},
			"pql", "[stage lead>pql]"},
		{"an upgrade offer 15 days after the trial does not", []*events.Event{at(0, "1", "trial_signup"), at(15*day, "2", "upgrade_offer_opened")},
			"lead", "[]"},
		{"sales can only accept from mql or pql", []*events.Event{at(0, "1", "sales_accepted")},
			"lead", "[]"},
		{"sales accepts an MQL", []*events.Event{at(0, "1", "page_view", "url", "/pricing"), at(0, "2", "page_view", "url", "/pricing"), at(0, "3", "sales_accepted")},
			"sql", "[band cold>warm stage lead>mql stage mql>sql]"},
		{"score and a recent webinar make an SQL", []*events.Event{
			at(0, "1", "webinar_registration"), at(0, "2", "page_view", "url", "/pricing"), at(0, "3", "page_view", "url", "/pricing"),
			at(0, "4", "page_view", "url", "/pricing")}, // 18 ≥ 15, webinar the same day
			"sql", "[band cold>warm stage lead>mql stage mql>sql]"},
		{"sales rejects: recycled, then back to MQL on new activity", []*events.Event{
			at(0, "1", "page_view", "url", "/pricing"), at(0, "2", "page_view", "url", "/pricing"),
			at(0, "3", "sales_rejected"), at(0, "4", "page_view", "url", "/blog/a")},
			"mql", "[band cold>warm stage lead>mql stage mql>recycled stage recycled>mql]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, tr := run(m, tt.evs...)
			if st.Stage != tt.stage || fmt.Sprint(tr) != tt.want {
				t.Errorf("stage %s, transitions %v; want %s, %s", st.Stage, tr, tt.stage, tt.want)
			}
		})
	}
}

func TestDecayTick(t *testing.T) {
	m := testModel(t)
	// 25 points at t0: hot. Half-life 10 days: below hot's exit 16 after
	// 10·log2(25/16) ≈ 6.44 days, below warm's exit 7 after 10·log2(25/7) ≈ 18.4 days.
	st, _ := run(m, at(0, "1", "page_view", "url", "/pricing"), at(0, "2", "page_view", "url", "/pricing"),
		at(0, "3", "page_view", "url", "/pricing"), at(0, "4", "page_view", "url", "/pricing"),
		at(0, "5", "page_view", "url", "/pricing"))
	if st.Band != "hot" {
		t.Fatalf("band %s", st.Band)
	}
	first := m.NextChange(&st)
	// The band is judged on the score in hundredths: it leaves hot when the
	// score drops below 15.995, shown as 15.99.
	if want := t0.Add(time.Duration(10 * float64(day) * math.Log2(25.0/15.995))); first.Sub(want).Abs() > 2*time.Millisecond {
		t.Fatalf("NextChange = %v, want %v", first, want)
	}
	// Nothing is due a moment before.
	if ts := m.Tick("L", &st, first.Add(-time.Second), nil); len(ts) != 0 || st.Band != "hot" {
		t.Fatalf("early tick: %v", ts)
	}
	// A month later, a late scheduler emits both crossings, each at its own time.
	copyState := st
	ts := m.Tick("L", &st, t0.Add(30*day), nil)
	if len(ts) != 2 || ts[0].From != "hot" || ts[0].To != "warm" || ts[1].To != "cold" ||
		!ts[0].OccurredAt.Equal(first) || ts[0].CauseEventType != DecayEventType {
		t.Fatalf("ticks = %+v", ts)
	}
	// Ticking the same state again from another process gives the same ids.
	ts2 := m.Tick("L", &copyState, t0.Add(40*day), nil)
	if len(ts2) != 2 || ts2[0].ID != ts[0].ID || ts2[1].ID != ts[1].ID {
		t.Errorf("ids differ between ticks: %v vs %v", ts, ts2)
	}
	if !m.NextChange(&st).IsZero() {
		t.Errorf("a cold lead with positive engagement has no next change, got %v", m.NextChange(&st))
	}
}

func TestScorerTickRepublishesAfterACrash(t *testing.T) {
	m := testModel(t)
	store := NewMemStore()
	sc := New(m, store)
	var in []Input
	for i := 0; i < 4; i++ {
		in = append(in, Input{Event: at(0, fmt.Sprint(i), "page_view", "url", "/pricing"), Offset: int64(i)})
	}
	if _, err := sc.Score(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	due, _ := store.Due(ctx, t0.Add(30*day), 10)
	if len(due) != 1 {
		t.Fatalf("due = %v, want the lead", due)
	}
	// 20 points: below hot's exit after 3.2 days, below warm's after 15.1.
	res, err := sc.Tick(ctx, due, t0.Add(30*day))
	if err != nil || len(res.Transitions) != 2 || res.Transitions[0].To != "warm" || res.Transitions[1].To != "cold" {
		t.Fatalf("tick = %+v, %v", res, err)
	}
	// Crash before publishing: the entry was not rescheduled, so it is due
	// again; the crossing is saved, and the same transition comes back.
	due2, _ := store.Due(ctx, t0.Add(30*day), 10)
	res2, err := sc.Tick(ctx, due2, t0.Add(30*day))
	if err != nil || len(res2.Transitions) != 2 || res2.Transitions[0].ID != res.Transitions[0].ID || !res2.Transitions[1].Replayed {
		t.Fatalf("second tick = %+v, %v", res2, err)
	}
	// After publishing, the caller reschedules: nothing more is due.
	if err := store.Reschedule(ctx, "L", res2.Next["L"]); err != nil {
		t.Fatal(err)
	}
	if due3, _ := store.Due(ctx, t0.Add(365*day), 10); len(due3) != 0 {
		t.Errorf("still due: %v", due3)
	}
}
