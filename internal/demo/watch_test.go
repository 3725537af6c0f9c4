package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadscore/leadscore/internal/embedded"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

func TestFormatTransition(t *testing.T) {
	base := transition{
		TransitionID: "3f9c", LeadID: "lead-000042", Kind: "band", From: "cold", To: "warm", Score: 6,
		OccurredAt: "2026-12-03T18:00:01Z", CauseEventID: "demo-1-17", CauseEventType: "page_view",
		RulesVersion: "a1b2c3d4e5f6",
	}
	recordTime := time.Date(2026, 12, 3, 9, 9, 9, 0, time.UTC)
	tests := []struct {
		name  string
		edit  func(*transition)
		color bool
		want  string
	}{
		{"band", nil, false,
			"18:00:01  lead-000042  band   cold → warm   score 6   ← page_view (demo-1-17)"},
		{"stage", func(t *transition) {
			t.Kind, t.From, t.To, t.Score, t.CauseEventType, t.CauseEventID = "stage", "lead", "mql", 12, "consultation_request", "demo-1-20"
		}, false,
			"18:00:01  lead-000042  stage  lead → mql    score 12  ← consultation_request (demo-1-20)"},
		{"fractional score, no cause", func(t *transition) {
			t.From, t.To, t.Score, t.CauseEventType, t.CauseEventID = "warm", "cold", 4.25, "", ""
		}, false,
			"18:00:01  lead-000042  band   warm → cold   score 4.2"},
		{"bad occurred_at uses the record time", func(t *transition) { t.OccurredAt = "yesterday" }, false,
			"09:09:09  lead-000042  band   cold → warm   score 6   ← page_view (demo-1-17)"},
		{"escape sequences are neutralised", func(t *transition) { t.LeadID = "lead-\x1b[2J" }, false,
			"18:00:01  lead-?[2J    band   cold → warm   score 6   ← page_view (demo-1-17)"},
		{"warm is yellow", nil, true,
			"18:00:01  lead-000042  band   cold → " + yellow + "warm" + reset + "   score 6   ← page_view (demo-1-17)"},
		{"hot is red", func(t *transition) { t.From, t.To = "warm", "hot" }, true,
			"18:00:01  lead-000042  band   warm → " + red + "hot" + reset + "    score 6   ← page_view (demo-1-17)"},
		{"cold is blue", func(t *transition) { t.From, t.To = "warm", "cold" }, true,
			"18:00:01  lead-000042  band   warm → " + blue + "cold" + reset + "   score 6   ← page_view (demo-1-17)"},
		{"stages are green", func(t *transition) { t.Kind, t.From, t.To = "stage", "mql", "sql" }, true,
			"18:00:01  lead-000042  stage  mql  → " + green + "sql" + reset + "    score 6   ← page_view (demo-1-17)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := base
			if tt.edit != nil {
				tt.edit(&tr)
			}
			if got := formatTransition(tr, recordTime, time.UTC, tt.color); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestFormatDeadLetter(t *testing.T) {
	at := time.Date(2026, 12, 3, 18, 0, 1, 0, time.UTC)
	long := strings.Repeat("x", 200)
	tests := []struct {
		name    string
		headers []kafka.Header
		want    string
	}{
		{"code and message", []kafka.Header{
			{Key: HeaderErrorCode, Value: []byte("malformed_json")},
			{Key: HeaderErrorMessage, Value: []byte("unexpected end of JSON input")},
		}, "18:00:01  DLQ  malformed_json: unexpected end of JSON input"},
		{"code only", []kafka.Header{{Key: HeaderErrorCode, Value: []byte("missing_lead_id")}},
			"18:00:01  DLQ  missing_lead_id"},
		{"no headers", nil, "18:00:01  DLQ  unknown"},
		{"long message is cut", []kafka.Header{
			{Key: HeaderErrorCode, Value: []byte("invalid")}, {Key: HeaderErrorMessage, Value: []byte(long)},
		}, "18:00:01  DLQ  invalid: " + strings.Repeat("x", maxMessage-1) + "…"},
		{"control bytes", []kafka.Header{
			{Key: HeaderErrorCode, Value: []byte("bad")}, {Key: HeaderErrorMessage, Value: []byte("a\nb\xff")},
		}, "18:00:01  DLQ  bad: a?b?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := formatDeadLetter(kafka.Message{Time: at, Headers: tt.headers}, time.UTC)
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestSummaryString(t *testing.T) {
	s := Summary{EventsPerSec: 1234.4, Leads: 250, Transitions: 310, DeadLetters: 3, Lag: 0}
	if got, want := s.String(), "events/s 1234 · leads 250 · transitions 310 · dead letters 3 · lag 0"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSummaryFromGatherer(t *testing.T) {
	reg := prometheus.NewRegistry()
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEvents}, []string{"type", "outcome"})
	transitions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricTransitions}, []string{"kind", "from", "to"})
	deadLetters := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDeadLetters}, []string{"reason"})
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricLag}, []string{"topic", "partition"})
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "leadscore_other_total"})
	reg.MustRegister(events, transitions, deadLetters, lag, other)

	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	summarize := summaryFromGatherer(reg, func() time.Time { return now })

	if got := summarize(); got != (Summary{}) {
		t.Errorf("empty registry: %+v, want zeros", got)
	}

	events.WithLabelValues("page_view", "scored").Add(30)
	events.WithLabelValues("email_open", "duplicate").Add(20)
	transitions.WithLabelValues("band", "cold", "warm").Add(4)
	transitions.WithLabelValues("stage", "lead", "mql").Add(1)
	deadLetters.WithLabelValues("malformed_json").Add(2)
	deadLetters.WithLabelValues("missing_lead_id").Add(1)
	lag.WithLabelValues("lead-events", "0").Set(7)
	lag.WithLabelValues("lead-events", "1").Set(5)
	other.Add(1000)
	now = now.Add(2 * time.Second)

	want := Summary{EventsPerSec: 25, Transitions: 5, DeadLetters: 3, Lag: 12}
	if got := summarize(); got != want {
		t.Errorf("after 50 events in 2 s: %+v, want %+v", got, want)
	}

	// A counter reset (the service restarted) must not show a negative rate.
	reg.Unregister(events)
	fresh := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEvents}, []string{"type", "outcome"})
	reg.MustRegister(fresh)
	fresh.WithLabelValues("page_view", "scored").Add(3)
	now = now.Add(time.Second)
	if got := summarize(); got.EventsPerSec != 0 {
		t.Errorf("after a counter reset: events/s %v, want 0", got.EventsPerSec)
	}
	now = now.Add(time.Second)
	fresh.WithLabelValues("page_view", "scored").Add(10)
	if got := summarize(); got.EventsPerSec != 10 {
		t.Errorf("after the reset: events/s %v, want 10", got.EventsPerSec)
	}

	if SummaryFromGatherer(reg)().Lag != 12 {
		t.Errorf("SummaryFromGatherer: lag not read")
	}
}

// syncBuffer is a bytes.Buffer the watcher can write while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) lines() []string {
	s := strings.TrimSuffix(b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestShowNotTerminal(t *testing.T) {
	out := &syncBuffer{}
	w, err := NewWatcher(WatchOptions{
		Brokers: []string{"unused:9092"}, Out: out, Location: time.UTC, SummaryEvery: 10 * time.Millisecond,
		Summary: func() Summary { return Summary{EventsPerSec: 12, Transitions: 2, DeadLetters: 1, Lag: 3} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.tty {
		t.Fatal("a buffer is not a terminal")
	}
	items := make(chan item)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.show(ctx, items) }()

	items <- item{msg: kafka.Message{Value: transitionJSON(t, "lead-000042", "band", "cold", "warm", 6)}}
	items <- item{msg: kafka.Message{Time: time.Date(2026, 12, 3, 18, 0, 2, 0, time.UTC), Headers: []kafka.Header{
		{Key: HeaderErrorCode, Value: []byte("malformed_json")},
	}}, deadLetter: true}
	// Wait for at least one periodic summary after the stream lines.
	waitFor(t, func() bool { return strings.Count(out.String(), "events/s") >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("show: %v", err)
	}

	s := out.String()
	if strings.ContainsAny(s, "\r\x1b") {
		t.Errorf("output to a non-terminal has \\r or escape sequences: %q", s)
	}
	lines := out.lines()
	if lines[0] != "18:00:01  lead-000042  band   cold → warm   score 6   ← page_view (demo-1-17)" ||
		lines[1] != "18:00:02  DLQ  malformed_json" {
		t.Errorf("stream lines:\n%s", strings.Join(lines[:2], "\n"))
	}
	for _, l := range lines[2:] {
		if l != "events/s 12 · leads 1 · transitions 2 · dead letters 1 · lag 3" {
			t.Errorf("summary line %q", l)
		}
	}
}

func TestShowTerminal(t *testing.T) {
	out := &syncBuffer{}
	w, err := NewWatcher(WatchOptions{
		Brokers: []string{"unused:9092"}, Out: out, Location: time.UTC, SummaryEvery: time.Hour,
		Summary: func() Summary { return Summary{Transitions: 1} },
	})
	if err != nil {
		t.Fatal(err)
	}
	w.tty = true // as if Out were a terminal
	items := make(chan item)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.show(ctx, items) }()
	items <- item{msg: kafka.Message{Value: transitionJSON(t, "lead-000042", "band", "warm", "hot", 20)}}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("show: %v", err)
	}
	summary0 := "events/s 0 · leads 0 · transitions 1 · dead letters 0 · lag 0"
	summary1 := "events/s 0 · leads 1 · transitions 1 · dead letters 0 · lag 0"
	want := clearLine + summary0 + // drawn at start
		clearLine + "18:00:01  lead-000042  band   warm → " + red + "hot" + reset + "    score 20  ← page_view (demo-1-17)\n" + summary0 + // stream line above, summary redrawn beneath
		clearLine + summary1 + "\n" // final refresh, cursor on a fresh line
	if got := out.String(); got != want {
		t.Errorf("terminal output\n%q\nwant\n%q", got, want)
	}
}

func transitionJSON(t *testing.T, lead, kind, from, to string, score float64) []byte {
	t.Helper()
	b, err := json.Marshal(transition{
		TransitionID: "3f9c" + from + to, LeadID: lead, Kind: kind, From: from, To: to, Score: score,
		OccurredAt: "2026-12-03T18:00:01Z", CauseEventID: "demo-1-17", CauseEventType: "page_view", RulesVersion: "a1b2c3d4e5f6",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewWatcherChecksOptions(t *testing.T) {
	if _, err := NewWatcher(WatchOptions{Out: &bytes.Buffer{}}); !errors.Is(err, ErrNoBrokers) {
		t.Errorf("no brokers: %v", err)
	}
	if _, err := NewWatcher(WatchOptions{Brokers: []string{"x:1"}}); !errors.Is(err, ErrNoOutput) {
		t.Errorf("no output: %v", err)
	}
	w, err := NewWatcher(WatchOptions{Brokers: []string{"x:1"}, Out: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	if w.o.SummaryEvery != 10*time.Second || w.o.TransitionsTopic != DefaultTransitionsTopic || w.o.DeadLetterTopic != DefaultDeadLetterTopic {
		t.Errorf("defaults: %+v", w.o)
	}
}

// TestWatcherAgainstEmbeddedKafka runs the whole Watcher against kfake: it
// shows only records produced after it is ready, one line each.
func TestWatcherAgainstEmbeddedKafka(t *testing.T) {
	k, err := embedded.StartKafka("127.0.0.1:0", 3, DefaultTransitionsTopic, DefaultDeadLetterTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	writer := func(topic string) *kafka.Writer {
		return &kafka.Writer{
			Addr: kafka.TCP(k.Addr()), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, Transport: tr,
		}
	}
	transitions, deadLetters := writer(DefaultTransitionsTopic), writer(DefaultDeadLetterTopic)
	defer transitions.Close()
	defer deadLetters.Close()

	// Written before the watcher starts: must not be shown.
	old := kafka.Message{Key: []byte("lead-000001"), Value: transitionJSON(t, "lead-000001", "band", "cold", "warm", 5)}
	if err := transitions.WriteMessages(ctx, old); err != nil {
		t.Fatal(err)
	}

	out := &syncBuffer{}
	w, err := NewWatcher(WatchOptions{
		Brokers: []string{k.Addr()}, Out: out, Location: time.UTC, SummaryEvery: time.Hour,
		Summary: func() Summary { return Summary{EventsPerSec: 3, Transitions: 3, DeadLetters: 1} },
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("Run ended before ready: %v", err)
	case <-ctx.Done():
		t.Fatal("watcher not ready")
	}

	if err := transitions.WriteMessages(ctx,
		kafka.Message{Key: []byte("lead-000042"), Value: transitionJSON(t, "lead-000042", "band", "cold", "warm", 6)},
		kafka.Message{Key: []byte("lead-000042"), Value: transitionJSON(t, "lead-000042", "stage", "lead", "mql", 6)},
	); err != nil {
		t.Fatal(err)
	}
	if err := deadLetters.WriteMessages(ctx, kafka.Message{
		Key: []byte("lead-000007"), Value: []byte(`{"event_id":`),
		Time: time.Date(2026, 12, 3, 18, 0, 2, 0, time.UTC),
		Headers: []kafka.Header{
			{Key: HeaderErrorCode, Value: []byte("malformed_json")},
			{Key: HeaderErrorMessage, Value: []byte("unexpected end of JSON input")},
		},
	}); err != nil {
		t.Fatal(err)
	}

	waitFor(t, func() bool { return len(out.lines()) >= 3 })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	lines := out.lines()
	if strings.ContainsAny(out.String(), "\r\x1b") {
		t.Errorf("output to a buffer has \\r or escape sequences: %q", out.String())
	}
	stream := lines[:len(lines)-1]
	band := "18:00:01  lead-000042  band   cold → warm   score 6   ← page_view (demo-1-17)"
	stage := "18:00:01  lead-000042  stage  lead → mql    score 6   ← page_view (demo-1-17)"
	dlq := "18:00:02  DLQ  malformed_json: unexpected end of JSON input"
	// The two topics are read concurrently: the DLQ line may come anywhere,
	// but one lead's transitions keep their order (same key, same partition).
	var transitionLines []string
	sawDLQ := 0
	for _, l := range stream {
		switch l {
		case dlq:
			sawDLQ++
		default:
			transitionLines = append(transitionLines, l)
		}
	}
	if sawDLQ != 1 || len(transitionLines) != 2 || transitionLines[0] != band || transitionLines[1] != stage {
		t.Errorf("stream:\n%s\nwant, in any interleaving:\n%s\n%s\n%s", strings.Join(stream, "\n"), band, stage, dlq)
	}
	if last, want := lines[len(lines)-1], "events/s 3 · leads 1 · transitions 3 · dead letters 1 · lag 0"; last != want {
		t.Errorf("final summary %q, want %q", last, want)
	}
}

// TestWatcherWaitsForTopics: started before the service created its topics,
// the watcher waits for them instead of failing.
func TestWatcherWaitsForTopics(t *testing.T) {
	k, err := embedded.StartKafka("127.0.0.1:0", 2) // no topics yet
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	w, err := NewWatcher(WatchOptions{Brokers: []string{k.Addr()}, Out: &syncBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	select {
	case <-w.Ready():
		t.Fatal("ready before the topics exist")
	case err := <-done:
		t.Fatalf("Run ended while waiting for topics: %v", err)
	case <-time.After(200 * time.Millisecond):
	}

	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(k.Addr()), Transport: tr}
	if _, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: DefaultTransitionsTopic, NumPartitions: 2, ReplicationFactor: 1},
		{Topic: DefaultDeadLetterTopic, NumPartitions: 2, ReplicationFactor: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	case <-ctx.Done():
		t.Fatal("not ready after the topics were created")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestRunIntoEmbeddedKafka: Run through a real kafka-go Writer lands every
// record in the topic.
func TestRunIntoEmbeddedKafka(t *testing.T) {
	const topic = "lead-events"
	k, err := embedded.StartKafka("127.0.0.1:0", 3, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr: kafka.TCP(k.Addr()), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, Transport: tr,
	}
	defer w.Close()

	stats, err := Run(ctx, Options{Rate: 2000, Duration: 300 * time.Millisecond, Seed: 1}, w, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	c := &kafka.Client{Addr: kafka.TCP(k.Addr()), Transport: tr}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range lo.Topics[topic] {
		total += p.LastOffset
	}
	// Every record Run reports is on the topic. (600 is the paced target; a
	// loaded machine may fall short of it by the Duration's end, never over.)
	if total != stats.Total() || total == 0 || total > 600 {
		t.Errorf("topic holds %d records, Run reports %d, want the same, 1 to 600", total, stats.Total())
	}
}
