package demo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 12, 3, 18, 0, 0, 123_000_000, time.UTC)

func fixedClock() time.Time { return fixedNow }

// event is the input contract of lead-events, as a consumer decodes it.
type event struct {
	EventID    string         `json:"event_id"`
	LeadID     string         `json:"lead_id"`
	Type       string         `json:"type"`
	OccurredAt string         `json:"occurred_at"`
	Properties map[string]any `json:"properties,omitempty"`
}

func generate(o Options, n int) []Record {
	g := NewGenerator(o)
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = g.Next()
	}
	return recs
}

func decode(t *testing.T, r Record) event {
	t.Helper()
	var ev event
	d := json.NewDecoder(bytes.NewReader(r.Value))
	d.DisallowUnknownFields()
	if err := d.Decode(&ev); err != nil {
		t.Fatalf("decode %s record %q: %v", r.Kind, r.Value, err)
	}
	return ev
}

func TestGeneratorDeterministic(t *testing.T) {
	o := Options{Seed: 7, Leads: 200, Now: fixedClock}
	a, b := generate(o, 5000), generate(o, 5000)
	for i := range a {
		if !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Value, b[i].Value) ||
			a[i].Kind != b[i].Kind || a[i].Journey != b[i].Journey || a[i].Flaw != b[i].Flaw {
			t.Fatalf("record %d differs for the same seed:\n%+v\n%+v", i, a[i], b[i])
		}
	}
	o.Seed = 8
	c := generate(o, 5000)
	same := 0
	for i := range a {
		if bytes.Equal(a[i].Value, c[i].Value) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("seeds 7 and 8 produced %d identical records, want none (event ids carry the seed)", same)
	}
}

var (
	leadIDPattern  = regexp.MustCompile(`^lead-\d{6}$`)
	eventIDPattern = regexp.MustCompile(`^demo-3-\d+$`)
	knownTypes     = map[string]bool{
		"ad_click": true, "page_view": true, "email_open": true, "email_click": true, "form_submit": true,
		"download": true, "webinar_registration": true, "chat_message": true, "consultation_request": true,
		"site_visit_booked": true, "trial_signup": true, "product_usage": true, "upgrade_offer_opened": true,
		"support_upgrade_request": true, "unsubscribe": true, "email_bounce": true,
		"sales_accepted": true, "sales_rejected": true,
	}
	knownPages = map[string]bool{"home": true, "blog": true, "product": true, "pricing": true, "careers": true, "docs": true}
	knownForms = map[string]bool{"documents": true, "newsletter": true, "contact": true}
)

func TestGeneratorRecordsAreWellFormed(t *testing.T) {
	const leads = 300
	recs := generate(Options{Seed: 3, Leads: leads, Now: fixedClock}, 20_000)
	ids := make(map[string]bool)
	sent := make(map[string]bool) // key+value of events seen so far
	types := make(map[string]int)
	flaws := make(map[string]int)
	for i, r := range recs {
		switch r.Kind {
		case KindEvent:
			ev := decode(t, r)
			if ids[ev.EventID] {
				t.Fatalf("record %d: event id %s used twice", i, ev.EventID)
			}
			ids[ev.EventID] = true
			sent[string(r.Key)+"\x00"+string(r.Value)] = true
			types[ev.Type]++
			if !eventIDPattern.MatchString(ev.EventID) {
				t.Errorf("record %d: event id %q", i, ev.EventID)
			}
			if !leadIDPattern.MatchString(ev.LeadID) || string(r.Key) != ev.LeadID || ev.LeadID > LeadID(leads-1) {
				t.Errorf("record %d: lead id %q, key %q", i, ev.LeadID, r.Key)
			}
			if ev.OccurredAt != "2026-12-03T18:00:00.123Z" {
				t.Errorf("record %d: occurred_at %q, want the clock's time", i, ev.OccurredAt)
			}
			if !knownTypes[ev.Type] {
				t.Errorf("record %d: unknown type %q", i, ev.Type)
			}
			checkProperties(t, i, ev)
			if r.Journey == "" {
				t.Errorf("record %d: event without journey", i)
			}
		case KindDuplicate:
			if !sent[string(r.Key)+"\x00"+string(r.Value)] {
				t.Errorf("record %d: duplicate of nothing sent before: %s", i, r.Value)
			}
		case KindMalformed:
			flaws[r.Flaw]++
			checkMalformed(t, i, r)
		default:
			t.Fatalf("record %d: kind %q", i, r.Kind)
		}
	}
	for typ := range knownTypes {
		if types[typ] == 0 {
			t.Errorf("no %s event in 20k records", typ)
		}
	}
	for _, f := range []string{FlawTruncated, FlawMissingLeadID, FlawBadOccurredAt, FlawBinary} {
		if flaws[f] == 0 {
			t.Errorf("no %s record in 20k records", f)
		}
	}
}

func checkProperties(t *testing.T, i int, ev event) {
	t.Helper()
	p := ev.Properties
	switch ev.Type {
	case "page_view":
		page, _ := p["page"].(string)
		url, _ := p["url"].(string)
		if !knownPages[page] || !strings.HasPrefix(url, "/") {
			t.Errorf("record %d: page_view properties %v", i, p)
		}
	case "form_submit":
		if form, _ := p["form"].(string); !knownForms[form] {
			t.Errorf("record %d: form_submit properties %v", i, p)
		}
	case "product_usage":
		_, isBool := p["limit_reached"].(bool)
		feature, _ := p["feature"].(string)
		if !isBool || feature == "" {
			t.Errorf("record %d: product_usage properties %v", i, p)
		}
	}
	for k, v := range p {
		switch v.(type) {
		case string, float64, bool:
		default:
			t.Errorf("record %d: property %s has type %T", i, k, v)
		}
	}
}

func checkMalformed(t *testing.T, i int, r Record) {
	t.Helper()
	switch r.Flaw {
	case FlawTruncated, FlawBinary:
		if json.Valid(r.Value) {
			t.Errorf("record %d (%s) is valid JSON: %q", i, r.Flaw, r.Value)
		}
	case FlawMissingLeadID:
		var m map[string]any
		if err := json.Unmarshal(r.Value, &m); err != nil {
			t.Fatalf("record %d (%s): %v", i, r.Flaw, err)
		}
		if _, ok := m["lead_id"]; ok || m["event_id"] == nil {
			t.Errorf("record %d (%s): %s", i, r.Flaw, r.Value)
		}
	case FlawBadOccurredAt:
		var m map[string]any
		if err := json.Unmarshal(r.Value, &m); err != nil {
			t.Fatalf("record %d (%s): %v", i, r.Flaw, err)
		}
		if _, isNumber := m["occurred_at"].(float64); !isNumber || m["lead_id"] == nil {
			t.Errorf("record %d (%s): %s", i, r.Flaw, r.Value)
		}
	default:
		t.Errorf("record %d: malformed with flaw %q", i, r.Flaw)
	}
}

func TestGeneratorRatios(t *testing.T) {
	const n = 60_000
	tests := []struct {
		name             string
		dup, mal         float64 // options
		wantDup, wantMal float64
		tolerance        float64 // absolute, on the ratio
	}{
		{"defaults", 0, 0, 0.01, 0.005, 0.0015},
		{"none", -1, -1, 0, 0, 0},
		{"custom", 0.1, 0.05, 0.1, 0.05, 0.005},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counts := map[string]int{}
			for _, r := range generate(Options{Seed: 11, DuplicateRatio: tt.dup, MalformedRatio: tt.mal, Now: fixedClock}, n) {
				counts[r.Kind]++
			}
			gotDup, gotMal := float64(counts[KindDuplicate])/n, float64(counts[KindMalformed])/n
			if d := gotDup - tt.wantDup; d > tt.tolerance || d < -tt.tolerance {
				t.Errorf("duplicate ratio %.4f, want %.4f ± %.4f", gotDup, tt.wantDup, tt.tolerance)
			}
			if d := gotMal - tt.wantMal; d > tt.tolerance || d < -tt.tolerance {
				t.Errorf("malformed ratio %.4f, want %.4f ± %.4f", gotMal, tt.wantMal, tt.tolerance)
			}
		})
	}
}

// stepName is an event's type, with the property that identifies the step
// where there is one.
func stepName(ev event) string {
	switch ev.Type {
	case "page_view":
		return "page_view:" + fmt.Sprint(ev.Properties["page"])
	case "form_submit":
		return "form_submit:" + fmt.Sprint(ev.Properties["form"])
	case "product_usage":
		return fmt.Sprintf("product_usage:limit=%v", ev.Properties["limit_reached"])
	}
	return ev.Type
}

func TestGeneratorJourneys(t *testing.T) {
	const leads = 400
	recs := generate(Options{Seed: 5, Leads: leads, Now: fixedClock}, 25_000)

	// The steps of every lead's journey (noise, duplicates and malformed
	// records left out), and where in the stream each step was.
	steps := map[string][]string{}
	at := map[string][]int{}
	persona := map[string]string{}
	for i, r := range recs {
		if r.Kind != KindEvent || r.Journey == JourneyNoise {
			continue
		}
		ev := decode(t, r)
		if p, ok := persona[ev.LeadID]; ok && p != r.Journey {
			t.Fatalf("%s plays %s and %s: a lead keeps one persona", ev.LeadID, p, r.Journey)
		}
		persona[ev.LeadID] = r.Journey
		steps[ev.LeadID] = append(steps[ev.LeadID], stepName(ev))
		at[ev.LeadID] = append(at[ev.LeadID], i)
	}

	// One journey of each persona; a lead repeats its journey, and the
	// stream may end in the middle of one (at most maxJourney steps).
	patterns := map[string]string{
		JourneyBuyer:      `ad_click page_view:pricing form_submit:documents (?:chat_message ){2,4}consultation_request site_visit_booked `,
		JourneyTrial:      `trial_signup (?:product_usage:limit=false ){3,6}product_usage:limit=true upgrade_offer_opened `,
		JourneyCustomer:   `chat_message support_upgrade_request `,
		JourneyJobSeeker:  `(?:page_view:careers ){1,2}`,
		JourneySubscriber: `email_open (?:email_click )?email_open (?:email_open )?`,
		JourneyResearcher: `page_view:blog form_submit:newsletter email_open download (?:webinar_registration )?page_view:product (?:form_submit:contact )?(?:sales_accepted |sales_rejected )?`,
		JourneyLapsed:     `email_open (?:unsubscribe|email_bounce) `,
	}
	const maxJourney = 9
	played := map[string]int{}
	interleaved := 0
	for lead, ss := range steps {
		p := persona[lead]
		re := regexp.MustCompile(`^(?:` + patterns[p] + `)+$`)
		ok := false
		for cut := len(ss); cut >= max(0, len(ss)-maxJourney) && !ok; cut-- {
			ok = cut == 0 || re.MatchString(strings.Join(ss[:cut], " ")+" ")
			if ok && cut > 0 {
				played[p]++
			}
		}
		if !ok {
			t.Errorf("%s (%s) played %v: not repetitions of %s", lead, p, ss, patterns[p])
		}
		// A buyer's steps are spread out: other records come between them.
		if p == JourneyBuyer && len(at[lead]) >= 2 && at[lead][1]-at[lead][0] > 1 {
			interleaved++
		}
	}
	for p := range patterns {
		if played[p] == 0 {
			t.Errorf("no lead completed a %s journey", p)
		}
	}
	if interleaved == 0 {
		t.Errorf("buyer journeys are not interleaved with other leads' events")
	}
	if n := len(steps); n < leads*9/10 {
		t.Errorf("only %d of %d leads played a journey", n, leads)
	}
}

func TestGeneratorBriefExampleBuyer(t *testing.T) {
	// The first complete buyer journey, in stream order, is the brief's
	// example: ad → pricing page → documents form → chats → consultation →
	// site visit, with other leads' events in between.
	g := NewGenerator(Options{Seed: 1, Leads: 100, Now: fixedClock})
	var buyer string
	var got []string
	var gaps []int
	last := -1
	for i := 0; i < 100_000; i++ {
		r := g.Next()
		if r.Kind != KindEvent || r.Journey != JourneyBuyer {
			continue
		}
		ev := decode(t, r)
		if buyer == "" && ev.Type == "ad_click" {
			buyer = ev.LeadID
		}
		if ev.LeadID != buyer {
			continue
		}
		got = append(got, stepName(ev))
		if last >= 0 {
			gaps = append(gaps, i-last)
		}
		last = i
		if ev.Type == "site_visit_booked" {
			break
		}
	}
	want := regexp.MustCompile(`^ad_click page_view:pricing form_submit:documents (chat_message ){2,4}consultation_request site_visit_booked $`)
	if !want.MatchString(strings.Join(got, " ") + " ") {
		t.Fatalf("first buyer %s played %v", buyer, got)
	}
	if slices.Max(gaps) < 2 {
		t.Errorf("buyer steps came back to back (gaps %v), want them spread among other leads", gaps)
	}
}

func TestLeadID(t *testing.T) {
	if got := LeadID(41); got != "lead-000042" {
		t.Errorf("LeadID(41) = %q", got)
	}
}
