package chaos

import (
	"encoding/json"
	"github.com/leadscore/leadscore/events"

	"time"

	"fmt"
	"testing"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/scorer"
)

func TestRulesFileIsValid(t *testing.T) {
	r, err := config.ParseRules(RulesYAML)
	if err != nil {
		t.Fatal(err)
	}
	if errs := r.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if r.HalfLife != 0 {
		t.Fatal("the reference assumes no decay")
	}
}

func TestReference(t *testing.T) {
	evs := func(types ...string) []Input {
		var in []Input
		for i, typ := range types {
			in = append(in, Input{EventID: fmt.Sprint("e", i), LeadID: "l", Type: typ})
		}
		return in
	}
	tid := func(cause int, kind scorer.Kind, from, to string) string {
		return scorer.TransitionID("l", fmt.Sprint("e", cause), kind, from, to)
	}
	cases := []struct {
		name  string
		in    []Input
		want  LeadResult
		trans []string
	}{
		{"up to warm, then hysteresis keeps it", evs("form_submit", "email_open", "unsubscribe", "page_view", "page_view", "page_view", "page_view", "page_view", "email_open"),
			// 10 → warm; 12; -3 → cold (below exit 6); then 2.5 steps: -0.5, 2, 4.5, 7, 9.5; 11.5 → warm
			LeadResult{Score: 11.5, Band: "warm", Stage: "lead", Events: 9},
			[]string{tid(0, scorer.KindBand, "cold", "warm"), tid(2, scorer.KindBand, "warm", "cold"), tid(8, scorer.KindBand, "cold", "warm")}},
		{"hot stays hot above exit", evs("demo_request", "form_submit", "email_open", "complaint"),
			// 20 warm, mql; 30 hot; 32; 7 → below hot exit 22, above warm exit 6: warm; complaint recycles
			LeadResult{Score: 7, Band: "warm", Stage: "recycled", Events: 4},
			[]string{tid(0, scorer.KindBand, "cold", "warm"), tid(0, scorer.KindStage, "lead", "mql"), tid(1, scorer.KindBand, "warm", "hot"),
				tid(3, scorer.KindBand, "hot", "warm"), tid(3, scorer.KindStage, "mql", "recycled")}},
		{"from lists the only moves", evs("contract_signed", "demo_request"),
			// 5: cold; 25: warm, mql (sql needs mql first: one move per event)
			LeadResult{Score: 25, Band: "warm", Stage: "mql", Events: 2},
			[]string{tid(1, scorer.KindBand, "cold", "warm"), tid(1, scorer.KindStage, "lead", "mql")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ids, err := Reference(RulesYAML, 32, map[string][]Input{"l": c.in})
			if err != nil {
				t.Fatal(err)
			}
			if got["l"] != c.want {
				t.Errorf("state %+v, want %+v", got["l"], c.want)
			}
			if len(ids) != len(c.trans) {
				t.Errorf("%d transitions, want %d", len(ids), len(c.trans))
			}
			for _, id := range c.trans {
				if !ids[id] {
					t.Errorf("missing transition %s", id)
				}
			}
		})
	}
}

func TestReferenceDedupeWindow(t *testing.T) {
	var in []Input
	in = append(in, Input{EventID: "dup", Type: "email_open"})
	for i := 0; i < 31; i++ {
		in = append(in, Input{EventID: fmt.Sprint("x", i), Type: "email_open"})
	}
	in = append(in, Input{EventID: "dup", Type: "email_open"}) // 31 distinct since: still in the window
	in = append(in, Input{EventID: "y", Type: "email_open"})   // pushes "dup" out
	in = append(in, Input{EventID: "dup", Type: "email_open"}) // counts again
	got, _, err := Reference(RulesYAML, 32, map[string][]Input{"l": in})
	if err != nil {
		t.Fatal(err)
	}
	if got["l"].Events != 34 {
		t.Errorf("events = %d, want 34", got["l"].Events)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, b := Generate(7, 2000, 50, fixed), Generate(7, 2000, 50, fixed)
	if len(a.Msgs) != len(b.Msgs) || a.Bad != b.Bad || a.Duplicates != b.Duplicates {
		t.Fatal("two workloads of one seed differ")
	}
	for i := range a.Msgs {
		if string(a.Msgs[i].Value) != string(b.Msgs[i].Value) {
			t.Fatalf("record %d differs", i)
		}
	}
	if a.Bad < 6 || a.Duplicates == 0 || a.Swapped == 0 {
		t.Errorf("workload lacks faults: %+v bad, %d dups, %d swapped", a.Bad, a.Duplicates, a.Swapped)
	}
}

var fixed = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// TestReferenceAgreesWithModel cross-checks the two implementations on a
// generated workload without faults: the suite is only as good as its reference.
func TestReferenceAgreesWithModel(t *testing.T) {
	w := Generate(3, 5000, 40, fixed)
	rules, err := config.ParseRules(RulesYAML)
	if err != nil {
		t.Fatal(err)
	}
	m, err := scorer.NewModel(rules, 32, 8)
	if err != nil {
		t.Fatal(err)
	}
	byLead := map[string][]Input{}
	model := map[string][]scorer.Input{}
	for i, msg := range w.Msgs {
		if w.BadValues[string(msg.Value)] {
			continue
		}
		var e wireEvent
		if err := json.Unmarshal(msg.Value, &e); err != nil {
			t.Fatal(err)
		}
		byLead[e.LeadID] = append(byLead[e.LeadID], Input{EventID: e.EventID, LeadID: e.LeadID, Type: e.Type})
		ev := &events.Event{ID: e.EventID, LeadID: e.LeadID, Type: e.Type, OccurredAt: fixed.Add(time.Duration(i) * time.Millisecond)}
		model[e.LeadID] = append(model[e.LeadID], scorer.Input{Event: ev, Offset: int64(i)})
	}
	want, wantIDs, err := Reference(RulesYAML, 32, byLead)
	if err != nil {
		t.Fatal(err)
	}
	gotIDs := map[string]bool{}
	for lead, in := range model {
		var st scorer.LeadState
		for _, tr := range m.Apply(lead, &st, false, in, make([]scorer.Outcome, len(in)), nil) {
			gotIDs[tr.ID] = true
		}
		r := want[lead]
		if st.Eng != r.Score || st.Band != r.Band || st.Stage != r.Stage || st.Events != r.Events {
			t.Errorf("%s: model %v %s/%s %d, reference %+v", lead, st.Eng, st.Band, st.Stage, st.Events, r)
		}
	}
	if len(gotIDs) != len(wantIDs) {
		t.Errorf("model %d transitions, reference %d", len(gotIDs), len(wantIDs))
	}
	for id := range wantIDs {
		if !gotIDs[id] {
			t.Errorf("reference transition %s not emitted by the model", id)
		}
	}
	if len(wantIDs) < 100 {
		t.Errorf("only %d transitions: the workload does not exercise bands and stages", len(wantIDs))
	}
}
