package explain

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/leadscore/leadscore/config"
)

// lineWidth is where a stage's description breaks onto further lines.
const lineWidth = 100

// Rules writes the scoring model in plain words: what each event earns,
// how scores decay, the bands and the stages. r must be valid (see
// config.Rules.Validate).
func Rules(w io.Writer, r *config.Rules) error {
	p := &printer{w: w}
	version := r.VersionOf()
	if r.Version == "" {
		version += " (a hash of the rules)"
	}
	p.printf("rules version %s — %s, %s, %s\n", version,
		plural(len(r.Rules), "rule"), plural(len(r.Bands), "band"), plural(len(r.Stages), "stage"))

	var eng, fit []config.Rule
	for _, x := range r.Rules {
		if x.Score == config.ScoreFit {
			fit = append(fit, x)
		} else {
			eng = append(eng, x)
		}
	}
	switch h := r.HalfLife.D(); {
	case h == 0:
		p.printf("Decay: none; scores never decay.\n")
	case len(fit) > 0:
		p.printf("Decay: engagement halves every %s without activity; fit never decays.\n", span(h))
	default:
		p.printf("Decay: engagement halves every %s without activity.\n", span(h))
	}

	ruleTables(p, eng, fit)
	bandTable(p, r.Bands)
	stageTable(p, r)
	return p.err
}

// ruleTables lists engagement and fit rules in one table, so that their
// columns line up: name, what the rule matches, points and their limits.
func ruleTables(p *printer, eng, fit []config.Rule) {
	var nameW, whatW, ptsW int
	for _, x := range slices.Concat(eng, fit) {
		pts, _ := pointsParts(x)
		nameW, whatW, ptsW = max(nameW, width(x.Name)), max(whatW, width(RuleMatch(x))), max(ptsW, width(pts))
	}
	table := func(rs []config.Rule) {
		for _, x := range rs {
			pts, limits := pointsParts(x)
			p.printf("  %s  %s  %s%s\n", pad(x.Name, nameW), pad(RuleMatch(x), whatW), padLeft(pts, ptsW),
				strings.Join(slices.Concat([]string{""}, limits), ", "))
		}
	}
	if len(eng) == 0 {
		p.printf("Engagement rules: none.\n")
	} else {
		p.printf("Engagement rules (an event earns the sum of every rule it matches):\n")
		table(eng)
	}
	if len(fit) == 0 {
		p.printf("Fit rules: none; the score is engagement alone.\n")
		return
	}
	p.printf("Fit rules (from the lead's latest attributes; the score is engagement + fit):\n")
	table(fit)
	for _, x := range fit {
		if x.Type != "*" { // the scorer evaluates fit rules on attributes from any event
			p.printf("  note: %s names event type %s, but fit rules read the lead's latest attributes from every event: the type is not checked\n",
				x.Name, x.Type)
		}
	}
}

func bandTable(p *printer, bands []config.Band) {
	p.printf("Bands (by engagement + fit):\n")
	nameW := 0
	for _, b := range bands {
		nameW = max(nameW, width(b.Name))
	}
	for i, b := range bands {
		p.printf("  %s  %s\n", pad(b.Name, nameW), bandRange(bands, i))
	}
}

// stageTable lists the stages, a line each, breaking before each further
// way in when the line would be too long to read.
func stageTable(p *printer, r *config.Rules) {
	p.printf("Stages (a lead moves only along these; if several qualify, the last listed wins):\n")
	nameW := 0
	for _, s := range r.Stages {
		nameW = max(nameW, width(s.Name))
	}
	indent := strings.Repeat(" ", 2+nameW+2)
	for i, s := range r.Stages {
		if i == 0 {
			p.printf("  %s  where every lead starts\n", pad(s.Name, nameW))
			continue
		}
		from := "from " + strings.Join(r.StageFrom(i), ", ") + " — "
		ways := StageEntry(s)
		if text := from + strings.Join(ways, "; or "); len(ways) == 1 || width(indent+text) <= lineWidth {
			p.printf("  %s  %s\n", pad(s.Name, nameW), text)
		} else {
			p.printf("  %s  %s%s;\n", pad(s.Name, nameW), from, ways[0])
			for j, way := range ways[1:] {
				end := ";"
				if j == len(ways)-2 {
					end = ""
				}
				p.printf("%sor %s%s\n", indent, way, end)
			}
		}
		if s.ResetEngagement {
			p.printf("%sentering it resets the engagement score to 0 (fit stays)\n", indent)
		}
	}
}

// RuleMatch says which events a rule scores: "page_view where page =
// pricing". A fit rule says only what the lead's attributes must be.
func RuleMatch(x config.Rule) string {
	var conds []string
	keys := make([]string, 0, len(x.When))
	for k := range x.When {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := x.When[k]
		conds = append(conds, Condition(config.Condition{Property: k, Equals: &v}))
	}
	for _, c := range x.Conditions {
		conds = append(conds, Condition(c))
	}
	where := strings.Join(conds, " and ")
	if x.Score == config.ScoreFit {
		if where == "" {
			return "every lead"
		}
		return where
	}
	if where == "" {
		return x.Type
	}
	return x.Type + " where " + where
}

// RulePoints says what a rule gives: "+1, at most 5 per day", "+1, once
// per lead".
func RulePoints(x config.Rule) string {
	pts, limits := pointsParts(x)
	return strings.Join(append([]string{pts}, limits...), ", ")
}

// pointsParts returns a rule's signed points and what limits them.
func pointsParts(x config.Rule) (points string, limits []string) {
	if x.FirstTimeOnly {
		limits = append(limits, "once per lead")
	}
	if c := x.Cap; c != nil {
		if x.Points < 0 {
			limits = append(limits, "never capped (negative points)")
		} else {
			limits = append(limits, fmt.Sprintf("at most %s %s", num(c.Points), per(c.Per.D())))
		}
	}
	return signed(x.Points), limits
}

// Condition says what one condition tests: "duration_s ≥ 120", "job_title
// matches "*VP*"", "10 ≤ employees < 50". Every operator given must hold.
func Condition(c config.Condition) string {
	p := c.Property
	var parts []string
	if c.Exists != nil {
		if *c.Exists {
			parts = append(parts, p+" is set")
		} else {
			parts = append(parts, p+" is not set")
		}
	}
	if c.Equals != nil {
		parts = append(parts, p+" = "+quote(*c.Equals))
	}
	if c.Prefix != "" {
		parts = append(parts, p+" starts with "+fmt.Sprintf("%q", c.Prefix))
	}
	if c.Glob != "" {
		parts = append(parts, p+" matches "+fmt.Sprintf("%q", c.Glob))
	}
	switch len(c.In) {
	case 0:
	case 1:
		parts = append(parts, p+" = "+quote(c.In[0]))
	default:
		vals := make([]string, len(c.In))
		for i, v := range c.In {
			vals[i] = quote(v)
		}
		parts = append(parts, p+" is "+orList(vals))
	}
	type bound struct {
		op string
		v  *float64
	}
	var lows, highs []bound
	for _, b := range []bound{{">", c.GT}, {"≥", c.GTE}} {
		if b.v != nil {
			lows = append(lows, b)
		}
	}
	for _, b := range []bound{{"<", c.LT}, {"≤", c.LTE}} {
		if b.v != nil {
			highs = append(highs, b)
		}
	}
	if len(lows) == 1 && len(highs) == 1 { // a range: 10 ≤ employees < 50
		flip := map[string]string{">": "<", "≥": "≤"}[lows[0].op]
		parts = append(parts, fmt.Sprintf("%s %s %s %s %s", num(*lows[0].v), flip, p, highs[0].op, num(*highs[0].v)))
	} else {
		for _, b := range slices.Concat(lows, highs) {
			parts = append(parts, fmt.Sprintf("%s %s %s", p, b.op, num(*b.v)))
		}
	}
	if len(parts) == 0 {
		return p + " (tests nothing)"
	}
	return strings.Join(parts, " and ")
}

// StageEntry says each way into a stage, one string per criterion: "when
// score ≥ 8", "on download or webinar_registration", "when usage-limit
// matches and trial_signup happened within 30 days".
func StageEntry(s config.Stage) []string {
	var crits []config.Criterion
	if s.MinScore != nil {
		crits = append(crits, config.Criterion{MinScore: s.MinScore})
	}
	if len(s.OnEvents) > 0 {
		crits = append(crits, config.Criterion{OnEvents: s.OnEvents})
	}
	crits = append(crits, s.EnterWhen...)
	out := make([]string, 0, len(crits))
	for _, c := range crits {
		text := Criterion(c)
		if !strings.HasPrefix(text, "on ") {
			text = "when " + text
		}
		out = append(out, text)
	}
	return out
}

// Criterion says what one entry criterion needs; all its parts must hold.
func Criterion(c config.Criterion) string {
	var parts []string
	if len(c.OnEvents) > 0 {
		parts = append(parts, "on "+orList(c.OnEvents))
	}
	if len(c.OnRules) > 0 {
		parts = append(parts, orList(c.OnRules)+" matches")
	}
	if c.MinScore != nil {
		parts = append(parts, "score ≥ "+num(*c.MinScore))
	}
	if len(c.RecentEvents) > 0 {
		parts = append(parts, fmt.Sprintf("%s happened within %s", orList(c.RecentEvents), span(c.Within.D())))
	}
	return strings.Join(parts, " and ")
}

// bandRange says which scores put a lead in band i.
func bandRange(bands []config.Band, i int) string {
	b := bands[i]
	if i == 0 {
		if len(bands) == 1 {
			return "every score"
		}
		return "below " + num(bands[1].Min)
	}
	if b.Exit != nil && *b.Exit != b.Min {
		return fmt.Sprintf("enter at %s, leave below %s", num(b.Min), num(*b.Exit))
	}
	return "from " + num(b.Min)
}

// printer keeps the first write error, so printing code stays linear.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}
