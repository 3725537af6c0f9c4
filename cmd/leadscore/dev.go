package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/leadscore/leadscore/internal/demo"
	"github.com/leadscore/leadscore/internal/devmode"
)

func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (default: LEADSCORE_CONFIG, else built-in defaults)")
	withDemo := fs.Bool("demo", false, "play generated buyer journeys into the input topic")
	rate := fs.Float64("rate", 20, "demo events per second")
	leads := fs.Int("leads", 200, "demo leads")
	seed := fs.Int64("seed", 1, "demo random seed (same seed, same traffic)")
	kafkaAddr := fs.String("kafka-addr", "", "where the embedded broker listens (default 127.0.0.1:9092, or a free port if taken)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, path, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	_, realKafka := os.LookupEnv("LEADSCORE_KAFKA_BROKERS")
	_, realRedis := os.LookupEnv("LEADSCORE_REDIS_ADDR")

	// On a terminal the live view owns the screen: logs go to a file.
	logOut, logNote := stderr, ""
	if demo.IsTerminal(stdout) {
		path := filepath.Join(os.TempDir(), "leadscore-dev.log")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		logOut, logNote = f, path
	}
	log, err := newLogger(cfg.Log, logOut)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if logNote != "" {
		fmt.Fprintf(stdout, "(logs: %s)\n", logNote)
	}
	return devmode.Run(ctx, devmode.Options{
		Config:      cfg,
		ConfigPath:  path,
		RealKafka:   realKafka,
		RealRedis:   realRedis,
		KafkaAddr:   *kafkaAddr,
		Demo:        *withDemo,
		DemoOptions: demo.Options{Rate: *rate, Leads: *leads, Seed: *seed},
		Out:         stdout,
		Log:         log,
	})
}
