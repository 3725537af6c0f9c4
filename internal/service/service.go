// Package service wires leadscore's components from a Config and runs them
// until the context ends. `leadscore run` and `leadscore dev` both use it:
// dev differs only in the endpoints it passes in.
package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/internal/httpapi"
	"github.com/leadscore/leadscore/internal/kafkaadmin"
	"github.com/leadscore/leadscore/internal/pipeline"
	"github.com/leadscore/leadscore/internal/redisstore"
	"github.com/leadscore/leadscore/internal/reload"
	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sink"
)

// Options are what a caller may set beyond the Config.
type Options struct {
	// Registry receives every metric; nil makes a new one. Go and process
	// collectors are added to it.
	Registry *prometheus.Registry
	// RedisDisableIdentity is needed against miniredis (no CLIENT SETINFO).
	RedisDisableIdentity bool
	// Started, if set, is called once the service is consuming, with the
	// HTTP listener's bound address.
	Started func(httpAddr string)

	// ConfigPath is the YAML file cfg was loaded from (empty: none). A
	// reload reads it again, with LEADSCORE_RULES_FILE, and a change to
	// either file reloads the rules.
	ConfigPath string
	// Reload reloads the rules once per value received (cmd/leadscore
	// feeds it SIGHUP) [nil: file changes only].
	Reload <-chan struct{}
	// Env is the environment a reload reads: the LEADSCORE_* overrides and
	// LEADSCORE_RULES_FILE [os.LookupEnv]. Pass the one cfg was loaded with.
	Env func(string) (string, bool)
	// ReloadInterval is how often the config and rules files are checked
	// for changes [reload.DefaultInterval, 2s].
	ReloadInterval time.Duration
}

// Run starts leadscore and blocks until ctx ends and everything has stopped.
func Run(ctx context.Context, cfg config.Config, log *zap.Logger, opt Options) error {
	reg := opt.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	model, err := BuildModel(cfg)
	if err != nil {
		return err
	}

	k := cfg.Kafka
	topicCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = kafkaadmin.EnsureTopics(topicCtx, k.Brokers, k.CreateTopics,
		kafkaadmin.TopicSpec{Name: k.InputTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor},
		kafkaadmin.TopicSpec{Name: k.OutputTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor},
		kafkaadmin.TopicSpec{Name: k.DeadLetterTopic, Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor})
	cancel()
	if err != nil {
		return fmt.Errorf("kafka topics: %w", err)
	}

	rdb := redis.NewClient(&redis.Options{
		Addr:            cfg.Redis.Addr,
		Username:        cfg.Redis.Username,
		Password:        cfg.Redis.Password.Reveal(),
		DB:              cfg.Redis.DB,
		DisableIdentity: opt.RedisDisableIdentity,
	})
	defer rdb.Close()
	storeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, err := redisstore.New(storeCtx, rdb, cfg.Redis.KeyPrefix)
	cancel()
	if err != nil {
		return fmt.Errorf("redis at %s: %w", cfg.Redis.Addr, err)
	}
	sc := scorer.New(model, store)

	// The reloader always publishes the rules version (leadscore_rules_info);
	// it runs only when there is something to reload from.
	env := opt.Env
	if env == nil {
		env = os.LookupEnv
	}
	rulesFile, _ := env("LEADSCORE_RULES_FILE")
	reloader, err := reload.New(reload.Options{
		ConfigPath: opt.ConfigPath,
		Env:        env,
		Running:    cfg,
		Build:      BuildModel,
		Models:     sc,
		Trigger:    opt.Reload,
		Interval:   opt.ReloadInterval,
		Registerer: reg,
		Log:        log.Named("reload"),
	})
	if err != nil {
		return err
	}
	hotReload := opt.ConfigPath != "" || rulesFile != "" || opt.Reload != nil

	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:                k.Brokers,
		GroupID:                k.GroupID,
		Topic:                  k.InputTopic,
		MinBytes:               1,
		MaxBytes:               16 << 20,
		MaxWait:                250 * time.Millisecond,
		QueueCapacity:          cfg.Batch.MaxEvents,
		CommitInterval:         0, // synchronous commits, after the batch is durable
		StartOffset:            kafka.FirstOffset,
		SessionTimeout:         k.SessionTimeout,
		HeartbeatInterval:      min(3*time.Second, k.SessionTimeout/3),
		RebalanceTimeout:       max(k.SessionTimeout, 10*time.Second),
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		ErrorLogger:            kafka.LoggerFunc(log.Named("kafka").Sugar().Warnf),
	})
	// A batch's records go out in one WriteMessages call, so lingering for
	// more buys nothing: it only delays every batch (and the next batch's
	// save, which waits for this publish).
	pub := sink.NewPublisher(k.Brokers, 250*time.Microsecond)

	dec := events.NewDecoder(events.Limits{
		MaxRecordBytes: cfg.Input.MaxRecordBytes,
		MaxFutureSkew:  cfg.Input.MaxFutureSkew,
	}, time.Now)
	failpoints, err := pipeline.ParseFailpoints(os.Getenv("LEADSCORE_FAILPOINTS"))
	if err != nil {
		_ = reader.Close()
		_ = pub.Close()
		return err
	}
	pipe := pipeline.New(pipeline.Options{
		Failpoints:      failpoints,
		OutputTopic:     k.OutputTopic,
		DeadLetterTopic: k.DeadLetterTopic,
		MaxBatch:        cfg.Batch.MaxEvents,
		MaxWait:         cfg.Batch.MaxWait,
		InFlight:        cfg.Batch.InFlight,
	}, reader, pub, dec, sc, reg, log)
	lag := kafkaadmin.NewLagMonitor(k.Brokers, k.GroupID, k.InputTopic, k.LagInterval, reg, log)

	ready := func(ctx context.Context) error {
		if err := pipe.Ready(); err != nil {
			return err
		}
		if err := store.Ping(ctx); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return nil
	}
	handler := httpapi.Handler(reg, sc, ready, log)
	if cfg.HTTP.PProf {
		handler = httpapi.WithPProf(handler)
	}
	srv, err := httpapi.Listen(cfg.HTTP.Addr, handler)
	if err != nil {
		_ = reader.Close()
		_ = pub.Close()
		return fmt.Errorf("http listener: %w", err)
	}

	log.Info("leadscore started",
		zap.Strings("brokers", k.Brokers), zap.String("group_id", k.GroupID),
		zap.String("input_topic", k.InputTopic), zap.String("output_topic", k.OutputTopic),
		zap.String("dead_letter_topic", k.DeadLetterTopic), zap.String("redis", cfg.Redis.Addr),
		zap.String("http", srv.Addr()), zap.String("rules_version", model.Version()))
	if opt.Started != nil {
		opt.Started(srv.Addr())
	}

	// Every goroutine below is joined before Run returns.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var pipeErr error
	wg.Add(3)
	go func() {
		defer wg.Done()
		defer stop() // a failed pipeline stops the rest
		pipeErr = pipe.Run(runCtx)
	}()
	go func() { defer wg.Done(); _ = lag.Run(runCtx) }()
	// Decay runs even when the rules have none: a reload may turn it on.
	wg.Add(1)
	go func() { defer wg.Done(); _ = pipe.RunDecay(runCtx, store, cfg.State.DecayInterval) }()
	if hotReload {
		wg.Add(1)
		go func() { defer wg.Done(); _ = reloader.Run(runCtx) }()
	}
	var httpErr error
	go func() {
		defer wg.Done()
		if httpErr = srv.Run(runCtx); httpErr != nil {
			stop()
		}
	}()
	<-runCtx.Done()
	wg.Wait()

	// The pipeline has committed its last batch; now leave the group and
	// flush the writer.
	rerr := reader.Close()
	perr := pub.Close()
	log.Info("leadscore stopped")
	return errors.Join(pipeErr, httpErr, wrap("close reader", rerr), wrap("close writer", perr))
}

// BuildModel compiles the scoring model a configuration describes. It is
// the one place that turns configuration into a model: start-up and reloads
// both use it.
func BuildModel(cfg config.Config) (*scorer.Model, error) {
	m, err := scorer.NewModel(cfg.Rules, cfg.State.DedupeWindow, cfg.State.History)
	if err != nil {
		return nil, err
	}
	m.SetInFlight(cfg.Batch.InFlight)
	return m, nil
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
