package demo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// Record kinds.
const (
	KindEvent     = "event"     // a valid, new event
	KindDuplicate = "duplicate" // an exact re-send of an earlier event (same event_id, key and value)
	KindMalformed = "malformed" // a record the service must dead-letter
)

// Journeys: the persona a lead plays. Every lead has one persona for the
// whole run; noise events land on any lead.
const (
	// JourneyBuyer is the product brief's example buyer: ad_click →
	// page_view pricing → form_submit documents → chat_message (2–4) →
	// consultation_request → site_visit_booked. A sales qualified lead.
	JourneyBuyer = "buyer"
	// JourneySubscriber reads the newsletter and nothing else: 2–3
	// email_open, rarely an email_click. Should stay cold.
	JourneySubscriber = "subscriber"
	// JourneyResearcher reads content: page_view blog → form_submit
	// newsletter → email_open → download → often webinar_registration →
	// page_view product, sometimes form_submit contact. A marketing
	// qualified lead.
	JourneyResearcher = "researcher"
	// JourneyTrial signs up for the trial: trial_signup → product_usage
	// (3–6) → product_usage limit_reached=true → upgrade_offer_opened.
	// A product qualified lead.
	JourneyTrial = "trial"
	// JourneyCustomer is an existing customer asking support for an upgrade:
	// chat_message → support_upgrade_request. A service qualified lead.
	JourneyCustomer = "customer"
	// JourneyJobSeeker looks at the careers page (1–2 page_view careers):
	// not a buyer.
	JourneyJobSeeker = "job_seeker"
	// JourneyLapsed opens one last email, then unsubscribes or bounces.
	JourneyLapsed = "lapsed"
	// JourneyNoise marks background events: page_view of home, blog,
	// product or docs, or an email_open, on any lead.
	JourneyNoise = "noise"
)

// Malformations of KindMalformed records.
const (
	FlawTruncated     = "truncated_json"  // valid event JSON cut in half
	FlawMissingLeadID = "missing_lead_id" // lead_id left out
	FlawBadOccurredAt = "bad_occurred_at" // occurred_at is a number, not an RFC 3339 string
	FlawBinary        = "binary"          // random bytes, not JSON at all
)

// Defaults for Options fields left zero.
const (
	DefaultLeads          = 1000
	DefaultDuplicateRatio = 0.01
	DefaultMalformedRatio = 0.005
)

// noiseRatio is the share of records that are background noise.
const noiseRatio = 0.15

// Options configure a Generator and Run.
type Options struct {
	// Rate is the number of records per second Run produces. Default 0: as
	// fast as the writer takes them. The Generator ignores it.
	Rate float64
	// Leads is the number of distinct leads, lead-000001 … lead-<Leads>.
	// Default DefaultLeads. Each lead keeps one persona; when it finishes
	// its journey it waits until every other idle lead has started one,
	// then plays its journey again (a returning visitor). So a lead
	// replays roughly every Leads / (journeys started per second) seconds:
	// raise Leads to keep cold personas cold in a long, fast run.
	Leads int
	// Duration bounds Run. Default 0: until the context ends. The
	// Generator ignores it.
	Duration time.Duration
	// Seed makes the output deterministic: the same seed (and clock) gives
	// the same records. Default 0 is a valid seed.
	Seed int64
	// DuplicateRatio is the share of records that re-send an earlier event
	// exactly. Default DefaultDuplicateRatio (1 %); negative means none.
	DuplicateRatio float64
	// MalformedRatio is the share of records the service must dead-letter.
	// Default DefaultMalformedRatio (0.5 %); negative means none.
	MalformedRatio float64
	// Now is the clock for occurred_at. Default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Leads <= 0 {
		o.Leads = DefaultLeads
	}
	switch {
	case o.DuplicateRatio == 0:
		o.DuplicateRatio = DefaultDuplicateRatio
	case o.DuplicateRatio < 0:
		o.DuplicateRatio = 0
	}
	switch {
	case o.MalformedRatio == 0:
		o.MalformedRatio = DefaultMalformedRatio
	case o.MalformedRatio < 0:
		o.MalformedRatio = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Record is one Kafka record for the lead-events topic.
type Record struct {
	Key   []byte // the lead id
	Value []byte // the event JSON (or, for KindMalformed, something that is not a valid event)
	Kind  string // KindEvent, KindDuplicate or KindMalformed
	// Journey is the persona that produced the event (JourneyBuyer, …,
	// JourneyNoise); for a duplicate, the original's. Empty for malformed
	// records.
	Journey string
	// Flaw says how a KindMalformed record is broken (FlawTruncated, …).
	Flaw string
}

// timeFormat is RFC 3339 with milliseconds, e.g. 2026-12-03T18:00:00.123Z.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

type step struct {
	typ   string
	props []prop
}

// prop is one event property; val is a string, bool or int.
type prop struct {
	key string
	val any
}

type journey struct {
	lead  int
	kind  string
	steps []step
	next  int
}

// Generator plays buyer journeys, interleaved across many leads, as records.
// It is deterministic for a given Options.Seed and clock, and not safe for
// concurrent use.
type Generator struct {
	o        Options
	rng      *rand.Rand
	seq      int64    // last event id number handed out
	personas []string // by lead index (lead-000001 is index 0)
	idle     []int    // FIFO of leads waiting to start a journey
	active   []*journey
	maxLive  int      // journeys played at the same time
	recent   []Record // ring of recent events, for duplicates
	recentAt int
}

// personaWeights is the mix of personas over the lead population.
var personaWeights = []struct {
	kind   string
	weight int
}{
	{JourneyBuyer, 15},
	{JourneySubscriber, 25},
	{JourneyResearcher, 20},
	{JourneyTrial, 15},
	{JourneyCustomer, 8},
	{JourneyJobSeeker, 10},
	{JourneyLapsed, 7},
}

// NewGenerator returns a Generator for o (zero fields take their defaults).
func NewGenerator(o Options) *Generator {
	o = o.withDefaults()
	g := &Generator{
		o:        o,
		rng:      rand.New(rand.NewPCG(uint64(o.Seed), 0x1ead5c0e)),
		personas: make([]string, o.Leads),
		recent:   make([]Record, 0, 64),
	}
	total := 0
	for _, pw := range personaWeights {
		total += pw.weight
	}
	for i := range g.personas {
		r := g.rng.IntN(total)
		for _, pw := range personaWeights {
			if r < pw.weight {
				g.personas[i] = pw.kind
				break
			}
			r -= pw.weight
		}
	}
	g.idle = g.rng.Perm(o.Leads)
	// Enough journeys in flight that one lead's steps are spread out among
	// other leads' events, few enough that journeys finish.
	g.maxLive = min(o.Leads, max(4, min(64, o.Leads/4)))
	return g
}

// Next returns the next record.
func (g *Generator) Next() Record {
	r := g.rng.Float64()
	switch {
	case r < g.o.DuplicateRatio && len(g.recent) > 0:
		orig := g.recent[g.rng.IntN(len(g.recent))]
		orig.Kind = KindDuplicate
		return orig
	case r < g.o.DuplicateRatio+g.o.MalformedRatio:
		return g.malformed()
	case r < g.o.DuplicateRatio+g.o.MalformedRatio+noiseRatio:
		lead := g.rng.IntN(g.o.Leads)
		var s step
		if g.rng.IntN(2) == 0 {
			s = pageView(pick(g.rng, "home", "blog", "product", "docs"))
		} else {
			s = step{"email_open", []prop{{"campaign", "weekly-digest"}}}
		}
		return g.emit(lead, JourneyNoise, s)
	default:
		return g.journeyStep()
	}
}

func (g *Generator) journeyStep() Record {
	for len(g.active) < g.maxLive && len(g.idle) > 0 {
		lead := g.idle[0]
		g.idle = g.idle[1:]
		kind := g.personas[lead]
		g.active = append(g.active, &journey{lead: lead, kind: kind, steps: g.plan(kind)})
	}
	i := g.rng.IntN(len(g.active))
	j := g.active[i]
	rec := g.emit(j.lead, j.kind, j.steps[j.next])
	j.next++
	if j.next == len(j.steps) {
		last := len(g.active) - 1
		g.active[i] = g.active[last]
		g.active = g.active[:last]
		g.idle = append(g.idle, j.lead)
	}
	return rec
}

// plan draws the steps of one journey of the given persona.
func (g *Generator) plan(kind string) []step {
	rng := g.rng
	var s []step
	switch kind {
	case JourneyBuyer:
		s = append(s,
			step{"ad_click", []prop{{"campaign", "spring-launch"}, {"source", "native-news"}}},
			pageView("pricing"),
			step{"form_submit", []prop{{"form", "documents"}}},
		)
		for range 2 + rng.IntN(3) {
			s = append(s, step{"chat_message", []prop{{"channel", "web"}}})
		}
		s = append(s,
			step{"consultation_request", nil},
			step{"site_visit_booked", []prop{{"site", "show-unit"}}},
		)
	case JourneySubscriber:
		opens := 2 + rng.IntN(2)
		for i := range opens {
			s = append(s, step{"email_open", []prop{{"campaign", "newsletter"}}})
			if i == 0 && rng.IntN(10) == 0 {
				s = append(s, step{"email_click", []prop{{"campaign", "newsletter"}, {"url", "/blog/lead-scoring-101"}}})
			}
		}
	case JourneyResearcher:
		s = append(s,
			pageView("blog"),
			step{"form_submit", []prop{{"form", "newsletter"}}},
			step{"email_open", []prop{{"campaign", "nurture-1"}}},
			step{"download", []prop{{"asset", "buyers-guide.pdf"}}},
		)
		if rng.IntN(3) > 0 {
			s = append(s, step{"webinar_registration", []prop{{"webinar", "scoring-in-real-time"}}})
		}
		s = append(s, pageView("product"))
		if rng.IntN(5) == 0 {
			s = append(s, step{"form_submit", []prop{{"form", "contact"}, {"job_title", "Head of Marketing"}, {"company_size", "120"}}})
		}
		// The CRM's verdict on the MQL: sales accepts (→ SQL) or rejects
		// (→ recycled, back to nurture) some of them.
		switch rng.IntN(3) {
		case 0:
			s = append(s, step{"sales_accepted", []prop{{"source", "crm"}}})
		case 1:
			s = append(s, step{"sales_rejected", []prop{{"source", "crm"}, {"reason", "no-budget"}}})
		}
	case JourneyTrial:
		s = append(s, step{"trial_signup", []prop{{"plan", "free"}}})
		for range 3 + rng.IntN(4) {
			s = append(s, usage(rng, false))
		}
		s = append(s, usage(rng, true), step{"upgrade_offer_opened", []prop{{"offer", "pro-annual"}}})
	case JourneyCustomer:
		s = append(s,
			step{"chat_message", []prop{{"channel", "support"}}},
			step{"support_upgrade_request", []prop{{"plan", "enterprise"}}},
		)
	case JourneyJobSeeker:
		for range 1 + rng.IntN(2) {
			s = append(s, pageView("careers"))
		}
	case JourneyLapsed:
		s = append(s, step{"email_open", []prop{{"campaign", "newsletter"}}})
		if rng.IntN(2) == 0 {
			s = append(s, step{"unsubscribe", []prop{{"campaign", "newsletter"}}})
		} else {
			s = append(s, step{"email_bounce", []prop{{"bounce", "hard"}}})
		}
	default:
		panic("demo: unknown journey " + kind)
	}
	return s
}

func pageView(page string) step {
	url := "/" + page
	if page == "home" {
		url = "/"
	}
	return step{"page_view", []prop{{"page", page}, {"url", url}}}
}

var features = []string{"reports", "dashboards", "export", "api", "alerts"}

func usage(rng *rand.Rand, limit bool) step {
	return step{"product_usage", []prop{
		{"feature", features[rng.IntN(len(features))]},
		{"limit_reached", limit},
	}}
}

func pick(rng *rand.Rand, choices ...string) string {
	return choices[rng.IntN(len(choices))]
}

// LeadID names lead number i (0-based): LeadID(41) == "lead-000042".
func LeadID(i int) string { return fmt.Sprintf("lead-%06d", i+1) }

func (g *Generator) nextEventID() string {
	g.seq++
	return "demo-" + strconv.FormatInt(g.o.Seed, 10) + "-" + strconv.FormatInt(g.seq, 10)
}

func (g *Generator) emit(lead int, journey string, s step) Record {
	id := LeadID(lead)
	rec := Record{
		Key:     []byte(id),
		Value:   encodeEvent(g.nextEventID(), id, s, g.o.Now(), false),
		Kind:    KindEvent,
		Journey: journey,
	}
	if len(g.recent) < cap(g.recent) {
		g.recent = append(g.recent, rec)
	} else {
		g.recent[g.recentAt] = rec
		g.recentAt = (g.recentAt + 1) % len(g.recent)
	}
	return rec
}

func (g *Generator) malformed() Record {
	lead := g.rng.IntN(g.o.Leads)
	id := LeadID(lead)
	rec := Record{Key: []byte(id), Kind: KindMalformed}
	s := pageView("home")
	switch g.rng.IntN(4) {
	case 0:
		rec.Flaw = FlawTruncated
		b := encodeEvent(g.nextEventID(), id, s, g.o.Now(), false)
		rec.Value = b[:len(b)/2]
	case 1:
		rec.Flaw = FlawMissingLeadID
		rec.Value = encodeEvent(g.nextEventID(), "", s, g.o.Now(), false)
	case 2:
		rec.Flaw = FlawBadOccurredAt
		rec.Value = encodeEvent(g.nextEventID(), id, s, g.o.Now(), true)
	default:
		rec.Flaw = FlawBinary
		junk := make([]byte, 16+g.rng.IntN(48))
		for i := range junk {
			junk[i] = byte(g.rng.UintN(256))
		}
		junk[0] = 0xff // never valid JSON, nor UTF-8
		rec.Value = junk
	}
	return rec
}

// encodeEvent writes the event JSON by hand: encoding/json's reflection was
// most of the generator's cost. An empty leadID leaves the field out;
// numericTime writes occurred_at as Unix milliseconds (both are flaws).
func encodeEvent(eventID, leadID string, s step, at time.Time, numericTime bool) []byte {
	b := make([]byte, 0, 192)
	b = append(b, `{"event_id":`...)
	b = appendString(b, eventID)
	if leadID != "" {
		b = append(b, `,"lead_id":`...)
		b = appendString(b, leadID)
	}
	b = append(b, `,"type":`...)
	b = appendString(b, s.typ)
	b = append(b, `,"occurred_at":`...)
	if numericTime {
		b = strconv.AppendInt(b, at.UnixMilli(), 10)
	} else {
		b = append(b, '"')
		b = at.UTC().AppendFormat(b, timeFormat)
		b = append(b, '"')
	}
	if len(s.props) > 0 {
		b = append(b, `,"properties":{`...)
		for i, p := range s.props {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p.key)
			b = append(b, ':')
			switch v := p.val.(type) {
			case string:
				b = appendString(b, v)
			case bool:
				b = strconv.AppendBool(b, v)
			case int:
				b = strconv.AppendInt(b, int64(v), 10)
			default:
				panic(fmt.Sprintf("demo: property %s has type %T", p.key, v))
			}
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendString appends s as a JSON string. The generator's strings are
// plain ASCII; anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
