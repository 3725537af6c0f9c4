package demo

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Summary is the running one-line summary under the Watcher's stream.
type Summary struct {
	// EventsPerSec is the rate of input events the service handled (all
	// outcomes) since the previous Summary.
	EventsPerSec float64
	// Leads is filled in by the Watcher, whatever the summary func returns:
	// the number of distinct lead ids it has seen in transitions since it
	// started — leads that moved band or stage, not every lead scored.
	Leads int
	// Transitions is the number of transitions the service emitted.
	Transitions int64
	// DeadLetters is the number of records the service dead-lettered.
	DeadLetters int64
	// Lag is the consumer lag summed over partitions (log-end offset minus
	// committed offset).
	Lag int64
}

// String renders the summary line:
// "events/s 1234 · leads 250 · transitions 310 · dead letters 3 · lag 0".
func (s Summary) String() string {
	return fmt.Sprintf("events/s %.0f · leads %d · transitions %d · dead letters %d · lag %d",
		s.EventsPerSec, s.Leads, s.Transitions, s.DeadLetters, s.Lag)
}

// Metric names SummaryFromGatherer reads from the service's registry.
const (
	MetricEvents      = "leadscore_events_total"       // counter {type, outcome}
	MetricTransitions = "leadscore_transitions_total"  // counter {kind, from, to}
	MetricDeadLetters = "leadscore_dead_letters_total" // counter {reason}
	MetricLag         = "leadscore_consumer_lag"       // gauge {topic, partition}
)

// SummaryFromGatherer returns a summary func reading the service's metrics
// from g: each value is the sum over all label values; EventsPerSec is the
// growth of leadscore_events_total since the previous call divided by the
// time between the calls (0 on the first call, and after a counter reset).
// Missing metrics read as 0. The returned func is safe for concurrent use.
func SummaryFromGatherer(g prometheus.Gatherer) func() Summary {
	return summaryFromGatherer(g, time.Now)
}

func summaryFromGatherer(g prometheus.Gatherer, now func() time.Time) func() Summary {
	var (
		mu         sync.Mutex
		lastEvents float64
		lastAt     time.Time
	)
	return func() Summary {
		// Gather returns what it could collect along with any error; a
		// partial summary beats none in a status line.
		mfs, _ := g.Gather()
		sums := make(map[string]float64, 4)
		for _, mf := range mfs {
			switch name := mf.GetName(); name {
			case MetricEvents, MetricTransitions, MetricDeadLetters, MetricLag:
				for _, m := range mf.GetMetric() {
					switch {
					case m.Counter != nil:
						sums[name] += m.GetCounter().GetValue()
					case m.Gauge != nil:
						sums[name] += m.GetGauge().GetValue()
					case m.Untyped != nil:
						sums[name] += m.GetUntyped().GetValue()
					}
				}
			}
		}

		mu.Lock()
		defer mu.Unlock()
		at := now()
		events := sums[MetricEvents]
		var perSec float64
		if !lastAt.IsZero() {
			if d := at.Sub(lastAt).Seconds(); d > 0 && events >= lastEvents {
				perSec = (events - lastEvents) / d
			}
		}
		lastEvents, lastAt = events, at
		return Summary{
			EventsPerSec: perSec,
			Transitions:  int64(sums[MetricTransitions]),
			DeadLetters:  int64(sums[MetricDeadLetters]),
			Lag:          int64(sums[MetricLag]),
		}
	}
}
