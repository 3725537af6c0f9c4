// Package storetest is the contract every scorer.Store must pass. Run it
// against the in-memory fake and against each real backend alike, so the
// fake cannot drift from what production does (after watermill's
// pubsub/tests).
//
// Each subtest uses lead ids of its own, prefixed with a random token per
// Run, so one store may serve every subtest and even several runs.
package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadscore/leadscore/scorer"
)

// Run runs the contract suite. newStore is called once per subtest; it may
// return the same store each time.
func Run(t *testing.T, newStore func(t *testing.T) scorer.Store) {
	t.Helper()
	run := randomToken(t)
	tests := []struct {
		name string
		fn   func(t *testing.T, s scorer.Store, ids leadIDs)
	}{
		{"LoadUnknown", testLoadUnknown},
		{"LoadKeepsOrder", testLoadKeepsOrder},
		{"EmptyBatch", testEmptyBatch},
		{"SaveNewThenLoad", testSaveNewThenLoad},
		{"SaveStaleVersion", testSaveStaleVersion},
		{"SaveRacing", testSaveRacing},
		{"Batch1000", testBatch1000},
		{"UnusualLeadIDs", testUnusualLeadIDs},
		{"SameWriteTwice", testSameWriteTwice},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t), leadIDs(run+"-"+tc.name))
		})
	}
}

// leadIDs makes lead ids unique to one subtest of one run.
type leadIDs string

func (p leadIDs) id(i int) string { return fmt.Sprintf("%s-%d", p, i) }

func (p leadIDs) ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = p.id(i)
	}
	return out
}

func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random token: %v", err)
	}
	return hex.EncodeToString(b)
}

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// State returns a state with every field set, as a Store gives it back: the
// times in UTC (FirstSeen and LastEventAt at millisecond precision), and the
// history's LeadID and ID derived from leadID. seed makes states differ.
func State(leadID string, seed int) scorer.LeadState {
	th := scorer.Transition{
		LeadID: leadID, Kind: scorer.KindBand, From: "cold", To: "warm",
		Score: 5.25 + float64(seed), OccurredAt: t0.Add(time.Duration(seed)*time.Second + 123456789),
		CauseEventID: fmt.Sprintf("evt-%d", seed), CauseEventType: "page_view", RulesVersion: "v1",
	}
	// No ID: it is not stored, and a decoded history leaves it to EnsureID.
	th.CauseRules = []string{"pricing-page", "page-view"}
	return scorer.LeadState{
		Eng: 16.5 + float64(seed), Ref: t0, Fit: 2, Clock: t0.Add(time.Minute),
		Band: "hot", Stage: "sql", Events: uint64(7 + seed),
		Attrs:     []scorer.Attr{{Key: "job_title", Value: "VP Marketing"}},
		Fired:     []uint32{7, uint32(seed)},
		Caps:      []scorer.CapUse{{Rule: 9, Window: 20000, Used: 5}},
		Seen:      []scorer.Seen{{Type: "webinar_registration", At: t0}},
		Top:       []scorer.Contribution{{Rule: "pricing-page", Points: 4}},
		Changes:   []scorer.Change{{EventID: "e1", Type: "page_view", Rules: []string{"page-view"}, Delta: 1, Score: 17.5, At: t0}},
		FirstSeen: t0.Add(-time.Hour), LastEventAt: t0.Add(time.Duration(seed) * time.Millisecond),
		Watermarks: []scorer.Watermark{{Partition: 0, Offset: int64(seed)}, {Partition: 5, Offset: 1 << 40}},
		Recent:     []uint64{1, uint64(seed), 1<<64 - 1},
		History:    []scorer.Transition{th},
	}
}

func load(t *testing.T, s scorer.Store, ids ...string) []scorer.Stored {
	t.Helper()
	got, err := s.Load(t.Context(), ids)
	if err != nil {
		t.Fatalf("Load(%d leads): %v", len(ids), err)
	}
	if len(got) != len(ids) {
		t.Fatalf("Load(%d leads) returned %d results", len(ids), len(got))
	}
	for i := range got {
		if err := got[i].State.DecodeLists(ids[i]); err != nil {
			t.Fatalf("lead %q: %v", ids[i], err)
		}
	}
	return got
}

func save(t *testing.T, s scorer.Store, ws ...scorer.Write) []bool {
	t.Helper()
	got, err := s.Save(t.Context(), ws)
	if err != nil {
		t.Fatalf("Save(%d writes): %v", len(ws), err)
	}
	if len(got) != len(ws) {
		t.Fatalf("Save(%d writes) returned %d results", len(ws), len(got))
	}
	return got
}

// saveNew saves a fresh state (seed) for a lead that does not exist yet.
func saveNew(t *testing.T, s scorer.Store, id string, seed int) scorer.LeadState {
	t.Helper()
	st := State(id, seed)
	if ok := save(t, s, scorer.Write{LeadID: id, Version: 0, State: &st}); !ok[0] {
		t.Fatalf("Save of new lead %q from version 0 was refused", id)
	}
	return st
}

func checkStored(t *testing.T, id string, got scorer.Stored, version int64, want scorer.LeadState) {
	t.Helper()
	if !got.Found || got.Version != version {
		t.Errorf("lead %q: Found=%v Version=%d, want Found=true Version=%d", id, got.Found, got.Version, version)
	}
	if !reflect.DeepEqual(got.State, want) {
		t.Errorf("lead %q: state after round trip\n got %+v\nwant %+v", id, got.State, want)
	}
}

func checkMissing(t *testing.T, id string, got scorer.Stored) {
	t.Helper()
	if got.Found || got.Version != 0 || !reflect.DeepEqual(got.State, scorer.LeadState{}) {
		t.Errorf("unknown lead %q: got Found=%v Version=%d State=%+v, want Found=false Version=0 and a zero state",
			id, got.Found, got.Version, got.State)
	}
}

func testLoadUnknown(t *testing.T, s scorer.Store, ids leadIDs) {
	unknown := ids.ids(3)
	for i, got := range load(t, s, unknown...) {
		checkMissing(t, unknown[i], got)
	}
}

func testLoadKeepsOrder(t *testing.T, s scorer.Store, ids leadIDs) {
	k1, k2 := ids.id(1), ids.id(2)
	st1 := saveNew(t, s, k1, 1)
	st2 := saveNew(t, s, k2, 2)
	u1, u2 := ids.id(-1), ids.id(-2)

	asked := []string{u1, k2, u2, k1}
	got := load(t, s, asked...)
	checkMissing(t, u1, got[0])
	checkStored(t, k2, got[1], 1, st2)
	checkMissing(t, u2, got[2])
	checkStored(t, k1, got[3], 1, st1)
}

func testEmptyBatch(t *testing.T, s scorer.Store, _ leadIDs) {
	if got, err := s.Load(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("Load(nil) = %v, %v; want no results, no error", got, err)
	}
	if got, err := s.Save(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("Save(nil) = %v, %v; want no results, no error", got, err)
	}
}

func testSaveNewThenLoad(t *testing.T, s scorer.Store, ids leadIDs) {
	id := ids.id(0)
	st := State(id, 1)
	want := State(id, 1)
	if ok := save(t, s, scorer.Write{LeadID: id, Version: 0, State: &st}); !ok[0] {
		t.Fatal("Save of a new lead from version 0 was refused")
	}
	// The store keeps what was saved, not the caller's pointer.
	st.Eng, st.Recent[0] = -1, 42
	checkStored(t, id, load(t, s, id)[0], 1, want)

	// Each save moves the version on by one.
	next := State(id, 2)
	if ok := save(t, s, scorer.Write{LeadID: id, Version: 1, State: &next}); !ok[0] {
		t.Fatal("Save from the current version 1 was refused")
	}
	checkStored(t, id, load(t, s, id)[0], 2, State(id, 2))
}

func testSaveStaleVersion(t *testing.T, s scorer.Store, ids leadIDs) {
	tests := []struct {
		name    string
		saved   int   // saves done before the stale one: the lead is at this version
		version int64 // the stale write's version
	}{
		{"new lead, version ahead", 0, 1},
		{"existing lead, version 0", 2, 0},
		{"existing lead, version behind", 2, 1},
		{"existing lead, version ahead", 2, 3},
		{"existing lead, version negative", 2, -1},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := ids.id(i)
			var want scorer.LeadState
			for v := range tc.saved {
				want = State(id, v)
				if ok := save(t, s, scorer.Write{LeadID: id, Version: int64(v), State: &want}); !ok[0] {
					t.Fatalf("setup: save from version %d refused", v)
				}
			}
			stale := State(id, 99)
			if ok := save(t, s, scorer.Write{LeadID: id, Version: tc.version, State: &stale}); ok[0] {
				t.Fatalf("Save from version %d of a lead at version %d succeeded, want refused", tc.version, tc.saved)
			}
			got := load(t, s, id)[0]
			if tc.saved == 0 {
				checkMissing(t, id, got)
				return
			}
			checkStored(t, id, got, int64(tc.saved), want)
		})
	}
}

func testSaveRacing(t *testing.T, s scorer.Store, ids leadIDs) {
	// Several writers save the same leads from version 0 at once: for each
	// lead exactly one wins, and the stored state is the winner's.
	const writers, leads = 8, 50
	lead := ids.ids(leads)
	results := make([][]bool, writers)
	errs := make([]error, writers)
	ctx := t.Context()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws := make([]scorer.Write, leads)
			for i, id := range lead {
				st := State(id, w)
				ws[i] = scorer.Write{LeadID: id, Version: 0, State: &st}
			}
			<-start
			results[w], errs[w] = s.Save(ctx, ws)
		}()
	}
	close(start)
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: Save: %v", w, err)
		}
	}

	got := load(t, s, lead...)
	for i, id := range lead {
		var winners []int
		for w := range writers {
			if results[w][i] {
				winners = append(winners, w)
			}
		}
		if len(winners) != 1 {
			t.Errorf("lead %q: writers %v won, want exactly one", id, winners)
			continue
		}
		checkStored(t, id, got[i], 1, State(id, winners[0]))
	}
}

func testBatch1000(t *testing.T, s scorer.Store, ids leadIDs) {
	const n = 1000
	lead := ids.ids(n)
	states := make([]scorer.LeadState, n)
	ws := make([]scorer.Write, n)
	for i, id := range lead {
		states[i] = State(id, i)
		ws[i] = scorer.Write{LeadID: id, Version: 0, State: &states[i]}
	}
	for i, ok := range save(t, s, ws...) {
		if !ok {
			t.Fatalf("lead %q: new-lead save refused", lead[i])
		}
	}
	got := load(t, s, lead...)
	for i, id := range lead {
		checkStored(t, id, got[i], 1, states[i])
	}

	// Second batch: odd leads write from the current version, even ones
	// from a stale one; each result is per lead.
	next := make([]scorer.LeadState, n)
	for i, id := range lead {
		next[i] = State(id, n+i)
		ws[i] = scorer.Write{LeadID: id, Version: int64(i % 2), State: &next[i]}
	}
	ok := save(t, s, ws...)
	got = load(t, s, lead...)
	for i, id := range lead {
		if odd := i%2 == 1; ok[i] != odd {
			t.Fatalf("lead %q (version 1), write from version %d: ok=%v", id, i%2, ok[i])
		}
		if i%2 == 1 {
			checkStored(t, id, got[i], 2, next[i])
		} else {
			checkStored(t, id, got[i], 1, states[i])
		}
	}
}

func testUnusualLeadIDs(t *testing.T, s scorer.Store, ids leadIDs) {
	tag := string(ids)
	tests := []struct{ name, id string }{
		{"open brace", "{" + tag},
		{"close brace", tag + "}"},
		{"braces inside", "a{" + tag + "}b"},
		{"close then open", "}" + tag + "{"},
		{"empty braces", "{}" + tag},
		{"spaces", " lead with spaces " + tag + " "},
		{"unicode", "lëad-日本-🚀-" + tag},
		{"256 bytes", tag + strings.Repeat("x", 256-len(tag))},
	}
	if n := len(tests[len(tests)-1].id); n != 256 {
		t.Fatalf("256-byte id has %d bytes", n)
	}
	lead := make([]string, len(tests))
	for i, tc := range tests {
		lead[i] = tc.id
		t.Run(tc.name, func(t *testing.T) {
			checkMissing(t, tc.id, load(t, s, tc.id)[0])
			st := saveNew(t, s, tc.id, i)
			checkStored(t, tc.id, load(t, s, tc.id)[0], 1, st)
		})
	}
	// Together in one batch, each id still maps to its own state.
	got := load(t, s, lead...)
	for i, id := range lead {
		checkStored(t, id, got[i], 1, State(id, i))
	}
}

func testSameWriteTwice(t *testing.T, s scorer.Store, ids leadIDs) {
	// go-redis may run a pipelined script again after a broken connection:
	// the repeat must report a conflict, not write twice.
	t.Run("two calls", func(t *testing.T) {
		id := ids.id(1)
		st := State(id, 1)
		w := scorer.Write{LeadID: id, Version: 0, State: &st}
		if ok := save(t, s, w); !ok[0] {
			t.Fatal("first save refused")
		}
		if ok := save(t, s, w); ok[0] {
			t.Fatal("the same write saved twice: the retry must report a conflict")
		}
		checkStored(t, id, load(t, s, id)[0], 1, State(id, 1))
	})
	t.Run("one batch", func(t *testing.T) {
		id := ids.id(2)
		st := State(id, 2)
		w := scorer.Write{LeadID: id, Version: 0, State: &st}
		if ok := save(t, s, w, w); !ok[0] || ok[1] {
			t.Fatalf("Save([w, w]) = %v, want [true false]", ok)
		}
		checkStored(t, id, load(t, s, id)[0], 1, State(id, 2))
	})
}
