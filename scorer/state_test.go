package scorer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleState() LeadState {
	return LeadState{
		Eng: 16.5, Ref: t0, Fit: 3, Clock: t0.Add(time.Minute),
		Band: "hot", Stage: "sql", Events: 7,
		FirstSeen: t0, LastEventAt: t0.Add(3600e9),
		Watermarks: []Watermark{{0, 12}, {5, 1 << 40}},
		Recent:     []uint64{1, 2, 3, 1<<64 - 1},
		Attrs:      []Attr{{"job_title", "VP Marketing"}, {"company_size", "250"}},
		Fired:      []uint32{42},
		Caps:       []CapUse{{Rule: 7, Window: 20400, Used: 5}},
		Seen:       []Seen{{Type: "webinar_registration", At: t0}},
		Top:        []Contribution{{"pricing-page", 4}, {"email-open", 2.5}},
		Changes:    []Change{{EventID: "e1", Type: "page_view", Rules: []string{"page-view", "pricing-page"}, Delta: 5, Score: 8, At: t0}},
		History: []Transition{{
			LeadID: "L", Kind: KindBand, // no ID: it is not stored (EnsureID)
			From: "cold", To: "warm", Score: 6, OccurredAt: t0.Add(123456789), CauseEventID: "e1",
			CauseEventType: "page_view", CauseRules: []string{"pricing-page"}, RulesVersion: "v1", Save: 40,
		}},
		Saves: 41,
	}
}

// TestStateDecodesExplanationVersion2 reads an explanation written before
// save counts were stored: the state and its transitions have 0 saves.
func TestStateDecodesExplanationVersion2(t *testing.T) {
	st := sampleState()
	x := st.AppendExplain(nil)
	// Rewrite it as version 2: no save count, no per-transition distances.
	v2 := []byte{encodingV2}
	v2 = binary.AppendUvarint(v2, uint64(len(st.Top)))
	for _, c := range st.Top {
		v2 = appendString(v2, c.Rule)
		v2 = appendFloat(v2, c.Points)
	}
	v2 = binary.AppendUvarint(v2, uint64(len(st.Changes)))
	for _, c := range st.Changes {
		v2 = appendString(v2, c.EventID)
		v2 = appendString(v2, c.Type)
		v2 = appendStrings(v2, c.Rules)
		v2 = appendFloat(v2, c.Delta)
		v2 = appendFloat(v2, c.Score)
		v2 = binary.AppendVarint(v2, c.At.UnixMilli())
	}
	v2 = binary.AppendUvarint(v2, uint64(len(st.History)))
	for _, h := range st.History {
		for _, s := range []string{string(h.Kind), h.From, h.To} {
			v2 = appendString(v2, s)
		}
		v2 = appendFloat(v2, h.Score)
		v2 = binary.AppendVarint(v2, h.OccurredAt.UnixNano())
		for _, s := range []string{h.CauseEventID, h.CauseEventType, h.RulesVersion} {
			v2 = appendString(v2, s)
		}
		v2 = appendStrings(v2, h.CauseRules)
	}
	if len(v2) >= len(x) {
		t.Fatalf("version 2 form is %d bytes, version 3 %d: expected the save counts to cost bytes", len(v2), len(x))
	}
	var got LeadState
	if err := got.UnmarshalBinary("L", st.AppendBinary(nil), v2); err != nil {
		t.Fatal(err)
	}
	want := st
	want.Saves = 0
	want.History = []Transition{st.History[0]}
	want.History[0].Save = 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("version 2:\n got %+v\nwant %+v", got, want)
	}
}

func TestStateRoundTrip(t *testing.T) {
	for _, st := range []LeadState{{}, {Band: "cold", Stage: "lead"}, sampleState()} {
		var got LeadState
		if err := got.UnmarshalBinary("L", st.AppendBinary(nil), st.AppendExplain(nil)); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if err := got.DecodeLists("L"); err != nil {
			t.Fatalf("decode lists: %v", err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, st)
		}
	}
}

// TestStateDecodesVersion1 reads a state written by leadscore 0.1 (one blob,
// score without decay, history inside): its score becomes the engagement
// score at its last event.
func TestStateDecodesVersion1(t *testing.T) {
	b := []byte{encodingV1}
	b = appendFloat(b, 9)
	b = appendString(b, "warm")
	b = appendString(b, "mql")
	b = binary.AppendUvarint(b, 3)
	b = binary.AppendVarint(b, t0.UnixMilli())
	b = binary.AppendVarint(b, t0.Add(time.Hour).UnixMilli())
	b = binary.AppendUvarint(b, 1)
	b = binary.AppendVarint(b, 2)
	b = binary.AppendVarint(b, 77)
	b = binary.AppendUvarint(b, 1)
	b = binary.LittleEndian.AppendUint64(b, 99)
	b = binary.AppendUvarint(b, 1) // one transition, v1 form (no rules)
	for _, s := range []string{"band", "cold", "warm"} {
		b = appendString(b, s)
	}
	b = appendFloat(b, 6)
	b = binary.AppendVarint(b, t0.UnixNano())
	for _, s := range []string{"e2", "page_view", "old"} {
		b = appendString(b, s)
	}
	var st LeadState
	if err := st.UnmarshalBinary("L", b, nil); err != nil {
		t.Fatal(err)
	}
	if st.Eng != 9 || st.Band != "warm" || st.Stage != "mql" || st.Events != 3 || !st.Ref.Equal(t0.Add(time.Hour)) ||
		len(st.Watermarks) != 1 || st.Watermarks[0].Offset != 77 || len(st.History) != 1 ||
		st.History[0].ID != "" || st.History[0].CauseEventID != "e2" {
		t.Errorf("v1 state decoded as %+v", st)
	}
	// The id is not stored; EnsureID derives it from the decoded fields.
	st.History[0].EnsureID()
	if want := TransitionID("L", "e2", KindBand, "cold", "warm"); st.History[0].ID != want {
		t.Errorf("EnsureID = %q, want %q", st.History[0].ID, want)
	}
}

func TestStateSize(t *testing.T) {
	// A typical lead: a full default dedupe window (32), one partition, two
	// profile attributes, a capped rule and a first-time rule.
	st := LeadState{Eng: 12, Ref: t0, Fit: 10, Clock: t0, Band: "warm", Stage: "mql", Events: 40,
		FirstSeen: t0, LastEventAt: t0, Watermarks: []Watermark{{3, 1 << 30}}, Recent: make([]uint64, 32),
		Attrs: []Attr{{"job_title", "Head of Marketing"}, {"company_size", "250"}},
		Caps:  []CapUse{{1, 20400, 5}}, Fired: []uint32{1}}
	if n := len(st.AppendBinary(nil)); n > 400 {
		t.Errorf("scoring state is %d bytes, want ≤ 400", n)
	}
}

func TestStateCorruptNeverPanics(t *testing.T) {
	full := sampleState()
	s, x := full.AppendBinary(nil), full.AppendExplain(nil)
	for i := 0; i < len(s); i++ {
		var st LeadState
		if err := st.UnmarshalBinary("L", s[:i], x); !errors.Is(err, ErrCorruptState) {
			t.Fatalf("scoring truncated at %d: err = %v, want ErrCorruptState", i, err)
		}
	}
	for i := 1; i < len(x); i++ {
		var st LeadState
		if err := st.UnmarshalBinary("L", s, x[:i]); !errors.Is(err, ErrCorruptState) {
			t.Fatalf("explanation truncated at %d: err = %v, want ErrCorruptState", i, err)
		}
	}
	var st LeadState
	if err := st.UnmarshalBinary("L", append(s, 0), x); !errors.Is(err, ErrCorruptState) {
		t.Errorf("trailing byte: err = %v", err)
	}
}

func FuzzStateDecode(f *testing.F) {
	s := sampleState()
	f.Add(s.AppendBinary(nil), s.AppendExplain(nil))
	f.Add([]byte{2}, []byte{})
	f.Fuzz(func(t *testing.T, b, x []byte) {
		var st LeadState
		if err := st.UnmarshalBinary("L", b, x); err != nil {
			return
		}
		if math.IsNaN(st.Eng) {
			return // NaN never equals itself; the round trip below would fail on it
		}
		// Carried through undecoded, then re-encoded: the same bytes decode.
		var again LeadState
		if err := again.UnmarshalBinary("L", st.AppendBinary(nil), st.AppendExplain(nil)); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		// Decoding the lists never panics; what decodes re-encodes.
		if st.DecodeLists("L") == nil {
			var third LeadState
			if err := third.UnmarshalBinary("L", st.AppendBinary(nil), st.AppendExplain(nil)); err != nil {
				t.Fatalf("re-encoded decoded state does not decode: %v", err)
			}
		}
	})
}

// TestListsCarriedThroughUndecoded: scoring a loaded lead without decoding
// its score changes and transitions (they are copied through, oldest
// dropped by record) saves exactly what decoding them first would, with
// records longer than a one-byte length among them.
func TestListsCarriedThroughUndecoded(t *testing.T) {
	m := flipModel(t, 8)
	m.SetInFlight(1)
	long := strings.Repeat("x", 200) // a record over 127 bytes
	var st LeadState
	var off int64
	apply := func(st *LeadState, found bool, id, typ string, props ...string) {
		e := ev(id, typ, props...)
		m.Apply("L", st, found, []Input{{Event: e, Offset: off}}, make([]Outcome, 1), nil)
	}
	// A lead with full lists: more changes and transitions than are kept.
	for i := range 30 {
		typ := []string{"up", "down", "open"}[i%3]
		apply(&st, i > 0, fmt.Sprint("e", i, long[:i*6]), typ)
		off++
	}
	if len(st.Changes) < 8 || len(st.History) < 8 {
		t.Fatalf("set-up: %d changes, %d transitions", len(st.Changes), len(st.History))
	}
	stored := st.AppendExplain(nil)
	scoring := st.AppendBinary(nil)

	var lazy, eager LeadState
	if err := lazy.UnmarshalBinary("L", scoring, stored); err != nil {
		t.Fatal(err)
	}
	if err := eager.UnmarshalBinary("L", scoring, stored); err != nil {
		t.Fatal(err)
	}
	if err := eager.DecodeLists("L"); err != nil {
		t.Fatal(err)
	}
	for i := range 12 { // enough to push every loaded record out
		typ := []string{"up", "open", "down"}[i%3]
		id := fmt.Sprint("n", i, long)
		apply(&lazy, true, id, typ)
		apply(&eager, true, id, typ)
		off++
		l, e := lazy.AppendExplain(nil), eager.AppendExplain(nil)
		if !bytes.Equal(l, e) {
			t.Fatalf("after %d new events: carried-through explanation differs from the decoded one (%d vs %d bytes)", i+1, len(l), len(e))
		}
	}
	if err := lazy.DecodeLists("L"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lazy, eager) {
		t.Errorf("decoded afterwards:\n got %+v\nwant %+v", lazy, eager)
	}
}

// A corrupt record inside an otherwise well-framed list is dropped when
// the lists are decoded, and reported; the others are kept.
func TestDecodeListsDropsCorruptRecords(t *testing.T) {
	st := sampleState()
	st.History = append(st.History, st.History[0])
	st.History[1].CauseEventID = "e2"
	x := st.AppendExplain(nil)
	// Corrupt the first transition's body: its kind's length byte, which
	// follows the save count and the record length.
	i := bytes.Index(x, []byte("\x04band"))
	if i < 0 {
		t.Fatal("no transition record found")
	}
	x[i] = 0x7f
	var got LeadState
	if err := got.UnmarshalBinary("L", st.AppendBinary(nil), x); err != nil {
		t.Fatalf("framing is intact, yet: %v", err)
	}
	if err := got.DecodeLists("L"); err == nil || !errors.Is(err, ErrCorruptState) {
		t.Errorf("DecodeLists = %v, want a corrupt-state error", err)
	}
	if len(got.History) != 1 || got.History[0].CauseEventID != "e2" || len(got.Changes) != 1 {
		t.Errorf("kept %+v", got.History)
	}
}
