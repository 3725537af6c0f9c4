package scorer

import (
	"math"
	"strconv"
	"time"

	"github.com/leadscore/leadscore/events"
)

// Input is one decoded event and where it was read from.
type Input struct {
	Event     *events.Event
	Partition int32
	Offset    int64
}

// Outcome says what applying an event did.
type Outcome uint8

// Outcomes of Apply, one per input.
const (
	// OutcomeScored: the event was applied.
	OutcomeScored Outcome = iota
	// OutcomeDuplicate: the lead had this event_id already (a producer re-sent it).
	OutcomeDuplicate
	// OutcomeRedelivered: this very record was applied before (a crash or a
	// rebalance redelivered it); its transitions are re-published.
	OutcomeRedelivered
)

func (o Outcome) String() string {
	switch o {
	case OutcomeScored:
		return "scored"
	case OutcomeDuplicate:
		return "duplicate"
	case OutcomeRedelivered:
		return "redelivered"
	}
	return "unknown"
}

// maxAttrBytes bounds a stored profile attribute.
const maxAttrBytes = 128

// Apply applies one lead's events, in order, to its state. It is pure: the
// same state and inputs always give the same result. found says whether the
// state existed; a new lead starts in the lowest band and the first stage
// without a transition. Apply writes one outcome per input into outcomes
// (len(outcomes) == len(in)) and appends the transitions to emit to out:
// new ones, and the recorded ones of redelivered events.
func (m *Model) Apply(leadID string, st *LeadState, found bool, in []Input, outcomes []Outcome, out []Transition) []Transition {
	if !found {
		*st = LeadState{Band: m.bands[0].name, Stage: m.stages[0].name}
	}
	st.Saves++
	for i := range in {
		x := &in[i]
		if m.redelivered(st, x) {
			outcomes[i] = OutcomeRedelivered
			// A corrupt record is dropped: the transitions that did decode
			// are still re-published.
			_ = st.DecodeLists(leadID)
			for j := range st.History {
				if h := &st.History[j]; h.CauseEventID == x.Event.ID {
					// Re-published by this save: kept as long as one of it.
					h.Save = st.Saves
					t := *h
					t.Replayed = true
					t.EnsureID()
					out = append(out, t)
				}
			}
			continue
		}
		if !m.remember(st, eventHash(x.Event.ID)) {
			outcomes[i] = OutcomeDuplicate
			continue
		}
		outcomes[i] = OutcomeScored
		out = m.score(leadID, st, x.Event, out)
	}
	return out
}

// redelivered reports whether the record was applied before, and otherwise
// raises the partition's watermark to it.
func (m *Model) redelivered(st *LeadState, x *Input) bool {
	for i := range st.Watermarks {
		w := &st.Watermarks[i]
		if w.Partition == x.Partition {
			if x.Offset <= w.Offset {
				return true
			}
			w.Offset = x.Offset
			return false
		}
	}
	st.Watermarks = append(st.Watermarks, Watermark{Partition: x.Partition, Offset: x.Offset})
	return false
}

// remember adds an event id hash to the lead's window, reporting false when
// it is there already.
func (m *Model) remember(st *LeadState, h uint64) bool {
	for _, r := range st.Recent {
		if r == h {
			return false
		}
	}
	st.Recent = appendBounded(st.Recent, h, m.window)
	return true
}

// appendBounded appends x, dropping the oldest elements beyond max.
func appendBounded[T any](s []T, x T, max int) []T {
	if len(s) >= max {
		n := copy(s, s[len(s)-max+1:])
		s = s[:n]
	}
	return append(s, x)
}

// ScoreAt returns the lead's combined score at time t: the engagement score
// decayed to t, plus the fit score.
func (m *Model) ScoreAt(st *LeadState, t time.Time) float64 {
	return st.Eng*m.decay(st.Ref, t) + st.Fit
}

// judged is the score bands and stages compare with thresholds: rounded to
// the hundredths it is shown in, so that five opens a few seconds apart
// (4.99999 after decay) make the 5 they look like.
func judged(score float64) float64 { return math.Round(score*100) / 100 }

// judgedHalf is half a hundredth: judged(s) < x ⇔ s < x − judgedHalf.
const judgedHalf = 0.005

// decay returns the factor a score at from has shrunk by at to (above 1
// when to is before from).
func (m *Model) decay(from, to time.Time) float64 {
	if m.halfLife == 0 || from.IsZero() || from.Equal(to) {
		return 1
	}
	return math.Exp2(-float64(to.Sub(from)) / float64(m.halfLife))
}

func (m *Model) score(leadID string, st *LeadState, e *events.Event, out []Transition) []Transition {
	te := e.OccurredAt
	now := te
	if st.Clock.After(now) {
		now = st.Clock // a late event is judged at the lead's present, not its own past
	}
	before := m.ScoreAt(st, now)

	var matched []string
	for _, r := range m.byType[e.Type] {
		if !r.matches(e.Properties) {
			continue
		}
		pts := r.points
		if r.firstTime {
			if containsHash(st.Fired, r.hash) {
				continue
			}
			st.Fired = append(st.Fired, r.hash)
		}
		if r.capPer > 0 {
			pts = m.capped(st, r, te, pts)
		}
		matched = append(matched, r.name)
		if pts != 0 {
			m.addEngagement(st, r.name, pts, te)
		}
	}
	m.updateAttrs(st, e)
	if m.recent[e.Type] {
		st.Seen = upsertSeen(st.Seen, e.Type, te)
	}
	st.Events++
	if st.FirstSeen.IsZero() || te.Before(st.FirstSeen) {
		st.FirstSeen = te
	}
	if te.After(st.LastEventAt) {
		st.LastEventAt = te
	}
	st.Clock = now

	score := judged(m.ScoreAt(st, now))
	st.appendChangeBounded(Change{EventID: e.ID, Type: e.Type, Rules: matched,
		Delta: score - judged(before), Score: score, At: te}, m.changes)

	cause := cause{id: e.ID, typ: e.Type, rules: matched, at: te}
	if to := m.bands[m.bandFor(m.bandIndex(st.Band), score)].name; to != st.Band {
		out = m.emit(leadID, st, cause, KindBand, st.Band, to, score, out)
		st.Band = to
	}
	cur := m.stageIndex(st.Stage)
	if next := m.nextStage(st, cur, score, e.Type, matched, now); next != cur {
		to := m.stages[next].name
		out = m.emit(leadID, st, cause, KindStage, st.Stage, to, score, out)
		st.Stage = to
		if m.stages[next].reset {
			// Back to nurture: the behaviour that qualified the lead no
			// longer counts; the band follows the score that is left.
			st.Eng, st.Ref, st.Top = 0, now, nil
			score = judged(m.ScoreAt(st, now))
			if to := m.bands[m.bandFor(m.bandIndex(st.Band), score)].name; to != st.Band {
				out = m.emit(leadID, st, cause, KindBand, st.Band, to, score, out)
				st.Band = to
			}
		}
	}
	return out
}

// capped returns how many of pts a capped rule may still give in the
// event's window. Windows are counted by occurred_at; the lead keeps the
// last two per rule, so an event more than a window late gets nothing.
// Negative points are never capped.
func (m *Model) capped(st *LeadState, r *rule, te time.Time, pts float64) float64 {
	if pts <= 0 {
		return pts
	}
	w := te.UnixMilli() / r.capPer
	latest := int64(math.MinInt64)
	for _, c := range st.Caps {
		if c.Rule == r.hash && c.Window > latest {
			latest = c.Window
		}
	}
	if latest != math.MinInt64 && w < latest-1 {
		return 0
	}
	// Keep this rule's windows w-1 and later (and every other rule's).
	kept := st.Caps[:0]
	for _, c := range st.Caps {
		if c.Rule != r.hash || c.Window >= max(w, latest)-1 {
			kept = append(kept, c)
		}
	}
	st.Caps = kept
	for i := range st.Caps {
		c := &st.Caps[i]
		if c.Rule == r.hash && c.Window == w {
			give := min(pts, max(r.capPoints-c.Used, 0))
			c.Used += give
			return give
		}
	}
	give := min(pts, r.capPoints)
	st.Caps = append(st.Caps, CapUse{Rule: r.hash, Window: w, Used: give})
	return give
}

// addEngagement adds points earned at te, in the frame of the reference
// time Ref: whatever order events arrive in, each contributes
// pts·2^(−(Ref−te)/h) once Ref is the latest event time.
func (m *Model) addEngagement(st *LeadState, ruleName string, pts float64, te time.Time) {
	if st.Ref.IsZero() {
		st.Ref = te
	}
	if te.After(st.Ref) {
		f := m.decay(st.Ref, te)
		st.Eng *= f
		for i := range st.Top {
			st.Top[i].Points *= f
		}
		st.Ref = te
	}
	c := pts * m.decay(te, st.Ref)
	st.Eng += c
	for i := range st.Top {
		if st.Top[i].Rule == ruleName {
			st.Top[i].Points += c
			return
		}
	}
	if len(st.Top) < m.top {
		st.Top = append(st.Top, Contribution{Rule: ruleName, Points: c})
		return
	}
	smallest := 0
	for i := range st.Top {
		if math.Abs(st.Top[i].Points) < math.Abs(st.Top[smallest].Points) {
			smallest = i
		}
	}
	if math.Abs(c) > math.Abs(st.Top[smallest].Points) {
		st.Top[smallest] = Contribution{Rule: ruleName, Points: c}
	}
}

// updateAttrs keeps the event's values of the properties fit rules read —
// from events of a fit rule's type, or any event for "*" — and recomputes
// the fit score from the lead's attributes.
func (m *Model) updateAttrs(st *LeadState, e *events.Event) {
	if len(m.fit) == 0 || !m.fitTypes["*"] && !m.fitTypes[e.Type] {
		return
	}
	changed := false
	for k, v := range e.Properties {
		if !m.fitProps[k] {
			continue
		}
		if len(v) > maxAttrBytes {
			v = v[:maxAttrBytes]
		}
		found := false
		for i := range st.Attrs {
			if st.Attrs[i].Key == k {
				found = true
				if st.Attrs[i].Value != v {
					st.Attrs[i].Value, changed = v, true
				}
			}
		}
		if !found {
			st.Attrs, changed = append(st.Attrs, Attr{Key: k, Value: v}), true
		}
	}
	if !changed {
		return
	}
	attrs := make(map[string]string, len(st.Attrs))
	for _, a := range st.Attrs {
		attrs[a.Key] = a.Value
	}
	st.Fit = 0
	for _, r := range m.fit {
		if r.matches(attrs) {
			st.Fit += r.points
		}
	}
}

func upsertSeen(seen []Seen, typ string, at time.Time) []Seen {
	for i := range seen {
		if seen[i].Type == typ {
			if at.After(seen[i].At) {
				seen[i].At = at
			}
			return seen
		}
	}
	return append(seen, Seen{Type: typ, At: at})
}

func containsHash(hs []uint32, h uint32) bool {
	for _, x := range hs {
		if x == h {
			return true
		}
	}
	return false
}

// nextStage returns the stage the lead moves to: among the stages it may
// enter from cur and whose entry criteria hold, the one declared last.
func (m *Model) nextStage(st *LeadState, cur int, score float64, eventType string, matched []string, now time.Time) int {
	for j := len(m.stages) - 1; j > 0; j-- {
		if j == cur || !m.stages[j].from[cur] {
			continue
		}
		for _, c := range m.stages[j].criteria {
			if m.holds(&c, st, score, eventType, matched, now) {
				return j
			}
		}
	}
	return cur
}

func (m *Model) holds(c *criterion, st *LeadState, score float64, eventType string, matched []string, now time.Time) bool {
	if c.minScore != nil && score < *c.minScore {
		return false
	}
	if c.onEvents != nil && !c.onEvents[eventType] {
		return false
	}
	if c.onRules != nil {
		ok := false
		for _, r := range matched {
			ok = ok || c.onRules[r]
		}
		if !ok {
			return false
		}
	}
	if len(c.recent) > 0 {
		ok := false
		for _, t := range c.recent {
			for _, s := range st.Seen {
				ok = ok || s.Type == t && !s.At.After(now) && now.Sub(s.At) <= c.within
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// cause is what made a transition happen.
type cause struct {
	id, typ string
	rules   []string
	at      time.Time
}

func (m *Model) emit(leadID string, st *LeadState, c cause, kind Kind, from, to string, score float64, out []Transition) []Transition {
	t := Transition{
		ID:             TransitionID(leadID, c.id, kind, from, to),
		LeadID:         leadID,
		Kind:           kind,
		From:           from,
		To:             to,
		Score:          math.Round(score*100) / 100,
		OccurredAt:     c.at,
		CauseEventID:   c.id,
		CauseEventType: c.typ,
		CauseRules:     c.rules,
		RulesVersion:   m.version,
		Save:           st.Saves,
	}
	// Trim only transitions of saves old enough to be published: a crash
	// before publishing must find every transition of the unpublished
	// saves on redelivery, however many they made.
	st.History = append(st.History, t)
	m.trimHistory(st)
	return append(out, t)
}

// trimHistory applies TrimHistory to the lead's whole history, its
// still-encoded oldest entries first.
func (m *Model) trimHistory(st *LeadState) {
	old := &st.oldHistory
	for old.n > 0 && old.n+len(st.History) > m.history && old.firstSave()+m.keepFor <= st.Saves {
		old.dropFirst(true)
	}
	if old.n == 0 {
		st.History = m.TrimHistory(st.History, st.Saves)
	}
}

// TrimHistory drops the oldest transitions of h beyond state.history, but
// none made (or re-published) by the saves that may still be publishing
// theirs, up to save number saves; it returns what is left, in h's
// backing array.
func (m *Model) TrimHistory(h []Transition, saves uint64) []Transition {
	drop := 0
	for drop < len(h)-m.history && h[drop].Save+m.keepFor <= saves {
		drop++
	}
	if drop == 0 {
		return h
	}
	return append(h[:0], h[drop:]...)
}

// NextChange returns when decay alone will next move the lead's band — down
// as its engagement fades, or up as a penalty fades — or the zero time if it
// never will.
func (m *Model) NextChange(st *LeadState) time.Time {
	if m.halfLife == 0 || st.Eng == 0 || st.Ref.IsZero() {
		return time.Time{}
	}
	cur := m.bandIndex(st.Band)
	var thr float64 // the engagement value at which the band changes
	switch {
	case st.Eng > 0 && cur > 0:
		thr = m.bands[cur].exit - judgedHalf - st.Fit
		if thr <= 0 || thr >= st.Eng {
			return time.Time{} // fit alone holds the band, or it is not above the exit yet
		}
	case st.Eng < 0 && cur < len(m.bands)-1:
		thr = m.bands[cur+1].enter - judgedHalf - st.Fit
		if thr >= 0 || thr <= st.Eng {
			return time.Time{}
		}
	default:
		return time.Time{}
	}
	// Eng·2^(−(t−Ref)/h) = thr  ⇔  t = Ref + h·log2(Eng/thr)
	d := time.Duration(float64(m.halfLife) * math.Log2(st.Eng/thr))
	t := st.Ref.Add(d).Truncate(time.Millisecond).Add(time.Millisecond)
	if !t.After(st.Clock) {
		t = st.Clock.Add(time.Millisecond)
	}
	return t
}

// Tick applies decay up to now: one band transition for each crossing due,
// each at the instant it happened, so that ids are the same whichever
// process ticks the lead. It returns the transitions appended to out.
func (m *Model) Tick(leadID string, st *LeadState, now time.Time, out []Transition) []Transition {
	st.Saves++
	for range len(m.bands) * 2 { // at most one crossing per band each way
		t := m.NextChange(st)
		if t.IsZero() || t.After(now) {
			break
		}
		score := judged(m.ScoreAt(st, t))
		to := m.bands[m.bandFor(m.bandIndex(st.Band), score)].name
		st.Clock = t
		if to == st.Band {
			continue // rounding: the crossing is a millisecond later; NextChange moves on from Clock
		}
		c := cause{id: "decay@" + strconv.FormatInt(t.UnixMilli(), 10), typ: DecayEventType, at: t}
		out = m.emit(leadID, st, c, KindBand, st.Band, to, score, out)
		st.Band = to
	}
	return out
}
