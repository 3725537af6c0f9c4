package rescore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
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
	"github.com/leadscore/leadscore/internal/rescore"
	"github.com/leadscore/leadscore/internal/service"
	"github.com/leadscore/leadscore/internal/testsvc"
	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sink"
)

// env is one test's private slice of the real services: its own topics,
// group and key prefix.
type env struct {
	t       *testing.T
	brokers []string
	cfg     config.Config
	rdb     *redis.Client
	tr      *kafka.Transport // its own: DefaultTransport caches metadata for 6 s
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test")
	}
	cfg, tr := testsvc.Config(t, "rs")
	brokers, redisAddr := cfg.Kafka.Brokers, cfg.Redis.Addr
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	e := &env{t: t, brokers: brokers, cfg: cfg, rdb: rdb, tr: tr}
	t.Cleanup(func() {
		st, err := redisstore.New(context.Background(), rdb, cfg.Redis.KeyPrefix)
		if err == nil {
			_, _ = st.DeleteAll(context.Background())
		}
		_ = rdb.Close()
		tr.CloseIdleConnections()
	})
	k := cfg.Kafka
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var specs []kafkaadmin.TopicSpec
	for _, n := range []string{k.InputTopic, k.OutputTopic, k.DeadLetterTopic} {
		specs = append(specs, kafkaadmin.TopicSpec{Name: n, Partitions: k.Partitions, ReplicationFactor: 1})
	}
	if err := kafkaadmin.EnsureTopics(ctx, brokers, true, specs...); err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs the service in-process until the returned stop is called.
func (e *env) start() (stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, e.cfg, zaptest.NewLogger(e.t).Named("svc"),
			service.Options{Started: func(string) { started <- struct{}{} }})
	}()
	select {
	case <-started:
		return func() {
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
	return nil
}

// topics is this test's Kafka helper.
func (e *env) topics() testsvc.Topics {
	return testsvc.Topics{T: e.t, Brokers: e.brokers, Transport: e.tr}
}

func (e *env) produce(msgs ...kafka.Message) { e.topics().Produce(e.cfg.Kafka.InputTopic, msgs...) }

// waitNoLag waits until the group has committed everything produced.
func (e *env) waitNoLag(timeout time.Duration) {
	e.topics().WaitNoLag(e.cfg.Kafka.GroupID, e.cfg.Kafka.InputTopic, timeout)
}

// transitions reads every transition on the output topic.
func (e *env) transitions() []sink.TransitionRecord {
	return e.topics().Transitions(e.cfg.Kafka.OutputTopic)
}

// rescored keeps the transitions a rescore published.
func rescored(ts []sink.TransitionRecord) []sink.TransitionRecord {
	var out []sink.TransitionRecord
	for _, t := range ts {
		if t.CauseEventType == rescore.CauseEventType {
			out = append(out, t)
		}
	}
	return out
}

func (e *env) store(prefix string) *redisstore.Store {
	e.t.Helper()
	st, err := redisstore.New(context.Background(), e.rdb, prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) live(leads []string) map[string]scorer.Stored {
	e.t.Helper()
	got, err := e.store(e.cfg.Redis.KeyPrefix).Load(context.Background(), leads)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]scorer.Stored{}
	for i, l := range leads {
		out[l] = got[i]
	}
	return out
}

// keys counts the keys under a prefix.
func (e *env) keys(prefix string) int {
	e.t.Helper()
	n := 0
	iter := e.rdb.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	if err := iter.Err(); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// journeys makes nLeads leads' events, a few each, at instants just before
// now: page views (which the new rules value more), pricing views, email
// opens, downloads, forms and chats.
func journeys(nLeads int, now time.Time) []events.Event {
	rng := mrand.New(mrand.NewPCG(7, 11))
	type step struct {
		typ   string
		props map[string]string
	}
	steps := []step{
		{"page_view", map[string]string{"page": "/blog/x"}},
		{"page_view", map[string]string{"page": "/blog/y"}},
		{"page_view", map[string]string{"page": "pricing"}},
		{"email_open", nil},
		{"download", nil},
		{"form_submit", map[string]string{"form": "documents"}},
		{"chat_message", nil},
		{"ad_click", nil},
	}
	var evs []events.Event
	for i := range nLeads {
		lead := fmt.Sprintf("lead-%02d", i)
		n := 1 + rng.IntN(5)
		for j := range n {
			s := steps[rng.IntN(len(steps))]
			if i%3 == 0 {
				s = steps[rng.IntN(2)] // a third of the leads only read the blog
			}
			evs = append(evs, events.Event{ID: fmt.Sprintf("%s-%d", lead, j), LeadID: lead, Type: s.typ,
				OccurredAt: now.Add(time.Duration(j-n) * time.Minute), Properties: s.props})
		}
	}
	return evs
}

func record(ev events.Event) kafka.Message { return testsvc.Record(ev) }

// reference computes each lead's final state under rules, applying its
// events in produce order, without the service.
func reference(t *testing.T, cfg config.Config, rules config.Rules, evs []events.Event) (*scorer.Model, map[string]scorer.LeadState) {
	t.Helper()
	m, err := scorer.NewModel(rules, cfg.State.DedupeWindow, cfg.State.History)
	if err != nil {
		t.Fatal(err)
	}
	byLead := map[string][]scorer.Input{}
	for i := range evs {
		byLead[evs[i].LeadID] = append(byLead[evs[i].LeadID], scorer.Input{Event: &evs[i], Offset: int64(len(byLead[evs[i].LeadID]))})
	}
	states := map[string]scorer.LeadState{}
	for lead, in := range byLead {
		var st scorer.LeadState
		m.Apply(lead, &st, false, in, make([]scorer.Outcome, len(in)), nil)
		states[lead] = st
	}
	return m, states
}

// pageViewsWorthMore is the default rules with a page view worth 6 instead
// of 1, under version "pv6".
func pageViewsWorthMore(t *testing.T, r config.Rules) config.Rules {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out config.Rules
	if err := json.Unmarshal(b, &out); err != nil { // a deep copy
		t.Fatal(err)
	}
	found := false
	for i := range out.Rules {
		if out.Rules[i].Name == "page-view" {
			out.Rules[i].Points, out.Rules[i].Cap = 6, nil
			found = true
		}
	}
	if !found {
		t.Fatal("the default rules have no page-view rule")
	}
	out.Version = "pv6"
	return out
}

type move struct {
	kind     scorer.Kind
	from, to string
}

// TestRescoreDryRunThenSwitch scores 50 leads with the live service, then
// rescores them under rules where a page view is worth more: the dry run
// reports what a reference computed without the service predicts and changes
// nothing; the switch publishes exactly the net transitions and leaves the
// new model's states live; a second switch publishes nothing new.
func TestRescoreDryRunThenSwitch(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	evs := journeys(50, now)
	var msgs []kafka.Message
	for _, ev := range evs {
		msgs = append(msgs, record(ev))
	}
	msgs = append(msgs, record(evs[3])) // a producer re-sends an event
	msgs = append(msgs,
		kafka.Message{Key: []byte("bad-1"), Value: []byte(`{"event_id":"x","lead_id":`)},
		kafka.Message{Key: []byte("bad-2"), Value: []byte(`{"event_id":"x","type":"email_open","occurred_at":"2026-01-01T00:00:00Z"}`)})
	producedAt := time.Now()
	e.produce(msgs...)
	stop := e.start()
	e.waitNoLag(60 * time.Second)
	stop()

	newRules := pageViewsWorthMore(t, e.cfg.Rules)
	_, oldRef := reference(t, e.cfg, e.cfg.Rules, evs)
	newModel, newRef := reference(t, e.cfg, newRules, evs)
	leads := make([]string, 0, len(oldRef))
	for l := range oldRef {
		leads = append(leads, l)
	}
	sort.Strings(leads)
	wantIDs := map[string]move{}
	wantMoves := map[move]int{}
	for _, l := range leads {
		o, n := oldRef[l], newRef[l]
		for _, mv := range []move{{scorer.KindBand, o.Band, n.Band}, {scorer.KindStage, o.Stage, n.Stage}} {
			if mv.from != mv.to {
				wantIDs[scorer.TransitionID(l, "rescore@pv6", mv.kind, mv.from, mv.to)] = mv
				wantMoves[mv]++
			}
		}
	}
	if len(wantIDs) == 0 {
		t.Fatal("the test's rules change no band or stage: it would prove nothing")
	}
	t.Logf("reference: %d net transitions %v", len(wantIDs), wantMoves)

	// The live state is the old rules' reference.
	before := e.live(leads)
	for _, l := range leads {
		if s := before[l]; !s.Found || s.State.Band != oldRef[l].Band || s.State.Stage != oldRef[l].Stage {
			t.Fatalf("live %s: %+v, want band %s stage %s", l, s, oldRef[l].Band, oldRef[l].Stage)
		}
	}
	// A lead scored live whose events are gone from the replay window.
	ghost := scorer.LeadState{Band: "warm", Stage: "mql", Eng: 7, Ref: now, Clock: now, Events: 3}
	if ok, err := e.store(e.cfg.Redis.KeyPrefix).Save(context.Background(), []scorer.Write{{LeadID: "ghost", State: &ghost}}); err != nil || !ok[0] {
		t.Fatalf("write ghost lead: %v %v", ok, err)
	}
	liveTransitions := len(e.transitions())
	scratch := rescore.ScratchPrefix(e.cfg.Redis.KeyPrefix, "pv6")

	// Dry run.
	ctx := context.Background()
	var out bytes.Buffer
	rep, err := rescore.Run(ctx, rescore.Options{Config: e.cfg, Rules: &newRules, Out: &out, Batch: 16})
	t.Logf("dry run output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, len(leads), wantMoves)
	if rep.Switched || rep.Published != 0 {
		t.Errorf("a dry run switched: %+v", rep)
	}
	if !strings.HasSuffix(out.String(), "Nothing changed. Run again with --switch to apply rules version pv6.\n") {
		t.Errorf("dry run output does not end with the advice")
	}
	after := e.live(leads)
	for _, l := range leads {
		if after[l].Version != before[l].Version || after[l].State.Band != before[l].State.Band || after[l].State.Eng != before[l].State.Eng {
			t.Errorf("dry run changed live lead %s: %+v → %+v", l, before[l], after[l])
		}
	}
	if n := e.keys(scratch); n != 0 {
		t.Errorf("%d scratch keys left under %s after a dry run", n, scratch)
	}
	if n := len(e.transitions()); n != liveTransitions {
		t.Errorf("dry run published %d transitions", n-liveTransitions)
	}

	// Switch.
	out.Reset()
	switchAt := time.Now()
	rep, err = rescore.Run(ctx, rescore.Options{Config: e.cfg, Rules: &newRules, Out: &out, Switch: true})
	t.Logf("switch output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, len(leads), wantMoves)
	if !rep.Switched || rep.Published != len(wantIDs) {
		t.Errorf("switch published %d, want %d", rep.Published, len(wantIDs))
	}
	if !strings.Contains(out.String(), fmt.Sprintf("Switched to rules version pv6: %d net transitions published.", len(wantIDs))) {
		t.Error("switch output lacks its summary line")
	}
	got := rescored(e.transitions())
	if len(got) != len(wantIDs) {
		t.Errorf("%d rescore transitions on the output topic, want %d", len(got), len(wantIDs))
	}
	for _, tr := range got {
		mv, ok := wantIDs[tr.TransitionID]
		if !ok {
			t.Errorf("unexpected transition %+v", tr)
			continue
		}
		if string(mv.kind) != tr.Kind || mv.from != tr.From || mv.to != tr.To || tr.RulesVersion != "pv6" ||
			tr.CauseEventID != "rescore@pv6" || tr.OccurredAt.Before(switchAt.Add(-time.Second)) {
			t.Errorf("transition %+v, want %+v", tr, mv)
		}
	}
	switched := e.live(append(leads, "ghost"))
	for _, l := range leads {
		s, want := switched[l], newRef[l]
		if s.State.Band != want.Band || s.State.Stage != want.Stage || s.State.Events != want.Events ||
			math.Abs(newModel.ScoreAt(&s.State, now)-newModel.ScoreAt(&want, now)) > 1e-9 {
			t.Errorf("live %s after the switch: band %s stage %s events %d score %.3f; want %s %s %d %.3f", l,
				s.State.Band, s.State.Stage, s.State.Events, newModel.ScoreAt(&s.State, now),
				want.Band, want.Stage, want.Events, newModel.ScoreAt(&want, now))
		}
		if s.Version != before[l].Version+1 {
			t.Errorf("live %s: version %d, want %d (one compare-and-set)", l, s.Version, before[l].Version+1)
		}
	}
	if g := switched["ghost"].State; g.Band != "warm" || g.Stage != "mql" || g.Eng != 7 {
		t.Errorf("the lead only in the live state changed: %+v", g)
	}
	if n := e.keys(scratch); n != 0 {
		t.Errorf("%d scratch keys left under %s after a switch", n, scratch)
	}

	// A switch run again after it finished finds nothing to publish.
	out.Reset()
	rep, err = rescore.Run(ctx, rescore.Options{Config: e.cfg, Rules: &newRules, Out: &out, Switch: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Published != 0 || rep.Changed != 0 {
		t.Errorf("second switch: published %d, changed %d; want none", rep.Published, rep.Changed)
	}
	if n := len(rescored(e.transitions())); n != len(wantIDs) {
		t.Errorf("after a second switch %d rescore transitions, want %d", n, len(wantIDs))
	}

	// A switch that crashed after publishing, before overwriting: the live
	// states are the old ones again. Running it again publishes the very
	// same ids (consumers drop the copies) and finishes the switch.
	var undo []scorer.Write
	current := e.live(leads)
	for _, l := range leads {
		st := before[l].State
		undo = append(undo, scorer.Write{LeadID: l, Version: current[l].Version, State: &st})
	}
	if ok, err := e.store(e.cfg.Redis.KeyPrefix).Save(ctx, undo); err != nil || slices.Contains(ok, false) {
		t.Fatalf("restore the old live states: %v %v", ok, err)
	}
	rep, err = rescore.Run(ctx, rescore.Options{Config: e.cfg, Rules: &newRules, Out: &out, Switch: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Published != len(wantIDs) {
		t.Errorf("switch after a crash published %d, want %d", rep.Published, len(wantIDs))
	}
	again := rescored(e.transitions())
	ids := map[string]int{}
	for _, tr := range again {
		ids[tr.TransitionID]++
	}
	if len(again) != 2*len(wantIDs) || len(ids) != len(wantIDs) {
		t.Errorf("after a crashed switch and a re-run: %d rescore transitions with %d distinct ids; want %d with %d",
			len(again), len(ids), 2*len(wantIDs), len(wantIDs))
	}
	for id, n := range ids {
		if _, ok := wantIDs[id]; !ok || n != 2 {
			t.Errorf("transition %s published %d times (expected: %v)", id, n, ok)
		}
	}
	for l, s := range e.live(leads) {
		if s.State.Band != newRef[l].Band || s.State.Stage != newRef[l].Stage {
			t.Errorf("live %s after the re-run: %s/%s, want %s/%s", l, s.State.Band, s.State.Stage, newRef[l].Band, newRef[l].Stage)
		}
	}

	// From a time before every record: all of them, as from the beginning.
	out.Reset()
	rep, err = rescore.Run(ctx, rescore.Options{Config: e.cfg, Rules: &newRules, Out: &out, From: producedAt.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != int64(len(msgs)) || rep.Leads != len(leads) || rep.Changed != 0 {
		t.Errorf("--from before the first record: records %d, leads %d, changed %d; want %d, %d, 0", rep.Records, rep.Leads, rep.Changed, len(msgs), len(leads))
	}

	// From a time after every record: nothing to replay, every lead is only live.
	out.Reset()
	rep, err = rescore.Run(ctx, rescore.Options{Config: e.cfg, Rules: &newRules, Out: &out, From: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 0 || rep.Leads != 0 || rep.OnlyLive != len(leads)+1 {
		t.Errorf("--from after the last record: records %d, leads %d, only live %d; want 0, 0, %d", rep.Records, rep.Leads, rep.OnlyLive, len(leads)+1)
	}
}

func checkReport(t *testing.T, rep rescore.Report, leads int, want map[move]int) {
	t.Helper()
	if rep.Leads != leads || rep.NewLeads != 0 || rep.OnlyLive != 1 || rep.OnlyLiveExamples[0] != "ghost" {
		t.Errorf("report: leads %d (new %d), only live %d %v; want %d, 0 new, 1 [ghost]", rep.Leads, rep.NewLeads, rep.OnlyLive, rep.OnlyLiveExamples, leads)
	}
	if rep.Invalid != 2 || rep.Duplicates != 1 {
		t.Errorf("report: invalid %d, duplicates %d; want 2, 1", rep.Invalid, rep.Duplicates)
	}
	got := map[move]int{}
	for _, c := range rep.Band {
		got[move{scorer.KindBand, c.From, c.To}] = c.Leads
	}
	for _, c := range rep.Stage {
		got[move{scorer.KindStage, c.From, c.To}] = c.Leads
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("report moves %v, want %v", got, want)
	}
}

// TestSwitchRefusedWhileTheGroupIsActive: a switch with the service running
// would race it for the live state, so it is refused before anything is
// read or written.
func TestSwitchRefusedWhileTheGroupIsActive(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	e.produce(record(events.Event{ID: "e1", LeadID: "l1", Type: "page_view", OccurredAt: now}))
	stop := e.start()
	defer stop()
	e.waitNoLag(60 * time.Second)

	newRules := pageViewsWorthMore(t, e.cfg.Rules)
	var out bytes.Buffer
	_, err := rescore.Run(context.Background(), rescore.Options{Config: e.cfg, Rules: &newRules, Out: &out, Switch: true})
	if !errors.Is(err, rescore.ErrGroupActive) {
		t.Fatalf("switch with the service running: %v, want ErrGroupActive", err)
	}
	t.Logf("refusal: %v", err)
	if !strings.Contains(err.Error(), "Stop every leadscore process") {
		t.Errorf("the refusal does not say what to do: %v", err)
	}
	if n := e.keys(rescore.ScratchPrefix(e.cfg.Redis.KeyPrefix, "pv6")); n != 0 {
		t.Errorf("%d scratch keys written by a refused switch", n)
	}

	// A dry run is fine while the service runs, and says so.
	rep, err := rescore.Run(context.Background(), rescore.Options{Config: e.cfg, Rules: &newRules, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if rep.GroupMembers == 0 || rep.Leads != 1 {
		t.Errorf("dry run with the service running: members %d, leads %d", rep.GroupMembers, rep.Leads)
	}
}
