package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

const testPartitions = 3

// startKafka starts a broker on a free port and closes it when the test ends.
func startKafka(t *testing.T, topics ...string) *Kafka {
	t.Helper()
	k, err := StartKafka("127.0.0.1:0", testPartitions, topics...)
	if err != nil {
		t.Fatalf("StartKafka: %v", err)
	}
	t.Cleanup(k.Close)
	return k
}

// newTransport returns a kafka-go transport owned by the test: the default
// transport is shared and keeps connection goroutines alive, which goleak
// would report.
func newTransport(t *testing.T) *kafka.Transport {
	t.Helper()
	tr := &kafka.Transport{DialTimeout: 3 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStartKafkaAddr(t *testing.T) {
	tests := []struct {
		name, addr string
		wantHost   string
	}{
		{"free port", "127.0.0.1:0", "127.0.0.1"},
		{"empty", "", "127.0.0.1"},
		{"no host", ":0", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := StartKafka(tt.addr, 1)
			if err != nil {
				t.Fatalf("StartKafka(%q): %v", tt.addr, err)
			}
			defer k.Close()
			host, port, err := net.SplitHostPort(k.Addr())
			if err != nil {
				t.Fatalf("Addr %q: %v", k.Addr(), err)
			}
			if host != tt.wantHost || port == "0" {
				t.Errorf("Addr = %q, want host %s and a real port", k.Addr(), tt.wantHost)
			}
			k.Close() // twice is fine
		})
	}
}

func TestStartKafkaFixedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	k, err := StartKafka(addr, 1)
	if err != nil {
		t.Fatalf("StartKafka(%q): %v", addr, err)
	}
	defer k.Close()
	if k.Addr() != addr {
		t.Errorf("Addr = %q, want %q", k.Addr(), addr)
	}
	if _, err := StartKafka(addr, 1); err == nil {
		t.Errorf("second StartKafka on %s: no error, want address in use", addr)
	}
}

func TestStartKafkaBadArgs(t *testing.T) {
	if _, err := StartKafka("127.0.0.1:0", 0); !errors.Is(err, ErrPartitions) {
		t.Errorf("partitions 0: err = %v, want ErrPartitions", err)
	}
	if _, err := StartKafka("no-port", 1); err == nil {
		t.Errorf("addr without port: no error")
	}
}

// TestKafkaGoWriterAndGroupReader is the path the service takes: a kafka-go
// Writer with acks=all produces, a group Reader fetches and commits, and a
// restarted Reader in the same group resumes after the commits.
func TestKafkaGoWriterAndGroupReader(t *testing.T) {
	const (
		topic = "lead-events"
		group = "leadscore"
		n     = 100
	)
	k := startKafka(t, topic)
	ctx := testContext(t)
	tr := newTransport(t)

	w := &kafka.Writer{
		Addr:         kafka.TCP(k.Addr()),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		Transport:    tr,
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{
			Key:   []byte(fmt.Sprintf("lead-%06d", i%17)),
			Value: []byte(strconv.Itoa(i)),
		}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Writer.Close: %v", err)
	}

	newReader := func() *kafka.Reader {
		return kafka.NewReader(kafka.ReaderConfig{
			Brokers:        []string{k.Addr()},
			GroupID:        group,
			Topic:          topic,
			StartOffset:    kafka.FirstOffset,
			MaxWait:        100 * time.Millisecond,
			CommitInterval: 0, // synchronous commits
		})
	}

	r := newReader()
	seen := make(map[string]bool, n)
	partitions := make(map[int]bool)
	for len(seen) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			r.Close()
			t.Fatalf("FetchMessage after %d records: %v", len(seen), err)
		}
		if seen[string(m.Value)] {
			t.Errorf("record %s delivered twice", m.Value)
		}
		seen[string(m.Value)] = true
		partitions[m.Partition] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			r.Close()
			t.Fatalf("CommitMessages: %v", err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Reader.Close: %v", err)
	}
	if len(partitions) != testPartitions {
		t.Errorf("records came from %d partitions, want %d", len(partitions), testPartitions)
	}

	// A record written after the restart must be the first one the new
	// reader sees: anything else is a redelivery of a committed record.
	w2 := &kafka.Writer{
		Addr:         kafka.TCP(k.Addr()),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		Transport:    tr,
	}
	defer w2.Close()
	if err := w2.WriteMessages(ctx, kafka.Message{Key: []byte("lead-000001"), Value: []byte("after-restart")}); err != nil {
		t.Fatalf("WriteMessages after restart: %v", err)
	}

	r2 := newReader()
	defer r2.Close()
	m, err := r2.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("FetchMessage after restart: %v", err)
	}
	if string(m.Value) != "after-restart" {
		t.Fatalf("after restart got record %q (partition %d offset %d): committed record redelivered", m.Value, m.Partition, m.Offset)
	}
	if err := r2.CommitMessages(ctx, m); err != nil {
		t.Fatalf("CommitMessages after restart: %v", err)
	}
	// Nothing else may follow.
	shortCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if m, err := r2.FetchMessage(shortCtx); err == nil {
		t.Fatalf("unexpected record %q after restart", m.Value)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("FetchMessage: %v, want deadline exceeded", err)
	}
}

// TestKafkaGoClientAdmin covers the kafka.Client calls the service makes for
// topic creation and lag: CreateTopics, Metadata, ListOffsets, OffsetFetch
// (plus OffsetCommit, to give OffsetFetch something to return).
func TestKafkaGoClientAdmin(t *testing.T) {
	const (
		seeded  = "lead-events"
		created = "lead-transitions"
		group   = "leadscore"
	)
	k := startKafka(t, seeded)
	ctx := testContext(t)
	c := &kafka.Client{Addr: kafka.TCP(k.Addr()), Timeout: 10 * time.Second, Transport: newTransport(t)}

	// CreateTopics: a new topic, one with the default partition count (-1),
	// and the seeded one again (must report "already exists").
	ct, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: created, NumPartitions: 4, ReplicationFactor: 1},
		{Topic: "lead-events-dlq", NumPartitions: -1, ReplicationFactor: -1},
		{Topic: seeded, NumPartitions: testPartitions, ReplicationFactor: 1},
	}})
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if err := ct.Errors[created]; err != nil {
		t.Errorf("CreateTopics %s: %v", created, err)
	}
	if err := ct.Errors["lead-events-dlq"]; err != nil {
		t.Errorf("CreateTopics lead-events-dlq: %v", err)
	}
	if err := ct.Errors[seeded]; !errors.Is(err, kafka.TopicAlreadyExists) {
		t.Errorf("CreateTopics %s again: err = %v, want TopicAlreadyExists", seeded, err)
	}

	// Metadata.
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{seeded, created, "lead-events-dlq", "missing"}})
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(md.Brokers[0].Port)) != k.Addr() {
		t.Errorf("Metadata brokers = %+v, want one at %s", md.Brokers, k.Addr())
	}
	wantParts := map[string]int{seeded: testPartitions, created: 4, "lead-events-dlq": testPartitions}
	for _, tp := range md.Topics {
		want, known := wantParts[tp.Name]
		switch {
		case !known:
			if !errors.Is(tp.Error, kafka.UnknownTopicOrPartition) {
				t.Errorf("Metadata %s: err = %v, want UnknownTopicOrPartition", tp.Name, tp.Error)
			}
		case tp.Error != nil:
			t.Errorf("Metadata %s: %v", tp.Name, tp.Error)
		case len(tp.Partitions) != want:
			t.Errorf("Metadata %s: %d partitions, want %d", tp.Name, len(tp.Partitions), want)
		}
	}

	// Produce a known number of records to partition 0 and 1.
	w := &kafka.Writer{
		Addr:         kafka.TCP(k.Addr()),
		Topic:        seeded,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		Balancer:     kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return int(m.Key[0] - '0') }),
		Transport:    c.Transport,
	}
	defer w.Close()
	var msgs []kafka.Message
	for i := 0; i < 7; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte("0"), Value: []byte("x")})
	}
	for i := 0; i < 3; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte("1"), Value: []byte("y")})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}

	// ListOffsets: first and last offsets per partition.
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		seeded: {kafka.FirstOffsetOf(0), kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2)},
	}})
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	last := map[int]int64{}
	for _, po := range lo.Topics[seeded] {
		if po.Error != nil {
			t.Errorf("ListOffsets partition %d: %v", po.Partition, po.Error)
		}
		last[po.Partition] = po.LastOffset
		if po.Partition == 0 && po.FirstOffset != 0 {
			t.Errorf("ListOffsets partition 0 first offset = %d, want 0", po.FirstOffset)
		}
	}
	if want := map[int]int64{0: 7, 1: 3, 2: 0}; fmt.Sprint(last) != fmt.Sprint(want) {
		t.Errorf("ListOffsets last offsets = %v, want %v", last, want)
	}

	// OffsetFetch for a group that never existed. Real Kafka answers -1
	// ("no commit") per partition; kfake answers with the group-level error
	// GROUP_ID_NOT_FOUND instead. Lag code must read both as "no commits".
	// This test pins kfake's answer so that a change in kfake shows up here.
	of, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{seeded: {0, 1, 2}}})
	if err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	if !errors.Is(of.Error, kafka.GroupIdNotFound) {
		t.Errorf("OffsetFetch of an unknown group: err = %v, want kfake's GroupIdNotFound", of.Error)
	}
	for _, p := range of.Topics[seeded] {
		if p.Error != nil || p.CommittedOffset != -1 {
			t.Errorf("OffsetFetch before commit partition %d = %d (err %v), want -1", p.Partition, p.CommittedOffset, p.Error)
		}
	}

	// Commit through a group reader, then OffsetFetch sees it: lag is
	// last offset minus committed offset.
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{k.Addr()}, GroupID: group, Topic: seeded, MaxWait: 100 * time.Millisecond,
	})
	for i := 0; i < 5; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			r.Close()
			t.Fatalf("FetchMessage: %v", err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			r.Close()
			t.Fatalf("CommitMessages: %v", err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Reader.Close: %v", err)
	}
	of, err = c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{seeded: {0, 1, 2}}})
	if err != nil {
		t.Fatalf("OffsetFetch after commit: %v", err)
	}
	var committed int64
	for _, p := range of.Topics[seeded] {
		if p.Error != nil {
			t.Errorf("OffsetFetch partition %d: %v", p.Partition, p.Error)
		}
		if p.CommittedOffset > 0 {
			committed += p.CommittedOffset
		}
		if p.CommittedOffset > last[p.Partition] {
			t.Errorf("partition %d committed %d beyond last offset %d", p.Partition, p.CommittedOffset, last[p.Partition])
		}
	}
	if committed != 5 {
		t.Errorf("committed offsets sum to %d, want 5 (one commit per fetched record)", committed)
	}

	// OffsetFetch with no topics: all of the group's committed partitions.
	all, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group})
	if err != nil {
		t.Fatalf("OffsetFetch (all topics): %v", err)
	}
	if len(all.Topics[seeded]) == 0 {
		t.Errorf("OffsetFetch (all topics) = %+v, want the partitions of %s", all.Topics, seeded)
	}
}
