package rescore

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// maxExamples bounds the lead ids a report lists per change.
const maxExamples = 10

// Report is what a rescore found, and for a switch, what it did.
type Report struct {
	Version     string // the new rules version
	LiveVersion string // the rules version of the loaded configuration
	Switched    bool
	Topic       string
	From        time.Time // zero: the beginning of the log

	Partitions int   // partitions with records to replay
	Records    int64 // records replayed
	Invalid    int64 // records that do not decode: skipped (the service dead-lettered them)
	Duplicates int64 // producer duplicates (a repeated event_id), counted once
	// Truncated lists partitions whose oldest records retention has removed,
	// when replaying from the beginning: their leads are rebuilt from what
	// remains.
	Truncated []int

	Leads    int // leads replayed
	NewLeads int // replayed leads with no live state
	Changed  int // leads whose band or stage changes
	Band     []Change
	Stage    []Change
	// OnlyLive counts leads with a live state and no event in the replay
	// window: they keep their live state.
	OnlyLive         int
	OnlyLiveExamples []string

	GroupMembers int // consumers in the group when the run started (dry run only: a switch needs none)
	Published    int // net transitions published (switch)
	Scratch      string
}

// Change is one kind of band or stage move and the leads making it.
type Change struct {
	From, To string
	Leads    int
	Examples []string // up to 10 lead ids, sorted
}

// tally counts the moves of one kind.
type tally map[[2]string]*Change

func (t tally) add(from, to, lead string) {
	k := [2]string{from, to}
	c := t[k]
	if c == nil {
		c = &Change{From: from, To: to}
		t[k] = c
	}
	c.Leads++
	if len(c.Examples) < maxExamples {
		c.Examples = append(c.Examples, lead)
	}
}

// sorted returns the moves, most leads first.
func (t tally) sorted() []Change {
	out := make([]Change, 0, len(t))
	for _, c := range t {
		sort.Strings(c.Examples)
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Leads != out[j].Leads {
			return out[i].Leads > out[j].Leads
		}
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

// moved sums the leads of changes.
func moved(cs []Change) int {
	n := 0
	for _, c := range cs {
		n += c.Leads
	}
	return n
}

// String is the report as `leadscore rescore` prints it, ending with what
// happened: nothing (a dry run) or the switch.
func (r *Report) String() string {
	var b strings.Builder
	mode := "dry run"
	verb := "would change"
	if r.Switched {
		mode, verb = "switch", "changed"
	}
	fmt.Fprintf(&b, "Rescore under rules version %s (live: %s), %s.\n", r.Version, r.LiveVersion, mode)
	from := "from the beginning of the log"
	if !r.From.IsZero() {
		from = "from the first record at or after " + r.From.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(&b, "Replayed %s records of %s (%d partitions), %s up to the consumer group's committed offsets.\n",
		commas(r.Records), r.Topic, r.Partitions, from)
	if r.Invalid > 0 {
		fmt.Fprintf(&b, "Skipped %s: the service dead-lettered them already.\n", plural(r.Invalid, "undecodable record"))
	}
	if r.Duplicates > 0 {
		fmt.Fprintf(&b, "Counted %s (a repeated event_id) once.\n", plural(r.Duplicates, "producer duplicate"))
	}
	if len(r.Truncated) > 0 {
		fmt.Fprintf(&b, "Note: retention has removed the oldest records of partition(s) %s; their leads are rebuilt from what remains.\n", ints(r.Truncated))
	}
	if r.GroupMembers > 0 {
		fmt.Fprintf(&b, "Note: the consumer group had %d active member(s): the live state moves on while a dry run compares with it.\n", r.GroupMembers)
	}

	fmt.Fprintf(&b, "\nLeads replayed: %s", commas(int64(r.Leads)))
	if r.NewLeads > 0 {
		fmt.Fprintf(&b, " (%s with no live state: compared as a new lead in the first band and stage)", commas(int64(r.NewLeads)))
	}
	b.WriteString("\n")
	writeChanges(&b, "Band", verb, r.Band)
	writeChanges(&b, "Stage", verb, r.Stage)
	fmt.Fprintf(&b, "Same band and stage: %s (their scores follow the new rules too).\n", leads(r.Leads-r.Changed))
	if r.OnlyLive > 0 {
		fmt.Fprintf(&b, "Only in the live state: %s had no event in the replay window; they keep their live state (e.g. %s).\n",
			leads(r.OnlyLive), strings.Join(r.OnlyLiveExamples, ", "))
	}
	b.WriteString("\n")
	if r.Switched {
		fmt.Fprintf(&b, "Switched to rules version %s: %s published.\n", r.Version, plural(int64(r.Published), "net transition"))
		fmt.Fprintf(&b, "Start leadscore again with rules version %s (LEADSCORE_RULES_FILE or the config's rules:).\n", r.Version)
	} else {
		fmt.Fprintf(&b, "Nothing changed. Run again with --switch to apply rules version %s.\n", r.Version)
	}
	return b.String()
}

func writeChanges(b *strings.Builder, kind, verb string, cs []Change) {
	n := moved(cs)
	if n == 0 {
		fmt.Fprintf(b, "%s %s for no lead.\n", kind, verb)
		return
	}
	fmt.Fprintf(b, "%s %s for %s:\n", kind, verb, leads(n))
	w := 0
	for _, c := range cs {
		w = max(w, len([]rune(c.From+" → "+c.To)))
	}
	for _, c := range cs {
		move := c.From + " → " + c.To
		more := ""
		if c.Leads > len(c.Examples) {
			more = ", …"
		}
		fmt.Fprintf(b, "  %s%s  %6s  e.g. %s%s\n", move, strings.Repeat(" ", w-len([]rune(move))),
			commas(int64(c.Leads)), strings.Join(c.Examples, ", "), more)
	}
}

// leads writes a number of leads: "1 lead", "1,234 leads".
func leads(n int) string { return plural(int64(n), "lead") }

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return commas(n) + " " + noun + "s"
}

func ints(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
