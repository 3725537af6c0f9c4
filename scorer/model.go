package scorer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/events"
)

// Kind says what a transition changes.
type Kind string

// The two kinds of transition.
const (
	KindBand  Kind = "band"
	KindStage Kind = "stage"
)

// Transition is one change of a lead's band or stage.
type Transition struct {
	ID             string // deterministic: see TransitionID
	LeadID         string
	Kind           Kind
	From, To       string
	Score          float64
	OccurredAt     time.Time // when the causing event happened
	CauseEventID   string
	CauseEventType string
	RulesVersion   string
	// Replayed marks a transition re-published for a redelivered event: it
	// was emitted before, so metrics do not count it again. Not stored.
	Replayed bool
}

// TransitionID derives a transition's id from what caused it, so the same
// input history yields the same id in any process, run or replay.
func TransitionID(leadID, causeEventID string, kind Kind, from, to string) string {
	h := sha256.New()
	for _, s := range []string{leadID, causeEventID, string(kind), from, to} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// Model is a compiled, immutable scoring model. Safe for concurrent use.
type Model struct {
	version string
	rules   map[string][]rule // by event type
	bands   []config.Band
	stages  []stage
	types   map[string]bool // every event type a rule or stage names
	window  int             // event ids remembered per lead
	history int             // transitions remembered per lead
}

type rule struct {
	name   string
	when   map[string]string
	points float64
}

type stage struct {
	name     string
	minScore float64 // +Inf when the stage has no score threshold
	onEvents map[string]bool
}

// NewModel compiles validated rules. dedupeWindow and history bound the
// per-lead state (see config.State).
func NewModel(r config.Rules, dedupeWindow, history int) (*Model, error) {
	if errs := r.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("rules: %w", errs[0])
	}
	m := &Model{
		version: r.VersionOf(),
		rules:   map[string][]rule{},
		bands:   r.Bands,
		types:   map[string]bool{},
		window:  dedupeWindow,
		history: history,
	}
	for _, x := range r.Rules {
		m.rules[x.Type] = append(m.rules[x.Type], rule{name: x.Name, when: x.When, points: x.Points})
		m.types[x.Type] = true
	}
	for _, s := range r.Stages {
		st := stage{name: s.Name, minScore: math.Inf(1), onEvents: map[string]bool{}}
		if s.MinScore != nil {
			st.minScore = *s.MinScore
		}
		for _, t := range s.OnEvents {
			st.onEvents[t] = true
			m.types[t] = true
		}
		m.stages = append(m.stages, st)
	}
	return m, nil
}

// Version is the rules version that transitions carry.
func (m *Model) Version() string { return m.version }

// Known reports whether any rule or stage names this event type; metrics use
// it to keep label values bounded.
func (m *Model) Known(eventType string) bool { return m.types[eventType] }

// Points returns what an event earns: the sum over every matching rule.
func (m *Model) Points(e *events.Event) float64 {
	var p float64
	for _, r := range m.rules[e.Type] {
		if matches(r.when, e.Properties) {
			p += r.points
		}
	}
	return p
}

func matches(when, props map[string]string) bool {
	for k, v := range when {
		if props[k] != v {
			return false
		}
	}
	return true
}

// band returns the index of the highest band whose minimum the score reaches.
func (m *Model) band(score float64) int {
	for i := len(m.bands) - 1; i > 0; i-- {
		if score >= m.bands[i].Min {
			return i
		}
	}
	return 0
}

func (m *Model) bandIndex(name string) int {
	for i, b := range m.bands {
		if b.Name == name {
			return i
		}
	}
	return -1
}

func (m *Model) stageIndex(name string) int {
	for i, s := range m.stages {
		if s.name == name {
			return i
		}
	}
	return -1
}

// stageFor returns the furthest stage that the score or the event qualifies for.
func (m *Model) stageFor(score float64, eventType string) int {
	for i := len(m.stages) - 1; i > 0; i-- {
		s := m.stages[i]
		if score >= s.minScore || s.onEvents[eventType] {
			return i
		}
	}
	return 0
}
