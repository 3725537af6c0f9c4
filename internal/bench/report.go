package bench

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is what a run measured.
type Report struct {
	Started    time.Time
	Elapsed    time.Duration
	Config     Config `json:"-"`
	Machine    string
	Throughput DrainFigures
	Memory     MemoryFigures
	Latency    []LatencyFigures
	CatchUp    CatchUpFigures
	Naive      DrainFigures
}

// DrainFigures describe a leadscore working through a backlog, measured
// from the first poll that saw its commits move to the poll that saw the
// lag at its target.
type DrainFigures struct {
	Events    int64   // the backlog
	Committed int64   // offsets committed within the window
	Seconds   float64 // the window
	Rate      float64 // Committed / Seconds
	// CPU time used within the window, per 1,000 committed events.
	LeadscoreCPU1k, RedisCPU1k, KafkaCPU1k time.Duration
}

func newDrainFigures(d drain) DrainFigures {
	f := DrainFigures{Committed: d.last.committed - d.first.committed, Seconds: d.last.at.Sub(d.first.at).Seconds()}
	if f.Seconds > 0 {
		f.Rate = float64(f.Committed) / f.Seconds
	}
	if f.Committed > 0 {
		per := func(c time.Duration) time.Duration { return c * 1000 / time.Duration(f.Committed) }
		f.LeadscoreCPU1k, f.RedisCPU1k, f.KafkaCPU1k = per(d.lsCPU), per(d.redisCPU), per(d.kafkaCPU)
	}
	return f
}

func (f DrainFigures) String() string {
	return fmt.Sprintf("%.0f events/s (%d committed in %.1f s); CPU per 1,000 events: leadscore %s, Redis %s, Kafka %s",
		f.Rate, f.Committed, f.Seconds, ms(f.LeadscoreCPU1k), ms(f.RedisCPU1k), ms(f.KafkaCPU1k))
}

// MemoryFigures describe Redis memory after the throughput phase.
type MemoryFigures struct {
	Leads     int
	UsedDelta int64   // growth of INFO used_memory over the phase
	AvgKey    float64 // MEMORY USAGE of a lead's key, mean over the sample
	MaxKey    int64   // and the largest in the sample
	AvgS      float64 // bytes of the scoring state s, mean over the sample
	AvgX      float64 // bytes of the explanation x, mean over the sample
	// The busiest lead (Zipf rank 0): full dedupe window, caps, history.
	BusiestKey, BusiestS, BusiestX int64
	Encoding                       string // OBJECT ENCODING of a lead's key
}

// PerLead is used_memory's growth per lead.
func (m MemoryFigures) PerLead() float64 { return float64(m.UsedDelta) / float64(max(m.Leads, 1)) }

// Scoring is the scoring state's share per lead: everything but the bytes
// of the explanation, so key overhead, version, schedule entries and
// allocator slack all count as scoring state.
func (m MemoryFigures) Scoring() float64 { return m.PerLead() - m.AvgX }

func (m MemoryFigures) String() string {
	return fmt.Sprintf("Redis memory per lead after %d leads: %.0f B (scoring state %.0f B, explanation %.0f B); "+
		"key MEMORY USAGE mean %.0f B, max %d B; busiest lead %d B (s %d B, x %d B); encoding %s",
		m.Leads, m.PerLead(), m.Scoring(), m.AvgX, m.AvgKey, m.MaxKey, m.BusiestKey, m.BusiestS, m.BusiestX, m.Encoding)
}

// LatencyFigures are produce-to-transition latencies at one fixed rate.
type LatencyFigures struct {
	Rate           int
	Achieved       float64 // events/s the generator really sent
	Events         int
	Samples        int // transitions timed
	P50, P99, P999 time.Duration
	Max            time.Duration
	// From leadscore's metrics over the phase: mean records per batch and
	// mean time from fetching a batch's first record to committing it.
	BatchRecords, BatchSeconds float64
	Stages                     []StageTime // mean time per batch in each stage (leadscore_batch_stage_seconds)
}

// StageTime is the mean time a batch spent in one stage of the pipeline.
type StageTime struct {
	Stage   string
	Seconds float64
}

// stages are the pipeline's, in order (internal/pipeline).
var stages = []string{"fill", "decode", "queued_score", "score", "queued_publish", "publish", "commit"}

func (lf LatencyFigures) String() string {
	s := fmt.Sprintf("%d events/s (sent %.0f/s): p50 %s, p99 %s, p999 %s, max %s over %d transitions; batches of %.0f records, %s each",
		lf.Rate, lf.Achieved, ms(lf.P50), ms(lf.P99), ms(lf.P999), ms(lf.Max), lf.Samples, lf.BatchRecords, ms(time.Duration(lf.BatchSeconds*float64(time.Second))))
	if len(lf.Stages) > 0 {
		s += " (" + lf.StageSummary() + ")"
	}
	return s
}

// StageSummary lists the mean time per batch in each stage.
func (lf LatencyFigures) StageSummary() string {
	var parts []string
	for _, st := range lf.Stages {
		parts = append(parts, fmt.Sprintf("%s %s", st.Stage, ms(time.Duration(st.Seconds*float64(time.Second)))))
	}
	return strings.Join(parts, ", ")
}

// CatchUpFigures describe the recovery from an outage.
type CatchUpFigures struct {
	Backlog   int
	Rate      int
	Outage    time.Duration
	Time      time.Duration // restart to lag under half a second of traffic
	Draining  time.Duration // first commit to caught up
	DrainRate float64       // events committed per second while draining
	LiveSent  int
	Drain     DrainFigures // the draining window, with CPU per 1,000 events
}

func (c CatchUpFigures) String() string {
	return fmt.Sprintf("caught up %s after the restart (%d events backlog, live %d events/s; drained at %.0f events/s)",
		c.Time.Round(100*time.Millisecond), c.Backlog, c.Rate, c.DrainRate)
}

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}

// Markdown writes the report as the table docs/BENCHMARKS.md shows.
func (r *Report) Markdown(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "leadscore benchmark, %s, %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Machine)
	fmt.Fprintln(w, "| figure | measured | floor |")
	fmt.Fprintln(w, "|---|---|---|")
	row := func(name, val, floor string) { fmt.Fprintf(w, "| %s | %s | %s |\n", name, val, floor) }
	if t := r.Throughput; t.Committed > 0 {
		row(fmt.Sprintf("sustained throughput, backlog of %s events over %s leads, %d partitions", num(t.Events), num(int64(c.Leads)), c.Partitions),
			fmt.Sprintf("**%s events/s** (%s in %.1f s)", num(int64(t.Rate)), num(t.Committed), t.Seconds), "≥ 100,000 events/s")
		row("CPU per 1,000 events: leadscore / Redis / Kafka broker",
			fmt.Sprintf("%s / %s / %s", ms(t.LeadscoreCPU1k), ms(t.RedisCPU1k), ms(t.KafkaCPU1k)), "")
		m := r.Memory
		row(fmt.Sprintf("Redis memory per lead after %s distinct leads: scoring state", num(int64(m.Leads))),
			fmt.Sprintf("**%.0f B**", m.Scoring()), "≤ 300 B")
		row("… explanation history (state.history 8)", fmt.Sprintf("%.0f B", m.AvgX), "reported")
		row("… busiest lead's key (full dedupe window, caps, history)", fmt.Sprintf("%d B (s %d B, x %d B)", m.BusiestKey, m.BusiestS, m.BusiestX), "")
	}
	for _, lf := range r.Latency {
		floor := ""
		if lf.Rate == 10_000 {
			floor = "p99 ≤ 50 ms"
		}
		row(fmt.Sprintf("produce → transition latency at %s events/s (p50 / p99 / p999, %s transitions)", num(int64(lf.Rate)), num(int64(lf.Samples))),
			fmt.Sprintf("%s / **%s** / %s", ms(lf.P50), ms(lf.P99), ms(lf.P999)), floor)
	}
	if cu := r.CatchUp; cu.Time > 0 {
		row(fmt.Sprintf("catch-up after a %s outage at %s events/s (%s events behind, traffic going on)", cu.Outage, num(int64(cu.Rate)), num(int64(cu.Backlog))),
			fmt.Sprintf("**%.1f s** (drained at %s events/s; CPU per 1,000: leadscore %s, Redis %s)", cu.Time.Seconds(), num(int64(cu.DrainRate)),
				ms(cu.Drain.LeadscoreCPU1k), ms(cu.Drain.RedisCPU1k)), "")
	}
	if n := r.Naive; n.Committed > 0 {
		row(fmt.Sprintf("naive baseline: one event per batch, commit per message (%s events)", num(n.Events)),
			fmt.Sprintf("%s events/s; leadscore CPU %s per 1,000", num(int64(n.Rate)), ms(n.LeadscoreCPU1k)), "")
		if r.Throughput.Rate > 0 {
			row("leadscore ÷ naive", fmt.Sprintf("**%.0f×**", r.Throughput.Rate/n.Rate), "")
		}
	}
	fmt.Fprintf(w, "\nrun took %s\n", r.Elapsed.Round(time.Second))
}

// num formats n with thousands separators.
func num(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// machine describes where the run happened: CPU model and count, memory,
// and the Kafka jar in use.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d × %s%s, %s, one core sorts 1M integers in %s", runtime.NumCPU(), model, mem, runtime.Version(), ms(sortSpeed()))
}

// sortSpeed is a fixed single-core workload's time: sorting a million
// pseudo-random integers. The machine's speed varies from hour to hour by
// more than some changes measured here, so each report says how fast the
// machine was when it ran.
func sortSpeed() time.Duration {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]uint32, 1<<20)
	best := time.Duration(math.MaxInt64)
	for range 3 {
		for i := range xs {
			xs[i] = rng.Uint32()
		}
		start := time.Now()
		slices.Sort(xs)
		best = min(best, time.Since(start))
	}
	return best
}

// KafkaVersion names the broker jar services.sh fetched, e.g. "kafka_2.13-4.1.0".
func KafkaVersion(root string) string {
	m, _ := filepath.Glob(filepath.Join(root, ".cache/kafka/libs/kafka_2.13-*.jar"))
	for _, p := range m {
		if b := filepath.Base(p); !strings.Contains(b, "test") {
			return strings.TrimSuffix(b, ".jar")
		}
	}
	return "kafka (version unknown)"
}
