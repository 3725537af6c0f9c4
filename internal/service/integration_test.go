package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/internal/httpapi"
	"github.com/leadscore/leadscore/internal/kafkaadmin"
	"github.com/leadscore/leadscore/internal/service"
	"github.com/leadscore/leadscore/sink"
)

var now = time.Now().UTC().Truncate(time.Millisecond)

func event(id, lead, typ string, props ...string) events.Event {
	e := events.Event{ID: id, LeadID: lead, Type: typ, OccurredAt: now}
	if len(props) > 0 {
		e.Properties = map[string]string{}
		for i := 0; i+1 < len(props); i += 2 {
			e.Properties[props[i]] = props[i+1]
		}
	}
	return e
}

// TestEndToEnd drives the product brief's buyer, an email subscriber, a
// producer duplicate and bad records through real Kafka and Redis, and checks
// what a CRM, an operator and the platform team each see.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	httpAddr, stop := e.start()
	defer stop()

	evs := []events.Event{
		event("mrx-1", "mrx", "ad_click"),
		event("mrx-2", "mrx", "page_view", "page", "pricing", "url", "/pricing"),
		event("mrx-3", "mrx", "form_submit", "form", "documents"),
		event("mrx-4", "mrx", "chat_message"),
		event("mrx-5", "mrx", "site_visit_booked"),
		event("sub-1", "subscriber", "email_open"),
		event("sub-2", "subscriber", "email_open"),
	}
	var msgs []kafka.Message
	for _, ev := range evs {
		msgs = append(msgs, record(ev))
	}
	msgs = append(msgs, record(evs[1])) // a producer re-sends the pricing view
	bad := []struct {
		msg  kafka.Message
		code string
	}{
		{kafka.Message{Key: []byte("k1"), Value: []byte(`{"event_id":"x","lead_id":`)}, events.CodeMalformedJSON},
		{kafka.Message{Key: []byte("k2"), Value: []byte(`{"event_id":"x","type":"email_open","occurred_at":"2026-01-01T00:00:00Z"}`)}, events.CodeMissingField},
		{kafka.Message{Value: bytes.Repeat([]byte("a"), 70000)}, events.CodeOversize},
		{kafka.Message{Key: []byte("k4"), Value: []byte{0x0a, 0x03, 0xff}, Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/x-protobuf")}}}, events.CodeUnsupportedEncoding},
	}
	for _, b := range bad {
		msgs = append(msgs, b.msg)
	}
	e.produce(msgs...)
	e.waitNoLag(60 * time.Second)

	// CRM: exactly the buyer's four transitions, with the reference ids.
	_, wantIDs := reference(t, e.cfg, evs)
	got := transitions(t, e.readAll(e.cfg.Kafka.OutputTopic))
	var lines []string
	for _, tr := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s>%s", tr.LeadID, tr.Kind, tr.From, tr.To))
		if !wantIDs[tr.TransitionID] {
			t.Errorf("unexpected transition %+v", tr)
		}
		if tr.RulesVersion == "" || tr.CauseEventID == "" || tr.OccurredAt.IsZero() {
			t.Errorf("transition lacks fields: %+v", tr)
		}
	}
	want := "mrx band cold>warm|mrx stage lead>mql|mrx band warm>hot|mrx stage mql>sql"
	if strings.Join(lines, "|") != want {
		t.Errorf("transitions:\n got %s\nwant %s", strings.Join(lines, "|"), want)
	}

	// Platform team: every bad record is in the dead-letter topic, with the
	// original bytes and the reason.
	dlq := e.readAll(e.cfg.Kafka.DeadLetterTopic)
	if len(dlq) != len(bad) {
		t.Fatalf("dead letters = %d, want %d", len(dlq), len(bad))
	}
	codes := map[string]bool{}
	for _, m := range dlq {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		codes[h[sink.HeaderErrorCode]] = true
		if h[sink.HeaderSourceTopic] != e.cfg.Kafka.InputTopic || h[sink.HeaderSourceOffset] == "" || h[sink.HeaderErrorMessage] == "" {
			t.Errorf("dead letter headers incomplete: %v", h)
		}
	}
	for _, b := range bad {
		if !codes[b.code] {
			t.Errorf("no dead letter with code %s (got %v)", b.code, codes)
		}
	}

	// CRM read path.
	var lead httpapi.LeadView
	if code := getJSON(t, "http://"+httpAddr+"/v1/leads/mrx", &lead); code != 200 || lead.Score != 16 || lead.Band != "hot" || lead.Stage != "sql" || lead.Events != 5 {
		t.Errorf("GET /v1/leads/mrx = %d %+v", code, lead)
	}
	if code := getJSON(t, "http://"+httpAddr+"/v1/leads/nobody", nil); code != 404 {
		t.Errorf("unknown lead: status %d, want 404", code)
	}
	if code := getJSON(t, "http://"+httpAddr+"/readyz", nil); code != 200 {
		t.Errorf("/readyz = %d", code)
	}

	// Operator: metrics count what happened and lag reaches 0.
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := metricsText(t, httpAddr)
		ok := strings.Contains(body, `leadscore_events_total{outcome="duplicate",type="page_view"} 1`) &&
			strings.Contains(body, `leadscore_dead_letters_total{reason="oversize"} 1`) &&
			strings.Contains(body, `leadscore_transitions_total{from="cold",kind="band",to="warm"} 1`) &&
			strings.Contains(body, "leadscore_consumer_lag{") && !lagAbove0(body)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed the expected counts and zero lag:\n%s", grepLines(body, "leadscore_"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func metricsText(t *testing.T, addr string) string {
	resp := must(httpGet("http://" + addr + "/metrics"))
	return resp
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func lagAbove0(body string) bool {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "leadscore_consumer_lag{") && !strings.HasSuffix(l, " 0") {
			return true
		}
	}
	return false
}

func grepLines(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSIGKILLMidStream kills the real binary with SIGKILL three times while
// it works through a stream, restarts it each time, and checks that the
// final state of every lead and the set of transitions on the output topic
// equal a reference computed without the service: nothing lost, nothing
// counted twice, nothing invented.
func TestSIGKILLMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	e.cfg.Kafka.SessionTimeout = 3 * time.Second
	bin := buildBinary(t)
	e.ensureTopics()

	// 400 leads, 20,000 events; 1% re-sent by the producer soon after (a
	// producer retry), so within the lead's dedupe window.
	rng := rand.New(rand.NewSource(42))
	kinds := [][]string{
		{"email_open"}, {"email_open"}, {"email_click"}, {"page_view", "page", "blog"},
		{"page_view", "page", "pricing"}, {"page_view", "page", "careers"}, {"download"},
		{"form_submit", "form", "documents"}, {"chat_message"}, {"unsubscribe"},
		{"consultation_request"}, {"product_usage", "limit_reached", "true"},
	}
	var evs []events.Event
	var msgs []kafka.Message
	for i := 0; i < 20000; i++ {
		k := kinds[rng.Intn(len(kinds))]
		ev := event(fmt.Sprintf("e%d", i), fmt.Sprintf("lead-%03d", rng.Intn(400)), k[0], k[1:]...)
		evs = append(evs, ev)
		if rng.Intn(100) == 0 && len(evs) > 10 {
			evs = append(evs, evs[len(evs)-1-rng.Intn(10)])
		}
	}
	for _, ev := range evs {
		msgs = append(msgs, record(ev))
	}
	e.produce(msgs...)
	total := int64(len(msgs))

	// Many small batches, so that kills land mid-stream.
	start := func() *exec.Cmd { return e.startBinary(bin, "LEADSCORE_BATCH_MAX_EVENTS=100") }
	client := &kafka.Client{Addr: kafka.TCP(e.brokers...), Transport: e.tr}
	committed := func() int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lags, err := kafkaadmin.Lag(ctx, client, e.cfg.Kafka.GroupID, e.cfg.Kafka.InputTopic)
		if err != nil {
			return 0
		}
		var done int64
		for _, l := range lags {
			done += l.End - l.Lag
		}
		return done
	}

	kills := 0
	for _, frac := range []float64{0.2, 0.5, 0.8} {
		cmd := start()
		target := int64(frac * float64(total))
		deadline := time.Now().Add(90 * time.Second)
		for committed() < target && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
		t.Logf("%s SIGKILL %d at %d/%d committed", time.Now().Format("15:04:05.000"), kills, committed(), total)
	}
	cmd := start()
	e.waitNoLag(120 * time.Second)
	t.Logf("%s caught up", time.Now().Format("15:04:05.000"))
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v (want a clean exit)", err)
	}

	o := e.checkAgainstReference(evs)
	t.Logf("%d kills, %d records, %d leads: %d state mismatches, %d of %d transitions lost, %d duplicate copies (same transition_id)",
		kills, total, o.leads, o.mismatches, o.lost, o.expected, o.dups)
	if o.mismatches > 0 || o.lost > 0 {
		t.Fatalf("%d mismatches, %d lost transitions", o.mismatches, o.lost)
	}
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "leadscore")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/leadscore/leadscore/cmd/leadscore")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// prefixWriter forwards a child's log lines to the test log.
type prefixWriter struct{ t *testing.T }

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.t.Log("leadscore: " + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestMissingTopicsFailStartupWhenCreationIsOff checks the other half of the
// topic contract: with kafka.create_topics off, start-up fails naming the
// missing topic and the setting that fixes it.
func TestMissingTopicsFailStartupWhenCreationIsOff(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	e.cfg.Kafka.CreateTopics = false
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := service.Run(ctx, e.cfg, zaptest.NewLogger(t), service.Options{})
	if !errors.Is(err, kafkaadmin.ErrMissingTopic) || !strings.Contains(err.Error(), e.cfg.Kafka.InputTopic) ||
		!strings.Contains(err.Error(), "LEADSCORE_KAFKA_CREATE_TOPICS") {
		t.Fatalf("err = %v, want ErrMissingTopic naming %s and the fix", err, e.cfg.Kafka.InputTopic)
	}
}

// TestDecayDowngradeWithoutNewEvents scores a lead hot from an event three
// hours old under a one-hour half-life: the scheduler must emit hot → warm
// and warm → cold on the output topic by itself, each at the instant the
// decaying score crossed the exit threshold.
func TestDecayDowngradeWithoutNewEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	e.useRules(`
half_life: 1h
rules:
  - {name: download, type: download, points: 20}
bands:
  - {name: cold}
  - {name: warm, min: 5, exit: 4}
  - {name: hot, min: 15, exit: 12}
stages:
  - {name: lead}
`)
	e.cfg.State.DecayInterval = 100 * time.Millisecond
	_, stop := e.start()
	defer stop()

	te := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Millisecond)
	ev := event("d-1", "decaying", "download")
	ev.OccurredAt = te
	e.produce(record(ev))
	e.waitNoLag(30 * time.Second)

	deadline := time.Now().Add(20 * time.Second)
	var got []sink.TransitionRecord
	for time.Now().Before(deadline) {
		got = transitions(t, e.readAll(e.cfg.Kafka.OutputTopic))
		if len(got) >= 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var lines []string
	for _, tr := range got {
		lines = append(lines, fmt.Sprintf("%s>%s by %s", tr.From, tr.To, tr.CauseEventType))
	}
	if want := "cold>hot by download|hot>warm by decay|warm>cold by decay"; strings.Join(lines, "|") != want {
		t.Fatalf("transitions = %s, want %s", strings.Join(lines, "|"), want)
	}
	// hot → warm when 20·2^(−t/1h), judged in hundredths, drops below 12:
	// t = log2(20/11.995) h after the event.
	wantAt := te.Add(time.Duration(math.Log2(20.0/11.995) * float64(time.Hour)))
	if d := got[1].OccurredAt.Sub(wantAt); d < 0 || d > 5*time.Millisecond {
		t.Errorf("hot>warm occurred at %v, want %v", got[1].OccurredAt, wantAt)
	}
	st := e.storedStates([]string{"decaying"})["decaying"]
	if st.State.Band != "cold" {
		t.Errorf("stored band %s, want cold", st.State.Band)
	}
}

// TestDecayScheduleSurvivesARestart scores a lead whose band decay will
// change a few seconds later, stops the service before that moment, and
// starts a new one after it: the new process finds the crossing in the
// schedule kept in Redis and emits it, with no new event.
func TestDecayScheduleSurvivesARestart(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	e.useRules(`
half_life: 1h
rules:
  - {name: download, type: download, points: 20}
bands:
  - {name: cold}
  - {name: hot, min: 15, exit: 12}
stages:
  - {name: lead}
`)
	e.cfg.State.DecayInterval = 100 * time.Millisecond
	_, stop := e.start()

	// Back-date the event so that 20·2^(−age/1h) falls below 11.995 in 4 s.
	crossing := time.Now().Add(4 * time.Second)
	ev := event("r-1", "restarting", "download")
	ev.OccurredAt = crossing.Add(-time.Duration(math.Log2(20.0/11.995) * float64(time.Hour))).UTC()
	e.produce(record(ev))
	e.waitNoLag(30 * time.Second)
	stop() // down before the crossing
	if got := transitions(t, e.readAll(e.cfg.Kafka.OutputTopic)); len(got) != 1 || got[0].To != "hot" {
		t.Fatalf("before the restart: %+v, want only cold → hot", got)
	}
	time.Sleep(time.Until(crossing) + time.Second)

	_, stop = e.start()
	defer stop()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := transitions(t, e.readAll(e.cfg.Kafka.OutputTopic))
		if len(got) == 2 {
			if got[1].From != "hot" || got[1].To != "cold" || got[1].CauseEventType != "decay" ||
				got[1].OccurredAt.Before(crossing.Add(-10*time.Millisecond)) || got[1].OccurredAt.After(crossing.Add(10*time.Millisecond)) {
				t.Fatalf("after the restart: %+v, want hot → cold by decay at %v", got[1], crossing)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decay transition after the restart: %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
