// Package devmode is `leadscore dev`: the real scoring service (the same
// service.Run as `leadscore run`) with an embedded Kafka-protocol broker and
// an embedded Redis when no real ones are configured, demo traffic on
// request, and transitions shown live in the terminal.
package devmode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/internal/demo"
	"github.com/leadscore/leadscore/internal/embedded"
	"github.com/leadscore/leadscore/internal/service"
)

// Options configure a dev run.
type Options struct {
	Config config.Config
	// ConfigPath is the YAML file Config was loaded from (empty: none).
	// With LEADSCORE_RULES_FILE, a change to either file reloads the rules,
	// as in `leadscore run`.
	ConfigPath string
	// RealKafka / RealRedis: use Config's brokers / Redis address instead of
	// embedded ones (set when LEADSCORE_KAFKA_BROKERS / LEADSCORE_REDIS_ADDR are).
	RealKafka, RealRedis bool
	// KafkaAddr is where the embedded broker listens [127.0.0.1:9092; a free
	// port when that one is taken]. RedisAddr likewise [a free port].
	KafkaAddr, RedisAddr string
	// Demo plays buyer journeys into the input topic.
	Demo        bool
	DemoOptions demo.Options
	// Out receives the banner, the live transitions and the summary.
	Out io.Writer
	// Log receives the service's logs (keep it off a terminal that shows the
	// live view: log lines would break the summary line).
	Log *zap.Logger
	// Registry receives the service's metrics; nil makes one.
	Registry *prometheus.Registry
	// Ready, if set, is called once everything runs, with the addresses.
	Ready func(Addrs)
}

// Addrs are where a dev run listens.
type Addrs struct {
	Kafka, Redis, HTTP string
}

// Run runs dev mode until ctx ends.
func Run(ctx context.Context, o Options) error {
	cfg := o.Config
	log := o.Log
	if log == nil {
		log = zap.NewNop()
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}

	var embeddedKafka, embeddedRedis bool
	if !o.RealKafka {
		addr := o.KafkaAddr
		if addr == "" {
			addr = "127.0.0.1:9092"
		}
		k, err := embedded.StartKafka(addr, cfg.Kafka.Partitions, cfg.Kafka.InputTopic, cfg.Kafka.OutputTopic, cfg.Kafka.DeadLetterTopic)
		if err != nil && o.KafkaAddr == "" { // the default port is taken (a real Kafka?): take any
			k, err = embedded.StartKafka("127.0.0.1:0", cfg.Kafka.Partitions, cfg.Kafka.InputTopic, cfg.Kafka.OutputTopic, cfg.Kafka.DeadLetterTopic)
		}
		if err != nil {
			return fmt.Errorf("embedded kafka: %w", err)
		}
		defer k.Close()
		cfg.Kafka.Brokers = []string{k.Addr()}
		embeddedKafka = true
	}
	if !o.RealRedis {
		addr := o.RedisAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		r, err := embedded.StartRedis(addr)
		if err != nil {
			return fmt.Errorf("embedded redis: %w", err)
		}
		defer r.Close()
		cfg.Redis.Addr = r.Addr()
		embeddedRedis = true
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	fail := func(what string, err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			mu.Unlock()
			stop()
		}
	}

	started := make(chan string, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer stop()
		fail("service", service.Run(runCtx, cfg, log, service.Options{
			Registry:             reg,
			RedisDisableIdentity: embeddedRedis,
			Started:              func(addr string) { started <- addr },
			ConfigPath:           o.ConfigPath,
			Env:                  reloadEnv(cfg, embeddedKafka, embeddedRedis),
		}))
	}()
	var httpAddr string
	select {
	case httpAddr = <-started:
	case <-runCtx.Done():
		wg.Wait()
		return errors.Join(errs...)
	}
	addrs := Addrs{Kafka: cfg.Kafka.Brokers[0], Redis: cfg.Redis.Addr, HTTP: httpAddr}
	banner(o.Out, cfg, addrs, embeddedKafka, embeddedRedis, o.Demo)

	w, err := demo.NewWatcher(demo.WatchOptions{
		Brokers:          cfg.Kafka.Brokers,
		TransitionsTopic: cfg.Kafka.OutputTopic,
		DeadLetterTopic:  cfg.Kafka.DeadLetterTopic,
		Out:              o.Out,
		Summary:          demo.SummaryFromGatherer(reg),
		Log:              log,
	})
	if err != nil {
		stop()
		wg.Wait()
		return err
	}
	wg.Add(1)
	go func() { defer wg.Done(); fail("live view", w.Run(runCtx)) }() // a failure stops runCtx

	if o.Demo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select { // start the traffic once the view shows new records
			case <-w.Ready():
			case <-runCtx.Done():
				return
			}
			tr := &kafka.Transport{}
			defer tr.CloseIdleConnections()
			writer := &kafka.Writer{Addr: kafka.TCP(cfg.Kafka.Brokers...), Topic: cfg.Kafka.InputTopic, Transport: tr,
				Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
			defer writer.Close()
			_, err := demo.Run(runCtx, o.DemoOptions, writer, log.Named("demo"))
			fail("demo traffic", err)
		}()
	}
	if o.Ready != nil {
		o.Ready(addrs)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reloadEnv is the environment a rules reload reads: the process's, with
// the embedded endpoints in place of the configured ones, so that a reload
// does not mistake them for changes that need a restart.
func reloadEnv(cfg config.Config, embeddedKafka, embeddedRedis bool) func(string) (string, bool) {
	return func(k string) (string, bool) {
		switch {
		case k == "LEADSCORE_KAFKA_BROKERS" && embeddedKafka:
			return strings.Join(cfg.Kafka.Brokers, ","), true
		case k == "LEADSCORE_REDIS_ADDR" && embeddedRedis:
			return cfg.Redis.Addr, true
		}
		return os.LookupEnv(k)
	}
}

func banner(out io.Writer, cfg config.Config, a Addrs, embKafka, embRedis, withDemo bool) {
	kind := func(embedded bool, what string) string {
		if embedded {
			return "embedded " + what + ", in memory: its data is lost on exit"
		}
		return "real " + what
	}
	host, port, _ := net.SplitHostPort(a.HTTP)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	api := "http://" + net.JoinHostPort(host, port)
	var b strings.Builder
	fmt.Fprintf(&b, "leadscore dev — the scoring service with %s.\n\n", map[bool]string{true: "embedded Kafka and Redis", false: "your Kafka and Redis"}[embKafka && embRedis])
	fmt.Fprintf(&b, "  Kafka      %-22s %s\n", a.Kafka, kind(embKafka, "Kafka-protocol broker (kfake)"))
	fmt.Fprintf(&b, "  Redis      %-22s %s\n", a.Redis, kind(embRedis, "Redis (miniredis)"))
	fmt.Fprintf(&b, "  topics     %s → %s, bad records → %s\n", cfg.Kafka.InputTopic, cfg.Kafka.OutputTopic, cfg.Kafka.DeadLetterTopic)
	fmt.Fprintf(&b, "  metrics    %s/metrics   health %s/readyz\n", api, api)
	fmt.Fprintf(&b, "  a lead     %s/v1/leads/lead-42\n\n", api)
	now := time.Now().UTC().Format(time.RFC3339)
	fmt.Fprintf(&b, "Send an event (any Kafka client works; this is kcat):\n\n")
	fmt.Fprintf(&b, "  echo 'lead-42|{\"event_id\":\"my-1\",\"lead_id\":\"lead-42\",\"type\":\"page_view\",\"occurred_at\":\"%s\",\"properties\":{\"page\":\"pricing\"}}' \\\n", now)
	fmt.Fprintf(&b, "    | kcat -b %s -t %s -P -K'|'\n\n", a.Kafka, cfg.Kafka.InputTopic)
	if withDemo {
		fmt.Fprintf(&b, "Demo traffic is playing buyer journeys into %s. Transitions appear below as they happen; Ctrl-C stops.\n\n", cfg.Kafka.InputTopic)
	} else {
		fmt.Fprintf(&b, "Transitions appear below as they happen (add --demo for generated traffic); Ctrl-C stops.\n\n")
	}
	_, _ = io.WriteString(out, b.String())
}
