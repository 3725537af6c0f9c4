package scorer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math"
	"path"
	"strconv"
	"strings"
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

// DecayEventType is the cause_event_type of a transition that decay caused
// with no new event.
const DecayEventType = "decay"

// Transition is one change of a lead's band or stage.
type Transition struct {
	ID             string // deterministic: see TransitionID
	LeadID         string
	Kind           Kind
	From, To       string
	Score          float64
	OccurredAt     time.Time // when the causing event happened, or when decay crossed the threshold
	CauseEventID   string    // the event, or "decay@<unix ms>" for a decay crossing
	CauseEventType string    // the event's type, or "decay"
	CauseRules     []string  // the rules the causing event matched
	RulesVersion   string
	// Replayed marks a transition re-published for a redelivered event: it
	// was emitted before, so metrics do not count it again. Not stored.
	Replayed bool
	// Save is the lead's LeadState.Saves when the transition was recorded
	// or last re-published: the history keeps it while it may still be
	// unpublished (see Model.SetInFlight). Stored, not published.
	Save uint64
}

// EnsureID derives t.ID if it is not set: a transition decoded from a
// stored history has none (see LeadState.UnmarshalBinary).
func (t *Transition) EnsureID() {
	if t.ID == "" {
		t.ID = TransitionID(t.LeadID, t.CauseEventID, t.Kind, t.From, t.To)
	}
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
	version  string
	halfLife time.Duration // 0: no decay
	byType   map[string][]*rule
	fit      []*rule         // fit rules, evaluated on the lead's attributes
	fitProps map[string]bool // properties fit rules read: kept per lead
	fitTypes map[string]bool // event types that carry profile attributes ("*": any)
	bands    []band
	stages   []stage
	recent   map[string]bool // event types some stage criterion asks "seen within"
	types    map[string]bool // every event type a rule or stage names
	window   int             // event ids remembered per lead
	history  int             // transitions remembered per lead
	keepFor  uint64          // saves a transition stays in the history past history (SetInFlight)
	changes  int             // score changes remembered per lead (explanations)
	top      int             // top contributing rules remembered per lead
}

type rule struct {
	name      string
	hash      uint32
	typ       string
	conds     []cond
	points    float64
	fit       bool
	firstTime bool
	capPoints float64
	capPer    int64 // window in ms; 0: no cap
}

type cond struct {
	prop     string
	equals   *string
	prefix   string
	glob     string
	in       map[string]bool
	exists   *bool
	gt, gte  *float64
	lt, lte  *float64
	numeric  bool
	original config.Condition
}

type band struct {
	name        string
	enter, exit float64
}

type stage struct {
	name     string
	from     map[int]bool
	criteria []criterion
	reset    bool // entering sets engagement to 0
}

type criterion struct {
	minScore *float64
	onEvents map[string]bool
	onRules  map[string]bool
	recent   []string
	within   time.Duration
}

// Bounds of what a lead keeps for explanations (see config.State).
const (
	defaultChanges = 10
	defaultTop     = 5
)

// NewModel compiles validated rules. dedupeWindow and history bound the
// per-lead state (see config.State).
func NewModel(r config.Rules, dedupeWindow, history int) (*Model, error) {
	if errs := r.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("rules: %w", errs[0])
	}
	m := &Model{
		version:  r.VersionOf(),
		halfLife: r.HalfLife.D(),
		byType:   map[string][]*rule{},
		fitProps: map[string]bool{},
		fitTypes: map[string]bool{},
		recent:   map[string]bool{},
		types:    map[string]bool{},
		window:   dedupeWindow,
		history:  history,
		keepFor:  UnpublishedSaves,
		changes:  defaultChanges,
		top:      defaultTop,
	}
	for _, x := range r.Rules {
		ru := &rule{name: x.Name, hash: hash32(x.Name), typ: x.Type, points: x.Points,
			fit: x.Score == config.ScoreFit, firstTime: x.FirstTimeOnly}
		if x.Cap != nil {
			ru.capPoints, ru.capPer = x.Cap.Points, x.Cap.Per.D().Milliseconds()
		}
		for k, v := range x.When {
			v := v
			ru.conds = append(ru.conds, compileCond(config.Condition{Property: k, Equals: &v}))
		}
		for _, c := range x.Conditions {
			ru.conds = append(ru.conds, compileCond(c))
		}
		if ru.fit {
			m.fit = append(m.fit, ru)
			m.fitTypes[x.Type] = true
			for _, c := range ru.conds {
				m.fitProps[c.prop] = true
			}
		} else {
			m.byType[x.Type] = append(m.byType[x.Type], ru)
		}
		if x.Type != "*" {
			m.types[x.Type] = true
		}
	}
	for i, b := range r.Bands {
		bd := band{name: b.Name, enter: b.Min, exit: b.Min}
		if b.Exit != nil {
			bd.exit = *b.Exit
		}
		if i == 0 {
			bd.enter, bd.exit = math.Inf(-1), math.Inf(-1)
		}
		m.bands = append(m.bands, bd)
	}
	idx := map[string]int{}
	for i, s := range r.Stages {
		idx[s.Name] = i
	}
	for i, s := range r.Stages {
		st := stage{name: s.Name, from: map[int]bool{}, reset: s.ResetEngagement}
		if i > 0 {
			for _, f := range r.StageFrom(i) {
				st.from[idx[f]] = true
			}
		}
		if s.MinScore != nil {
			st.criteria = append(st.criteria, criterion{minScore: s.MinScore})
		}
		if len(s.OnEvents) > 0 {
			st.criteria = append(st.criteria, criterion{onEvents: set(s.OnEvents)})
		}
		for _, c := range s.EnterWhen {
			cr := criterion{minScore: c.MinScore, onRules: set(c.OnRules), recent: c.RecentEvents, within: c.Within.D()}
			if len(c.OnEvents) > 0 {
				cr.onEvents = set(c.OnEvents)
			}
			st.criteria = append(st.criteria, cr)
			for _, t := range c.RecentEvents {
				m.recent[t] = true
				m.types[t] = true
			}
		}
		for _, c := range st.criteria {
			for t := range c.onEvents {
				m.types[t] = true
			}
		}
		m.stages = append(m.stages, st)
	}
	return m, nil
}

func set(xs []string) map[string]bool {
	if len(xs) == 0 {
		return nil
	}
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

func compileCond(c config.Condition) cond {
	out := cond{prop: c.Property, equals: c.Equals, prefix: c.Prefix, glob: c.Glob, exists: c.Exists,
		gt: c.GT, gte: c.GTE, lt: c.LT, lte: c.LTE, original: c}
	out.numeric = c.GT != nil || c.GTE != nil || c.LT != nil || c.LTE != nil
	if len(c.In) > 0 {
		out.in = set(c.In)
	}
	return out
}

// holds reports whether the condition holds for a property value (ok:
// whether the property is present).
func (c *cond) holds(v string, ok bool) bool {
	if c.exists != nil && *c.exists != ok {
		return false
	}
	if !ok {
		return c.exists != nil // only "exists: false" holds for an absent property
	}
	if c.equals != nil && v != *c.equals {
		return false
	}
	if c.prefix != "" && !strings.HasPrefix(v, c.prefix) {
		return false
	}
	if c.glob != "" {
		if m, _ := path.Match(c.glob, v); !m {
			return false
		}
	}
	if c.in != nil && !c.in[v] {
		return false
	}
	if c.numeric {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(n) {
			return false
		}
		if c.gt != nil && !(n > *c.gt) || c.gte != nil && !(n >= *c.gte) ||
			c.lt != nil && !(n < *c.lt) || c.lte != nil && !(n <= *c.lte) {
			return false
		}
	}
	return true
}

func (r *rule) matches(props map[string]string) bool {
	for i := range r.conds {
		v, ok := props[r.conds[i].prop]
		if !r.conds[i].holds(v, ok) {
			return false
		}
	}
	return true
}

// Version is the rules version that transitions carry.
func (m *Model) Version() string { return m.version }

// HalfLife is the engagement score's half-life; 0 when it does not decay.
func (m *Model) HalfLife() time.Duration { return m.halfLife }

// Known reports whether any rule or stage names this event type; metrics use
// it to keep label values bounded.
func (m *Model) Known(eventType string) bool { return m.types[eventType] }

// Points returns what an event earns from engagement rules on a lead with no
// history: the sum over every matching rule, before caps and decay.
func (m *Model) Points(e *events.Event) float64 {
	var p float64
	for _, r := range m.byType[e.Type] {
		if r.matches(e.Properties) {
			p += r.points
		}
	}
	return p
}

// bandFor returns the band a score puts a lead in, given its current band:
// up to the highest band whose min the score reaches; down, only when the
// score falls below the current band's exit, to the highest lower band
// whose exit the score still reaches.
func (m *Model) bandFor(cur int, score float64) int {
	for j := len(m.bands) - 1; j > cur; j-- {
		if score >= m.bands[j].enter {
			return j
		}
	}
	if cur > 0 && score < m.bands[cur].exit {
		for j := cur - 1; j > 0; j-- {
			if score >= m.bands[j].exit {
				return j
			}
		}
		return 0
	}
	return cur
}

func (m *Model) bandIndex(name string) int {
	for i, b := range m.bands {
		if b.name == name {
			return i
		}
	}
	return 0 // a band the rules no longer have: start again from the bottom
}

func (m *Model) stageIndex(name string) int {
	for i, s := range m.stages {
		if s.name == name {
			return i
		}
	}
	return 0
}
