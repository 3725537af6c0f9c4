package rescore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/internal/kafkaadmin"
	"github.com/leadscore/leadscore/scorer"
)

// partRange is what one partition replays: offsets [Start, End).
type partRange struct {
	Partition int
	LogStart  int64 // the oldest offset retention has kept
	Start     int64
	End       int64 // the group's committed offset: where it resumes
	Committed int64 // as fetched; -1 when the group never committed here
}

// plan fixes each partition's replay range: from the log start (or the first
// record at or after from) up to the group's committed offset. A partition
// the group never committed has nothing to replay: the group has not scored
// anything there.
func plan(ctx context.Context, c *kafka.Client, group, topic string, from time.Time) ([]partRange, error) {
	lags, err := kafkaadmin.Lag(ctx, c, group, topic)
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s on %s: %w", group, topic, err)
	}
	if len(lags) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions", topic)
	}
	first := make([]kafka.OffsetRequest, len(lags))
	at := make([]kafka.OffsetRequest, len(lags))
	for i, l := range lags {
		first[i] = kafka.FirstOffsetOf(l.Partition)
		at[i] = kafka.TimeOffsetOf(l.Partition, from)
	}
	starts, err := listOffsets(ctx, c, topic, first)
	if err != nil {
		return nil, err
	}
	var times map[int]kafka.PartitionOffsets
	if !from.IsZero() {
		if times, err = listOffsets(ctx, c, topic, at); err != nil {
			return nil, err
		}
	}
	out := make([]partRange, len(lags))
	for i, l := range lags {
		pr := partRange{Partition: l.Partition, LogStart: starts[l.Partition].FirstOffset, Committed: l.Committed}
		pr.Start, pr.End = pr.LogStart, max(l.Committed, pr.LogStart)
		if times != nil {
			// One time asked per partition: the one offset answered is the
			// first record at or after it, or -1 when there is none.
			off := int64(-1)
			for o := range times[l.Partition].Offsets {
				off = o
			}
			if off < 0 {
				pr.Start = pr.End
			} else {
				pr.Start = max(off, pr.LogStart)
			}
		}
		pr.Start = min(pr.Start, pr.End)
		out[i] = pr
	}
	return out, nil
}

func listOffsets(ctx context.Context, c *kafka.Client, topic string, reqs []kafka.OffsetRequest) (map[int]kafka.PartitionOffsets, error) {
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	out := map[int]kafka.PartitionOffsets{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po
	}
	return out, nil
}

// replay reads every range, one reader per partition, and scores the
// records in batches into the scratch scorer. Records of one partition are
// scored in offset order; partitions interleave as they arrive, as in the
// service.
func (r *run) replay(ctx context.Context, ranges []partRange, sc *scorer.Scorer, dec *events.Decoder, prog *progress) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan kafka.Message, r.o.Batch)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for _, pr := range ranges {
		if pr.End <= pr.Start {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.readRange(ctx, pr, msgs); err != nil {
				fail(err)
			}
		}()
	}
	readersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(msgs)
		close(readersDone)
	}()
	defer func() {
		// Join the readers: on an early return they see ctx end.
		cancel()
		for range msgs {
		}
		<-readersDone
	}()

	ticker := time.NewTicker(prog.interval)
	defer ticker.Stop()
	batch := make([]kafka.Message, 0, r.o.Batch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.score(ctx, sc, dec, batch)
		prog.add(len(batch))
		batch = batch[:0]
		return err
	}
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				mu.Lock()
				err := firstErr
				mu.Unlock()
				if err == nil {
					err = flush()
				}
				if err == nil && ctx.Err() != nil {
					err = ctx.Err()
				}
				if err != nil {
					return err
				}
				prog.finish()
				return nil
			}
			batch = append(batch, m)
			if len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-ticker.C:
			prog.draw()
		}
	}
}

// score decodes and scores one batch. Records that do not decode are
// skipped: the service dead-lettered them when it first read them.
func (r *run) score(ctx context.Context, sc *scorer.Scorer, dec *events.Decoder, batch []kafka.Message) error {
	evs := make([]events.Event, len(batch))
	in := make([]scorer.Input, 0, len(batch))
	for i := range batch {
		m := &batch[i]
		ev, err := dec.Decode(m.Value, contentType(m.Headers))
		if err != nil {
			r.rep.Invalid++
			continue
		}
		evs[i] = ev
		in = append(in, scorer.Input{Event: &evs[i], Partition: int32(m.Partition), Offset: m.Offset})
	}
	res, err := sc.Score(ctx, in)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	for _, oc := range res.Outcomes {
		if oc == scorer.OutcomeDuplicate {
			r.rep.Duplicates++
		}
	}
	r.rep.Records += int64(len(batch))
	return nil
}

// readRange sends the records of one partition's range to out, in offset
// order. The last offset of a range is a record the group committed, so it
// exists; a reader waiting longer than IdleTimeout for it gives up rather
// than hang.
func (r *run) readRange(ctx context.Context, pr partRange, out chan<- kafka.Message) error {
	k := r.o.Config.Kafka
	log := r.o.Log.Named("kafka").With(zap.String("topic", k.InputTopic), zap.Int("partition", pr.Partition))
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     k.Brokers,
		Topic:       k.InputTopic,
		Partition:   pr.Partition,
		MinBytes:    1,
		MaxBytes:    16 << 20,
		MaxWait:     250 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(log.Sugar().Warnf),
	})
	defer rd.Close()
	if err := rd.SetOffset(pr.Start); err != nil {
		return fmt.Errorf("seek %s/%d to %d: %w", k.InputTopic, pr.Partition, pr.Start, err)
	}
	next := pr.Start
	for next < pr.End {
		rctx, cancel := context.WithTimeout(ctx, r.o.IdleTimeout)
		m, err := rd.ReadMessage(rctx) // no group: nothing is committed
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("read %s/%d: no record from offset %d to %d within %s", k.InputTopic, pr.Partition, next, pr.End, r.o.IdleTimeout)
			}
			return fmt.Errorf("read %s/%d at offset %d: %w", k.InputTopic, pr.Partition, next, err)
		}
		if m.Offset >= pr.End {
			return nil
		}
		select {
		case out <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
		next = m.Offset + 1
	}
	return nil
}

func contentType(hs []kafka.Header) string {
	for _, h := range hs {
		if strings.EqualFold(h.Key, "content-type") {
			return string(h.Value)
		}
	}
	return ""
}
