package service_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/internal/kafkaadmin"
)

// privateRedis starts a redis-server of the test's own on a free port, so
// the test can fill its memory without touching the shared one.
func privateRedis(t *testing.T, args ...string) (string, *redis.Client) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no"}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	for i := 0; ; i++ {
		if rdb.Ping(context.Background()).Err() == nil {
			return addr, rdb
		}
		if i > 100 {
			t.Fatal("private redis-server did not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricValue returns the value of one series in a /metrics body, or -1.
func metricValue(body, series string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// metricSum sums every series of a metric whose labels contain match.
func metricSum(body, name, match string) float64 {
	sum := 0.0
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+"{") && strings.Contains(l, match) {
			f, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			sum += f
		}
	}
	return sum
}

func (e *env) lag() []kafkaadmin.PartitionLag {
	e.t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Transport: e.tr}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A broker that has just started answers "not coordinator" or
	// "coordinator load in progress" for a while (seen on a fresh CI
	// machine): retry until the deadline.
	for {
		l, err := kafkaadmin.Lag(ctx, c, e.cfg.Kafka.GroupID, e.cfg.Kafka.InputTopic)
		if err == nil {
			return l
		}
		select {
		case <-ctx.Done():
			e.t.Fatal(err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func committed(ls []kafkaadmin.PartitionLag) map[int]int64 {
	out := map[int]int64{}
	for _, l := range ls {
		out[l.Partition] = l.Committed
	}
	return out
}

// waitStalled waits until the pipeline reports itself stalled on step, and
// returns the /readyz reason.
func waitStalled(t *testing.T, httpAddr, step string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		body := metricsText(t, httpAddr)
		var ready map[string]string
		code := getJSON(t, "http://"+httpAddr+"/readyz", &ready)
		if metricValue(body, "leadscore_pipeline_stalled") == 1 && code == 503 &&
			metricValue(body, `leadscore_retries_total{step="`+step+`"}`) > 0 {
			return ready["reason"]
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline not stalled on %s after %s: readyz %d %v\n%s", step, timeout, code, ready,
				grepLines(body, "leadscore_pipeline_stalled")+"\n"+grepLines(body, "leadscore_retries_total"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// assertHolds checks, for a while, that the group commits nothing more and
// the pipeline stays stalled: backpressure, not skipping.
func (e *env) assertHolds(httpAddr string, before map[int]int64, d time.Duration) {
	e.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if now := committed(e.lag()); fmt.Sprint(now) != fmt.Sprint(before) {
			e.t.Fatalf("committed offsets moved while stalled: %v -> %v", before, now)
		}
		if code := getJSON(e.t, "http://"+httpAddr+"/readyz", nil); code != 503 {
			e.t.Fatalf("/readyz = %d while stalled", code)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestRedisOutOfMemoryStallsThenResumes fills a private Redis (maxmemory,
// noeviction) until lead writes fail with OOM: the pipeline must stall
// (no commit past what is stored, /readyz 503 naming the cause,
// leadscore_pipeline_stalled 1, score retries counted), and once memory is
// raised it must resume and score every event exactly once.
func TestRedisOutOfMemoryStallsThenResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	addr, rdb := privateRedis(t, "--maxmemory", "1mb", "--maxmemory-policy", "noeviction")
	e.redis, e.cfg.Redis.Addr = addr, addr
	ctx := context.Background()
	// A fresh server already uses most of 1 MiB: leave room for a few
	// thousand leads, so some batches are stored before the first OOM.
	info := rdb.InfoMap(ctx, "memory").Val()["Memory"]
	used, _ := strconv.Atoi(info["used_memory"])
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.Itoa(max(used+512<<10, 1<<20))).Err(); err != nil {
		t.Fatal(err)
	}
	e.ensureTopics()
	httpAddr, stop := e.start()
	defer stop()

	var evs []events.Event
	stalledAt := -1
	for round := 0; round < 100 && stalledAt < 0; round++ {
		var msgs []kafka.Message
		for i := 0; i < 50; i++ {
			n := len(evs)
			ev := event(fmt.Sprint("oom-", n), fmt.Sprintf("lead-%05d", n), "email_open", "pad", strings.Repeat("p", 200))
			evs = append(evs, ev)
			msgs = append(msgs, record(ev))
		}
		e.produce(msgs...)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if metricValue(metricsText(t, httpAddr), "leadscore_pipeline_stalled") == 1 {
				stalledAt = len(evs)
				break
			}
			if total(e.lag()) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if stalledAt < 0 {
		t.Fatalf("Redis never ran out of memory after %d events", len(evs))
	}
	// At the edge a retry can succeed once memory dips (Redis checks
	// used_memory before each write): pin the limit below what is used, so
	// memory stays full until the operator acts.
	info = rdb.InfoMap(ctx, "memory").Val()["Memory"]
	used, _ = strconv.Atoi(info["used_memory"])
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.Itoa(used-64<<10)).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	e.produce(record(event("oom-last", "lead-last", "email_open")))
	evs = append(evs, event("oom-last", "lead-last", "email_open"))
	reason := waitStalled(t, httpAddr, "score", 10*time.Second)
	if !strings.Contains(reason, "OOM") || !strings.Contains(reason, "score") {
		t.Errorf("/readyz reason %q does not name the step and the OOM", reason)
	}
	before := committed(e.lag())
	t.Logf("stalled after %d events; committed %v; readyz: %s", stalledAt, before, reason)
	e.assertHolds(httpAddr, before, 2*time.Second)

	// Nothing committed that is not stored: every record below a committed
	// offset has its lead in Redis.
	var below []string
	for _, m := range e.readAll(e.cfg.Kafka.InputTopic) {
		if m.Offset < before[m.Partition] {
			below = append(below, string(m.Key))
		}
	}
	for id, st := range e.storedStates(below) {
		if !st.Found || st.State.Events != 1 {
			t.Errorf("lead %s is committed but not stored once (found %v, events %d)", id, st.Found, st.State.Events)
		}
	}
	t.Logf("%d committed records, all stored", len(below))

	// Raise the limit: the pipeline resumes and finishes.
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	e.waitNoLag(60 * time.Second)
	var leads []string
	for _, ev := range evs {
		leads = append(leads, ev.LeadID)
	}
	for id, st := range e.storedStates(leads) {
		if !st.Found || st.State.Events != 1 {
			t.Errorf("lead %s: found %v, %d events, want 1", id, st.Found, st.State.Events)
		}
	}
	body := metricsText(t, httpAddr)
	if v := metricValue(body, "leadscore_pipeline_stalled"); v != 0 {
		t.Errorf("leadscore_pipeline_stalled = %v after recovery", v)
	}
	if code := getJSON(t, "http://"+httpAddr+"/readyz", nil); code != 200 {
		t.Errorf("/readyz = %d after recovery", code)
	}
	// Leads written by an attempt that then hit OOM come back as redelivered
	// on the retry: applied once, counted once.
	n := metricSum(body, "leadscore_events_total", `outcome="scored"`) + metricSum(body, "leadscore_events_total", `outcome="redelivered"`)
	if int(n) != len(evs) {
		t.Errorf("events scored or redelivered = %v, want %d:\n%s", n, len(evs), grepLines(body, "leadscore_events_total"))
	}
	t.Logf("%d events, score retries %v", len(evs), metricValue(body, `leadscore_retries_total{step="score"}`))
}

func total(ls []kafkaadmin.PartitionLag) int64 {
	n := int64(0)
	for _, l := range ls {
		n += l.Lag
	}
	return n
}

// TestProduceRejectedStallsThenResumes makes the transitions topic refuse
// the service's records (max.message.bytes 64): the pipeline must stall on
// publish without committing, and deliver every transition once the topic
// is altered back to a normal limit.
func TestProduceRejectedStallsThenResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	k := e.cfg.Kafka
	e.createTopic(k.InputTopic, nil)
	e.createTopic(k.OutputTopic, map[string]string{"max.message.bytes": "64"})
	e.createTopic(k.DeadLetterTopic, nil)
	httpAddr, stop := e.start()
	defer stop()

	// A site visit takes a new lead cold → warm and lead → sql.
	var evs []events.Event
	var msgs []kafka.Message
	for i := 0; i < 20; i++ {
		ev := event(fmt.Sprint("visit-", i), fmt.Sprint("buyer-", i), "site_visit_booked")
		evs = append(evs, ev)
		msgs = append(msgs, record(ev))
	}
	e.produce(msgs...)
	reason := waitStalled(t, httpAddr, "publish", 30*time.Second)
	if !strings.Contains(reason, "publish") || !strings.Contains(reason, "Message Size Too Large") {
		t.Errorf("/readyz reason %q does not name the step and the broker's refusal", reason)
	}
	before := committed(e.lag())
	for p, off := range before {
		if off > 0 {
			t.Errorf("partition %d committed to %d while every batch has transitions that cannot be published", p, off)
		}
	}
	e.assertHolds(httpAddr, before, 2*time.Second)
	if n := len(e.readAll(k.OutputTopic)); n != 0 {
		t.Errorf("%d transitions on a topic that refuses them", n)
	}

	// Alter the topic back to the broker default: the retry goes through.
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Transport: e.tr}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: k.OutputTopic,
		Configs: []kafka.AlterConfigRequestConfig{{Name: "max.message.bytes", Value: "1048588"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range resp.Errors {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.waitNoLag(60 * time.Second)

	_, wantIDs := reference(t, e.cfg, evs)
	got := map[string]bool{}
	for _, tr := range transitions(t, e.readAll(k.OutputTopic)) {
		if !wantIDs[tr.TransitionID] {
			t.Errorf("unexpected transition %+v", tr)
		}
		got[tr.TransitionID] = true
	}
	if len(got) != len(wantIDs) || len(wantIDs) != 2*len(evs) {
		t.Errorf("%d distinct transitions delivered, want %d (2 per lead)", len(got), len(wantIDs))
	}
	body := metricsText(t, httpAddr)
	if v := metricValue(body, "leadscore_pipeline_stalled"); v != 0 {
		t.Errorf("leadscore_pipeline_stalled = %v after recovery", v)
	}
	t.Logf("publish retries %v, transitions %d", metricValue(body, `leadscore_retries_total{step="publish"}`), len(got))
}
