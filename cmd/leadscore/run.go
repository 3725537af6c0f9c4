package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/leadscore/leadscore/internal/service"
)

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	// SIGHUP reloads the rules. Caught from the start: its default action
	// would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (default: LEADSCORE_CONFIG, else built-in defaults)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, path, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	reload := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				default: // a reload is pending already: it will read the latest files
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	err = service.Run(ctx, cfg, log, service.Options{ConfigPath: path, Reload: reload, Env: os.LookupEnv})
	stop()
	wg.Wait()
	return err
}
