package scorer

import (
	"context"
	"sync"
	"sync/atomic"
)

// stateCache keeps the states a Scorer saved in memory, so that the next
// batch of a lead that is still cached skips the store's load round trip and
// the state's decoding. It belongs to the Scorer because it takes ownership
// of saved states, which the Store contract does not allow a store to do.
//
// It is only an optimisation, never a source of truth: a cached state is
// taken out of the cache when it is loaded and put back only once the store
// has accepted a compare-and-set of it, with the version the store now
// holds. If anyone else wrote the lead in between (another instance after a
// rebalance, the decay scheduler, a rescore), the store's version moved on,
// the compare-and-set of a state computed from the cached copy fails, and
// the scorer reloads the lead from the store as it does for any conflict.
//
// The one case it cannot see is the store losing the lead (a Redis restart
// without persistence) and someone else writing it back up to exactly the
// cached version; the cached state then wins the compare-and-set. It is a
// state the lead really had, only more complete than the store's.
type stateCache struct {
	max int

	mu     sync.Mutex
	states map[string]cached

	hits, misses atomic.Int64
}

type cached struct {
	state   LeadState
	version int64
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, states: make(map[string]cached, min(max, 1<<16))}
}

// load returns the states of ids: cached leads from memory (they leave the
// cache), the rest from the store in one call.
func (c *stateCache) load(ctx context.Context, store Store, ids []string) ([]Stored, error) {
	out := make([]Stored, len(ids))
	var missIDs []string
	var missAt []int
	c.mu.Lock()
	for i, id := range ids {
		if e, ok := c.states[id]; ok {
			delete(c.states, id)
			out[i] = Stored{State: e.state, Version: e.version, Found: true}
			continue
		}
		missIDs = append(missIDs, id)
		missAt = append(missAt, i)
	}
	c.mu.Unlock()
	c.hits.Add(int64(len(ids) - len(missIDs)))
	c.misses.Add(int64(len(missIDs)))
	if len(missIDs) == 0 {
		return out, nil
	}
	loaded, err := store.Load(ctx, missIDs)
	if err != nil {
		return nil, err
	}
	for j, i := range missAt {
		out[i] = loaded[j]
	}
	return out, nil
}

// saved caches the writes the store accepted, at their new version. It
// takes ownership of their states: the Scorer does not touch a state after
// saving it.
func (c *stateCache) saved(ws []Write, ok []bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range ws {
		if !ok[i] {
			continue
		}
		if len(c.states) >= c.max {
			c.evictOne()
		}
		st := *ws[i].State
		st.fresh = 0
		c.states[ws[i].LeadID] = cached{state: st, version: ws[i].Version + 1}
	}
}

// evictOne drops one entry: the first a map iteration yields, which Go
// randomises. With skewed traffic the hot leads come straight back.
func (c *stateCache) evictOne() {
	for id := range c.states {
		delete(c.states, id)
		return
	}
}

func (c *stateCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.states)
}
