package demo

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// fakeWriter records every WriteMessages call.
type fakeWriter struct {
	mu      sync.Mutex
	batches [][]kafka.Message
	// onWrite, if set, runs after a call is recorded; its error is returned.
	onWrite func(calls, records int) error
}

func (w *fakeWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.batches = append(w.batches, msgs)
	if w.onWrite != nil {
		return w.onWrite(len(w.batches), w.records())
	}
	return nil
}

func (w *fakeWriter) records() int {
	n := 0
	for _, b := range w.batches {
		n += len(b)
	}
	return n
}

func (w *fakeWriter) all() []kafka.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []kafka.Message
	for _, b := range w.batches {
		out = append(out, b...)
	}
	return out
}

func TestRunPacesRecords(t *testing.T) {
	const (
		rate     = 2000.0
		duration = 400 * time.Millisecond
		want     = 800 // rate · duration
	)
	w := &fakeWriter{}
	begin := time.Now()
	stats, err := Run(context.Background(), Options{Rate: rate, Duration: duration, Seed: 1, Now: fixedClock}, w, nil)
	elapsed := time.Since(begin)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := w.records(); got != want || stats.Total() != want {
		t.Errorf("wrote %d records (stats %d), want exactly %d = rate × duration", got, stats.Total(), want)
	}
	if stats.Events == 0 {
		t.Errorf("stats = %+v, want events", stats)
	}
	// Pacing: it took at least the duration, and it sent several batches
	// rather than one burst. Upper bounds are loose: CI machines stall.
	if elapsed < duration || elapsed > duration+10*time.Second {
		t.Errorf("Run took %v, want about %v", elapsed, duration)
	}
	if n := len(w.batches); n < 4 {
		t.Errorf("%d WriteMessages calls, want the records spread over many (one every %v)", n, paceInterval)
	}
}

func TestRunWritesTheGeneratorsRecords(t *testing.T) {
	o := Options{Rate: 0, Duration: 30 * time.Millisecond, Seed: 9, Leads: 50, Now: fixedClock}
	w := &fakeWriter{}
	stats, err := Run(context.Background(), o, w, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := w.all()
	if len(got) == 0 {
		t.Fatal("Run with rate 0 wrote nothing")
	}
	for _, b := range w.batches {
		if len(b) > maxBatch {
			t.Errorf("batch of %d records, want at most %d", len(b), maxBatch)
		}
	}
	g := NewGenerator(o)
	var want Stats
	for i, m := range got {
		r := g.Next()
		want.add(r.Kind)
		if !bytes.Equal(m.Key, r.Key) || !bytes.Equal(m.Value, r.Value) {
			t.Fatalf("record %d = %s %s, want the generator's %s %s", i, m.Key, m.Value, r.Key, r.Value)
		}
	}
	if stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &fakeWriter{onWrite: func(_, records int) error {
		if records >= 50 {
			cancel()
		}
		return nil
	}}
	done := make(chan struct{})
	var (
		stats Stats
		err   error
	)
	go func() {
		defer close(done)
		stats, err = Run(ctx, Options{Rate: 5000, Seed: 2}, w, nil) // no Duration: until ctx ends
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if err != nil {
		t.Errorf("Run after cancel: %v, want nil (a normal stop)", err)
	}
	if stats.Total() != int64(w.records()) {
		t.Errorf("stats total %d, writer saw %d", stats.Total(), w.records())
	}
}

func TestRunReturnsWriteErrors(t *testing.T) {
	broken := errors.New("broker gone")
	w := &fakeWriter{onWrite: func(calls, _ int) error {
		if calls == 2 {
			return broken
		}
		return nil
	}}
	stats, err := Run(context.Background(), Options{Rate: 0, Seed: 2}, w, nil)
	if !errors.Is(err, broken) {
		t.Fatalf("Run: err = %v, want the writer's error", err)
	}
	if stats.Total() != maxBatch {
		t.Errorf("stats total %d, want %d (only the first, successful write)", stats.Total(), maxBatch)
	}
}

func TestRunStopsNearDurationWhenWriterIsSlow(t *testing.T) {
	const (
		rate     = 100_000.0
		duration = 200 * time.Millisecond
	)
	w := &fakeWriter{onWrite: func(int, int) error {
		time.Sleep(50 * time.Millisecond) // 1000 records per 50 ms: 20k/s at best
		return nil
	}}
	core, logs := observer.New(zap.WarnLevel)
	begin := time.Now()
	stats, err := Run(context.Background(), Options{Rate: rate, Duration: duration, Seed: 4}, w, zap.New(core))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if elapsed := time.Since(begin); elapsed > 10*time.Second {
		t.Errorf("Run took %v with a slow writer, want it to stop soon after %v", elapsed, duration)
	}
	if stats.Total() >= int64(rate*duration.Seconds()) {
		t.Errorf("wrote %d records with a writer too slow for them", stats.Total())
	}
	if logs.FilterMessage("demo traffic stopped short of its rate").Len() != 1 {
		t.Errorf("no warning that the rate was not kept; logs: %v", logs.All())
	}
}
