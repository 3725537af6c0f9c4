package explain

import (
	"strings"
	"testing"

	"github.com/leadscore/leadscore/config"
)

// A valid rules file the cases below break one line of.
const validRules = `half_life: 30d
rules:
  - {name: open, type: email_open, points: 1}
  - name: pricing
    type: page_view
    when: {page: pricing}
    points: 4
bands:
  - {name: cold}
  - {name: warm, min: 5}
stages:
  - {name: lead}
  - name: mql
    from: [lead]
    min_score: 8
`

func TestProblemsNameTheLine(t *testing.T) {
	tests := []struct {
		name      string
		old, new  string // replace old by new in validRules
		wantLines []string
	}{
		{"undeclared from stage", "from: [lead]", "from: [mq]",
			[]string{
				`line 14: rules.stages[1].from[0]: "mq" is not a declared stage; name a stage declared in rules.stages`,
				`line 14: rules.stages[1].from: stage "mql" cannot be reached from "lead"; list in from a stage that leads back to the first one`,
			}},
		{"duplicate rule name", "name: pricing", "name: open",
			[]string{`line 4: rules.rules[1].name: "open" is used twice; give each rule a distinct name`}},
		{"empty type in flow mapping", "type: email_open, ", "",
			[]string{"line 3: rules.rules[0].type: is empty; set the event type this rule scores, e.g. email_open"}},
		{"missing field: the enclosing rule", "    type: page_view\n", "",
			[]string{"line 4: rules.rules[1].type: is empty; set the event type this rule scores, e.g. email_open"}},
		{"band order", "{name: warm, min: 5}", "{name: warm, min: 5}\n  - {name: hot, min: 3}",
			[]string{"line 11: rules.bands[2].min: 3 is not above the previous band's 5; list bands lowest first with rising minimums"}},
		{"half life", "half_life: 30d", "half_life: 30m",
			[]string{"line 1: rules.half_life: 30m0s is out of range; use 0 (no decay) or 1h to 3660d, e.g. 30d"}},
		{"stage without a way in", "    min_score: 8\n", "",
			[]string{"line 13: rules.stages[1]: has no way in; give it min_score, on_events or enter_when"}},
		{"two problems, in validation order", "from: [lead]", "from: [lead, nope]\n    on_events: [\"\"]",
			[]string{
				`line 15: rules.stages[1].on_events[0]: is empty; name an event type`,
				`line 14: rules.stages[1].from[1]: "nope" is not a declared stage; name a stage declared in rules.stages`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(validRules, tt.old, tt.new, 1)
			if src == validRules {
				t.Fatalf("%q not in the rules", tt.old)
			}
			r, err := config.ParseRules([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			pos, err := config.FieldPositions([]byte(src), "rules")
			if err != nil {
				t.Fatal(err)
			}
			got := Problems(r.Validate(), pos)
			if strings.Join(got, "\n") != strings.Join(tt.wantLines, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s\nin:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantLines, "\n"), src)
			}
		})
	}
}

func TestProblemsInWholeConfig(t *testing.T) {
	src := "kafka:\n  partitions: 3\nrules:\n  bands:\n    - {name: cold}\n    - {name: cold, min: 2}\n"
	var c config.Config // as config.Load would give for this file, without the defaults
	c.Rules = config.Rules{Bands: []config.Band{{Name: "cold"}, {Name: "cold", Min: 2}}, Stages: []config.Stage{{Name: "lead"}}}
	pos, err := config.FieldPositions([]byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	got := Problems(c.Rules.Validate(), pos)
	want := `line 6: rules.bands[1].name: "cold" is used twice; use distinct names`
	if len(got) != 1 || got[0] != want {
		t.Errorf("problems %q, want [%q]", got, want)
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"unknown field in a rule", "rules:\n  - name: a\n    type: b\n    pointz: 1\n",
			[]string{`line 4: rules.rules[0]: unknown field "pointz" in a rule; use name, type, when, conditions, points, score, first_time_only or cap`}},
		{"unknown field in a condition, flow style", "rules:\n  - {name: a, type: b, conditions: [{property: x, equal: y}]}\n",
			[]string{`line 2: rules.rules[0].conditions[0]: unknown field "equal" in a condition; use property, equals, prefix, glob, in, exists, gt, gte, lt or lte`}},
		{"unknown top-level field", "bandz: []\n",
			[]string{`line 1: rules: unknown field "bandz" in the rules section; use version, half_life, rules, bands or stages`}},
		{"not a number", "rules:\n  - {name: a, type: b, points: lots}\n",
			[]string{`line 2: rules.rules[0].points: "lots" is not a number`}},
		{"not true or false", "rules:\n  - {name: a, type: b, first_time_only: maybe}\n",
			[]string{`line 2: rules.rules[0].first_time_only: "maybe" is not true or false`}},
		{"a mapping for a list", "bands:\n  name: cold\n",
			[]string{`line 2: a mapping is not a list`}},
		{"two problems", "rules:\n  - {name: a, type: b, points: x}\nbands: [{name: c, mn: 1}]\n",
			[]string{`line 2: rules.rules[0].points: "x" is not a number`,
				`line 3: rules.bands[0]: unknown field "mn" in a band; use name, min or exit`}},
		{"bad duration", "half_life: 30 days\n",
			[]string{`line 1: rules.half_life: invalid duration "30 days": use forms like 30d, 12h, 90m`}},
		{"bad duration with days", "version: x\nhalf_life: 30days\n",
			[]string{`line 2: rules.half_life: invalid duration "30days": use forms like 30d, 12h, 90m`}},
		{"bad cap duration", "rules:\n  - name: a\n    type: b\n    cap: {points: 1, per: 1w}\n",
			[]string{`line 4: rules.rules[0].cap.per: invalid duration "1w": use forms like 30d, 12h, 90m`}},
		{"unclosed flow mapping", "half_life: 1d\nrules:\n  - {name: a\n",
			[]string{`line 3: YAML syntax error near here: did not find expected ',' or '}'`}},
		{"bad indentation", "rules:\n  - name: a\n   type: b\n",
			[]string{`line 2: YAML syntax error near here: did not find expected '-' indicator`}},
		{"scanner error", "half_life: 1d\nrules: a: b\n",
			[]string{`line 2: YAML syntax error near here: mapping values are not allowed in this context`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.ParseRules([]byte(tt.src))
			if err != nil {
				err = wrapLike(err) // as config.LoadRules returns it
			} else {
				t.Fatal("parsed")
			}
			pos, _ := config.FieldPositions([]byte(tt.src), "rules")
			got := ParseProblems(err, pos)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

type wrapped struct{ err error }

func (w wrapped) Error() string { return "rules some/file.yaml: " + w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

func wrapLike(err error) error { return wrapped{err} }
