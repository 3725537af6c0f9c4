package scorer

import (
	"context"
	"errors"
	"fmt"
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
	cache *stateCache // nil: none
}

// New returns a Scorer.
func New(m *Model, s Store) *Scorer {
	sc := &Scorer{store: s}
	sc.model.Store(m)
	return sc
}

// CacheStates makes the Scorer keep up to max saved lead states in memory
// and score a cached lead's next batch from there instead of loading it:
// one round trip and one decoding fewer per lead. The store stays the
// truth: a cached state that someone else changed in the store since (another
// instance after a rebalance, a rescore) fails its compare-and-set and the
// lead is reloaded, as for any conflict. Call it before the first Score.
//
// The one change it cannot see is the store losing a lead (Redis restarted
// without persistence) and someone else writing it back up to exactly the
// cached version: the cached state then wins. It is a state the lead really
// had, only more complete than the store's.
func (s *Scorer) CacheStates(max int) {
	if max > 0 {
		s.cache = newStateCache(max)
	}
}

// CacheStats returns how many lead loads the cache served and how many went
// to the store, and how many leads it holds.
func (s *Scorer) CacheStats() (hits, misses int64, size int) {
	if s.cache == nil {
		return 0, 0, 0
	}
	return s.cache.hits.Load(), s.cache.misses.Load(), s.cache.len()
}

// load loads lead states, through the cache when there is one.
func (s *Scorer) load(ctx context.Context, ids []string) ([]Stored, error) {
	if s.cache == nil {
		return s.store.Load(ctx, ids)
	}
	return s.cache.load(ctx, s.store, ids)
}

// save saves lead states and caches the ones saved.
func (s *Scorer) save(ctx context.Context, ws []Write) ([]bool, error) {
	ok, err := s.store.Save(ctx, ws)
	if err == nil && s.cache != nil {
		s.cache.saved(ws, ok)
	}
	return ok, err
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
func (s *Scorer) Score(ctx context.Context, in []Input) (Result, error) {
	return s.ScoreGated(ctx, in, nil)
}

// ScoreGated is Score with a gate: when gate is not nil, Score calls it once
// after computing the new states and before saving any, and gives up if it
// fails. A pipeline uses it to compute batch N+1 while batch N is being
// published, yet save N+1 only once N's transitions are out: a lead's
// unpublished transitions are then always those of its latest save, which
// its history keeps.
func (s *Scorer) ScoreGated(ctx context.Context, in []Input, gate func(context.Context) error) (Result, error) {
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
	outcomes := make([]Outcome, 0, len(in))
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == maxAttempts {
			return Result{}, fmt.Errorf("score batch: %w (%d leads)", ErrTooManyConflicts, len(pending))
		}
		ids := make([]string, len(pending))
		for i, g := range pending {
			ids[i] = leads[g]
		}
		stored, err := s.load(ctx, ids)
		if err != nil {
			return Result{}, fmt.Errorf("load lead states: %w", err)
		}
		writes := make([]Write, len(pending))
		for i, g := range pending {
			st := &stored[i]
			oc := outcomes[:len(groups[g])]
			perLead[g] = m.Apply(leads[g], &st.State, st.Found, groups[g], oc, perLead[g][:0])
			for j, k := range where[g] {
				res.Outcomes[k] = oc[j]
			}
			writes[i] = Write{LeadID: leads[g], Version: st.Version, State: &st.State,
				NextChange: m.NextChange(&st.State), Schedule: true}
		}
		if gate != nil {
			if err := gate(ctx); err != nil {
				return Result{}, err
			}
			gate = nil
		}
		ok, err := s.save(ctx, writes)
		if err != nil {
			return Result{}, fmt.Errorf("save lead states: %w", err)
		}
		next := pending[:0]
		for i, g := range pending {
			if !ok[i] {
				next = append(next, g)
			}
		}
		res.Conflicts += len(next)
		pending = next
	}
	for _, ts := range perLead {
		res.Transitions = append(res.Transitions, ts...)
	}
	return res, nil
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
		stored, err := s.load(ctx, ids)
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
				for _, t := range st.State.History {
					if t.CauseEventType == DecayEventType && !t.OccurredAt.Before(d.At) {
						t.Replayed = true
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
		ok, err := s.save(ctx, writes)
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
	st, err := s.store.Load(ctx, []string{leadID}) // the truth; a read must not take the lead out of the cache
	if err != nil {
		return Stored{}, fmt.Errorf("load lead state: %w", err)
	}
	return st[0], nil
}
