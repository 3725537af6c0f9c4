// Command bench is leadscore's end-to-end benchmark (issue #6): real Kafka
// and Redis on their own ports, a load generator, and leadscore as a
// subprocess, all on this machine. It prints a markdown table (the one in
// docs/BENCHMARKS.md) and, with --json, the figures as JSON. `make bench`
// runs it; `make bench-quick` runs a small version in about two minutes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/leadscore/leadscore/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "a small run (about 2 min): 300,000-event backlog over 100,000 leads, 10 s latency phases, a 30 s outage, 3,000 naive events — unless set")
	leads := fs.Int("leads", 1_000_000, "distinct leads in the backlog")
	backlog := fs.Int("backlog", 3_000_000, "events in the backlog (one per lead first, the rest Zipf-skewed)")
	rates := fs.String("rates", "1000,10000,50000", "fixed rates of the latency phases, events/s")
	rateDur := fs.Duration("rate-duration", 30*time.Second, "how long each latency phase produces")
	outageRate := fs.Int("outage-rate", 10_000, "traffic rate around the outage, events/s")
	outage := fs.Duration("outage", 10*time.Minute, "how long leadscore is down in the catch-up phase")
	naive := fs.Int("naive-events", 10_000, "backlog of the naive baseline")
	phases := fs.String("phases", "throughput,latency,catchup,naive", "phases to run (latency and catchup need throughput)")
	partitions := fs.Int("partitions", 6, "partitions of every topic")
	profile := fs.String("profile", "", "write a 20 s CPU profile of leadscore taken during the throughput phase to this file")
	jsonOut := fs.String("json", "", "also write the figures as JSON to this file")
	seed := fs.Int64("seed", 1, "workload seed")
	kafkaPort := fs.Int("kafka-port", 19292, "port of the benchmark's own Kafka broker (controller: port+1)")
	redisPort := fs.Int("redis-port", 16579, "port of the benchmark's own Redis")
	root := fs.String("root", ".", "the leadscore repository (scripts/services.sh, ./cmd/leadscore)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		quickDefaults := map[string]func(){
			"leads":         func() { *leads = 100_000 },
			"backlog":       func() { *backlog = 300_000 },
			"rate-duration": func() { *rateDur = 10 * time.Second },
			"outage":        func() { *outage = 30 * time.Second },
			"naive-events":  func() { *naive = 3_000 },
		}
		for name, f := range quickDefaults {
			if !set[name] {
				f()
			}
		}
	}
	var rs []int
	for _, s := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("--rates: %q is not a positive number", s)
		}
		rs = append(rs, n)
	}
	if *leads < 1 || *backlog < 1 || *naive < 1 || *outageRate < 1 || *partitions < 1 {
		return errors.New("--leads, --backlog, --naive-events, --outage-rate and --partitions must be positive")
	}
	rep, err := bench.Run(ctx, bench.Config{
		Root: *root, KafkaPort: *kafkaPort, RedisPort: *redisPort, Partitions: *partitions,
		Leads: *leads, Backlog: *backlog, Rates: rs, RateDuration: *rateDur,
		OutageRate: *outageRate, Outage: *outage, NaiveEvents: *naive,
		Phases: strings.Split(*phases, ","), Profile: *profile, Seed: *seed, Out: os.Stdout,
	})
	if err != nil {
		return err
	}
	fmt.Println()
	rep.Markdown(os.Stdout)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, b, 0o644)
	}
	return nil
}
