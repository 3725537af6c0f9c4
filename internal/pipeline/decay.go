package pipeline

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sink"
)

// decayBatch is how many due leads one tick handles at most.
const decayBatch = 1000

// RunDecay emits the band changes that time alone causes — a hot lead
// cooling with no new event — until ctx ends. Every interval it asks the
// schedule which leads are due, ticks them (saving the crossings), publishes
// the transitions (acks=all), and only then reschedules each lead: a crash
// anywhere before the reschedule leaves the lead due, and the next tick
// re-publishes its recorded crossings with the same ids.
//
// Every instance may run it: the compare-and-set keeps state right, and a
// crossing two instances both publish carries one transition_id.
func (p *Pipeline) RunDecay(ctx context.Context, sched scorer.Schedule, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for p.decayOnce(ctx, sched) == decayBatch && ctx.Err() == nil {
			// a full batch: more may be due
		}
	}
}

// decayOnce handles one batch of due leads and returns how many were due.
func (p *Pipeline) decayOnce(ctx context.Context, sched scorer.Schedule) int {
	now := p.opt.Now()
	due, err := sched.Due(ctx, now, decayBatch)
	if err != nil {
		if ctx.Err() == nil {
			p.m.retries.WithLabelValues("decay").Inc()
			p.log.Warn("read decay schedule", zap.Error(err))
		}
		return 0
	}
	if len(due) == 0 {
		return 0
	}
	var res scorer.TickResult
	if err := p.retry(ctx, "decay", func() error {
		var err error
		res, err = p.scorer.Tick(ctx, due, now)
		return err
	}); err != nil {
		return 0
	}
	msgs := make([]kafka.Message, 0, len(res.Transitions))
	for i := range res.Transitions {
		msgs = append(msgs, sink.Transition(p.opt.OutputTopic, &res.Transitions[i]))
	}
	if err := p.retry(ctx, "publish", func() error { return p.out.Publish(ctx, msgs) }); err != nil {
		return 0 // shutting down: the leads stay due and are ticked again
	}
	for _, d := range due {
		if err := sched.Reschedule(ctx, d.LeadID, res.Next[d.LeadID]); err != nil && ctx.Err() == nil {
			p.log.Warn("reschedule decay", zap.String("lead_id", d.LeadID), zap.Error(err))
		}
	}
	p.m.conflicts.Add(float64(res.Conflicts))
	for i := range res.Transitions {
		tr := &res.Transitions[i]
		if tr.Replayed {
			p.m.replayed.Inc()
			continue
		}
		p.m.transitions.WithLabelValues(string(tr.Kind), tr.From, tr.To).Inc()
		p.m.decayTransitions.Inc()
	}
	return len(due)
}
