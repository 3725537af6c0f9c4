package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/internal/rescore"
)

// rescoreFlags are the command line of `leadscore rescore`.
type rescoreFlags struct {
	config string
	rules  string
	from   time.Time // zero: the beginning
	apply  bool
	batch  int
}

func parseRescoreFlags(args []string, stderr io.Writer) (rescoreFlags, error) {
	var f rescoreFlags
	fs := flag.NewFlagSet("rescore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: leadscore rescore [--config FILE] [--rules FILE] [--from RFC3339|beginning] [--batch N] [--switch]

Replays the input topic, up to the consumer group's committed offsets, under
the new rules into scratch keys, and reports how many leads would change band
or stage. Nothing changes without --switch; a switch needs leadscore stopped.

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.config, "config", "", "YAML configuration file (default: LEADSCORE_CONFIG, else built-in defaults)")
	fs.StringVar(&f.rules, "rules", "", "the new rules section (YAML, as for LEADSCORE_RULES_FILE) (default: the rules of the loaded configuration)")
	from := fs.String("from", "beginning", "where the replay starts: 'beginning' or an RFC 3339 time (the first record at or after it, by record timestamp)")
	fs.BoolVar(&f.apply, "switch", false, "publish the net transitions and replace the live state (default: a dry run that changes nothing)")
	fs.IntVar(&f.batch, "batch", 0, "records per scoring batch (default: batch.max_events)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("rescore: unexpected argument %q", fs.Arg(0))
	}
	if f.batch < 0 {
		return f, fmt.Errorf("rescore: --batch %d: give a positive number of records", f.batch)
	}
	if !strings.EqualFold(*from, "beginning") {
		t, err := time.Parse(time.RFC3339, *from)
		if err != nil {
			return f, fmt.Errorf("rescore: --from %q: give 'beginning' or an RFC 3339 time such as 2026-12-01T00:00:00Z", *from)
		}
		f.from = t
	}
	return f, nil
}

func cmdRescore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseRescoreFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, _, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	var rules *config.Rules
	if f.rules != "" {
		r, err := config.LoadRules(f.rules)
		if err != nil {
			return err
		}
		if errs := r.Validate(); len(errs) > 0 {
			var b strings.Builder
			for _, e := range errs {
				fmt.Fprintf(&b, "\n%v", e)
			}
			return fmt.Errorf("invalid rules in %s:%s", f.rules, b.String())
		}
		rules = &r
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	_, err = rescore.Run(ctx, rescore.Options{
		Config:   cfg,
		Rules:    rules,
		From:     f.from,
		Switch:   f.apply,
		Batch:    f.batch,
		Out:      stdout,
		Progress: progressWriter(stdout, stderr),
		Log:      log,
	})
	return err
}

// progressWriter puts the progress bar on stderr when that is a terminal,
// so that a report redirected to a file still shows progress; otherwise the
// progress lines go with the report.
func progressWriter(stdout, stderr io.Writer) io.Writer {
	if rescore.IsTerminal(stderr) {
		return stderr
	}
	return stdout
}
