package scorer

import (
	"context"
	"sync"
)

// MemStore is an in-memory Store for unit tests and tools. It keeps states
// in their binary form, so it exercises the same encoding as Redis.
type MemStore struct {
	mu    sync.Mutex
	leads map[string]memLead
}

type memLead struct {
	version int64
	state   []byte
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
		if err := out[i].State.UnmarshalBinary(id, l.state); err != nil {
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
		s.leads[w.LeadID] = memLead{version: w.Version + 1, state: w.State.AppendBinary(nil)}
		ok[i] = true
	}
	return ok, nil
}
