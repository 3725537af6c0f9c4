package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/scorer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeInput serves queued records and records commits, in order with
// everything else that happens (log).
type fakeInput struct {
	mu      sync.Mutex
	errs    []error // returned by FetchMessage, one per call, before the queue
	queue   []kafka.Message
	log     *[]string
	commits []kafka.Message
	arrived chan struct{}
}

func (f *fakeInput) FetchMessage(ctx context.Context) (kafka.Message, error) {
	for {
		f.mu.Lock()
		if len(f.errs) > 0 {
			err := f.errs[0]
			f.errs = f.errs[1:]
			f.mu.Unlock()
			return kafka.Message{}, err
		}
		if len(f.queue) > 0 {
			m := f.queue[0]
			f.queue = f.queue[1:]
			f.mu.Unlock()
			return m, nil
		}
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		case <-f.arrived:
		}
	}
}

func (f *fakeInput) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		*f.log = append(*f.log, fmt.Sprintf("commit p%d@%d", m.Partition, m.Offset))
	}
	f.commits = append(f.commits, msgs...)
	return nil
}

type fakeOutput struct {
	mu       sync.Mutex
	log      *[]string
	failures int // Publish calls to fail before succeeding
	got      []kafka.Message
}

func (f *fakeOutput) Publish(_ context.Context, msgs []kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		*f.log = append(*f.log, "publish failed")
		return errors.New("broker unavailable")
	}
	for _, m := range msgs {
		*f.log = append(*f.log, "publish "+m.Topic)
	}
	f.got = append(f.got, msgs...)
	return nil
}

func value(id, lead, typ string) []byte {
	b, _ := events.Encode(events.Event{ID: id, LeadID: lead, Type: typ, OccurredAt: time.Now().UTC()})
	return b
}

type harness struct {
	in   *fakeInput
	out  *fakeOutput
	p    *Pipeline
	reg  *prometheus.Registry
	log  []string
	sc   *scorer.Scorer
	stop context.CancelFunc
	done chan error
}

func newHarness(t *testing.T, failures int, msgs ...kafka.Message) *harness {
	return newHarnessWithErrors(t, failures, nil, msgs...)
}

// newHarnessWithErrors starts a pipeline whose input first fails with errs.
func newHarnessWithErrors(t *testing.T, failures int, errs []error, msgs ...kafka.Message) *harness {
	h := &harness{reg: prometheus.NewRegistry()}
	h.in = &fakeInput{errs: errs, queue: msgs, log: &h.log, arrived: make(chan struct{})}
	h.out = &fakeOutput{log: &h.log, failures: failures}
	c := config.Default()
	m, err := scorer.NewModel(c.Rules, c.State.DedupeWindow, c.State.History)
	if err != nil {
		t.Fatal(err)
	}
	h.sc = scorer.New(m, scorer.NewMemStore())
	h.p = New(Options{OutputTopic: "out", DeadLetterTopic: "dlq", MaxWait: time.Millisecond, ShutdownGrace: 50 * time.Millisecond},
		h.in, h.out, events.NewDecoder(events.DefaultLimits(), time.Now), h.sc, h.reg, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.p.Run(ctx) }()
	return h
}

// waitCommitted waits until n offsets are committed.
func (h *harness) waitCommitted(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.in.mu.Lock()
		got := len(h.in.commits)
		h.in.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %d, want %d; log %v", got, n, h.log)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) close(t *testing.T) {
	h.stop()
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
}

func TestCommitsOnlyAfterPublish(t *testing.T) {
	h := newHarness(t, 0,
		kafka.Message{Topic: "in", Partition: 0, Offset: 7, Key: []byte("L"), Value: value("a", "L", "page_view")},
		kafka.Message{Topic: "in", Partition: 1, Offset: 3, Value: []byte("not json")},
		kafka.Message{Topic: "in", Partition: 0, Offset: 8, Key: []byte("L"), Value: value("b", "L", "site_visit_booked")},
	)
	h.waitCommitted(t, 2)
	h.close(t)

	// One batch: the dead letter and the transitions published, then both
	// partitions' last offsets committed.
	want := []string{"publish dlq", "publish out", "publish out"}
	for i, w := range want {
		if h.log[i] != w {
			t.Fatalf("log = %v, want it to start with %v", h.log, want)
		}
	}
	commits := map[string]bool{h.log[3]: true, h.log[4]: true}
	if !commits["commit p0@8"] || !commits["commit p1@3"] {
		t.Errorf("commits = %v, want p0@8 and p1@3", h.log[3:])
	}
	if got := testutil.ToFloat64(h.p.m.deadLetters.WithLabelValues("malformed_json")); got != 1 {
		t.Errorf("dead letters = %v", got)
	}
	if got := testutil.ToFloat64(h.p.m.events.WithLabelValues("page_view", "scored")); got != 1 {
		t.Errorf("scored page views = %v", got)
	}
	// The batch's time, stage by stage: each observed once, none negative
	// (a stage whose start was never recorded would be).
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "leadscore_batch_stage_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			stage := m.GetLabel()[0].GetValue()
			seen[stage] = true
			if h := m.GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() < 0 || h.GetSampleSum() > 10 {
				t.Errorf("stage %s: %d samples summing to %vs, want one, 0–10 s", stage, h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
	for _, st := range []string{"fill", "decode", "queued_score", "score", "queued_publish", "publish", "commit"} {
		if !seen[st] {
			t.Errorf("no time recorded for stage %s (have %v)", st, seen)
		}
	}
}

func TestPublishFailureStallsThenRecovers(t *testing.T) {
	h := newHarness(t, 2, kafka.Message{Partition: 0, Offset: 1, Value: value("a", "L", "site_visit_booked")})
	// While publishing fails, nothing is committed and readiness says why.
	deadline := time.Now().Add(5 * time.Second)
	for h.p.Ready() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := h.p.Ready(); err == nil {
		t.Fatal("pipeline never reported itself stalled")
	}
	h.waitCommitted(t, 1)
	h.close(t)
	if err := h.p.Ready(); err != nil {
		t.Errorf("after recovery Ready() = %v", err)
	}
	if got := testutil.ToFloat64(h.p.m.retries.WithLabelValues("publish")); got != 2 {
		t.Errorf("publish retries = %v, want 2", got)
	}
	// The transition was published exactly once, before the commit.
	if h.log[len(h.log)-1] != "commit p0@1" || len(h.out.got) != 2 {
		t.Errorf("log = %v, published %d", h.log, len(h.out.got))
	}
	// Scoring was not repeated: the lead counts the event once.
	st, _ := h.sc.Lead(context.Background(), "L")
	if st.State.Events != 1 {
		t.Errorf("events = %d, want 1", st.State.Events)
	}
}

func TestShutdownAbandonsOnlyUncommittableWork(t *testing.T) {
	// Publishing never succeeds: at shutdown the batch is abandoned without
	// a commit (it will be redelivered), and Run returns promptly.
	h := newHarness(t, 1<<30, kafka.Message{Partition: 0, Offset: 1, Value: value("a", "L", "download")})
	time.Sleep(50 * time.Millisecond) // let it fail a few times
	start := time.Now()
	h.close(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	if len(h.in.commits) != 0 {
		t.Errorf("committed %v although nothing was published", h.in.commits)
	}
}

func TestTransientFetchErrorsAreRetried(t *testing.T) {
	h := newHarnessWithErrors(t, 0,
		[]error{errors.New("[14] Group Load In Progress"), errors.New("dial tcp: connection refused")},
		kafka.Message{Partition: 0, Offset: 5, Value: value("a", "L", "download")})
	h.waitCommitted(t, 1)
	h.close(t)
	if got := testutil.ToFloat64(h.p.m.retries.WithLabelValues("fetch")); got != 2 {
		t.Errorf("fetch retries = %v, want 2", got)
	}
}

func TestClosedInputEndsRun(t *testing.T) {
	h := newHarnessWithErrors(t, 0, []error{io.EOF})
	select {
	case err := <-h.done:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("Run = %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run kept going after the input closed")
	}
	h.stop()
}

// eventLog is an ordered record shared by fakes that run on different
// goroutines (the scoring stage saves while the finishing stage publishes).
type eventLog struct {
	mu    sync.Mutex
	lines []string
}

func (e *eventLog) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lines = append(e.lines, s)
}

func (e *eventLog) snapshot() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.lines...)
}

type loggingStore struct {
	scorer.Store
	ev *eventLog
}

func (s loggingStore) Save(ctx context.Context, ws []scorer.Write) ([]bool, error) {
	for _, w := range ws {
		s.ev.add(fmt.Sprintf("save %s from v%d", w.LeadID, w.Version))
	}
	return s.Store.Save(ctx, ws)
}

// gatedOutput holds its first Publish until release is closed, and keeps
// the transition ids it is given.
type gatedOutput struct {
	ev      *eventLog
	release chan struct{}
	mu      sync.Mutex
	calls   int
	ids     []string
}

func (g *gatedOutput) Publish(ctx context.Context, msgs []kafka.Message) error {
	g.mu.Lock()
	g.calls++
	first := g.calls == 1
	for _, m := range msgs {
		g.ids = append(g.ids, string(m.Key)+"/"+header(m, "leadscore.transition_id"))
	}
	g.mu.Unlock()
	g.ev.add("publish")
	if first {
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.ev.add("published")
	return nil
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// With two batches in flight, the second is scored and saved while the
// first is still being published; a crash then, with both unpublished,
// re-publishes every transition of both from the lead's history.
func TestNextBatchSavesWhileThePreviousIsPublished(t *testing.T) {
	ev := &eventLog{}
	var commitLog []string
	recs := []kafka.Message{
		{Partition: 0, Offset: 1, Key: []byte("L"), Value: value("a", "L", "site_visit_booked")},
		{Partition: 0, Offset: 2, Key: []byte("L"), Value: value("b", "L", "unsubscribe")}, // warm → cold
	}
	in := &fakeInput{log: &commitLog, arrived: make(chan struct{}, 1), queue: recs[:1:1]}
	out := &gatedOutput{ev: ev, release: make(chan struct{})}
	c := config.Default()
	m, err := scorer.NewModel(c.Rules, c.State.DedupeWindow, c.State.History)
	if err != nil {
		t.Fatal(err)
	}
	store := scorer.NewMemStore()
	sc := scorer.New(m, loggingStore{Store: store, ev: ev})
	p := New(Options{OutputTopic: "out", DeadLetterTopic: "dlq", MaxWait: time.Millisecond, InFlight: 2},
		in, out, events.NewDecoder(events.DefaultLimits(), time.Now), sc, prometheus.NewRegistry(), zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		close(out.release)
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	waitFor := func(what string, cond func([]string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond(ev.snapshot()) {
			if time.Now().After(deadline) {
				t.Fatalf("never saw %s; log %v", what, ev.snapshot())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("the first publish", func(l []string) bool { return len(l) >= 2 && l[1] == "publish" })

	// The second batch arrives while the first is still being published:
	// it is saved without waiting.
	in.mu.Lock()
	in.queue = append(in.queue, recs[1])
	in.mu.Unlock()
	in.arrived <- struct{}{}
	waitFor("the second save", func(l []string) bool { return len(l) >= 3 })
	want := []string{"save L from v0", "publish", "save L from v1"}
	if got := ev.snapshot(); fmt.Sprint(got[:3]) != fmt.Sprint(want) {
		t.Fatalf("log = %v, want %v", got, want)
	}
	// Neither batch is published, nor committed. A process that takes over
	// now gets both records again and re-publishes what both batches made:
	// the first's transitions are still in the history, though the second
	// save came after them.
	out.mu.Lock()
	made := slices.Clone(out.ids)
	out.mu.Unlock()
	if len(made) < 2 {
		t.Fatalf("the first batch made %d transitions, want band and stage ones", len(made))
	}
	next := scorer.New(m, store)
	var inputs []scorer.Input
	for _, r := range recs {
		e, err := events.NewDecoder(events.DefaultLimits(), time.Now).Decode(r.Value, "")
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, scorer.Input{Event: &e, Partition: int32(r.Partition), Offset: r.Offset})
	}
	res, err := next.Score(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	var again []string
	for i := range res.Transitions {
		tr := &res.Transitions[i]
		if !tr.Replayed {
			t.Errorf("transition %s %s→%s made anew, want re-published", tr.Kind, tr.From, tr.To)
		}
		again = append(again, tr.LeadID+"/"+tr.ID)
	}
	for _, id := range made {
		if !slices.Contains(again, id) {
			t.Errorf("transition %s of the first batch is lost: re-published %v", id, again)
		}
	}
	if len(again) <= len(made) {
		t.Errorf("re-published %d transitions, want the first batch's %d and the second's", len(again), len(made))
	}
	if len(commitLog) != 0 {
		t.Errorf("committed %v before anything was published", commitLog)
	}
}
