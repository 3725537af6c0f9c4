package scorer

import (
	"context"
	"testing"
	"time"

	"github.com/leadscore/leadscore/events"
)

// A lead someone else wrote after it was cached must not be scored from the
// stale copy: its compare-and-set fails and the scorer reloads it.
func TestStateCacheSeesOtherWriters(t *testing.T) {
	ctx := context.Background()
	mem := NewMemStore()
	m := testModel(t)
	ours := New(m, mem)
	ours.CacheStates(100)
	theirs := New(m, mem) // another instance, straight to the store

	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(id string, p int64) Input {
		return Input{Event: &events.Event{ID: id, LeadID: "L", Type: "form_submit", OccurredAt: at}, Partition: 0, Offset: p}
	}
	if _, err := ours.Score(ctx, []Input{ev("e1", 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := theirs.Score(ctx, []Input{ev("e2", 2)}); err != nil {
		t.Fatal(err)
	}
	res, err := ours.Score(ctx, []Input{ev("e3", 3)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conflicts != 1 {
		t.Errorf("conflicts = %d, want 1: the cached copy was stale", res.Conflicts)
	}
	got, err := ours.Lead(ctx, "L")
	if err != nil {
		t.Fatal(err)
	}
	if got.State.Events != 3 {
		t.Errorf("events applied = %d, want 3 (ours, theirs, ours again)", got.State.Events)
	}
	hits, misses, _ := ours.CacheStats()
	if hits != 1 || misses != 2 {
		t.Errorf("hits, misses = %d, %d; want 1 (the stale copy), 2 (first load, reload after the conflict)", hits, misses)
	}
}

// The cache holds at most its size.
func TestStateCacheBounded(t *testing.T) {
	ctx := context.Background()
	sc := New(testModel(t), NewMemStore())
	sc.CacheStates(10)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var in []Input
	for i := range 50 {
		id := string(rune('a'+i%26)) + string(rune('A'+i/26))
		in = append(in, Input{Event: &events.Event{ID: "e" + id, LeadID: id, Type: "page_view", OccurredAt: at}, Offset: int64(i)})
	}
	if _, err := sc.Score(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, _, n := sc.CacheStats(); n != 10 {
		t.Errorf("cached leads = %d, want 10", n)
	}
}
