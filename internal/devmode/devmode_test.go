package devmode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/internal/devmode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is the terminal the live view writes to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDevScoresAJourneyThroughTheEmbeddedBroker starts dev mode with nothing
// installed, sends the brief's buyer with a plain Kafka client, watches the
// transitions appear in the live view and the lead API, and shuts down
// leaving no goroutine behind (goleak, in TestMain).
func TestDevScoresAJourneyThroughTheEmbeddedBroker(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Kafka.Partitions = 3
	out := &syncBuffer{}
	ready := make(chan devmode.Addrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- devmode.Run(ctx, devmode.Options{
			Config:    cfg,
			KafkaAddr: "127.0.0.1:0",
			Out:       out,
			Log:       zaptest.NewLogger(t),
			Ready:     func(a devmode.Addrs) { ready <- a },
		})
	}()
	var addrs devmode.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("dev mode stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("dev mode did not start within 30s")
	}
	banner := out.String()
	for _, want := range []string{"embedded Kafka-protocol broker", "lost on exit", "kcat -b " + addrs.Kafka, "/v1/leads/"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}

	now := time.Now().UTC()
	var msgs []kafka.Message
	for i, step := range [][]string{
		{"ad_click"}, {"page_view", "page", "pricing"}, {"form_submit", "form", "documents"},
		{"chat_message"}, {"site_visit_booked"},
	} {
		ev := events.Event{ID: "x-" + step[0], LeadID: "mr-x", Type: step[0], OccurredAt: now.Add(time.Duration(i) * time.Second)}
		if len(step) == 3 {
			ev.Properties = map[string]string{step[1]: step[2]}
		}
		v, _ := events.Encode(ev)
		msgs = append(msgs, kafka.Message{Key: []byte("mr-x"), Value: v})
	}
	msgs = append(msgs, kafka.Message{Key: []byte("junk"), Value: []byte("{oops")})
	tr := &kafka.Transport{}
	// Keyed by lead with the Java-compatible partitioner: one partition, in order.
	w := &kafka.Writer{Addr: kafka.TCP(addrs.Kafka), Topic: cfg.Kafka.InputTopic, Transport: tr,
		Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	tr.CloseIdleConnections()

	want := []string{"band cold → warm score 6 ← page_view", "stage lead → mql score 9 ← form_submit",
		"band warm → hot score 16 ← site_visit_booked", "stage mql → sql score 16 ← site_visit_booked", "DLQ malformed_json"}
	deadline := time.Now().Add(20 * time.Second)
	for {
		view := strings.Join(strings.Fields(out.String()), " ") // columns are padded
		missing := ""
		for _, w := range want {
			if !strings.Contains(view, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live view never showed %q:\n%s", missing, view)
		}
		time.Sleep(20 * time.Millisecond)
	}

	resp, err := http.Get("http://" + addrs.HTTP + "/v1/leads/mr-x")
	if err != nil {
		t.Fatal(err)
	}
	var lead struct {
		Score       float64
		Band, Stage string
	}
	_ = json.NewDecoder(resp.Body).Decode(&lead)
	resp.Body.Close()
	if lead.Score != 16 || lead.Band != "hot" || lead.Stage != "sql" {
		t.Errorf("lead = %+v, want 16 hot sql", lead)
	}
	http.DefaultClient.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev mode returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev mode did not shut down within 30s")
	}
}

// TestDevDemoTrafficFlows runs dev mode with demo traffic and waits for
// transitions to appear, as `make run` shows a newcomer.
func TestDevDemoTrafficFlows(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- devmode.Run(ctx, devmode.Options{Config: cfg, KafkaAddr: "127.0.0.1:0", Out: out,
			Log: zaptest.NewLogger(t), Demo: true})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), " → ") < 5 {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no transitions within 30s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("dev mode returned %v", err)
	}
}
