// Package pipeline runs leadscore's hot path: fetch a batch of input records,
// decode them, score them against the state store, publish the transitions
// and dead letters, and only then commit the batch's offsets.
//
// One goroutine runs the loop (Run); batches are processed one at a time, so
// a partition's records are applied in offset order. See docs/DESIGN.md for
// what a crash at each step does.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sink"
)

// Fetcher is the input side: kafka-go's group Reader satisfies it.
type Fetcher interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Publisher is the output side: sink.Publisher satisfies it.
type Publisher interface {
	Publish(ctx context.Context, msgs []kafka.Message) error
}

// Options configure a Pipeline. Zero values take the default in brackets.
type Options struct {
	OutputTopic     string
	DeadLetterTopic string
	MaxBatch        int           // records per batch at most [10000]
	MaxWait         time.Duration // how long a started batch waits to fill [2ms]
	InFlight        int           // batches scored ahead of publishing, plus one committing [4]
	MaxDeadLetter   int           // a dead letter (key, headers, value) is cut to fit this many bytes [900 KiB]
	ShutdownGrace   time.Duration // after ctx ends, how long in-flight work may take [15s]
	Now             func() time.Time
	// Failpoints, for crash tests only: see ParseFailpoints [none].
	Failpoints *Failpoints
}

// Pipeline is the consumer loop.
type Pipeline struct {
	opt    Options
	in     Fetcher
	out    Publisher
	dec    *events.Decoder
	scorer *scorer.Scorer
	m      *metrics
	log    *zap.Logger

	stalled   atomic.Bool
	lastError atomic.Pointer[string]
}

// New returns a Pipeline. Metrics are registered with reg.
func New(opt Options, in Fetcher, out Publisher, dec *events.Decoder, sc *scorer.Scorer, reg prometheus.Registerer, log *zap.Logger) *Pipeline {
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 10000
	}
	if opt.MaxWait <= 0 {
		opt.MaxWait = 2 * time.Millisecond
	}
	if opt.MaxDeadLetter <= 0 {
		opt.MaxDeadLetter = 900 << 10
	}
	if opt.InFlight <= 0 {
		opt.InFlight = 4
	}
	if opt.ShutdownGrace <= 0 {
		opt.ShutdownGrace = 15 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Pipeline{opt: opt, in: in, out: out, dec: dec, scorer: sc, m: newMetrics(reg), log: log}
}

// Ready reports whether the pipeline is making progress: nil, or why not.
func (p *Pipeline) Ready() error {
	if p.stalled.Load() {
		if e := p.lastError.Load(); e != nil {
			return errors.New(*e)
		}
		return errors.New("pipeline stalled")
	}
	return nil
}

// Run consumes until ctx ends, then finishes the batches in hand (publishing
// and committing them) within ShutdownGrace, and returns. Fetch errors are
// retried with backoff; it returns an error only when the input is closed.
//
// Four stages overlap, each in a goroutine of its own: one fetches and
// decodes batch N+2 while this one scores (loads, applies and saves) batch
// N+1, another publishes batch N, and the last commits what is published,
// coalescing the batches published meanwhile into one commit. Batches are
// scored, published and committed in order. Up to InFlight batches may be
// saved and not yet published: a lead's history keeps the transitions of its
// last few saves (scorer.Model.SetInFlight), so a crash there re-publishes
// every one of them on redelivery.
func (p *Pipeline) Run(ctx context.Context) error {
	// Work in hand outlives ctx by ShutdownGrace: a SIGTERM stops fetching,
	// not the batch being published.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.opt.ShutdownGrace, cancelWork)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stop()

	// Batches cycle: free → decoded by prepareAll → scored here →
	// published by publishAll → committed by commitAll → free again.
	// InFlight of them may be decoded, scored or publishing, one more
	// committing. decoded holds none: prepareAll has one batch ready while
	// this loop scores, and fetches the next only once it is taken, so
	// that under load records pile up in the reader meanwhile and the next
	// batch is a large one. The other channels hold the whole pool.
	pool := p.opt.InFlight + 1
	free := make(chan *batch, pool)
	for range pool {
		free <- &batch{}
	}
	decoded := make(chan *batch)
	scored := make(chan *batch, pool)
	published := make(chan *batch, pool)
	prepared := make(chan error, 1)
	go func() {
		defer close(decoded)
		prepared <- p.prepareAll(ctx, free, decoded)
	}()
	finished := make(chan error, 2)
	go func() { finished <- p.publishAll(work, scored, published) }()
	go func() { finished <- p.commitAll(work, published, free) }()

	for b := range decoded {
		if err := p.score(work, b); err != nil {
			// Only a hard stop gets here (ctx ended, then ShutdownGrace):
			// nothing of this batch was committed, it will be redelivered
			// to whoever owns it next. Fetching has stopped with ctx.
			p.log.Warn("batch abandoned at shutdown; it will be redelivered",
				zap.Int("records", len(b.msgs)), zap.Error(err))
			for range decoded {
			}
			break
		}
		scored <- b
	}
	err := <-prepared
	// Stop the publishing and committing stages and wait for them: the
	// batches handed over are published and committed, or abandoned at a
	// hard stop.
	close(scored)
	for range 2 {
		if ferr := <-finished; ferr != nil {
			p.log.Warn("batches abandoned at shutdown; they will be redelivered", zap.Error(ferr))
		}
	}
	return err
}

// prepareAll fetches batches into free buffers and decodes them, handing
// each on to out in order, until ctx ends (nil) or the input is closed.
func (p *Pipeline) prepareAll(ctx context.Context, free chan *batch, out chan<- *batch) error {
	backoff := 100 * time.Millisecond
	for {
		var b *batch
		select {
		case b = <-free:
		case <-ctx.Done():
			return nil
		}
		err := p.fetch(ctx, b)
		if len(b.msgs) > 0 {
			p.decode(b)
			out <- b
		} else {
			free <- b // it has room for the whole pool
		}
		switch {
		case err == nil:
			backoff = 100 * time.Millisecond
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, io.EOF):
			return fmt.Errorf("fetch: input closed: %w", err)
		default:
			// A broker restarting, "group load in progress", "rebalance in
			// progress": the reader recovers on its own; exiting would turn a
			// blip into a restart (found by the fault suite).
			p.m.retries.WithLabelValues("fetch").Inc()
			p.log.Warn("fetch failed; retrying", zap.Duration("backoff", backoff), zap.Error(err))
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

// batch holds one batch's buffers, reused from batch to batch.
type batch struct {
	msgs   []kafka.Message
	evs    []events.Event
	inputs []scorer.Input
	out    []kafka.Message
	res    scorer.Result
	start  time.Time
	// pubErr is why out was not published (set by publishAll).
	pubErr error
	// When the batch reached each stage, for leadscore_batch_stage_seconds.
	first, filled, decoded, scoredAt, pubStart, pubEnd, commitStart time.Time
}

// fetch fills b with up to MaxBatch records: it blocks for the first, then
// takes what arrives within MaxWait.
func (p *Pipeline) fetch(ctx context.Context, b *batch) error {
	b.msgs = b.msgs[:0]
	m, err := p.in.FetchMessage(ctx)
	if err != nil {
		return err
	}
	b.first = p.opt.Now()
	defer func() { b.filled = p.opt.Now() }()
	b.msgs = append(b.msgs, m)
	fill, cancel := context.WithTimeout(ctx, p.opt.MaxWait)
	defer cancel()
	for len(b.msgs) < p.opt.MaxBatch {
		m, err := p.in.FetchMessage(fill)
		if err != nil {
			if fill.Err() != nil {
				return nil // the batch window closed, or ctx ended: handle what we have
			}
			return err
		}
		b.msgs = append(b.msgs, m)
	}
	return nil
}

// decode decodes b's records into b.inputs, and each record that does not
// decode into a dead letter in b.out.
func (p *Pipeline) decode(b *batch) {
	// Pointers into b.evs stay valid: it is sized once per batch.
	if cap(b.evs) < len(b.msgs) {
		b.evs = make([]events.Event, len(b.msgs))
	}
	b.evs = b.evs[:len(b.msgs)]
	b.inputs = b.inputs[:0]
	b.out = b.out[:0]
	for i := range b.msgs {
		msg := &b.msgs[i]
		ev, err := p.dec.Decode(msg.Value, contentType(msg.Headers))
		if err != nil {
			b.out = append(b.out, sink.DeadLetter(p.opt.DeadLetterTopic, msg, err, p.opt.MaxDeadLetter))
			reason := sink.Reason(err)
			p.m.deadLetters.WithLabelValues(reason).Inc()
			p.m.events.WithLabelValues("invalid", "dead_letter").Inc()
			p.log.Warn("dead-lettered an input record",
				zap.String("topic", msg.Topic), zap.Int("partition", msg.Partition), zap.Int64("offset", msg.Offset),
				zap.String("reason", reason), zap.Error(err))
			continue
		}
		b.evs[i] = ev
		b.inputs = append(b.inputs, scorer.Input{Event: &b.evs[i], Partition: int32(msg.Partition), Offset: msg.Offset})
	}
	b.decoded = p.opt.Now()
}

// score scores b's inputs, saving its leads' states.
func (p *Pipeline) score(ctx context.Context, b *batch) error {
	b.start = p.opt.Now()
	if err := p.retry(ctx, "score", func() error {
		var err error
		b.res, err = p.scorer.Score(ctx, b.inputs)
		return err
	}); err != nil {
		return err
	}
	b.scoredAt = p.opt.Now()
	p.opt.Failpoints.hit(FailAfterSave)
	return nil
}

// publishAll publishes the scored batches in order and hands each on to
// out, which it closes at the end. Publishing fails only at a hard stop
// (ShutdownGrace over); from then on it hands batches on unpublished, with
// the reason, and returns it once scored is closed.
func (p *Pipeline) publishAll(ctx context.Context, scored <-chan *batch, out chan<- *batch) error {
	defer close(out)
	var failed error
	for b := range scored {
		b.pubStart = p.opt.Now()
		for i := range b.res.Transitions { // after the batch's dead letters
			b.out = append(b.out, sink.Transition(p.opt.OutputTopic, &b.res.Transitions[i]))
		}
		if failed == nil {
			failed = p.retry(ctx, "publish", func() error { return p.out.Publish(ctx, b.out) })
		}
		b.pubEnd = p.opt.Now()
		b.pubErr = failed
		if failed == nil {
			p.opt.Failpoints.hit(FailAfterPublish)
		}
		out <- b
	}
	return failed
}

// commitAll commits the published batches in order and hands each back to
// free. Batches published while a commit is under way are committed
// together by the next one: a commit costs a round trip to the group
// coordinator, and waiting for it must not hold up publishing.
func (p *Pipeline) commitAll(ctx context.Context, published <-chan *batch, free chan<- *batch) error {
	var failed error
	var group []*batch
	for b := range published {
		group = append(group[:0], b)
	coalesce:
		for {
			select {
			case more, ok := <-published:
				if !ok {
					break coalesce
				}
				group = append(group, more)
			default:
				break coalesce
			}
		}
		n := 0 // the published prefix of the group
		for n < len(group) && group[n].pubErr == nil {
			n++
		}
		if failed == nil && n > 0 {
			start := p.opt.Now()
			if failed = p.commit(ctx, group[:n]); failed == nil {
				for _, g := range group[:n] {
					g.commitStart = start
					p.count(g)
				}
			}
		}
		if failed == nil && n < len(group) {
			failed = group[n].pubErr
		}
		for _, g := range group {
			free <- g
		}
	}
	return failed
}

// count records a committed batch in the metrics: only what is now durable
// is counted.
func (p *Pipeline) count(b *batch) {
	res := &b.res
	p.m.conflicts.Add(float64(res.Conflicts))
	for i, in := range b.inputs {
		typ := in.Event.Type
		if !res.Model.Known(typ) {
			typ = "other"
		}
		p.m.events.WithLabelValues(typ, res.Outcomes[i].String()).Inc()
	}
	for i := range res.Transitions {
		t := &res.Transitions[i]
		if t.Replayed {
			p.m.replayed.Inc()
			continue
		}
		p.m.transitions.WithLabelValues(string(t.Kind), t.From, t.To).Inc()
		p.log.Debug("transition", zap.String("lead_id", t.LeadID), zap.String("kind", string(t.Kind)),
			zap.String("from", t.From), zap.String("to", t.To), zap.String("transition_id", t.ID))
	}
	now := p.opt.Now()
	for i := range b.msgs {
		p.m.latency.Observe(now.Sub(b.msgs[i].Time).Seconds())
	}
	p.m.batchSeconds.Observe(now.Sub(b.start).Seconds())
	for _, st := range []struct {
		name     string
		from, to time.Time
	}{
		{"fill", b.first, b.filled}, {"decode", b.filled, b.decoded}, {"queued_score", b.decoded, b.start},
		{"score", b.start, b.scoredAt}, {"queued_publish", b.scoredAt, b.pubStart},
		{"publish", b.pubStart, b.pubEnd}, {"commit", b.commitStart, now},
	} {
		p.m.stageSeconds.WithLabelValues(st.name).Observe(st.to.Sub(st.from).Seconds())
	}
	p.m.batchEvents.Observe(float64(len(b.msgs)))
}

// commit commits, for each partition in the batches, its last record in
// them — what committing each batch in turn would leave. A commit that keeps
// failing is given up on: those records come back after a restart or
// rebalance and are recognised as redelivered, so giving up loses nothing.
func (p *Pipeline) commit(ctx context.Context, bs []*batch) error {
	last := map[int]kafka.Message{}
	for _, b := range bs {
		for i := range b.msgs {
			last[b.msgs[i].Partition] = b.msgs[i]
		}
	}
	toCommit := make([]kafka.Message, 0, len(last))
	for _, m := range last {
		toCommit = append(toCommit, m)
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = p.in.CommitMessages(ctx, toCommit...); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.m.retries.WithLabelValues("commit").Inc()
		p.log.Warn("commit offsets", zap.Int("attempt", attempt+1), zap.Error(err))
		sleep(ctx, time.Duration(attempt+1)*200*time.Millisecond)
	}
	p.m.commitErrors.Inc()
	p.log.Error("giving up committing offsets; the records will be redelivered", zap.Error(err))
	return nil
}

// retry runs f until it succeeds or ctx ends, backing off from 100 ms to 5 s.
// While it fails the pipeline reports itself stalled: it stops consuming
// (backpressure) instead of skipping work.
func (p *Pipeline) retry(ctx context.Context, step string, f func() error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			if attempt > 1 {
				p.stalled.Store(false)
				p.m.stalled.Set(0)
				p.log.Info("recovered", zap.String("step", step), zap.Int("attempts", attempt))
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
		msg := fmt.Sprintf("%s failing: %v", step, err)
		p.lastError.Store(&msg)
		p.stalled.Store(true)
		p.m.stalled.Set(1)
		p.m.retries.WithLabelValues(step).Inc()
		p.log.Warn("step failed; retrying", zap.String("step", step), zap.Int("attempt", attempt),
			zap.Duration("backoff", backoff), zap.Error(err))
		sleep(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func contentType(hs []kafka.Header) string {
	for _, h := range hs {
		if strings.EqualFold(h.Key, "content-type") {
			return string(h.Value)
		}
	}
	return ""
}
