package scorer

import (
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

// Apply applies one lead's events, in order, to its state. It is pure: the
// same state and inputs always give the same result. found says whether the
// state existed; a new lead starts in the lowest band and the first stage
// without a transition. Apply writes one outcome per input into outcomes
// (len(outcomes) == len(in)) and appends the transitions to emit to out:
// new ones, and the recorded ones of redelivered events.
func (m *Model) Apply(leadID string, st *LeadState, found bool, in []Input, outcomes []Outcome, out []Transition) []Transition {
	if !found {
		*st = LeadState{Band: m.bands[0].Name, Stage: m.stages[0].name}
	}
	for i := range in {
		x := &in[i]
		if m.redelivered(st, x) {
			outcomes[i] = OutcomeRedelivered
			for _, t := range st.History {
				if t.CauseEventID == x.Event.ID {
					t.Replayed = true
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
	if len(st.Recent) >= m.window {
		n := copy(st.Recent, st.Recent[len(st.Recent)-m.window+1:])
		st.Recent = st.Recent[:n]
	}
	st.Recent = append(st.Recent, h)
	return true
}

func (m *Model) score(leadID string, st *LeadState, e *events.Event, out []Transition) []Transition {
	st.Score += m.Points(e)
	st.Events++
	if st.FirstSeen.IsZero() || e.OccurredAt.Before(st.FirstSeen) {
		st.FirstSeen = e.OccurredAt
	}
	if e.OccurredAt.After(st.LastEventAt) {
		st.LastEventAt = e.OccurredAt
	}

	if to := m.bands[m.band(st.Score)].Name; to != st.Band {
		out = m.emit(leadID, st, e, KindBand, st.Band, to, out)
		st.Band = to
	}
	cur := m.stageIndex(st.Stage)
	if next := m.stageFor(st.Score, e.Type); next > cur {
		to := m.stages[next].name
		out = m.emit(leadID, st, e, KindStage, st.Stage, to, out)
		st.Stage = to
	}
	return out
}

func (m *Model) emit(leadID string, st *LeadState, e *events.Event, kind Kind, from, to string, out []Transition) []Transition {
	t := Transition{
		ID:             TransitionID(leadID, e.ID, kind, from, to),
		LeadID:         leadID,
		Kind:           kind,
		From:           from,
		To:             to,
		Score:          st.Score,
		OccurredAt:     e.OccurredAt,
		CauseEventID:   e.ID,
		CauseEventType: e.Type,
		RulesVersion:   m.version,
	}
	if len(st.History) >= m.history {
		n := copy(st.History, st.History[len(st.History)-m.history+1:])
		st.History = st.History[:n]
	}
	st.History = append(st.History, t)
	return append(out, t)
}
