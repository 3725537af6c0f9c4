package explain

import (
	"strings"
	"testing"
	"time"

	"github.com/leadscore/leadscore/config"
)

func ptr[T any](v T) *T { return &v }

func TestCondition(t *testing.T) {
	tests := []struct {
		name string
		c    config.Condition
		want string
	}{
		{"equals", config.Condition{Property: "page", Equals: ptr("pricing")}, "page = pricing"},
		{"equals quoted", config.Condition{Property: "plan", Equals: ptr("Pro Plus")}, `plan = "Pro Plus"`},
		{"equals empty", config.Condition{Property: "ref", Equals: ptr("")}, `ref = ""`},
		{"prefix", config.Condition{Property: "url", Prefix: "/docs/"}, `url starts with "/docs/"`},
		{"glob", config.Condition{Property: "job_title", Glob: "*[Hh]ead*"}, `job_title matches "*[Hh]ead*"`},
		{"in one", config.Condition{Property: "form", In: []string{"demo"}}, "form = demo"},
		{"in two", config.Condition{Property: "form", In: []string{"demo", "trial"}}, "form is demo or trial"},
		{"in many", config.Condition{Property: "form", In: []string{"demo", "free trial", "contact"}}, `form is demo, "free trial" or contact`},
		{"exists", config.Condition{Property: "company", Exists: ptr(true)}, "company is set"},
		{"not exists", config.Condition{Property: "utm", Exists: ptr(false)}, "utm is not set"},
		{"gt", config.Condition{Property: "seats", GT: ptr(10.0)}, "seats > 10"},
		{"gte", config.Condition{Property: "duration_s", GTE: ptr(120.0)}, "duration_s ≥ 120"},
		{"lt", config.Condition{Property: "seats", LT: ptr(5.0)}, "seats < 5"},
		{"lte", config.Condition{Property: "seats", LTE: ptr(-2.5)}, "seats ≤ −2.5"},
		{"range gte lt", config.Condition{Property: "employees", GTE: ptr(10.0), LT: ptr(50.0)}, "10 ≤ employees < 50"},
		{"range gt lte", config.Condition{Property: "employees", GT: ptr(10.0), LTE: ptr(50.0)}, "10 < employees ≤ 50"},
		{"two lower bounds", config.Condition{Property: "n", GT: ptr(1.0), GTE: ptr(2.0)}, "n > 1 and n ≥ 2"},
		{"several operators", config.Condition{Property: "url", Exists: ptr(true), Prefix: "/p", Glob: "*x"},
			`url is set and url starts with "/p" and url matches "*x"`},
		{"nothing", config.Condition{Property: "x"}, "x (tests nothing)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Condition(tt.c); got != tt.want {
				t.Errorf("Condition = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRuleWords(t *testing.T) {
	tests := []struct {
		name              string
		r                 config.Rule
		wantMatch, wantPt string
	}{
		{"type only", config.Rule{Type: "email_open", Points: 1}, "email_open", "+1"},
		{"when", config.Rule{Type: "page_view", When: map[string]string{"page": "pricing"}, Points: 4}, "page_view where page = pricing", "+4"},
		{"when keys sorted", config.Rule{Type: "f", When: map[string]string{"z": "1", "a": "2"}, Points: 1}, "f where a = 2 and z = 1", "+1"},
		{"when then conditions", config.Rule{Type: "page_view", When: map[string]string{"page": "docs"},
			Conditions: []config.Condition{{Property: "duration_s", GTE: ptr(120.0)}}, Points: 2},
			"page_view where page = docs and duration_s ≥ 120", "+2"},
		{"negative", config.Rule{Type: "page_view", When: map[string]string{"page": "careers"}, Points: -5}, "page_view where page = careers", "−5"},
		{"fraction", config.Rule{Type: "x", Points: 0.25}, "x", "+0.25"},
		{"zero", config.Rule{Type: "x", Points: 0}, "x", "0"},
		{"cap", config.Rule{Type: "email_open", Points: 1, Cap: &config.Cap{Points: 5, Per: config.Duration(24 * time.Hour)}},
			"email_open", "+1, at most 5 per day"},
		{"cap days", config.Rule{Type: "x", Points: 2, Cap: &config.Cap{Points: 10, Per: config.Duration(7 * 24 * time.Hour)}},
			"x", "+2, at most 10 per 7 days"},
		{"cap mixed", config.Rule{Type: "x", Points: 2, Cap: &config.Cap{Points: 3, Per: config.Duration(90 * time.Minute)}},
			"x", "+2, at most 3 per 1 hour 30 minutes"},
		{"cap on negative", config.Rule{Type: "x", Points: -1, Cap: &config.Cap{Points: 3, Per: config.Duration(time.Hour)}},
			"x", "−1, never capped (negative points)"},
		{"first time", config.Rule{Type: "form_submit", When: map[string]string{"form": "newsletter"}, Points: 1, FirstTimeOnly: true},
			"form_submit where form = newsletter", "+1, once per lead"},
		{"fit", config.Rule{Type: "*", Score: config.ScoreFit, Points: 5,
			Conditions: []config.Condition{{Property: "job_title", Glob: "*VP*"}}}, `job_title matches "*VP*"`, "+5"},
		{"fit unconditional", config.Rule{Type: "*", Score: config.ScoreFit, Points: 1}, "every lead", "+1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RuleMatch(tt.r); got != tt.wantMatch {
				t.Errorf("RuleMatch = %q, want %q", got, tt.wantMatch)
			}
			if got := RulePoints(tt.r); got != tt.wantPt {
				t.Errorf("RulePoints = %q, want %q", got, tt.wantPt)
			}
		})
	}
}

func TestStageEntry(t *testing.T) {
	d30 := config.Duration(30 * 24 * time.Hour)
	tests := []struct {
		name string
		s    config.Stage
		want []string
	}{
		{"min score", config.Stage{MinScore: ptr(8.0)}, []string{"when score ≥ 8"}},
		{"on one event", config.Stage{OnEvents: []string{"download"}}, []string{"on download"}},
		{"shorthands", config.Stage{MinScore: ptr(8.0), OnEvents: []string{"download", "webinar_registration"}},
			[]string{"when score ≥ 8", "on download or webinar_registration"}},
		{"on rules and recent", config.Stage{EnterWhen: []config.Criterion{
			{OnRules: []string{"usage-limit"}, RecentEvents: []string{"trial_signup"}, Within: d30}}},
			[]string{"when usage-limit matches and trial_signup happened within 30 days"}},
		{"event and recent", config.Stage{EnterWhen: []config.Criterion{
			{OnEvents: []string{"upgrade_offer_opened"}, RecentEvents: []string{"trial_signup", "demo"}, Within: config.Duration(36 * time.Hour)}}},
			[]string{"on upgrade_offer_opened and trial_signup or demo happened within 1 day 12 hours"}},
		{"score and rules", config.Stage{EnterWhen: []config.Criterion{{MinScore: ptr(-3.0), OnRules: []string{"a", "b", "c"}}}},
			[]string{"when a, b or c matches and score ≥ −3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StageEntry(tt.s)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("StageEntry = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBandRange(t *testing.T) {
	bands := []config.Band{{Name: "cold"}, {Name: "warm", Min: 5, Exit: ptr(4.0)}, {Name: "hot", Min: 15}, {Name: "fire", Min: 30, Exit: ptr(30.0)}}
	want := []string{"below 5", "enter at 5, leave below 4", "from 15", "from 30"}
	for i := range bands {
		if got := bandRange(bands, i); got != want[i] {
			t.Errorf("band %d: %q, want %q", i, got, want[i])
		}
	}
	if got := bandRange(bands[:1], 0); got != "every score" {
		t.Errorf("single band: %q", got)
	}
}

func TestRules(t *testing.T) {
	r := config.Rules{
		Version:  "v3",
		HalfLife: config.Duration(30 * 24 * time.Hour),
		Rules: []config.Rule{
			{Name: "email-open", Type: "email_open", Points: 1, Cap: &config.Cap{Points: 5, Per: config.Duration(24 * time.Hour)}},
			{Name: "pricing-page", Type: "page_view", When: map[string]string{"page": "pricing"}, Points: 4},
			{Name: "unsubscribe", Type: "unsubscribe", Points: -10},
			{Name: "senior", Type: "*", Score: config.ScoreFit, Points: 5, Conditions: []config.Condition{{Property: "job_title", Glob: "*Head*"}}},
			{Name: "signed-up", Type: "signup", Score: config.ScoreFit, Points: 1},
		},
		Bands: []config.Band{{Name: "cold"}, {Name: "warm", Min: 5, Exit: ptr(4.0)}, {Name: "hot", Min: 15, Exit: ptr(12.0)}},
		Stages: []config.Stage{
			{Name: "lead"},
			{Name: "mql", From: []string{"lead"}, MinScore: ptr(8.0), OnEvents: []string{"download"}},
			{Name: "pql", EnterWhen: []config.Criterion{
				{OnRules: []string{"pricing-page"}, RecentEvents: []string{"trial_signup"}, Within: config.Duration(30 * 24 * time.Hour)},
				{OnEvents: []string{"upgrade_offer_opened"}, RecentEvents: []string{"trial_signup"}, Within: config.Duration(30 * 24 * time.Hour)},
			}},
		},
	}
	if errs := r.Validate(); len(errs) > 0 {
		t.Fatalf("test rules invalid: %v", errs)
	}
	var b strings.Builder
	if err := Rules(&b, &r); err != nil {
		t.Fatal(err)
	}
	want := `rules version v3 — 5 rules, 3 bands, 3 stages
Decay: engagement halves every 30 days without activity; fit never decays.
Engagement rules (an event earns the sum of every rule it matches):
  email-open    email_open                       +1, at most 5 per day
  pricing-page  page_view where page = pricing   +4
  unsubscribe   unsubscribe                     −10
Fit rules (from the lead's latest attributes; the score is engagement + fit):
  senior        job_title matches "*Head*"       +5
  signed-up     every lead                       +1
  note: signed-up names event type signup, but fit rules read the lead's latest attributes from every event: the type is not checked
Bands (by engagement + fit):
  cold  below 5
  warm  enter at 5, leave below 4
  hot   enter at 15, leave below 12
Stages (a lead moves only along these; if several qualify, the last listed wins):
  lead  where every lead starts
  mql   from lead — when score ≥ 8; or on download
  pql   from lead, mql — when pricing-page matches and trial_signup happened within 30 days;
        or on upgrade_offer_opened and trial_signup happened within 30 days
`
	if got := b.String(); got != want {
		t.Errorf("Rules output:\n%s\nwant:\n%s", got, want)
	}
}

func TestRulesDecayWording(t *testing.T) {
	base := config.Rules{Bands: []config.Band{{Name: "cold"}}, Stages: []config.Stage{{Name: "lead"}},
		Rules: []config.Rule{{Name: "a", Type: "a", Points: 1}}}
	tests := []struct {
		name string
		half time.Duration
		fit  bool
		want string
	}{
		{"no decay", 0, false, "Decay: none; scores never decay."},
		{"decay without fit", 14 * 24 * time.Hour, false, "Decay: engagement halves every 14 days without activity.\n"},
		{"decay with fit", 12 * time.Hour, true, "Decay: engagement halves every 12 hours without activity; fit never decays."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			r.HalfLife = config.Duration(tt.half)
			if tt.fit {
				r.Rules = append(r.Rules, config.Rule{Name: "f", Type: "*", Score: config.ScoreFit, Points: 1})
			}
			var b strings.Builder
			if err := Rules(&b, &r); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, b.String())
			}
		})
	}
}

func TestDefaultRulesDescribed(t *testing.T) {
	r := config.Default().Rules
	var b strings.Builder
	if err := Rules(&b, &r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"rules version " + r.VersionOf() + " (a hash of the rules) — 26 rules, 3 bands, 6 stages",
		"  long-visit       page_view where duration_s ≥ 120           +2\n",
		"  newsletter-form  form_submit where form = newsletter        +1, once per lead\n",
		"  unsubscribe      unsubscribe                               −10\n",
		"  mql                from lead, recycled — when score ≥ 8; or on download or webinar_registration\n",
		"  recycled           from mql, pql, sql, service_qualified — on sales_rejected\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
