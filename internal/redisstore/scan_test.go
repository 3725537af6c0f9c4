package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/scorer/storetest"
)

func TestLeadIDInvertsKey(t *testing.T) {
	_, rdb := miniClient(t)
	s := newStore(t, rdb, "ls:*[x]:")
	for _, id := range []string{"lead-1", "a}b", "%7D", "100%", "{x}", "", "é"} {
		got, ok := s.LeadID(s.Key(id))
		if !ok || got != id {
			t.Errorf("LeadID(Key(%q)) = %q, %v", id, got, ok)
		}
	}
	for _, key := range []string{"ls:*[x]:schedule:{3}", "other:{lead-1}", "ls:*[x]:{unterminated"} {
		if id, ok := s.LeadID(key); ok {
			t.Errorf("LeadID(%q) = %q, want not a lead key", key, id)
		}
	}
}

func TestScanLeadsAndDeleteAll(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rdb := b.client(t)
			base := testPrefix(t, rdb)
			// A prefix with glob characters must match itself only; a
			// sibling prefix that extends it must survive DeleteAll of it.
			scratch := newStore(t, rdb, base+"rescore-v[2]*:")
			sibling := newStore(t, rdb, base+"rescore-v2x:")
			live := newStore(t, rdb, base)
			var want []string
			for i := range 2500 { // more than one SCAN page
				want = append(want, fmt.Sprintf("lead-%04d", i))
			}
			want = append(want, "a}b%")
			save := func(s interface {
				Save(context.Context, []scorer.Write) ([]bool, error)
			}, ids []string) {
				ws := make([]scorer.Write, len(ids))
				states := make([]scorer.LeadState, len(ids))
				for i, id := range ids {
					states[i] = storetest.State(id, 1)
					ws[i] = scorer.Write{LeadID: id, State: &states[i], NextChange: time.Now().Add(time.Hour), Schedule: true}
				}
				if _, err := s.Save(t.Context(), ws); err != nil {
					t.Fatal(err)
				}
			}
			save(scratch, want)
			save(sibling, []string{"sib"})
			save(live, []string{"live-1"})

			seen := map[string]bool{}
			if err := scratch.ScanLeads(t.Context(), func(ids []string) error {
				for _, id := range ids {
					seen[id] = true
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for id := range seen {
				got = append(got, id)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("ScanLeads: %d leads, want %d", len(got), len(want))
			}
			var liveIDs []string
			if err := live.ScanLeads(t.Context(), func(ids []string) error { liveIDs = append(liveIDs, ids...); return nil }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(liveIDs, []string{"live-1"}) {
				t.Errorf("ScanLeads of the live prefix: %v, want [live-1] (not the scratch prefix's leads)", liveIDs)
			}

			n, err := scratch.DeleteAll(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if n < int64(len(want)) {
				t.Errorf("DeleteAll unlinked %d keys, want at least %d leads and their schedule", n, len(want))
			}
			if left, _ := rdb.Keys(t.Context(), base+"rescore-v[[]2]*:*").Result(); len(left) != 0 {
				t.Errorf("%d keys left under the scratch prefix", len(left))
			}
			for _, s := range []struct {
				name string
				id   string
				st   interface {
					Load(context.Context, []string) ([]scorer.Stored, error)
				}
			}{{"sibling", "sib", sibling}, {"live", "live-1", live}} {
				got, err := s.st.Load(t.Context(), []string{s.id})
				if err != nil || !got[0].Found {
					t.Errorf("DeleteAll of the scratch prefix removed the %s lead: %v", s.name, err)
				}
			}
		})
	}
}

func TestRescheduleAllMovesEntriesLaterAndRemoves(t *testing.T) {
	_, rdb := miniClient(t)
	s := newStore(t, rdb, "ls:")
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"a", "b"} {
		if err := s.Reschedule(t.Context(), id, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RescheduleAll(t.Context(), []scorer.Due{{LeadID: "a", At: now.Add(time.Hour)}, {LeadID: "b"}}); err != nil {
		t.Fatal(err)
	}
	due, err := s.Due(t.Context(), now.Add(2*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].LeadID != "a" || !due[0].At.Equal(now.Add(time.Hour)) {
		t.Errorf("due %+v, want only a, an hour later", due)
	}
}
