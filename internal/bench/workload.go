package bench

import (
	"math/rand"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// kind is one event type of the mix, with the property sets it comes with.
type kind struct {
	typ    string
	weight int
	props  []string // JSON object bodies (without braces) to pick from; "" = no properties
}

// mix is what a marketing platform's stream looks like: mostly email and web
// behaviour, a little high-intent activity, product and support signals,
// negative signals and profile data. Every type is one the default rules
// score, so the benchmark exercises conditions, caps, first-time rules, fit
// rules and stage criteria.
var mix = []kind{
	{"email_open", 340, []string{`"campaign":"nov-newsletter"`, `"campaign":"webinar-invite"`}},
	{"email_click", 100, []string{`"campaign":"nov-newsletter","url":"/blog/scoring"`}},
	{"page_view", 300, []string{
		`"page":"home","duration_s":12`, `"page":"blog","duration_s":95`, `"page":"docs","duration_s":240`,
		`"page":"pricing","duration_s":64`, `"page":"careers","duration_s":30`, `"page":"features","duration_s":41`,
	}},
	{"ad_click", 50, []string{`"campaign":"search-brand"`}},
	{"form_submit", 40, []string{`"form":"newsletter"`, `"form":"documents"`, `"form":"contact"`}},
	{"chat_message", 30, []string{`"channel":"web"`}},
	{"download", 30, []string{`"asset":"buyers-guide.pdf"`}},
	{"webinar_registration", 15, []string{`"webinar":"dec-product-tour"`}},
	{"product_usage", 40, []string{`"feature":"reports"`, `"feature":"export","limit_reached":"true"`}},
	{"trial_signup", 10, []string{`"plan":"team"`}},
	{"upgrade_offer_opened", 5, []string{`"offer":"annual-20"`}},
	{"consultation_request", 8, []string{`"topic":"pricing"`}},
	{"site_visit_booked", 4, []string{`"office":"berlin"`}},
	{"support_upgrade_request", 3, []string{`"ticket":"upgrade"`}},
	{"identify", 15, []string{
		`"job_title":"Head of Marketing","company_size":250,"budget_known":"true"`,
		`"job_title":"Marketing Manager","company_size":40`, `"job_title":"VP Sales","company_size":1200`,
	}},
	{"unsubscribe", 5, []string{""}},
	{"email_bounce", 5, []string{`"reason":"mailbox-full"`}},
}

var mixTotal = func() int {
	t := 0
	for _, k := range mix {
		t += k.weight
	}
	return t
}()

// Workload generates benchmark input records: events of Leads leads, each
// lead picked by a Zipf law (s 1.1, v 100: the busiest lead gets ~0.2% of
// the events, most leads a handful), the event type by the mix above, and a
// producer duplicate (the same event id sent again) for DupRate of the
// events. With FirstTouch, the first Leads events give every lead one event,
// in a shuffled order, so that a run touches exactly Leads distinct leads.
//
// An event id is "<run>.<seq>.<nanoseconds from epoch when generated>": the
// latency phases read the generation time back from a transition's
// cause_event_id.
// A Workload is not safe for concurrent use.
type Workload struct {
	Run        string // the event ids' prefix: workloads with different Runs never share an event id
	LeadPrefix string // lead ids are <LeadPrefix><n>: workloads sharing it share leads
	Leads      int
	FirstTouch bool
	DupRate    float64

	rng     *rand.Rand
	zipf    *rand.Zipf
	perm    []int32 // first-touch order
	seq     int64
	lastDup []byte // the value last chosen for re-sending
	lastKey []byte
	Events  int64 // records generated, duplicates included
	Dups    int64
}

// NewWorkload returns a workload seeded by seed.
func NewWorkload(run, leadPrefix string, leads int, firstTouch bool, dupRate float64, seed int64) *Workload {
	rng := rand.New(rand.NewSource(seed))
	w := &Workload{Run: run, LeadPrefix: leadPrefix, Leads: leads, FirstTouch: firstTouch, DupRate: dupRate, rng: rng,
		zipf: rand.NewZipf(rng, 1.1, 100, uint64(leads-1))}
	if firstTouch {
		w.perm = make([]int32, leads)
		for i := range w.perm {
			w.perm[i] = int32(i)
		}
		rng.Shuffle(leads, func(i, j int) { w.perm[i], w.perm[j] = w.perm[j], w.perm[i] })
	}
	return w
}

// lead maps a Zipf rank to a lead number, scattering the busy ranks so that
// they do not all hash to one partition's neighbourhood of ids.
func (w *Workload) lead(rank int) int {
	return int((uint64(rank)*2654435761 + 12345) % uint64(w.Leads))
}

// Next appends n records to dst. The first is stamped with now as its
// generation time, each next one step later: at a fixed rate, the time it
// was due.
func (w *Workload) Next(dst []kafka.Message, n int, now time.Time, step time.Duration) []kafka.Message {
	nanos := int64(now.Sub(epoch) - step)
	at := now.UTC().Format(time.RFC3339Nano)
	for range n {
		nanos += int64(step)
		w.Events++
		if w.lastDup != nil && w.DupRate > 0 && w.rng.Float64() < w.DupRate {
			w.Dups++
			dst = append(dst, kafka.Message{Key: w.lastKey, Value: w.lastDup})
			w.lastDup = nil
			continue
		}
		var lead int
		if w.FirstTouch && w.seq < int64(w.Leads) {
			lead = int(w.perm[w.seq])
		} else {
			lead = w.lead(int(w.zipf.Uint64()))
		}
		w.seq++
		pick := w.rng.Intn(mixTotal)
		k := &mix[0]
		for i := range mix {
			if pick < mix[i].weight {
				k = &mix[i]
				break
			}
			pick -= mix[i].weight
		}
		props := k.props[w.rng.Intn(len(k.props))]

		key := make([]byte, 0, len(w.LeadPrefix)+8)
		key = append(key, w.LeadPrefix...)
		key = strconv.AppendInt(key, int64(lead), 10)

		v := make([]byte, 0, 160+len(props))
		v = append(v, `{"event_id":"`...)
		v = append(v, w.Run...)
		v = append(v, '.')
		v = strconv.AppendInt(v, w.seq, 10)
		v = append(v, '.')
		v = strconv.AppendInt(v, nanos, 10)
		v = append(v, `","lead_id":"`...)
		v = append(v, key...)
		v = append(v, `","type":"`...)
		v = append(v, k.typ...)
		v = append(v, `","occurred_at":"`...)
		v = append(v, at...)
		v = append(v, '"')
		if props != "" {
			v = append(v, `,"properties":{`...)
			v = append(v, props...)
			v = append(v, '}')
		}
		v = append(v, '}')
		dst = append(dst, kafka.Message{Key: key, Value: v})
		w.lastKey, w.lastDup = key, v
	}
	return dst
}

// LeadID is the id of lead n.
func (w *Workload) LeadID(n int) string { return w.LeadPrefix + strconv.Itoa(n) }

// epoch is what event ids count their generation time from: the
// generator and the readers timing transitions are this one process, so
// they share the monotonic clock, which a step of the wall clock does not
// move (seen here: in one run the wall clock got 11 s ahead of the broker's
// uptime during a fixed-rate phase, and wall-clock latencies read 14 s).
var epoch = time.Now()

// generatedAt reads the generation time out of an event id made by Next; ok
// is false for ids of other runs (or a decay's cause, "decay@…").
func generatedAt(eventID, run string) (time.Time, bool) {
	if len(eventID) <= len(run)+1 || eventID[:len(run)] != run || eventID[len(run)] != '.' {
		return time.Time{}, false
	}
	i := len(eventID) - 1
	for i >= 0 && eventID[i] != '.' {
		i--
	}
	n, err := strconv.ParseInt(eventID[i+1:], 10, 64)
	if err != nil || i <= len(run) {
		return time.Time{}, false
	}
	return epoch.Add(time.Duration(n)), true // monotonic, as epoch
}
