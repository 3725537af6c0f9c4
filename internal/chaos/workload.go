package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"time"

	"github.com/segmentio/kafka-go"
)

// eventKinds and their weights: the sum of points is close to zero on
// average, so scores wander up and down across band thresholds.
var eventKinds = []struct {
	typ    string
	weight int
}{
	{"email_open", 30}, {"page_view", 25}, {"download", 10}, {"form_submit", 5},
	{"demo_request", 2}, {"contract_signed", 2}, {"unsubscribe", 12}, {"complaint", 4},
}

// Workload is the generated input, in produce order.
type Workload struct {
	Msgs       []kafka.Message
	Events     int // good records (producer duplicates included)
	Duplicates int // producer re-sends of an event_id
	Swapped    int // events moved later than a newer event of the same lead
	Bad        int
	// BadValues holds every bad record's value: how the read-back input
	// tells bad records from good ones.
	BadValues map[string]bool
}

type wireEvent struct {
	EventID    string            `json:"event_id"`
	LeadID     string            `json:"lead_id"`
	Type       string            `json:"type"`
	OccurredAt string            `json:"occurred_at"`
	Properties map[string]string `json:"properties,omitempty"`
}

// Generate builds a deterministic workload: events over leads, ~1% producer
// duplicates re-sent within the next few records of the lead, ~3% of a lead's
// events delivered after a newer one (occurred_at out of order), and one bad
// record per ~1,600 events (at least 6: one of each kind).
func Generate(seed int64, events, leads int, base time.Time) *Workload {
	rng := rand.New(rand.NewSource(seed))
	total := 0
	for _, k := range eventKinds {
		total += k.weight
	}
	pick := func() string {
		n := rng.Intn(total)
		for _, k := range eventKinds {
			if n < k.weight {
				return k.typ
			}
			n -= k.weight
		}
		return eventKinds[0].typ
	}
	w := &Workload{BadValues: map[string]bool{}}
	var evs []wireEvent
	for i := 0; i < events; i++ {
		lead := fmt.Sprintf("cl-%05d", rng.Intn(leads))
		at := base.Add(time.Duration(i) * 10 * time.Millisecond)
		evs = append(evs, wireEvent{EventID: fmt.Sprintf("ce-%d-%d", seed, i), LeadID: lead, Type: pick(),
			OccurredAt: at.UTC().Format(time.RFC3339Nano), Properties: map[string]string{"n": fmt.Sprint(i)}})
	}
	// Out of order: swap an event with a later one of the same lead nearby.
	for i := range evs {
		if rng.Intn(100) >= 3 {
			continue
		}
		for j := i + 1; j < len(evs) && j < i+20*leads; j++ {
			if evs[j].LeadID == evs[i].LeadID {
				evs[i], evs[j] = evs[j], evs[i]
				w.Swapped++
				break
			}
		}
	}
	// Producer duplicates: re-send an event a little later.
	var seq []wireEvent
	pending := map[int][]wireEvent{}
	for i, e := range evs {
		seq = append(seq, e)
		seq = append(seq, pending[i]...)
		delete(pending, i)
		if rng.Intn(100) == 0 {
			at := i + 1 + rng.Intn(50)
			pending[at] = append(pending[at], e)
			w.Duplicates++
		}
	}
	for _, rest := range pending {
		seq = append(seq, rest...)
	}
	bad := events / 1600
	if bad < 6 {
		bad = 6
	}
	badAt := map[int]int{}
	for k := 0; k < bad; k++ {
		badAt[rng.Intn(len(seq))]++
	}
	k := 0
	for i, e := range seq {
		v, err := json.Marshal(e)
		if err != nil {
			panic(err) // strings only: cannot happen
		}
		w.Msgs = append(w.Msgs, kafka.Message{Key: []byte(e.LeadID), Value: v})
		w.Events++
		for n := 0; n < badAt[i]; n++ {
			m := badRecord(k, seed)
			w.Msgs = append(w.Msgs, m)
			w.BadValues[string(m.Value)] = true
			w.Bad++
			k++
		}
	}
	return w
}

// badRecord is the k-th bad record: malformed JSON, a missing field, a bad
// occurred_at, an unsupported content type, invalid UTF-8, or oversize.
func badRecord(k int, seed int64) kafka.Message {
	key := []byte(fmt.Sprintf("bad-%d", k))
	switch k % 6 {
	case 0:
		return kafka.Message{Key: key, Value: []byte(fmt.Sprintf(`{"event_id":"bad-%d-%d","lead_id":`, seed, k))}
	case 1:
		return kafka.Message{Key: key, Value: []byte(fmt.Sprintf(`{"event_id":"bad-%d-%d","type":"email_open","occurred_at":"2026-01-01T00:00:00Z"}`, seed, k))}
	case 2:
		return kafka.Message{Key: key, Value: []byte(fmt.Sprintf(`{"event_id":"bad-%d-%d","lead_id":"cl-bad","type":"email_open","occurred_at":"1999-01-01T00:00:00Z"}`, seed, k))}
	case 3:
		return kafka.Message{Key: key, Value: []byte(fmt.Sprintf("\x0a\x03\xff bad-%d-%d", seed, k)),
			Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/x-protobuf")}}}
	case 4:
		return kafka.Message{Key: key, Value: []byte(fmt.Sprintf("{\"event_id\":\"bad-%d-%d\xff\"}", seed, k))}
	default:
		v := bytes.Repeat([]byte("a"), 70000)
		copy(v, fmt.Sprintf("bad-%d-%d", seed, k))
		return kafka.Message{Key: key, Value: v}
	}
}
