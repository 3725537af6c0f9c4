package scorer

import (
	"errors"
	"reflect"
	"testing"
)

func sampleState() LeadState {
	return LeadState{
		Score: 16.5, Band: "hot", Stage: "sql", Events: 7,
		FirstSeen: t0, LastEventAt: t0.Add(3600e9),
		Watermarks: []Watermark{{0, 12}, {5, 1 << 40}},
		Recent:     []uint64{1, 2, 3, 1<<64 - 1},
		History: []Transition{{
			ID: TransitionID("L", "e1", KindBand, "cold", "warm"), LeadID: "L", Kind: KindBand,
			From: "cold", To: "warm", Score: 6, OccurredAt: t0.Add(123456789), CauseEventID: "e1",
			CauseEventType: "page_view", RulesVersion: "v1",
		}},
	}
}

func TestStateRoundTrip(t *testing.T) {
	for _, st := range []LeadState{{}, {Band: "cold", Stage: "lead"}, sampleState()} {
		b := st.AppendBinary(nil)
		var got LeadState
		if err := got.UnmarshalBinary("L", b); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, st)
		}
	}
}

func TestStateSize(t *testing.T) {
	// A typical lead with a full default dedupe window (32) and one partition.
	st := LeadState{Score: 12, Band: "warm", Stage: "mql", Events: 40, FirstSeen: t0, LastEventAt: t0,
		Watermarks: []Watermark{{3, 1 << 30}}, Recent: make([]uint64, 32)}
	if n := len(st.AppendBinary(nil)); n > 300 {
		t.Errorf("scoring state is %d bytes, want ≤ 300", n)
	}
}

func TestStateCorruptNeverPanics(t *testing.T) {
	full := sampleState()
	b := full.AppendBinary(nil)
	for i := 0; i < len(b); i++ {
		var st LeadState
		if err := st.UnmarshalBinary("L", b[:i]); !errors.Is(err, ErrCorruptState) {
			t.Fatalf("truncated at %d: err = %v, want ErrCorruptState", i, err)
		}
	}
	var st LeadState
	if err := st.UnmarshalBinary("L", append(b, 0)); !errors.Is(err, ErrCorruptState) {
		t.Errorf("trailing byte: err = %v", err)
	}
}

func FuzzStateDecode(f *testing.F) {
	s := sampleState()
	f.Add(s.AppendBinary(nil))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var st LeadState
		if err := st.UnmarshalBinary("L", b); err != nil {
			return
		}
		var again LeadState
		if err := again.UnmarshalBinary("L", st.AppendBinary(nil)); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
	})
}
