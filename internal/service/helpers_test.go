package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/internal/kafkaadmin"
	"github.com/leadscore/leadscore/internal/redisstore"
	"github.com/leadscore/leadscore/internal/service"
	"github.com/leadscore/leadscore/internal/testsvc"
	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sink"
)

// env is one test's private slice of the real services: its own topics,
// group and key prefix, so tests never see each other's data.
type env struct {
	t       *testing.T
	brokers []string
	redis   string
	cfg     config.Config
	// tr is this test's own transport: kafka-go's shared DefaultTransport
	// caches metadata for 6 s, so another test's clients would hide the
	// topics this test just created.
	tr *kafka.Transport
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg, tr := testsvc.Config(t, "it")
	return &env{t: t, brokers: cfg.Kafka.Brokers, redis: cfg.Redis.Addr, cfg: cfg, tr: tr}
}

// start runs the service in-process until the returned stop is called.
func (e *env) start() (httpAddr string, stop func()) {
	e.t.Helper()
	return e.startWith(service.Options{})
}

// startWith is start with options (Started is set here).
func (e *env) startWith(opt service.Options) (httpAddr string, stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	opt.Started = func(a string) { addr <- a }
	go func() {
		done <- service.Run(ctx, e.cfg, zaptest.NewLogger(e.t).Named("svc"), opt)
	}()
	select {
	case a := <-addr:
		return a, func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("service stopped with: %v", err)
			}
		}
	case err := <-done:
		cancel()
		e.t.Fatalf("service did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		e.t.Fatal("service did not start within 60s")
	}
	return "", nil
}

// envOf is an environment that sets, through the LEADSCORE_* variables,
// every field of cfg that has one, plus extra: what config.Load(path, env)
// turns back into cfg (rules aside), as it would for a service started that
// way.
func envOf(cfg config.Config, extra map[string]string) func(string) (string, bool) {
	vars := map[string]string{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f, fv := v.Type().Field(i), v.Field(i)
			if name := f.Tag.Get("env"); name != "" {
				switch x := fv.Interface().(type) {
				case []string:
					vars[name] = strings.Join(x, ",")
				case config.Secret:
					vars[name] = x.Reveal()
				default:
					vars[name] = fmt.Sprint(x)
				}
			} else if fv.Kind() == reflect.Struct {
				walk(fv)
			}
		}
	}
	walk(reflect.ValueOf(cfg))
	for k, v := range extra {
		vars[k] = v
	}
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// record is an input record: the event's JSON, keyed by lead.
func record(ev events.Event) kafka.Message { return testsvc.Record(ev) }

// topics is this test's Kafka helper.
func (e *env) topics() testsvc.Topics {
	return testsvc.Topics{T: e.t, Brokers: e.brokers, Transport: e.tr}
}

func (e *env) produce(msgs ...kafka.Message) { e.topics().Produce(e.cfg.Kafka.InputTopic, msgs...) }

// ensureTopics creates the test's topics before anything is produced.
func (e *env) ensureTopics() {
	e.t.Helper()
	k := e.cfg.Kafka
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var specs []kafkaadmin.TopicSpec
	for _, n := range []string{k.InputTopic, k.OutputTopic, k.DeadLetterTopic} {
		specs = append(specs, kafkaadmin.TopicSpec{Name: n, Partitions: k.Partitions, ReplicationFactor: 1})
	}
	if err := kafkaadmin.EnsureTopics(ctx, e.brokers, true, specs...); err != nil {
		e.t.Fatal(err)
	}
}

// readAll reads every record of a topic, from the first offset to the end.
func (e *env) readAll(topic string) []kafka.Message { return e.topics().ReadAll(topic) }

// waitNoLag waits until the group has committed everything produced.
func (e *env) waitNoLag(timeout time.Duration) {
	e.topics().WaitNoLag(e.cfg.Kafka.GroupID, e.cfg.Kafka.InputTopic, timeout)
}

func transitions(t *testing.T, msgs []kafka.Message) []sink.TransitionRecord {
	t.Helper()
	out := make([]sink.TransitionRecord, 0, len(msgs))
	for _, m := range msgs {
		var r sink.TransitionRecord
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatalf("transition record is not JSON: %v: %s", err, m.Value)
		}
		if string(m.Key) != r.LeadID {
			t.Errorf("transition key %q, lead_id %q", m.Key, r.LeadID)
		}
		out = append(out, r)
	}
	return out
}

// reference computes, without the service, the final state of every lead
// and every transition id, applying each lead's records (producer re-sends
// included) in produce order, once each: what a run without faults gives.
func reference(t *testing.T, cfg config.Config, evs []events.Event) (map[string]scorer.LeadState, map[string]bool) {
	t.Helper()
	m, err := scorer.NewModel(cfg.Rules, cfg.State.DedupeWindow, cfg.State.History)
	if err != nil {
		t.Fatal(err)
	}
	byLead := map[string][]scorer.Input{}
	for i := range evs {
		byLead[evs[i].LeadID] = append(byLead[evs[i].LeadID], scorer.Input{Event: &evs[i], Offset: int64(len(byLead[evs[i].LeadID]))})
	}
	states := map[string]scorer.LeadState{}
	ids := map[string]bool{}
	for lead, in := range byLead {
		var st scorer.LeadState
		for _, tr := range m.Apply(lead, &st, false, in, make([]scorer.Outcome, len(in)), nil) {
			ids[tr.ID] = true
		}
		states[lead] = st
	}
	return states, ids
}

// storedStates loads the given leads from the test's Redis prefix.
func (e *env) storedStates(leads []string) map[string]scorer.Stored {
	e.t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: e.redis})
	defer rdb.Close()
	ctx := context.Background()
	st, err := redisstore.New(ctx, rdb, e.cfg.Redis.KeyPrefix)
	if err != nil {
		e.t.Fatal(err)
	}
	got, err := st.Load(ctx, leads)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]scorer.Stored{}
	for i, l := range leads {
		out[l] = got[i]
	}
	return out
}

func getJSON(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if into != nil {
		_ = json.NewDecoder(resp.Body).Decode(into)
	}
	return resp.StatusCode
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}

// referenceTransitions describes each reference transition by id, for
// failure messages.
func referenceTransitions(t *testing.T, cfg config.Config, evs []events.Event) map[string]string {
	t.Helper()
	m, err := scorer.NewModel(cfg.Rules, cfg.State.DedupeWindow, cfg.State.History)
	if err != nil {
		t.Fatal(err)
	}
	byLead := map[string][]scorer.Input{}
	for i := range evs {
		byLead[evs[i].LeadID] = append(byLead[evs[i].LeadID], scorer.Input{Event: &evs[i], Offset: int64(len(byLead[evs[i].LeadID]))})
	}
	out := map[string]string{}
	for lead, in := range byLead {
		var st scorer.LeadState
		for i, tr := range m.Apply(lead, &st, false, in, make([]scorer.Outcome, len(in)), nil) {
			out[tr.ID] = fmt.Sprintf("#%d of %s: %s %s→%s by %s", i+1, lead, tr.Kind, tr.From, tr.To, tr.CauseEventID)
		}
	}
	return out
}

// startBinary starts the real leadscore binary on this test's topics, group
// and key prefix, with short session timeouts and small batches; extra
// LEADSCORE_* settings come last and win.
func (e *env) startBinary(bin string, extra ...string) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(bin, "run")
	cmd.Env = append(append(os.Environ(),
		"LEADSCORE_KAFKA_BROKERS="+strings.Join(e.brokers, ","),
		"LEADSCORE_REDIS_ADDR="+e.redis,
		"LEADSCORE_GROUP_ID="+e.cfg.Kafka.GroupID,
		"LEADSCORE_INPUT_TOPIC="+e.cfg.Kafka.InputTopic,
		"LEADSCORE_OUTPUT_TOPIC="+e.cfg.Kafka.OutputTopic,
		"LEADSCORE_DLQ_TOPIC="+e.cfg.Kafka.DeadLetterTopic,
		"LEADSCORE_REDIS_KEY_PREFIX="+e.cfg.Redis.KeyPrefix,
		"LEADSCORE_HTTP_ADDR=127.0.0.1:0",
		"LEADSCORE_KAFKA_SESSION_TIMEOUT=3s",
		"LEADSCORE_LOG_LEVEL=warn",
	), extra...)
	cmd.Stderr = &prefixWriter{t: e.t}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return cmd
}

// outcome is how the service's results compare with the reference.
type outcome struct {
	leads, mismatches    int
	expected, lost, dups int
}

// checkAgainstReference compares every lead's stored state and the set of
// transitions on the output topic with the reference computed from evs,
// reporting each difference (invented transitions included) as an error.
func (e *env) checkAgainstReference(evs []events.Event) outcome {
	t := e.t
	t.Helper()
	wantStates, wantIDs := reference(t, e.cfg, evs)
	describe := referenceTransitions(t, e.cfg, evs)
	got := e.storedStates(sortedKeys(wantStates))
	o := outcome{leads: len(wantStates), expected: len(wantIDs)}
	for lead, want := range wantStates {
		g := got[lead]
		if !g.Found || g.State.Eng != want.Eng || g.State.Band != want.Band || g.State.Stage != want.Stage || g.State.Events != want.Events {
			o.mismatches++
			if o.mismatches <= 5 {
				t.Errorf("%s: got score %v %s/%s after %d events, want %v %s/%s after %d",
					lead, g.State.Eng, g.State.Band, g.State.Stage, g.State.Events, want.Eng, want.Band, want.Stage, want.Events)
			}
		}
	}
	seen := map[string]int{}
	for _, tr := range transitions(t, e.readAll(e.cfg.Kafka.OutputTopic)) {
		seen[tr.TransitionID]++
		if !wantIDs[tr.TransitionID] {
			t.Errorf("invented transition %+v", tr)
		}
	}
	for id := range wantIDs {
		if seen[id] == 0 {
			o.lost++
			t.Errorf("lost transition %s", describe[id])
		}
	}
	for _, n := range seen {
		o.dups += n - 1
	}
	return o
}

// useRules makes the test's service score with a rules section written in YAML.
func (e *env) useRules(yaml string) {
	e.t.Helper()
	rules, err := config.ParseRules([]byte(yaml))
	if err != nil {
		e.t.Fatal(err)
	}
	e.cfg.Rules = rules
}
