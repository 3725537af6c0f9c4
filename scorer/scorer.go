package scorer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Store is the state-store port: where lead states live between batches.
// Implementations must make Save a per-lead compare-and-set on Version.
type Store interface {
	// Load returns the stored state of each lead, in the order asked.
	Load(ctx context.Context, leadIDs []string) ([]Stored, error)
	// Save writes each state if the lead's stored version still equals
	// Write.Version, and reports per write whether it did. A lead that does
	// not exist has version 0.
	Save(ctx context.Context, writes []Write) ([]bool, error)
}

// Stored is a lead's state as loaded.
type Stored struct {
	State   LeadState
	Version int64 // 0 when the lead is new
	Found   bool
}

// Write is a compare-and-set of one lead's state.
type Write struct {
	LeadID  string
	Version int64 // the version the state was computed from
	State   *LeadState
	// NextChange is when decay will next change the lead's band (zero:
	// never). When Schedule is set the store indexes it for the decay
	// scheduler, only ever moving a lead's entry earlier: an entry is a hint
	// to look at the lead then, and a stale early one costs one look.
	NextChange time.Time
	Schedule   bool
}

// Schedule is the decay scheduler's index of leads whose band will change
// with time alone. Stores that support decay implement it.
type Schedule interface {
	// Due returns up to limit leads whose scheduled time is at or before now.
	Due(ctx context.Context, now time.Time, limit int) ([]Due, error)
	// Reschedule sets a lead's next scheduled time; zero removes it.
	Reschedule(ctx context.Context, leadID string, next time.Time) error
}

// Due is a lead the decay scheduler should look at.
type Due struct {
	LeadID string
	At     time.Time
}

// ErrTooManyConflicts is returned when a lead keeps changing under us: more
// than maxAttempts writers race for it, which means a misconfiguration (two
// groups scoring into one store) rather than a rebalance.
var ErrTooManyConflicts = errors.New("lead state kept changing during the batch")

const maxAttempts = 8

// Scorer scores batches of events against a Store. Safe for concurrent use
// as long as the Model is swapped only through SetModel.
type Scorer struct {
	store Store
	model atomic.Pointer[Model]
}

// New returns a Scorer.
func New(m *Model, s Store) *Scorer {
	sc := &Scorer{store: s}
	sc.model.Store(m)
	return sc
}

// Model returns the model in use.
func (s *Scorer) Model() *Model { return s.model.Load() }

// Result is what scoring a batch did.
type Result struct {
	Outcomes    []Outcome    // one per input, in input order
	Transitions []Transition // to publish, in input order per lead
	Conflicts   int          // compare-and-set conflicts retried
	Model       *Model       // the model the batch was scored with (a reload may swap it right after)
}

// Score applies a batch: one Load and one Save round trip for all its leads,
// plus one more of each for leads that changed under us. Inputs of one lead
// are applied in the order given. When Score fails, some leads may be saved
// already; scoring the same batch again is safe: their events are recognised
// as redelivered and their transitions come back from the lead's history.
//
// The caller publishes the transitions after Score returns. It may save
// further batches before that, as many as the model was sized for
// (Model.SetInFlight): the history keeps every transition of those saves,
// for redelivery.
func (s *Scorer) Score(ctx context.Context, in []Input) (Result, error) {
	m := s.model.Load()
	res := Result{Outcomes: make([]Outcome, len(in)), Model: m}

	// Group inputs by lead, keeping each lead's order.
	idx := make(map[string]int, len(in))
	var leads []string
	var groups [][]Input
	var where [][]int
	for i := range in {
		id := in[i].Event.LeadID
		g, ok := idx[id]
		if !ok {
			g = len(leads)
			idx[id] = g
			leads = append(leads, id)
			groups = append(groups, nil)
			where = append(where, nil)
		}
		groups[g] = append(groups[g], in[i])
		where[g] = append(where[g], i)
	}

	pending := make([]int, len(leads)) // indexes into leads still to save
	for i := range pending {
		pending[i] = i
	}
	perLead := make([][]Transition, len(leads))
	b := &batchScore{s: s, m: m, leads: leads, groups: groups, where: where, perLead: perLead, outcomes: res.Outcomes}
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == maxAttempts {
			return Result{}, fmt.Errorf("score batch: %w (%d leads)", ErrTooManyConflicts, len(pending))
		}
		// Large batches are scored in parallel chunks of disjoint leads:
		// while one chunk waits for Redis, another is applied.
		chunks := split(pending, min(maxParallel, 1+len(pending)/minChunk))
		conflicted := make([][]int, len(chunks))
		errs := make([]error, len(chunks))
		if len(chunks) == 1 {
			conflicted[0], errs[0] = b.round(ctx, chunks[0])
		} else {
			var wg sync.WaitGroup
			for c := range chunks {
				wg.Go(func() { conflicted[c], errs[c] = b.round(ctx, chunks[c]) })
			}
			wg.Wait()
		}
		for _, err := range errs {
			if err != nil {
				return Result{}, err
			}
		}
		next := pending[:0] // the chunks alias pending; they are done with it
		for _, c := range conflicted {
			next = append(next, c...)
		}
		res.Conflicts += len(next)
		pending = next
	}
	for _, ts := range perLead {
		res.Transitions = append(res.Transitions, ts...)
	}
	return res, nil
}

// Parallel scoring of a large batch: at most maxParallel chunks, each of at
// least minChunk leads.
const (
	maxParallel = 4
	minChunk    = 256
)

// split cuts xs into n nearly equal consecutive parts.
func split(xs []int, n int) [][]int {
	out := make([][]int, 0, n)
	for i := range n {
		out = append(out, xs[i*len(xs)/n:(i+1)*len(xs)/n])
	}
	return out
}

// batchScore is one Score call's shared, read-mostly state: chunks
// write only their own leads' entries of perLead and outcomes.
type batchScore struct {
	s        *Scorer
	m        *Model
	leads    []string
	groups   [][]Input
	where    [][]int
	perLead  [][]Transition
	outcomes []Outcome
}

// round loads, applies and saves the leads in chunk (indexes into
// b.leads) and returns the ones whose compare-and-set failed.
func (b *batchScore) round(ctx context.Context, chunk []int) ([]int, error) {
	ids := make([]string, len(chunk))
	for i, g := range chunk {
		ids[i] = b.leads[g]
	}
	stored, err := b.s.store.Load(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("load lead states: %w", err)
	}
	writes := make([]Write, len(chunk))
	var scratch []Outcome
	for i, g := range chunk {
		st := &stored[i]
		if n := len(b.groups[g]); cap(scratch) < n {
			scratch = make([]Outcome, n)
		}
		oc := scratch[:len(b.groups[g])]
		b.perLead[g] = b.m.Apply(b.leads[g], &st.State, st.Found, b.groups[g], oc, b.perLead[g][:0])
		for j, k := range b.where[g] {
			b.outcomes[k] = oc[j]
		}
		writes[i] = Write{LeadID: b.leads[g], Version: st.Version, State: &st.State,
			NextChange: b.m.NextChange(&st.State), Schedule: true}
	}
	ok, err := b.s.store.Save(ctx, writes)
	if err != nil {
		return nil, fmt.Errorf("save lead states: %w", err)
	}
	var conflicted []int
	for i, g := range chunk {
		if !ok[i] {
			conflicted = append(conflicted, g)
		}
	}
	return conflicted, nil
}

// TickResult is what a decay tick did.
type TickResult struct {
	Transitions []Transition         // to publish before rescheduling
	Next        map[string]time.Time // each lead's next scheduled time (zero: none)
	Conflicts   int
}

// Tick applies decay at now to leads the schedule says are due. It saves
// the band changes (compare-and-set, retried on conflict) and returns the
// transitions to publish and the times to reschedule each lead at — which
// the caller must do only after publishing: a lead whose entry is still due
// after a crash is ticked again, finds its crossing saved already, and its
// recorded decay transitions since the entry's time are returned again
// (same ids) so that none is lost.
func (s *Scorer) Tick(ctx context.Context, due []Due, now time.Time) (TickResult, error) {
	m := s.model.Load()
	res := TickResult{Next: make(map[string]time.Time, len(due))}
	pending := due
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == maxAttempts {
			return TickResult{}, fmt.Errorf("decay tick: %w (%d leads)", ErrTooManyConflicts, len(pending))
		}
		ids := make([]string, len(pending))
		for i, d := range pending {
			ids[i] = d.LeadID
		}
		stored, err := s.store.Load(ctx, ids)
		if err != nil {
			return TickResult{}, fmt.Errorf("load lead states: %w", err)
		}
		var writes []Write
		var writing []Due
		var found []Transition
		for i, d := range pending {
			st := &stored[i]
			if !st.Found {
				res.Next[d.LeadID] = time.Time{}
				continue
			}
			ts := m.Tick(d.LeadID, &st.State, now, nil)
			res.Next[d.LeadID] = m.NextChange(&st.State)
			if len(ts) == 0 {
				if err := st.State.DecodeLists(d.LeadID); err != nil {
					return TickResult{}, err
				}
				for _, t := range st.State.History {
					if t.CauseEventType == DecayEventType && !t.OccurredAt.Before(d.At) {
						t.Replayed = true
						t.EnsureID()
						found = append(found, t)
					}
				}
				continue
			}
			found = append(found, ts...)
			writes = append(writes, Write{LeadID: d.LeadID, Version: st.Version, State: &st.State})
			writing = append(writing, d)
		}
		if len(writes) == 0 {
			res.Transitions = append(res.Transitions, found...)
			break
		}
		ok, err := s.store.Save(ctx, writes)
		if err != nil {
			return TickResult{}, fmt.Errorf("save lead states: %w", err)
		}
		var retry []Due
		saved := map[string]bool{}
		for i, d := range writing {
			if ok[i] {
				saved[d.LeadID] = true
			} else {
				retry = append(retry, d)
			}
		}
		for _, t := range found {
			if t.Replayed || saved[t.LeadID] {
				res.Transitions = append(res.Transitions, t)
			}
		}
		res.Conflicts += len(retry)
		pending = retry
	}
	return res, nil
}

// SetModel swaps the model used by later batches.
func (s *Scorer) SetModel(m *Model) { s.model.Store(m) }

// Lead returns one lead's stored state, for the read API.
func (s *Scorer) Lead(ctx context.Context, leadID string) (Stored, error) {
	st, err := s.store.Load(ctx, []string{leadID})
	if err != nil {
		return Stored{}, fmt.Errorf("load lead state: %w", err)
	}
	if err := st[0].State.DecodeLists(leadID); err != nil {
		return Stored{}, fmt.Errorf("load lead state: %w", err)
	}
	return st[0], nil
}
