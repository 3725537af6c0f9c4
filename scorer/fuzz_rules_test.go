package scorer

import (
	"math"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/events"
)

// FuzzNewModel feeds arbitrary YAML through config.ParseRules and
// Rules.Validate: rules that validate must compile (NewModel succeeds), and
// the compiled model must score a handful of events without panicking and
// with finite scores. Config cannot import scorer, so this half of the
// property lives here.
func FuzzNewModel(f *testing.F) {
	def, err := yaml.Marshal(config.Default().Rules)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(def),
		testRules,
		"rules: []\nbands: [{name: cold}]\nstages: [{name: lead}]\n",
		"half_life: 1h\nrules: [{name: a, type: t, points: 1e6, cap: {points: 1e6, per: 366d}}]\nbands: [{name: cold}, {name: hot, min: 1e300}]\nstages: [{name: lead}, {name: mql, min_score: -1e300}]\n",
		"bands: [{name: c}, {name: w, min: 5, exit: 4}]\nstages: [{name: lead}, {name: mql, from: [lead, recycled], on_events: [t]}, {name: recycled, from: [mql], on_events: [t]}]\n",
		"rules: [{name: f, type: '*', score: fit, points: 3, conditions: [{property: p, glob: '*V*'}]}, {name: g, type: t, points: -2, first_time_only: true}]\nbands: [{name: c}, {name: w, min: 1}]\nstages: [{name: lead}, {name: s, enter_when: [{on_rules: [g], recent_events: [t], within: 1d}]}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := config.ParseRules(b)
		if err != nil {
			return
		}
		if errs := r.Validate(); len(errs) > 0 {
			if _, err := NewModel(r, 8, 4); err == nil {
				t.Fatalf("NewModel accepted rules that Validate refuses: %v", errs)
			}
			return
		}
		m, err := NewModel(r, 8, 4)
		if err != nil {
			t.Fatalf("rules validate but NewModel fails: %v", err)
		}
		// Score one event of every type the model knows, plus an unknown one,
		// each carrying every property any rule reads.
		props := map[string]string{}
		var types []string
		for _, x := range r.Rules {
			types = append(types, x.Type)
			for k, v := range x.When {
				props[k] = v
			}
			for _, c := range x.Conditions {
				props[c.Property] = "100"
			}
		}
		types = append(types, "unknown-type")
		t0 := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
		var in []Input
		for i, typ := range types {
			ev := &events.Event{ID: "e" + string(rune('a'+i%26)) + time.Duration(i).String(), LeadID: "l", Type: typ,
				OccurredAt: t0.Add(time.Duration(i) * time.Hour), Properties: props}
			in = append(in, Input{Event: ev, Offset: int64(i)})
			if len(in) >= 64 {
				break
			}
		}
		var st LeadState
		m.Apply("l", &st, false, in, make([]Outcome, len(in)), nil)
		if math.IsNaN(st.Eng) || math.IsInf(st.Eng, 0) || math.IsNaN(st.Fit) || math.IsInf(st.Fit, 0) {
			t.Fatalf("score not finite: eng %v fit %v", st.Eng, st.Fit)
		}
		_ = m.ScoreAt(&st, t0.Add(1000*24*time.Hour))
	})
}
