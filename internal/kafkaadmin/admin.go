// Package kafkaadmin holds the few admin operations leadscore needs: creating
// its topics at start-up and measuring consumer lag from committed offsets.
//
// Lag here is what kafka_exporter and Burrow report — the log-end offset
// minus the group's committed offset, per partition — not kafka-go's
// Stats().Lag, which is one gauge all partitions overwrite and which measures
// the fetch position instead of commits.
package kafkaadmin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// TopicSpec is a topic leadscore needs.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	Configs           map[string]string // topic configs to create it with (none: the broker's defaults)
}

// ErrMissingTopic is returned by EnsureTopics when a topic is missing and
// creation is off.
var ErrMissingTopic = errors.New("topic does not exist")

// EnsureTopics creates the topics that do not exist yet, or, when create is
// false, fails naming the first missing one.
func EnsureTopics(ctx context.Context, brokers []string, create bool, specs ...TopicSpec) error {
	tr := &kafka.Transport{MetadataTTL: time.Second}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: tr}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return fmt.Errorf("topic metadata from %v: %w", brokers, err)
	}
	exists := map[string]bool{}
	for _, t := range md.Topics {
		if t.Error == nil && len(t.Partitions) > 0 {
			exists[t.Name] = true
		}
	}
	var missing []kafka.TopicConfig
	for _, s := range specs {
		if exists[s.Name] {
			continue
		}
		if !create {
			return fmt.Errorf("%w: %s (create it, or set kafka.create_topics / LEADSCORE_KAFKA_CREATE_TOPICS=true)", ErrMissingTopic, s.Name)
		}
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
		for k, v := range s.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		missing = append(missing, tc)
	}
	if len(missing) == 0 {
		return nil
	}
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: missing})
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for name, err := range res.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
	}
	return waitForTopics(ctx, c, names)
}

// waitForTopics waits until metadata shows every topic with leaders: a
// topic just created may not accept writes for a moment.
func waitForTopics(ctx context.Context, c *kafka.Client, names []string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		if err == nil && allLed(md, len(names)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %v created but not ready after 30s (last error: %v)", names, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func allLed(md *kafka.MetadataResponse, want int) bool {
	n := 0
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.Leader.ID < 0 || p.Error != nil {
				return false
			}
		}
		n++
	}
	return n == want
}

// PartitionLag is one partition's lag.
type PartitionLag struct {
	Partition int
	End       int64 // log-end offset
	Committed int64 // the group's committed offset; -1 when none
	Lag       int64
}

// Lag measures a group's lag on a topic: log end minus committed offset per
// partition. A partition with no commit counts from its first offset, so a
// group that never committed shows everything retained as lag.
func Lag(ctx context.Context, c *kafka.Client, group, topic string) ([]PartitionLag, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var parts []int
	for _, t := range md.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return nil, fmt.Errorf("metadata %s: %w", topic, t.Error)
			}
			for _, p := range t.Partitions {
				parts = append(parts, p.ID)
			}
		}
	}
	sort.Ints(parts)
	reqs := make([]kafka.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	offs, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	committed, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("offset fetch: %w", err)
	}
	// A group that never committed is "not found" to some brokers (kfake)
	// and has offset -1 everywhere to others: both mean nothing committed.
	if committed.Error != nil && !errors.Is(committed.Error, kafka.GroupIdNotFound) {
		return nil, fmt.Errorf("offset fetch: %w", committed.Error)
	}
	ends := map[int]kafka.PartitionOffsets{}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets %s/%d: %w", topic, po.Partition, po.Error)
		}
		ends[po.Partition] = po
	}
	cm := map[int]int64{}
	for _, p := range committed.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("offset fetch %s/%d: %w", topic, p.Partition, p.Error)
		}
		cm[p.Partition] = p.CommittedOffset
	}
	out := make([]PartitionLag, 0, len(parts))
	for _, p := range parts {
		end, first := ends[p].LastOffset, ends[p].FirstOffset
		c, ok := cm[p]
		if !ok {
			c = -1
		}
		from := c
		if from < first {
			from = first
		}
		lag := end - from
		if lag < 0 {
			lag = 0
		}
		out = append(out, PartitionLag{Partition: p, End: end, Committed: c, Lag: lag})
	}
	return out, nil
}

// LagMonitor keeps the gauge leadscore_consumer_lag{topic,partition} up to
// date.
type LagMonitor struct {
	client   *kafka.Client
	group    string
	topic    string
	interval time.Duration
	gauge    *prometheus.GaugeVec
	errors   prometheus.Counter
	log      *zap.Logger
}

// NewLagMonitor registers the lag metrics with reg.
func NewLagMonitor(brokers []string, group, topic string, interval time.Duration, reg prometheus.Registerer, log *zap.Logger) *LagMonitor {
	m := &LagMonitor{
		client:   &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}},
		group:    group,
		topic:    topic,
		interval: interval,
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadscore_consumer_lag",
			Help: "Records not yet committed by the consumer group: log-end offset minus committed offset, per partition.",
		}, []string{"topic", "partition"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_consumer_lag_errors_total",
			Help: "Lag measurements that failed.",
		}),
		log: log,
	}
	reg.MustRegister(m.gauge, m.errors)
	return m
}

// Run measures lag every interval until ctx ends.
func (m *LagMonitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	defer m.client.Transport.(*kafka.Transport).CloseIdleConnections()
	for {
		m.measure(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (m *LagMonitor) measure(ctx context.Context) {
	lags, err := Lag(ctx, m.client, m.group, m.topic)
	if err != nil {
		if ctx.Err() == nil {
			m.errors.Inc()
			m.log.Warn("measure consumer lag", zap.String("topic", m.topic), zap.Error(err))
		}
		return
	}
	for _, l := range lags {
		m.gauge.WithLabelValues(m.topic, fmt.Sprint(l.Partition)).Set(float64(l.Lag))
	}
}
