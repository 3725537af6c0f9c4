package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// RecordWriter is where Run sends records; *kafka.Writer satisfies it.
//
// With a *kafka.Writer, set BatchTimeout to a few milliseconds: its 1 s
// default makes every synchronous WriteMessages call wait up to a second for
// partition batches to fill. Set RequiredAcks to kafka.RequireAll and key by
// lead with kafka.Murmur2Balancer, as the service's own producer does.
type RecordWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Stats counts the records Run wrote, by kind.
type Stats struct {
	Events     int64 // KindEvent
	Duplicates int64 // KindDuplicate
	Malformed  int64 // KindMalformed
}

// Total is the number of records written.
func (s Stats) Total() int64 { return s.Events + s.Duplicates + s.Malformed }

func (s *Stats) add(kind string) {
	switch kind {
	case KindEvent:
		s.Events++
	case KindDuplicate:
		s.Duplicates++
	case KindMalformed:
		s.Malformed++
	}
}

const (
	// paceInterval is how often Run sends the records that have become due.
	paceInterval = 20 * time.Millisecond
	// maxBatch caps the records of one WriteMessages call.
	maxBatch = 1000
	// overrun is how long past Duration Run keeps sending records that
	// were due before it, when the writer cannot keep up with the rate.
	overrun = 250 * time.Millisecond
)

// Run writes generated records to w until o.Duration has passed or ctx ends,
// and returns what it wrote. With o.Rate > 0 it sends, every 20 ms, the
// records that have become due in one WriteMessages call (at most 1000 per
// call), so that after a time t it has written floor(Rate·t) records — with
// a Duration, exactly floor(Rate·Duration), unless the writer is too slow:
// then Run stops shortly after Duration anyway, short of that number.
// With Rate 0 it writes batches of 1000 back to back.
//
// Pacing uses the wall clock; o.Now only stamps occurred_at. The end of ctx
// is a normal stop (nil error); a failed write is returned with the records
// written before it.
func Run(ctx context.Context, o Options, w RecordWriter, log *zap.Logger) (Stats, error) {
	if log == nil {
		log = zap.NewNop()
	}
	o = o.withDefaults()
	g := NewGenerator(o)
	log.Info("demo traffic started",
		zap.Float64("rate", o.Rate), zap.Int("leads", o.Leads), zap.Int64("seed", o.Seed),
		zap.Duration("duration", o.Duration))

	var (
		stats  Stats
		sent   int64
		behind bool // warned that the writer cannot keep the rate
		start  = time.Now()
		ticker = time.NewTicker(paceInterval)
		kinds  = make([]string, 0, maxBatch)
	)
	defer ticker.Stop()

	write := func(n int64) error {
		// A fresh slice per call: a writer may keep the messages.
		batch := make([]kafka.Message, 0, n)
		kinds = kinds[:0]
		for range n {
			r := g.Next()
			batch = append(batch, kafka.Message{Key: r.Key, Value: r.Value})
			kinds = append(kinds, r.Kind)
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return err
		}
		for _, k := range kinds {
			stats.add(k)
		}
		sent += n
		return nil
	}

	for {
		elapsed := time.Since(start)
		finished := o.Duration > 0 && elapsed >= o.Duration
		if finished {
			elapsed = o.Duration
		}
		var due int64
		switch {
		case o.Rate > 0:
			due = int64(o.Rate*elapsed.Seconds()) - sent
			if !behind && due > int64(o.Rate)+maxBatch {
				log.Warn("demo traffic is more than a second behind its rate", zap.Int64("records_behind", due))
				behind = true
			}
		case !finished:
			due = maxBatch
		}
		for due > 0 && ctx.Err() == nil {
			if o.Duration > 0 && time.Since(start) > o.Duration+overrun {
				log.Warn("demo traffic stopped short of its rate", zap.Int64("records_behind", due))
				log.Info("demo traffic stopped", statsFields(stats)...)
				return stats, nil
			}
			n := min(due, maxBatch)
			if err := write(n); err != nil {
				if ctx.Err() != nil {
					break
				}
				log.Info("demo traffic stopped", statsFields(stats)...)
				return stats, fmt.Errorf("write %d demo records: %w", n, err)
			}
			due -= n
		}
		if finished || ctx.Err() != nil {
			log.Info("demo traffic stopped", statsFields(stats)...)
			return stats, nil
		}
		if o.Rate > 0 {
			select {
			case <-ctx.Done():
			case <-ticker.C:
			}
		}
	}
}

func statsFields(s Stats) []zap.Field {
	return []zap.Field{
		zap.Int64("events", s.Events), zap.Int64("duplicates", s.Duplicates), zap.Int64("malformed", s.Malformed),
	}
}

var _ RecordWriter = (*kafka.Writer)(nil)
