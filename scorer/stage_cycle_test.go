package scorer

import (
	"fmt"
	"testing"
	"time"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/events"
)

// TestCyclicStagesMoveOncePerEvent: what "loops" mean in a stage graph. The
// from graph may have cycles (mql → recycled → mql is a normal lifecycle),
// but a lead makes at most one stage move per event: after sales_rejected
// moves a lead from mql to recycled, mql qualifies again at once (its score
// still meets min_score, and recycled is in mql's from), yet the lead stays
// in recycled until the next event. No event can make the lead go round.
func TestCyclicStagesMoveOncePerEvent(t *testing.T) {
	r, err := config.ParseRules([]byte(`
rules:
  - {name: open, type: email_open, points: 1}
  - {name: reject, type: sales_rejected, points: 0}
bands: [{name: cold}]
stages:
  - {name: lead}
  - {name: mql, from: [lead, recycled], min_score: 1}
  - {name: recycled, from: [mql], on_events: [sales_rejected]}
`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel(r, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	types := []string{"email_open", "sales_rejected", "email_open", "sales_rejected", "sales_rejected", "email_open"}
	// The second sales_rejected in a row finds the lead in recycled, which it
	// cannot re-enter: mql qualifies instead, one move.
	want := []string{"lead>mql", "mql>recycled", "recycled>mql", "mql>recycled", "recycled>mql", ""}
	var st LeadState
	found := false
	for i, typ := range types {
		ev := &events.Event{ID: fmt.Sprint("e", i), LeadID: "l", Type: typ, OccurredAt: t0.Add(time.Duration(i) * time.Minute)}
		in := []Input{{Event: ev, Offset: int64(i)}}
		var moves []string
		for _, tr := range m.Apply("l", &st, found, in, make([]Outcome, 1), nil) {
			if tr.Kind == KindStage {
				moves = append(moves, tr.From+">"+tr.To)
			}
		}
		found = true
		got := ""
		if len(moves) > 1 {
			t.Fatalf("event %d (%s) made %d stage moves %v: at most one per event", i, typ, len(moves), moves)
		} else if len(moves) == 1 {
			got = moves[0]
		}
		if got != want[i] {
			t.Errorf("event %d (%s): move %q, want %q", i, typ, got, want[i])
		}
	}
	if st.Stage != "mql" {
		t.Errorf("final stage %s, want mql", st.Stage)
	}
}
