package explain

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/leadscore/leadscore/internal/httpapi"
	"github.com/leadscore/leadscore/scorer"
)

// LeadOptions says how to print a lead.
type LeadOptions struct {
	Now time.Time      // for "3h ago" and "in 6d 10h"
	Loc *time.Location // times are shown in it; nil: UTC
	// Bands are the band names lowest first, to name the band decay will
	// move the lead to; nil when unknown (then only "leaves hot" is said).
	Bands []string
}

// timeLayout shows times to the second: events of one lead are often
// seconds apart.
const timeLayout = "2006-01-02 15:04:05"

// barWidth is the longest bar of the contributors chart.
const barWidth = 24

// Lead writes a lead's state as the lead API returns it: score, band,
// stage, when decay will next change the band, what the score is made of,
// and its recent changes and transitions.
func Lead(w io.Writer, v *httpapi.LeadView, o LeadOptions) error {
	loc := o.Loc
	if loc == nil {
		loc = time.UTC
	}
	at := func(t time.Time) string { return t.In(loc).Format(timeLayout) }
	p := &printer{w: w}

	p.printf("lead %s (times in %s)\n", v.LeadID, zoneName(o.Now.In(loc)))
	p.printf("  score   %s = engagement %s + fit %s\n", num(v.Score), num(v.Engagement), num(v.Fit))
	p.printf("  band    %s\n", v.Band)
	p.printf("  stage   %s\n", v.Stage)
	p.printf("  events  %d, first %s, last %s (%s)\n", v.Events, at(v.FirstSeen), at(v.LastEventAt), ago(o.Now.Sub(v.LastEventAt)))
	if v.NextDecayChange != nil {
		p.printf("  decay   %s (%s)\n", decayChange(v, o), at(*v.NextDecayChange))
	} else {
		p.printf("  decay   will not change the band by itself\n")
	}

	if len(v.Contributors) > 0 {
		p.printf("\nTop contributors (engagement points each rule still gives, decayed to now):\n")
		nameW, ptsW, most := 0, 0, 0.0
		for _, c := range v.Contributors {
			nameW, ptsW = max(nameW, width(c.Rule)), max(ptsW, width(signed(c.Points)))
			most = max(most, math.Abs(c.Points))
		}
		for _, c := range v.Contributors {
			p.printf("  %s  %s  %s\n", pad(c.Rule, nameW), padLeft(signed(c.Points), ptsW), bar(c.Points, most))
		}
	}

	if len(v.Changes) > 0 {
		p.printf("\nRecent score changes (newest first):\n")
		typeW, rulesW, deltaW := 0, 0, 0
		for _, c := range v.Changes {
			typeW = max(typeW, width(c.Type))
			rulesW = max(rulesW, width(ruleList(c.Rules)))
			deltaW = max(deltaW, width(signed(c.Delta)))
		}
		for _, c := range v.Changes {
			p.printf("  %s  %s  %s  %s → %s\n", at(c.At), pad(c.Type, typeW), pad(ruleList(c.Rules), rulesW),
				padLeft(signed(c.Delta), deltaW), num(c.Score))
		}
	}

	if len(v.Transitions) > 0 {
		p.printf("\nRecent transitions (newest first):\n")
		kindW, moveW, scoreW := 0, 0, 0
		for _, t := range v.Transitions {
			kindW = max(kindW, width(t.Kind))
			moveW = max(moveW, width(t.From+" → "+t.To))
			scoreW = max(scoreW, width(num(t.Score)))
		}
		for _, t := range v.Transitions {
			p.printf("  %s  %s  %s  score %s  ← %s\n", at(t.OccurredAt), pad(t.Kind, kindW), pad(t.From+" → "+t.To, moveW),
				padLeft(num(t.Score), scoreW), cause(t.CauseEventType, t.CauseEventID, t.CauseRules))
		}
	}
	return p.err
}

// decayChange says "in 6d 10h: hot → warm".
func decayChange(v *httpapi.LeadView, o LeadOptions) string {
	when := "now"
	if d := v.NextDecayChange.Sub(o.Now); d > 0 {
		when = "in " + short(d)
	}
	// Decay moves engagement towards 0: a positive one falls and takes the
	// lead one band down, a negative one rises and takes it one band up.
	step := -1
	if v.Engagement < 0 {
		step = 1
	}
	if i := slices.Index(o.Bands, v.Band); i >= 0 && i+step >= 0 && i+step < len(o.Bands) {
		return fmt.Sprintf("%s: %s → %s", when, v.Band, o.Bands[i+step])
	}
	return fmt.Sprintf("%s: leaves %s", when, v.Band)
}

func cause(typ, id string, rules []string) string {
	if typ == scorer.DecayEventType {
		return "decay, no new event"
	}
	s := typ
	if len(rules) > 0 {
		s += " (" + strings.Join(rules, ", ") + ")"
	}
	if id != "" {
		s += ", event " + id
	}
	return s
}

func ruleList(rules []string) string {
	if len(rules) == 0 {
		return "no rule"
	}
	return strings.Join(rules, ", ")
}

// bar draws |points| to scale: █ for points that add, ░ for points that take away.
func bar(points, most float64) string {
	if most == 0 || points == 0 {
		return ""
	}
	n := max(1, int(math.Round(math.Abs(points)/most*barWidth)))
	if points < 0 {
		return strings.Repeat("░", n)
	}
	return strings.Repeat("█", n)
}

func ago(d time.Duration) string {
	if d < time.Minute {
		return "just now"
	}
	return short(d) + " ago"
}

func zoneName(t time.Time) string {
	name, offset := t.Zone()
	if offset == 0 && (name == "UTC" || name == "") {
		return "UTC"
	}
	return fmt.Sprintf("%s, UTC%s", name, t.Format("-07:00"))
}
