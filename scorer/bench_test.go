package scorer

import (
	"fmt"
	"testing"
	"time"

	"github.com/leadscore/leadscore/events"
)

// benchCommon and benchJourney are the traffic the rule-evaluation
// benchmarks replay under the default rules. Seven events in eight are
// common behaviour (benchCommon, in turn): email opens and clicks, page views
// (some matching conditional rules: pricing page, long visit), chat, product
// usage, a profile update that fit rules read, an event no rule scores. Every
// eighth is the next step of a buyer's journey (benchJourney): forms,
// downloads, a trial hitting its limit, sales verdicts, an unsubscribe — so
// the lead keeps moving between bands and stages as real leads do.
var benchCommon = []benchEvent{
	{"email_open", []string{"campaign", "spring-launch", "client", "gmail"}},
	{"page_view", []string{"page", "pricing", "url", "/pricing", "duration_s", "54"}},
	{"email_open", []string{"campaign", "spring-launch", "client", "outlook"}},
	{"email_click", []string{"campaign", "spring-launch", "link", "https://example.com/pricing"}},
	{"page_view", []string{"page", "blog", "url", "/blog/lead-scoring", "duration_s", "180"}},
	{"email_open", []string{"campaign", "nurture-3"}},
	{"page_view", []string{"page", "home", "url", "/", "referrer", "google"}},
	{"chat_message", []string{"channel", "web", "length", "42"}},
	{"email_open", []string{"campaign", "nurture-3", "client", "apple-mail"}},
	{"product_usage", []string{"feature", "reports", "limit_reached", "false"}},
	{"identify", []string{"job_title", "Head of Marketing", "company_size", "250", "budget_known", "true"}},
	{"ad_click", []string{"network", "linkedin", "campaign", "abm-q2"}},
	{"heartbeat", nil}, // no rule scores it
}

var benchJourney = []benchEvent{
	{"form_submit", []string{"form", "documents", "job_title", "VP Sales", "company_size", "120"}},
	{"download", []string{"asset", "buyers-guide.pdf"}},
	{"webinar_registration", []string{"webinar", "scoring-101"}},
	{"trial_signup", []string{"plan", "team"}},
	{"product_usage", []string{"feature", "exports", "limit_reached", "true"}},
	{"upgrade_offer_opened", []string{"offer", "annual-20"}},
	{"consultation_request", []string{"topic", "pricing"}},
	{"site_visit_booked", []string{"office", "berlin"}},
	{"sales_rejected", []string{"reason", "no-budget"}},
	{"support_upgrade_request", []string{"ticket", "T-1042"}},
	{"page_view", []string{"page", "careers", "url", "/careers"}},
	{"email_bounce", []string{"reason", "mailbox-full"}},
	{"unsubscribe", []string{"list", "newsletter"}},
	{"form_submit", []string{"form", "newsletter"}},
}

type benchEvent struct {
	typ   string
	props []string // key, value pairs
}

// benchStep is the time between two events of a benchmark lead.
const benchStep = 10 * time.Minute

// benchLead is one lead's event stream for the benchmarks: the events of
// benchCommon and benchJourney, mixed, at increasing offsets and, benchStep
// apart, increasing times. The stream repeats a pool of events with ids of
// their own, longer than the dedupe window: an id comes back only after it
// has left the window, so no event is a duplicate.
type benchLead struct {
	m      *Model
	id     string
	st     LeadState
	pool   []*events.Event
	next   int
	offset int64
	clock  time.Time
}

func newBenchLead(b *testing.B) *benchLead {
	m := defaultModel(b)
	l := &benchLead{m: m, id: "lead_8f3a2c91", clock: t0}
	for i := range 8 * len(benchJourney) {
		x := benchCommon[i%len(benchCommon)]
		if i%8 == 7 {
			x = benchJourney[i/8]
		}
		e := ev(fmt.Sprintf("evt_01HZX3K9W2QJ7TB8M4N6%06d", i), x.typ, x.props...)
		e.LeadID = l.id
		l.pool = append(l.pool, e)
	}
	if len(l.pool) <= m.window {
		b.Fatalf("event pool of %d ids is within the dedupe window (%d): events would be duplicates", len(l.pool), m.window)
	}
	return l
}

// fill sets in to the lead's next len(in) events.
func (l *benchLead) fill(in []Input) {
	for i := range in {
		e := l.pool[l.next%len(l.pool)]
		l.next++
		l.clock = l.clock.Add(benchStep)
		l.offset++
		e.OccurredAt = l.clock
		in[i] = Input{Event: e, Partition: 3, Offset: l.offset}
	}
}

// warm applies a few hundred events, so that the lead's state is what a
// long-lived lead's is: full dedupe window, change log and history, profile
// attributes, caps and first-time rules on record.
func (l *benchLead) warm(b *testing.B) {
	in := make([]Input, 16)
	outcomes := make([]Outcome, len(in))
	for range 20 {
		l.fill(in)
		l.m.Apply(l.id, &l.st, true, in, outcomes, nil)
		for i, o := range outcomes {
			if o != OutcomeScored {
				b.Fatalf("warm-up event %s: %s, want scored", in[i].Event.ID, o)
			}
		}
	}
}

// reportEvents reports the rate of a benchmark that handled perOp events in
// each of its b.N operations: ns/event, events/s and the transitions each
// event caused on average.
func reportEvents(b *testing.B, perOp, transitions int) {
	n := float64(b.N * perOp)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/event")
	b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(transitions)/n, "transitions/event")
}

// BenchmarkApply measures rule evaluation, Model.Apply under the default
// rules, on the events of benchLead:
//   - existing_lead: one event applied to the state of a long-lived lead
//     (full dedupe window, history and change log) — a lead's share of a batch
//     is most often one event;
//   - new_lead: the first event of a lead never seen before (Apply builds its
//     state from nothing), as in a campaign send to a cold list;
//   - batch_16: 16 events of one long-lived lead in one Apply.
func BenchmarkApply(b *testing.B) {
	b.Run("existing_lead", func(b *testing.B) {
		l := newBenchLead(b)
		l.warm(b)
		_, outcomes := l.applyLoop(b, 1, true)
		if outcomes[0] != OutcomeScored {
			b.Fatalf("last event: %s, want scored", outcomes[0])
		}
	})
	b.Run("new_lead", func(b *testing.B) {
		newBenchLead(b).applyLoop(b, 1, false)
	})
	b.Run("batch_16", func(b *testing.B) {
		l := newBenchLead(b)
		l.warm(b)
		in, outcomes := l.applyLoop(b, 16, true)
		for i, o := range outcomes {
			if o != OutcomeScored {
				b.Fatalf("event %s of the last batch: %s, want scored", in[i].Event.ID, o)
			}
		}
	})
}

// applyLoop is BenchmarkApply's loop: Apply of n fresh events of the lead
// per operation (found: the lead has a stored state), reporting events/s and
// transitions. It returns the last operation's inputs and outcomes.
func (l *benchLead) applyLoop(b *testing.B, n int, found bool) ([]Input, []Outcome) {
	in, outcomes := make([]Input, n), make([]Outcome, n)
	var out []Transition
	transitions := 0
	b.ReportAllocs()
	for b.Loop() {
		l.fill(in)
		out = l.m.Apply(l.id, &l.st, found, in, outcomes, out[:0])
		transitions += len(out)
	}
	reportEvents(b, n, transitions)
	return in, outcomes
}

// longLivedState returns the state of a lead after a few hundred events of
// benchLead: what the store encodes and decodes for an established lead.
func longLivedState(b *testing.B) LeadState {
	l := newBenchLead(b)
	l.warm(b)
	return l.st
}

// reportState reports leads/s and the sizes of the lead's two blobs: the
// scoring state (field s in Redis) and the explanation (field x).
func reportState(b *testing.B, st *LeadState) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leads/s")
	b.ReportMetric(float64(len(st.AppendBinary(nil))), "scoring_bytes")
	b.ReportMetric(float64(len(st.AppendExplain(nil))), "explain_bytes")
}

// BenchmarkStateEncode measures what a save encodes per lead: the scoring
// state (AppendBinary) and the explanation (AppendExplain) of a long-lived
// lead, into reused buffers.
func BenchmarkStateEncode(b *testing.B) {
	st := longLivedState(b)
	var scoring, explain []byte
	b.SetBytes(int64(len(st.AppendBinary(nil)) + len(st.AppendExplain(nil))))
	b.ReportAllocs()
	for b.Loop() {
		scoring = st.AppendBinary(scoring[:0])
		explain = st.AppendExplain(explain[:0])
	}
	reportState(b, &st)
}

// BenchmarkStateDecode measures what a load decodes per lead: both blobs of
// a long-lived lead (UnmarshalBinary) into a new LeadState, as Store.Load does.
func BenchmarkStateDecode(b *testing.B) {
	st := longLivedState(b)
	scoring, explain := st.AppendBinary(nil), st.AppendExplain(nil)
	b.SetBytes(int64(len(scoring) + len(explain)))
	b.ReportAllocs()
	for b.Loop() {
		var got LeadState
		if err := got.UnmarshalBinary("lead_8f3a2c91", scoring, explain); err != nil {
			b.Fatal(err)
		}
	}
	reportState(b, &st)
}
