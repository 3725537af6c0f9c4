// Command leadscore scores leads in real time: behaviour events in from
// Kafka, running scores in Redis, lifecycle transitions out to Kafka.
//
//	leadscore dev              zero-install: embedded Kafka and Redis, live view
//	leadscore run              the service, against real Kafka and Redis
//	leadscore demo             play realistic buyer journeys into the input topic
//	leadscore rules check FILE validate a rules file and explain it in plain words
//	leadscore explain LEAD     a lead's score, band, stage and why, from a running leadscore
//	leadscore version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/leadscore/leadscore/config"
)

var version = "dev" // set with -ldflags "-X main.version=…"

// gcPercent is leadscore's garbage-collector target unless GOGC is set: the
// live heap is small (two batches and the rules), the allocation rate high,
// and at Go's default of 100 the collector took a third of the CPU in the
// benchmark's profile (docs/BENCHMARKS.md).
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "leadscore:", err)
		os.Exit(1)
	}
}

const usage = `leadscore scores leads in real time from Kafka events, keeping state in Redis.

Usage:
  leadscore dev  [--config FILE] [--demo]   embedded Kafka + Redis, live view (the first-run command)
  leadscore run  [--config FILE]            the service, against LEADSCORE_KAFKA_BROKERS and LEADSCORE_REDIS_ADDR
  leadscore demo [flags]                    play buyer journeys into the input topic
  leadscore rescore [--rules FILE] [--from TIME] [--switch]  replay under new rules: dry-run report, then switch
  leadscore rules check FILE                validate a rules file (or a whole config) and explain it in plain words
  leadscore explain LEAD [--api URL]        show a lead's score, band, stage and why, from a running leadscore
  leadscore version

Configuration: YAML (--config FILE or LEADSCORE_CONFIG), every field overridable
by LEADSCORE_* variables; see README.md.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stderr)
	case "dev":
		return cmdDev(ctx, args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "rescore":
		return cmdRescore(ctx, args[1:], stdout, stderr)
	case "rules":
		return cmdRules(ctx, args[1:], stdout, stderr)
	case "explain":
		return cmdExplain(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "leadscore", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// loadConfig loads and validates the configuration for a command.
// It returns the file it read (the flag, else LEADSCORE_CONFIG; "" for the
// built-in defaults), which a hot reload reads again.
func loadConfig(flagPath string) (config.Config, string, error) {
	path := flagPath
	if path == "" {
		path = os.Getenv("LEADSCORE_CONFIG")
	}
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return cfg, path, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, path, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, path, nil
}

func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	if c.Format == "console" {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	} else {
		encoder = zapcore.NewJSONEncoder(enc)
	}
	core := zapcore.NewCore(encoder, zapcore.AddSync(w), level)
	// Sampling keeps a storm of identical warnings (a flood of bad records)
	// from drowning the log; metrics count every one.
	core = zapcore.NewSamplerWithOptions(core, 1e9, 10, 100)
	return zap.New(core), nil
}
