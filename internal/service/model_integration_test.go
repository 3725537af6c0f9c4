package service_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/internal/service"
	"github.com/leadscore/leadscore/scorer"
)

// The scoring model's promises, end to end through real Kafka and Redis.

// TestCapStopsAnEmailOpenFlood sends 200 opens in one day for one lead: the
// default model caps opens at 5 points a day, so the lead ends at 5 (warm),
// having made exactly one transition.
func TestCapStopsAnEmailOpenFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	_, stop := e.start()
	defer stop()
	var msgs []kafka.Message
	for i := 0; i < 200; i++ {
		ev := event(fmt.Sprintf("open-%d", i), "flood", "email_open")
		ev.OccurredAt = now.Add(time.Duration(i) * time.Second)
		msgs = append(msgs, record(ev))
	}
	e.produce(msgs...)
	e.waitNoLag(60 * time.Second)

	st := e.storedStates([]string{"flood"})["flood"]
	m := mustModel(t, e.cfg)
	if got := m.ScoreAt(&st.State, now.Add(200*time.Second)); math.Abs(got-5) > 0.001 || st.State.Events != 200 {
		t.Errorf("score %v after %d events, want 5 after 200 (the daily cap)", got, st.State.Events)
	}
	got := transitions(t, e.readAll(e.cfg.Kafka.OutputTopic))
	if len(got) != 1 || got[0].From != "cold" || got[0].To != "warm" {
		t.Errorf("transitions = %+v, want one cold → warm", got)
	}
}

// TestOutOfOrderEventsGiveTheSameScore sends one journey, spread over three
// weeks, for two leads: in order for one, shuffled for the other. With a
// 30-day half-life the final scores must be equal. (The journey uses
// uncapped rules: a capped rule cannot judge an event more than one cap
// window late, the bound that keeps per-lead state small.)
func TestOutOfOrderEventsGiveTheSameScore(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	_, stop := e.start()
	defer stop()
	kinds := [][]string{{"download"}, {"webinar_registration"}, {"consultation_request"}, {"ad_click"},
		{"site_visit_booked"}, {"email_bounce"}, {"form_submit", "form", "documents"}}
	start := now.Add(-21 * 24 * time.Hour)
	var inOrder, shuffled []kafka.Message
	for i := 0; i < 40; i++ {
		k := kinds[i%len(kinds)]
		for _, lead := range []string{"ordered", "shuffled"} {
			ev := event(fmt.Sprintf("%s-%d", lead, i), lead, k[0], k[1:]...)
			ev.OccurredAt = start.Add(time.Duration(i) * 12 * time.Hour)
			if lead == "ordered" {
				inOrder = append(inOrder, record(ev))
			} else {
				shuffled = append(shuffled, record(ev))
			}
		}
	}
	rand.New(rand.NewSource(7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	e.produce(append(inOrder, shuffled...)...)
	e.waitNoLag(60 * time.Second)

	st := e.storedStates([]string{"ordered", "shuffled"})
	m := mustModel(t, e.cfg)
	ordered, shuffledSt := st["ordered"].State, st["shuffled"].State
	a, b := m.ScoreAt(&ordered, now), m.ScoreAt(&shuffledSt, now)
	if a == 0 || math.Abs(a-b) > 1e-9 {
		t.Errorf("in order %v, shuffled %v: want the same non-zero score", a, b)
	}
	t.Logf("both leads score %.6f after 40 events over 20 days, one of them shuffled", a)
}

// TestHysteresisPreventsFlapping moves a lead's score back and forth across
// warm's entry threshold (10) without going below its exit (7): one
// transition, not one per swing.
func TestHysteresisPreventsFlapping(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	e.useRules(`
rules:
  - {name: up, type: up, points: 3}
  - {name: down, type: down, points: -3}
bands:
  - {name: cold}
  - {name: warm, min: 10, exit: 7}
stages:
  - {name: lead}
`)
	_, stop := e.start()
	defer stop()
	var msgs []kafka.Message
	add := func(typ string) {
		msgs = append(msgs, record(event(fmt.Sprintf("h-%d", len(msgs)), "hover", typ)))
	}
	for i := 0; i < 4; i++ {
		add("up") // 3, 6, 9, 12: warm at 12
	}
	for i := 0; i < 20; i++ {
		add("down") // 9: below warm's entry (10), above its exit (7)
		add("up")   // 12: back above the entry — without hysteresis, a flap each time
	}
	e.produce(msgs...)
	e.waitNoLag(60 * time.Second)
	got := transitions(t, e.readAll(e.cfg.Kafka.OutputTopic))
	if len(got) != 1 || got[0].To != "warm" {
		t.Errorf("transitions = %+v, want exactly one cold → warm", got)
	}
}

func mustModel(t *testing.T, cfg config.Config) *scorer.Model {
	t.Helper()
	m, err := service.BuildModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
