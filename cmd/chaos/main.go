// Command chaos is leadscore's fault suite (issue #5): real Kafka and Redis
// on their own ports, leadscore processes killed, restarted and rebalanced,
// the broker and Redis restarted or paused, and the result compared with an
// independent reference. `make chaos` / `make chaos-short` run it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/leadscore/leadscore/internal/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

var errFound = errors.New("the fault suite found a difference (see above)")

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	short := fs.Bool("short", false, "a few faults and a small workload (< 3 min): 5 faults, 20,000 events, 1,000 leads unless set")
	faults := fs.Int("faults", 50, "faults to inject, spread evenly over the five kinds")
	evs := fs.Int("events", 200000, "events to produce")
	leads := fs.Int("leads", 5000, "leads the events are spread over")
	seed := fs.Int64("seed", 1, "workload and fault schedule seed")
	kafkaPort := fs.Int("kafka-port", 19192, "port of the suite's own Kafka broker (controller: port+1)")
	redisPort := fs.Int("redis-port", 16479, "port of the suite's own Redis")
	root := fs.String("root", ".", "the leadscore repository (scripts/services.sh, ./cmd/leadscore)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *short {
		if !set["faults"] {
			*faults = 5
		}
		if !set["events"] {
			*evs = 20000
		}
		if !set["leads"] {
			*leads = 1000
		}
	}
	if *faults < 1 || *evs < 1 || *leads < 1 {
		return errors.New("--faults, --events and --leads must be positive")
	}
	rep, err := chaos.Run(ctx, chaos.Config{Root: *root, KafkaPort: *kafkaPort, RedisPort: *redisPort,
		Faults: *faults, Events: *evs, Leads: *leads, Seed: *seed, Out: os.Stdout})
	if err != nil {
		return err
	}
	fmt.Print("\n" + rep.Table())
	if !rep.OK() {
		return errFound
	}
	return nil
}
