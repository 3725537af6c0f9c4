package testsvc

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/internal/kafkaadmin"
	"github.com/leadscore/leadscore/sink"
)

// Topics is what integration tests do with real Kafka. Give it a Transport
// of the test's own: kafka-go's shared DefaultTransport caches metadata for
// 6 s and would hide topics the test has just created.
type Topics struct {
	T         testing.TB
	Brokers   []string
	Transport *kafka.Transport
}

// Record is an input record: the event's JSON, keyed by its lead.
func Record(ev events.Event) kafka.Message {
	v, err := events.Encode(ev)
	if err != nil {
		panic(err)
	}
	return kafka.Message{Key: []byte(ev.LeadID), Value: v}
}

// Produce writes msgs to topic, keyed like a well-behaved producer
// (Murmur2, acks=all), and fails the test if Kafka refuses them.
func (k Topics) Produce(topic string, msgs ...kafka.Message) {
	k.T.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: topic, Transport: k.Transport,
		Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 1000}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		k.T.Fatalf("produce %d records: %v", len(msgs), err)
	}
}

// ReadAll reads every record of a topic, from the first offset to the end.
func (k Topics) ReadAll(topic string) []kafka.Message {
	k.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(k.Brokers...), Transport: k.Transport}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		k.T.Fatalf("metadata %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, p := range md.Topics[0].Partitions {
		offs, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			topic: {kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID)}}})
		if err != nil {
			k.T.Fatalf("list offsets: %v", err)
		}
		po := offs.Topics[topic][0]
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers, Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		_ = r.SetOffset(po.FirstOffset)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				k.T.Fatalf("read %s/%d: %v", topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		_ = r.Close()
	}
	return out
}

// Transitions reads every transition record of topic, checking that each
// is JSON keyed by its lead.
func (k Topics) Transitions(topic string) []sink.TransitionRecord {
	k.T.Helper()
	msgs := k.ReadAll(topic)
	out := make([]sink.TransitionRecord, 0, len(msgs))
	for _, m := range msgs {
		var r sink.TransitionRecord
		if err := json.Unmarshal(m.Value, &r); err != nil {
			k.T.Fatalf("transition record is not JSON: %v: %s", err, m.Value)
		}
		if string(m.Key) != r.LeadID {
			k.T.Errorf("transition key %q, lead_id %q", m.Key, r.LeadID)
		}
		out = append(out, r)
	}
	return out
}

// WaitNoLag waits until group has committed everything on topic.
func (k Topics) WaitNoLag(group, topic string, timeout time.Duration) {
	k.T.Helper()
	c := &kafka.Client{Addr: kafka.TCP(k.Brokers...), Transport: k.Transport}
	deadline := time.Now().Add(timeout)
	var last []kafkaadmin.PartitionLag
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		lags, err := kafkaadmin.Lag(ctx, c, group, topic)
		cancel()
		if err == nil {
			last = lags
			total := int64(0)
			for _, l := range lags {
				total += l.Lag
			}
			if total == 0 && len(lags) > 0 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	k.T.Fatalf("lag did not reach 0 within %s: %+v", timeout, last)
}
