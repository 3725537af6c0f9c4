package scorer

import (
	"context"
	"sort"
	"sync"
	"time"
)

// MemStore is an in-memory Store for unit tests and tools. It keeps states
// in their binary form, so it exercises the same encoding as Redis.
type MemStore struct {
	mu    sync.Mutex
	leads map[string]memLead
}

type memLead struct {
	version          int64
	scoring, explain []byte
	next             time.Time
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{leads: map[string]memLead{}} }

// Load implements Store.
func (s *MemStore) Load(_ context.Context, ids []string) ([]Stored, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Stored, len(ids))
	for i, id := range ids {
		l, ok := s.leads[id]
		if !ok {
			continue
		}
		if err := out[i].State.UnmarshalBinary(id, l.scoring, l.explain); err != nil {
			return nil, err
		}
		out[i].Version, out[i].Found = l.version, true
	}
	return out, nil
}

// Save implements Store.
func (s *MemStore) Save(_ context.Context, ws []Write) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := make([]bool, len(ws))
	for i, w := range ws {
		if s.leads[w.LeadID].version != w.Version {
			continue
		}
		next := s.leads[w.LeadID].next
		if w.Schedule && !w.NextChange.IsZero() && (next.IsZero() || w.NextChange.Before(next)) {
			next = w.NextChange // like ZADD LT: only ever earlier
		}
		s.leads[w.LeadID] = memLead{version: w.Version + 1, scoring: w.State.AppendBinary(nil),
			explain: w.State.AppendExplain(nil), next: next}
		ok[i] = true
	}
	return ok, nil
}

// Due implements Schedule.
func (s *MemStore) Due(_ context.Context, now time.Time, limit int) ([]Due, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Due
	for id, l := range s.leads {
		if !l.next.IsZero() && !l.next.After(now) {
			out = append(out, Due{LeadID: id, At: l.next})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Reschedule implements Schedule.
func (s *MemStore) Reschedule(_ context.Context, leadID string, next time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leads[leadID]; ok {
		l.next = next
		s.leads[leadID] = l
	}
	return nil
}
