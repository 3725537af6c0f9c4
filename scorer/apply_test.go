package scorer

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/events"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func defaultModel(t testing.TB) *Model {
	t.Helper()
	c := config.Default()
	m, err := NewModel(c.Rules, c.State.DedupeWindow, c.State.History)
	if err != nil {
		t.Fatal(err)
	}
	m.SetInFlight(c.Batch.InFlight) // as service.BuildModel does
	return m
}

// flipModel is a model whose every "up" and "down" event moves the lead
// between its two bands ("open" adds a point), keeping history transitions.
func flipModel(t testing.TB, history int) *Model {
	t.Helper()
	r, err := config.ParseRules([]byte(`
rules:
  - {name: up, type: up, points: 10}
  - {name: down, type: down, points: -10}
  - {name: open, type: open, points: 1}
bands:
  - {name: cold}
  - {name: warm, min: 5}
stages:
  - {name: lead}
`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel(r, 32, history)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// ev builds an event; props are key, value pairs.
func ev(id, typ string, props ...string) *events.Event {
	e := &events.Event{ID: id, LeadID: "L", Type: typ, OccurredAt: t0}
	if len(props) > 0 {
		e.Properties = map[string]string{}
		for i := 0; i+1 < len(props); i += 2 {
			e.Properties[props[i]] = props[i+1]
		}
	}
	return e
}

func inputs(evs ...*events.Event) []Input {
	in := make([]Input, len(evs))
	for i, e := range evs {
		in[i] = Input{Event: e, Partition: 0, Offset: int64(i)}
	}
	return in
}

func summary(ts []Transition) []string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s %s>%s@%v by %s", t.Kind, t.From, t.To, t.Score, t.CauseEventID))
	}
	return out
}

func TestApply(t *testing.T) {
	m := defaultModel(t)
	tests := []struct {
		name      string
		in        []*events.Event
		wantScore float64
		wantBand  string
		wantStage string
		want      []string
	}{
		{
			name:      "no events of note: a new lead starts cold and lead, without a transition",
			in:        []*events.Event{ev("1", "email_open")},
			wantScore: 1, wantBand: "cold", wantStage: "lead",
		},
		{
			name: "the brief's buyer: ad, pricing, documents, chat, site visit",
			in: []*events.Event{
				ev("ad", "ad_click"), ev("pricing", "page_view", "page", "pricing"),
				ev("docs", "form_submit", "form", "documents"), ev("chat", "chat_message"),
				ev("visit", "site_visit_booked"),
			},
			wantScore: 16, wantBand: "hot", wantStage: "sql",
			want: []string{
				"band cold>warm@6 by pricing", "stage lead>mql@9 by docs",
				"band warm>hot@16 by visit", "stage mql>sql@16 by visit",
			},
		},
		{
			name: "a jump cold to hot is one transition (fit from an identify call)",
			in: []*events.Event{ev("id", "identify", "job_title", "Head of Growth, VP", "company_size", "200",
				"budget_known", "true")},
			wantScore: 0, wantBand: "hot", wantStage: "mql",
			want: []string{"band cold>hot@16 by id", "stage lead>mql@16 by id"},
		},
		{
			name:      "an upgrade request makes an existing customer service qualified",
			in:        []*events.Event{ev("up", "support_upgrade_request")},
			wantScore: 8, wantBand: "warm", wantStage: "service_qualified",
			want: []string{"band cold>warm@8 by up", "stage lead>service_qualified@8 by up"},
		},
		{
			name: "negative points move a lead down a band; stages never move back",
			in: []*events.Event{
				ev("p", "page_view", "page", "pricing"), ev("d", "download"), ev("u", "unsubscribe"),
			},
			wantScore: -2, wantBand: "cold", wantStage: "mql",
			want: []string{"band cold>warm@5 by p", "stage lead>mql@8 by d", "band warm>cold@-2 by u"},
		},
		{
			name:      "a producer duplicate counts once",
			in:        []*events.Event{ev("p", "page_view", "page", "pricing"), ev("p", "page_view", "page", "pricing")},
			wantScore: 5, wantBand: "warm", wantStage: "lead",
			want: []string{"band cold>warm@5 by p"},
		},
		{
			name:      "unknown event types score nothing",
			in:        []*events.Event{ev("x", "teleport"), ev("y", "page_view", "page", "careers")},
			wantScore: -4, wantBand: "cold", wantStage: "lead",
		},
		{
			name:      "a qualifying event moves the stage whatever the score",
			in:        []*events.Event{ev("c", "consultation_request")},
			wantScore: 3, wantBand: "cold", wantStage: "sql",
			want: []string{"stage lead>sql@3 by c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st LeadState
			in := inputs(tt.in...)
			oc := make([]Outcome, len(in))
			got := m.Apply("L", &st, false, in, oc, nil)
			if st.Eng != tt.wantScore || st.Band != tt.wantBand || st.Stage != tt.wantStage {
				t.Errorf("state = %v %s %s, want %v %s %s", st.Eng, st.Band, st.Stage, tt.wantScore, tt.wantBand, tt.wantStage)
			}
			if fmt.Sprint(summary(got)) != fmt.Sprint(tt.want) {
				t.Errorf("transitions:\n got %v\nwant %v", summary(got), tt.want)
			}
			for _, tr := range got {
				if tr.ID != TransitionID("L", tr.CauseEventID, tr.Kind, tr.From, tr.To) || tr.RulesVersion != m.Version() {
					t.Errorf("transition %+v: id or rules version wrong", tr)
				}
			}
		})
	}
}

func TestApplyRedeliveryRepublishesWithSameIDs(t *testing.T) {
	m := defaultModel(t)
	var st LeadState
	first := inputs(ev("p", "page_view", "page", "pricing"), ev("d", "download"), ev("o", "email_open"))
	oc := make([]Outcome, 3)
	orig := m.Apply("L", &st, false, first, oc, nil)
	before := st.Eng

	// The same records again (a crash before the commit): nothing counts
	// twice, and the transitions come back with the same ids.
	again := m.Apply("L", &st, true, first, oc, nil)
	if st.Eng != before {
		t.Fatalf("score changed on redelivery: %v -> %v", before, st.Eng)
	}
	for i, o := range oc {
		if o != OutcomeRedelivered {
			t.Errorf("outcome[%d] = %v, want redelivered", i, o)
		}
	}
	if len(again) != len(orig) {
		t.Fatalf("republished %d transitions, want %d", len(again), len(orig))
	}
	for i := range orig {
		if again[i].ID != orig[i].ID || !again[i].Replayed {
			t.Errorf("republished %+v, want id %s replayed", again[i], orig[i].ID)
		}
	}

	// A new record with an old event id (a producer re-send) is a duplicate
	// and republishes nothing.
	dup := []Input{{Event: ev("p", "page_view", "page", "pricing"), Partition: 0, Offset: 10}}
	if got := m.Apply("L", &st, true, dup, oc[:1], nil); len(got) != 0 || oc[0] != OutcomeDuplicate {
		t.Errorf("producer duplicate: outcome %v, transitions %v", oc[0], summary(got))
	}
}

func TestApplyBoundsState(t *testing.T) {
	c := config.Default()
	m, err := NewModel(c.Rules, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	var st LeadState
	var evs []*events.Event
	// +8, -10, +2: the lead swings warm and cold, making many transitions.
	cycle := []string{"support_upgrade_request", "unsubscribe", "email_click"}
	for i := 0; i < 50; i++ {
		evs = append(evs, ev(fmt.Sprint(i), cycle[i%3]))
	}
	in := inputs(evs...)
	for i := range in {
		in[i].Partition = int32(i % 3)
	}
	made := m.Apply("L", &st, false, in, make([]Outcome, len(in)), nil)
	// One batch keeps every transition it made (they may not be published
	// yet); the next save that makes one trims the rest to the bound.
	if len(st.Recent) != 4 || len(st.History) != len(made) || len(st.Watermarks) != 3 {
		t.Errorf("state: recent %d (want 4), history %d (want all %d of the batch), watermarks %d (want 3)",
			len(st.Recent), len(st.History), len(made), len(st.Watermarks))
	}
	if got := st.Recent[3]; got != eventHash("49") {
		t.Errorf("ring lost the newest id")
	}
}

func TestPointsAddAcrossMatchingRules(t *testing.T) {
	m := defaultModel(t)
	for _, tt := range []struct {
		e    *events.Event
		want float64
	}{
		{ev("1", "page_view"), 1},
		{ev("1", "page_view", "page", "pricing"), 5},
		{ev("1", "page_view", "page", "careers"), -4},
		{ev("1", "product_usage", "limit_reached", "true"), 5},
		{ev("1", "product_usage", "limit_reached", "false"), 1},
		{ev("1", "form_submit", "form", "unknown"), 0},
		{ev("1", "nothing"), 0},
	} {
		if got := m.Points(tt.e); got != tt.want {
			t.Errorf("Points(%s %v) = %v, want %v", tt.e.Type, tt.e.Properties, got, tt.want)
		}
	}
}

// TestRecycledLeadsEarnTheirWayBack: sales rejects an SQL; the default
// model resets its engagement on entering recycled, so one more page view
// does not bounce it back to SQL — new activity re-qualifies it as an MQL.
func TestRecycledLeadsEarnTheirWayBack(t *testing.T) {
	m := defaultModel(t)
	var st LeadState
	steps := []*events.Event{
		ev("1", "page_view", "page", "pricing"), ev("2", "download"), ev("3", "site_visit_booked"), // 13: warm, sql
		ev("4", "sales_rejected"),               // recycled; engagement 0: cold
		ev("5", "page_view", "page", "blog"),    // 1: stays recycled
		ev("6", "page_view", "page", "pricing"), // 6: warm, still recycled
		ev("7", "webinar_registration"),         // 9 and a webinar: mql
	}
	got := m.Apply("L", &st, false, inputs(steps...), make([]Outcome, len(steps)), nil)
	want := []string{
		"band cold>warm@5 by 1", "stage lead>mql@8 by 2", "stage mql>sql@13 by 3",
		"stage sql>recycled@13 by 4", "band warm>cold@0 by 4",
		"band cold>warm@6 by 6", "stage recycled>mql@9 by 7",
	}
	if fmt.Sprint(summary(got)) != fmt.Sprint(want) {
		t.Errorf("transitions:\n got %v\nwant %v", summary(got), want)
	}
}

// TestRedeliveryRepublishesEveryTransitionOfTheBatch: a batch in which one
// lead makes more transitions than state.history keeps must still re-publish
// all of them when it is redelivered after a crash (found by SIGKILLing the
// binary between the Redis save and the Kafka produce).
func TestRedeliveryRepublishesEveryTransitionOfTheBatch(t *testing.T) {
	c := config.Default()
	m, err := NewModel(c.Rules, 32, 2)
	if err != nil {
		t.Fatal(err)
	}
	cycle := []string{"support_upgrade_request", "unsubscribe", "email_click"}
	var evs []*events.Event
	for i := 0; i < 30; i++ {
		evs = append(evs, ev(fmt.Sprint(i), cycle[i%3]))
	}
	in := inputs(evs...)
	var st LeadState
	made := m.Apply("L", &st, false, in, make([]Outcome, len(in)), nil)
	if len(made) <= 2 {
		t.Fatalf("the batch made %d transitions; the test needs more than the history bound", len(made))
	}
	saved := st.AppendExplain(nil)
	var reloaded LeadState
	if err := reloaded.UnmarshalBinary("L", st.AppendBinary(nil), saved); err != nil {
		t.Fatal(err)
	}
	again := m.Apply("L", &reloaded, true, in, make([]Outcome, len(in)), nil)
	if len(again) != len(made) {
		t.Fatalf("redelivery re-published %d of the batch's %d transitions", len(again), len(made))
	}
	for i := range made {
		if again[i].ID != made[i].ID {
			t.Errorf("re-published #%d: %s, want %s", i, again[i].ID, made[i].ID)
		}
	}
}

// TestHistoryKeepsTransitionsOfUnpublishedSaves: the history bound applies
// only to transitions of saves old enough to be published (the last
// in_flight + 2; UnpublishedSaves by default); until then a redelivered
// event finds its transitions, however many a save made.
func TestHistoryKeepsTransitionsOfUnpublishedSaves(t *testing.T) {
	for _, inFlight := range []int{0, 2} {
		m := flipModel(t, 2)
		keep := UnpublishedSaves
		if inFlight > 0 {
			m.SetInFlight(inFlight)
			keep = inFlight + 2
		}
		t.Run(fmt.Sprint("keep ", keep), func(t *testing.T) { historyKeeps(t, m, keep) })
	}
}

func historyKeeps(t *testing.T, m *Model, keep int) {
	var in []Input
	for i := range 6 {
		typ := []string{"up", "down"}[i%2] // every event is a transition
		in = append(in, Input{Event: ev(fmt.Sprint("a", i), typ), Offset: int64(i)})
	}
	var st LeadState
	made := m.Apply("L", &st, false, in, make([]Outcome, 6), nil)
	if len(made) != 6 || len(st.History) != 6 || st.Saves != 1 {
		t.Fatalf("a save of 6 transitions: %d made, history %d, saves %d", len(made), len(st.History), st.Saves)
	}
	// Saves 2 … keep, one transition each: the first save's
	// transitions may still be unpublished, so all stay.
	off := int64(100)
	for s := 2; s <= keep; s++ {
		typ := []string{"up", "down"}[s%2]
		m.Apply("L", &st, true, []Input{{Event: ev(fmt.Sprint("b", s), typ), Offset: off}}, make([]Outcome, 1), nil)
		off++
	}
	if n := len(st.History); n != 6+keep-1 || st.History[0].CauseEventID != "a0" {
		t.Fatalf("after %d saves: history %d from %s, want %d from a0", keep, n, st.History[0].CauseEventID, 6+keep-1)
	}
	// A crash now redelivers the first save's records: every transition comes back.
	again := st
	again.History = slices.Clone(st.History)
	again.Watermarks = slices.Clone(st.Watermarks)
	re := m.Apply("L", &again, true, in, make([]Outcome, 6), nil)
	if len(re) != 6 {
		t.Fatalf("redelivered: %d transitions re-published, want 6", len(re))
	}
	for i := range re {
		if re[i].ID != made[i].ID || !re[i].Replayed {
			t.Errorf("re-published #%d: %s (replayed %v), want %s", i, re[i].ID, re[i].Replayed, made[i].ID)
		}
	}
	// One save later the first save is published for sure: the bound holds
	// again for its transitions, while the later saves' all stay.
	m.Apply("L", &st, true, []Input{{Event: ev("c", "down"), Offset: off}}, make([]Outcome, 1), nil)
	if n := len(st.History); n != keep || st.History[0].CauseEventID != "b2" || st.History[n-1].CauseEventID != "c" {
		t.Errorf("after %d saves: history %d from %s to %s, want %d from b2 to c", keep+1, n,
			st.History[0].CauseEventID, st.History[n-1].CauseEventID, keep)
	}
}
