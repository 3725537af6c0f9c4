package bench

import (
	"encoding/json"
	"testing"
	"time"
)

// An event's generation time survives the round trip through its id: the
// latency phases time transitions by it.
func TestGeneratedAtRoundTrip(t *testing.T) {
	w := NewWorkload("r1", "lead-", 100, true, 0, 1)
	start := time.Now()
	step := time.Millisecond
	msgs := w.Next(nil, 3, start, step)
	for i, m := range msgs {
		var ev struct {
			ID string `json:"event_id"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		at, ok := generatedAt(ev.ID, "r1")
		if !ok {
			t.Fatalf("no generation time in %q", ev.ID)
		}
		if d := at.Sub(start) - time.Duration(i)*step; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("event %d: generated %v after the start, want %v", i, at.Sub(start), time.Duration(i)*step)
		}
	}
	if _, ok := generatedAt("decay@123", "r1"); ok {
		t.Error("a decay's cause read as a generated event")
	}
	if got := causeEventID([]byte(`{"transition_id":"x","cause_event_id":"r1.7.42","score":1}`)); got != "r1.7.42" {
		t.Errorf("causeEventID = %q", got)
	}
}
