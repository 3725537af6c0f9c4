package config

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// TestHostileRulesRefused: rules that would overflow scores, decay absurdly,
// leave stages unreachable or make the service carry huge names are refused
// at start-up with an error naming the field.
func TestHostileRulesRefused(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	long := strings.Repeat("n", 10<<10)
	tests := []struct {
		name      string
		mutate    func(r *Rules)
		wantField string
	}{
		{"points 1e300", func(r *Rules) { r.Rules[0].Points = 1e300 }, "rules.rules[0].points"},
		{"points -1e300", func(r *Rules) { r.Rules[0].Points = -1e300 }, "rules.rules[0].points"},
		{"points +Inf", func(r *Rules) { r.Rules[0].Points = math.Inf(1) }, "rules.rules[0].points"},
		{"points NaN", func(r *Rules) { r.Rules[0].Points = math.NaN() }, "rules.rules[0].points"},
		{"cap 1e300", func(r *Rules) { r.Rules[0].Cap = &Cap{Points: 1e300, Per: Duration(24 * time.Hour)} }, "rules.rules[0].cap.points"},
		{"cap window 1ns", func(r *Rules) { r.Rules[0].Cap = &Cap{Points: 5, Per: 1} }, "rules.rules[0].cap.per"},
		{"cap window 290 years", func(r *Rules) { r.Rules[0].Cap = &Cap{Points: 5, Per: Duration(290 * 365 * 24 * time.Hour)} }, "rules.rules[0].cap.per"},
		{"half_life 1ns", func(r *Rules) { r.HalfLife = 1 }, "rules.half_life"},
		{"half_life 290 years", func(r *Rules) { r.HalfLife = Duration(290 * 365 * 24 * time.Hour) }, "rules.half_life"},
		{"half_life negative", func(r *Rules) { r.HalfLife = -Duration(time.Hour) }, "rules.half_life"},
		{"band min +Inf", func(r *Rules) { r.Bands[1].Min = math.Inf(1) }, "rules.bands[1].min"},
		{"stage min_score NaN", func(r *Rules) { r.Stages[1].MinScore = f(math.NaN()) }, "rules.stages[1].min_score"},
		{"condition bound +Inf", func(r *Rules) {
			r.Rules[0].Conditions = []Condition{{Property: "n", GT: f(math.Inf(1))}}
		}, "rules.rules[0].conditions[0]"},
		{"100k rules", func(r *Rules) {
			r.Rules = make([]Rule, 100000)
			for i := range r.Rules {
				r.Rules[i] = Rule{Name: fmt.Sprint("r", i), Type: "t", Points: 1}
			}
		}, "rules.rules"},
		{"rule name 10k bytes", func(r *Rules) { r.Rules[0].Name = long }, "rules.rules[0].name"},
		{"rule type 10k bytes", func(r *Rules) { r.Rules[0].Type = long }, "rules.rules[0].type"},
		{"band name 10k bytes", func(r *Rules) { r.Bands[1].Name = long }, "rules.bands[1].name"},
		{"stage name 10k bytes", func(r *Rules) { r.Stages[1].Name = long }, "rules.stages[1].name"},
		{"version 10k bytes", func(r *Rules) { r.Version = long }, "rules.version"},
		{"1000 bands", func(r *Rules) {
			for i := 0; i < 1000; i++ {
				r.Bands = append(r.Bands, Band{Name: fmt.Sprint("b", i), Min: float64(100 + i)})
			}
		}, "rules.bands"},
		{"stage from itself", func(r *Rules) { r.Stages[1].From = []string{r.Stages[1].Name} }, "rules.stages[1].from[0]"},
		{"stage from an unknown stage", func(r *Rules) { r.Stages[1].From = []string{"nowhere"} }, "rules.stages[1].from[0]"},
		{"a cycle the first stage cannot reach", func(r *Rules) {
			r.Stages = []Stage{{Name: "lead"},
				{Name: "a", From: []string{"b"}, MinScore: f(1)},
				{Name: "b", From: []string{"a"}, MinScore: f(2)}}
		}, "rules.stages[1].from"},
		{"a stage with no way in", func(r *Rules) { r.Stages = append(r.Stages, Stage{Name: "limbo"}) }, fmt.Sprintf("rules.stages[%d]", len(Default().Rules.Stages))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Default().Rules
			tc.mutate(&r)
			errs := r.Validate()
			var fields []string
			found := false
			for _, err := range errs {
				var fe *FieldError
				if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
					t.Errorf("%v is not a *FieldError wrapping ErrInvalid", err)
					continue
				}
				fields = append(fields, fe.Field)
				if fe.Field == tc.wantField && fe.Problem != "" && fe.Fix != "" {
					found = true
				}
				if len(err.Error()) > 1024 {
					t.Errorf("error of %d bytes: it must not repeat huge input", len(err.Error()))
				}
			}
			if !found {
				t.Errorf("want an error naming %s, got fields %v", tc.wantField, fields)
			}
		})
	}
}

// TestCyclicStageGraphAccepted: a cycle reachable from the first stage is a
// normal lifecycle (mql → recycled → mql) and is accepted; it cannot loop
// within an event because a lead makes at most one stage move per event
// (scorer's TestCyclicStagesMoveOncePerEvent).
func TestCyclicStageGraphAccepted(t *testing.T) {
	r := Default().Rules
	var cyc bool
	for i, st := range r.Stages {
		if st.Name == "recycled" {
			for _, from := range r.StageFrom(i) {
				cyc = cyc || from == "mql"
			}
		}
	}
	if !cyc {
		t.Fatal("the default model no longer has the mql → recycled → mql cycle")
	}
	if errs := r.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// TestAbsurdDurationsRefusedAtParse: 1000 years does not fit a
// time.Duration (at most ~292 years); the parser refuses it, quoting the
// input, instead of wrapping around to a negative or tiny duration.
func TestAbsurdDurationsRefusedAtParse(t *testing.T) {
	for _, y := range []string{
		"half_life: 365000d\n",
		"half_life: 8760000h\n",
		"half_life: 99999999999999999999ns\n",
		"rules: [{name: a, type: t, points: 1, cap: {points: 1, per: 365000d}}]\n",
	} {
		_, err := ParseRules([]byte(y))
		if err == nil || !strings.Contains(err.Error(), "invalid duration") {
			t.Errorf("%q: err = %v, want an invalid duration error", y, err)
		}
	}
}
