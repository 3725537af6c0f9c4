package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/internal/demo"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file: brokers and topics (default: LEADSCORE_CONFIG, else built-in defaults)")
	rate := fs.Float64("rate", 100, "events per second (0: as fast as possible)")
	leads := fs.Int("leads", demo.DefaultLeads, "number of leads")
	duration := fs.Duration("duration", 0, "how long to play (0: until Ctrl-C)")
	seed := fs.Int64("seed", 1, "random seed (same seed, same traffic)")
	watch := fs.Bool("watch", true, "show transitions and dead letters live")
	metricsURL := fs.String("metrics-url", "http://127.0.0.1:8080/metrics", "the service's /metrics, for the summary line (empty: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, _, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var watchErr error
	watchDone := make(chan struct{})
	if *watch {
		var summary func() demo.Summary
		if *metricsURL != "" {
			summary = demo.SummaryFromGatherer(scrape(*metricsURL))
		}
		w, err := demo.NewWatcher(demo.WatchOptions{Brokers: cfg.Kafka.Brokers, TransitionsTopic: cfg.Kafka.OutputTopic,
			DeadLetterTopic: cfg.Kafka.DeadLetterTopic, Out: stdout, Summary: summary, Log: log})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); defer close(watchDone); watchErr = w.Run(ctx) }()
		select {
		case <-w.Ready():
		case <-watchDone:
			return fmt.Errorf("live view: %w", watchErr)
		case <-ctx.Done():
		}
	}
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	writer := &kafka.Writer{Addr: kafka.TCP(cfg.Kafka.Brokers...), Topic: cfg.Kafka.InputTopic, Transport: tr,
		Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	stats, err := demo.Run(ctx, demo.Options{Rate: *rate, Leads: *leads, Duration: *duration, Seed: *seed}, writer, log)
	_ = writer.Close()
	if *watch && err == nil && ctx.Err() == nil {
		time.Sleep(2 * time.Second) // let the last transitions arrive
	}
	stop()
	wg.Wait()
	fmt.Fprintf(stdout, "\ndemo: sent %d events, %d duplicates, %d malformed records to %s\n",
		stats.Events, stats.Duplicates, stats.Malformed, cfg.Kafka.InputTopic)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return watchErr
}

// scrape is a Gatherer that reads another process's /metrics.
func scrape(url string) prometheus.Gatherer {
	client := &http.Client{Timeout: 2 * time.Second}
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		resp, err := client.Get(url)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			return nil, err
		}
		out := make([]*dto.MetricFamily, 0, len(mfs))
		for _, mf := range mfs {
			out = append(out, mf)
		}
		return out, nil
	})
}
