package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the pipeline's Prometheus metrics, registered on the
// Registerer given to New (never the global registry).
type metrics struct {
	events       *prometheus.CounterVec
	transitions  *prometheus.CounterVec
	replayed     prometheus.Counter
	deadLetters  *prometheus.CounterVec
	batchSeconds prometheus.Histogram
	stageSeconds *prometheus.HistogramVec
	batchEvents  prometheus.Histogram
	latency      prometheus.Histogram
	conflicts    prometheus.Counter
	retries      *prometheus.CounterVec
	commitErrors prometheus.Counter
	stalled      prometheus.Gauge

	decayTransitions prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscore_events_total",
			Help: "Input records handled, by event type (types no rule names count as \"other\", undecodable records as \"invalid\") and outcome (scored, duplicate, redelivered, dead_letter).",
		}, []string{"type", "outcome"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscore_transitions_total",
			Help: "Lifecycle transitions emitted, by kind (band, stage), from and to.",
		}, []string{"kind", "from", "to"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_transitions_republished_total",
			Help: "Transitions published again, with their original ids, because the event that caused them was redelivered.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscore_dead_letters_total",
			Help: "Input records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadscore_batch_duration_seconds",
			Help:    "Time to score, publish and commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		stageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "leadscore_batch_stage_seconds",
			Help: "Time one batch spends in each stage: fill (its first record to the batch closing), decode, " +
				"queued_score, score (load, rules, save), queued_publish, publish (until acknowledged), commit.",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
		}, []string{"stage"}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadscore_batch_records",
			Help:    "Records per batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadscore_processing_latency_seconds",
			Help:    "From a record's Kafka timestamp to its offset being committed (its transitions acknowledged).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_state_conflicts_total",
			Help: "Lead states that changed between load and save (another consumer during a rebalance) and were re-applied.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscore_retries_total",
			Help: "Failed attempts that were retried, by step (fetch, score, publish, commit, decay).",
		}, []string{"step"}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_commit_errors_total",
			Help: "Offset commits given up on; those records will be redelivered and recognised.",
		}),
		stalled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leadscore_pipeline_stalled",
			Help: "1 while the pipeline cannot make progress (Redis or Kafka failing) and has stopped consuming.",
		}),
	}
	m.decayTransitions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "leadscore_decay_transitions_total",
		Help: "Band transitions caused by decay alone, with no new event (also counted in leadscore_transitions_total).",
	})
	reg.MustRegister(m.decayTransitions, m.events, m.transitions, m.replayed, m.deadLetters, m.batchSeconds, m.stageSeconds, m.batchEvents,
		m.latency, m.conflicts, m.retries, m.commitErrors, m.stalled)
	return m
}
