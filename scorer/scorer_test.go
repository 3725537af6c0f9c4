package scorer

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/leadscore/leadscore/events"
)

// racingStore lets another writer touch a lead between our Load and Save,
// the way a second consumer does during a rebalance.
type racingStore struct {
	*MemStore
	races int // Saves that find the lead changed
	model *Model
	other []Input
}

func (s *racingStore) Save(ctx context.Context, ws []Write) ([]bool, error) {
	if s.races > 0 {
		s.races--
		// The other consumer applies its own events to the lead first.
		st, _ := s.MemStore.Load(ctx, []string{ws[0].LeadID})
		s.model.Apply(ws[0].LeadID, &st[0].State, st[0].Found, s.other, make([]Outcome, len(s.other)), nil)
		if _, err := s.MemStore.Save(ctx, []Write{{LeadID: ws[0].LeadID, Version: st[0].Version, State: &st[0].State}}); err != nil {
			return nil, err
		}
	}
	return s.MemStore.Save(ctx, ws)
}

func TestScoreRetriesConflicts(t *testing.T) {
	m := defaultModel(t)
	// The other consumer got the same first record (a redelivery during a
	// rebalance) plus one of its own.
	store := &racingStore{MemStore: NewMemStore(), races: 2, model: m, other: []Input{
		{Event: ev("a", "download"), Partition: 0, Offset: 0},
	}}
	sc := New(m, store)
	res, err := sc.Score(context.Background(), []Input{
		{Event: ev("a", "download"), Partition: 0, Offset: 0},
		{Event: ev("b", "download"), Partition: 0, Offset: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conflicts != 2 {
		t.Errorf("conflicts = %d, want 2", res.Conflicts)
	}
	got, _ := sc.Lead(context.Background(), "L")
	if got.State.Eng != 6 || got.State.Events != 2 {
		t.Errorf("score %v events %d, want 6 and 2: an event counted twice or lost", got.State.Eng, got.State.Events)
	}
	if res.Outcomes[0] != OutcomeRedelivered || res.Outcomes[1] != OutcomeScored {
		t.Errorf("outcomes = %v", res.Outcomes)
	}
}

type alwaysConflicting struct{ *MemStore }

func (alwaysConflicting) Save(_ context.Context, ws []Write) ([]bool, error) {
	return make([]bool, len(ws)), nil
}

func TestScoreGivesUpOnEndlessConflicts(t *testing.T) {
	sc := New(defaultModel(t), alwaysConflicting{NewMemStore()})
	_, err := sc.Score(context.Background(), inputs(ev("a", "download")))
	if !errors.Is(err, ErrTooManyConflicts) {
		t.Fatalf("err = %v, want ErrTooManyConflicts", err)
	}
}

func TestScoreGroupsLeadsAndKeepsOrder(t *testing.T) {
	sc := New(defaultModel(t), NewMemStore())
	var in []Input
	for i := 0; i < 30; i++ {
		e := ev(fmt.Sprint(i), "download")
		e.LeadID = fmt.Sprintf("lead-%d", i%3)
		in = append(in, Input{Event: e, Partition: int32(i % 2), Offset: int64(i)})
	}
	res, err := sc.Score(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		st, _ := sc.Lead(context.Background(), fmt.Sprintf("lead-%d", i))
		if st.State.Eng != 30 || st.Version != 1 {
			t.Errorf("lead-%d: score %v version %d, want 30 and 1 (one save per batch)", i, st.State.Eng, st.Version)
		}
	}
	// Per lead: lead>mql at 3 (download qualifies), cold>warm at 6, warm>hot at 15, mql>sql at 27.
	if len(res.Transitions) != 12 {
		t.Errorf("transitions = %v", summary(res.Transitions))
	}
	// Scoring the same batch again changes nothing and republishes them all.
	res2, err := sc.Score(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Transitions) != 12 || !res2.Transitions[0].Replayed {
		t.Errorf("replay transitions = %v", summary(res2.Transitions))
	}
}

type failingStore struct{ MemStore }

func (*failingStore) Load(context.Context, []string) ([]Stored, error) {
	return nil, errors.New("connection refused")
}

func TestScoreReportsStoreErrors(t *testing.T) {
	sc := New(defaultModel(t), &failingStore{})
	if _, err := sc.Score(context.Background(), []Input{{Event: &events.Event{ID: "1", LeadID: "L", Type: "x"}}}); err == nil {
		t.Fatal("want an error")
	}
}

// A batch large enough to be scored in parallel chunks gives every lead the
// state, outcomes and transitions that scoring its events alone gives.
func TestLargeBatchScoresLikeOneLeadAtATime(t *testing.T) {
	m := defaultModel(t)
	types := []string{"download", "page_view", "email_open", "site_visit_booked", "consultation_request", "chat_message"}
	const leads = 3000
	var in []Input
	for i := range 4 * leads {
		e := ev(fmt.Sprintf("e%d", i), types[(i*7)%len(types)])
		e.LeadID = fmt.Sprintf("lead-%d", (i*31)%leads)
		in = append(in, Input{Event: e, Partition: int32(i % 3), Offset: int64(i)})
	}
	in = append(in, in[17]) // a producer duplicate inside the batch
	ctx := context.Background()
	batched := New(m, NewMemStore())
	res, err := batched.Score(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	single := New(m, NewMemStore())
	want := map[string][]Transition{}
	for i, x := range in {
		r, err := single.Score(ctx, []Input{x})
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcomes[0] != res.Outcomes[i] {
			t.Fatalf("input %d: outcome %v in the batch, %v alone", i, res.Outcomes[i], r.Outcomes[0])
		}
		for _, tr := range r.Transitions {
			tr.Save = 0 // bookkeeping: one save per event here, one per batch there
			want[x.Event.LeadID] = append(want[x.Event.LeadID], tr)
		}
	}
	got := map[string][]Transition{}
	for _, tr := range res.Transitions {
		tr.Save = 0
		got[tr.LeadID] = append(got[tr.LeadID], tr)
	}
	for i := range leads {
		id := fmt.Sprintf("lead-%d", i)
		a, _ := batched.Lead(ctx, id)
		b, _ := single.Lead(ctx, id)
		if a.State.Eng != b.State.Eng || a.State.Fit != b.State.Fit || a.State.Band != b.State.Band || a.State.Stage != b.State.Stage || a.State.Events != b.State.Events {
			t.Fatalf("%s: batch gives %+v, one at a time %+v", id, a.State, b.State)
		}
		if fmt.Sprint(got[id]) != fmt.Sprint(want[id]) {
			t.Fatalf("%s: transitions %v in the batch, %v one at a time", id, got[id], want[id])
		}
	}
}
