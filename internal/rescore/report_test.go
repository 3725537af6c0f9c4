package rescore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func sampleReport() Report {
	band := tally{}
	for i := range 12 {
		band.add("cold", "warm", fmt.Sprintf("lead-%02d", 12-i))
	}
	band.add("warm", "hot", "lead-40")
	band.add("warm", "hot", "lead-41")
	stage := tally{}
	stage.add("lead", "mql", "lead-07")
	return Report{
		Version: "pv6", LiveVersion: "3f9a1c0b2d4e", Topic: "lead-events",
		Partitions: 6, Records: 1_234_567, Invalid: 2, Duplicates: 3,
		Leads: 50, NewLeads: 1, Changed: 14,
		Band: band.sorted(), Stage: stage.sorted(),
		OnlyLive: 2, OnlyLiveExamples: []string{"ghost-1", "ghost-2"},
	}
}

func TestReportDryRun(t *testing.T) {
	want := `Rescore under rules version pv6 (live: 3f9a1c0b2d4e), dry run.
Replayed 1,234,567 records of lead-events (6 partitions), from the beginning of the log up to the consumer group's committed offsets.
Skipped 2 undecodable records: the service dead-lettered them already.
Counted 3 producer duplicates (a repeated event_id) once.

Leads replayed: 50 (1 with no live state: compared as a new lead in the first band and stage)
Band would change for 14 leads:
  cold → warm      12  e.g. lead-03, lead-04, lead-05, lead-06, lead-07, lead-08, lead-09, lead-10, lead-11, lead-12, …
  warm → hot        2  e.g. lead-40, lead-41
Stage would change for 1 lead:
  lead → mql       1  e.g. lead-07
Same band and stage: 36 leads (their scores follow the new rules too).
Only in the live state: 2 leads had no event in the replay window; they keep their live state (e.g. ghost-1, ghost-2).

Nothing changed. Run again with --switch to apply rules version pv6.
`
	r := sampleReport()
	if got := r.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestReportSwitch(t *testing.T) {
	r := sampleReport()
	r.Switched, r.Published = true, 15
	r.From = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r.Band, r.Stage = nil, nil
	r.Changed = 0
	got := r.String()
	for _, want := range []string{
		"Rescore under rules version pv6 (live: 3f9a1c0b2d4e), switch.\n",
		"from the first record at or after 2026-12-01T00:00:00Z up to the consumer group's committed offsets",
		"Band changed for no lead.\nStage changed for no lead.\n",
		"Same band and stage: 50 leads",
		"Switched to rules version pv6: 15 net transitions published.\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Nothing changed") {
		t.Errorf("a switch report says nothing changed:\n%s", got)
	}
}

func TestTallyKeepsTenSortedExamples(t *testing.T) {
	tl := tally{}
	for i := 20; i > 0; i-- {
		tl.add("a", "b", fmt.Sprintf("l%02d", i))
	}
	cs := tl.sorted()
	if len(cs) != 1 || cs[0].Leads != 20 || len(cs[0].Examples) != maxExamples {
		t.Fatalf("got %+v", cs)
	}
	if cs[0].Examples[0] != "l11" || cs[0].Examples[9] != "l20" {
		t.Errorf("examples: the first 10 seen, sorted; got %v", cs[0].Examples)
	}
}
