package service_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/sink"
)

// headerTestID tags every record the hostile test produces, so its dead
// letter (which keeps the original headers) can be matched to it.
const headerTestID = "test.id"

// createTopic creates a topic with the given configs (max.message.bytes...).
func (e *env) createTopic(name string, configs map[string]string) {
	e.t.Helper()
	var entries []kafka.ConfigEntry
	for k, v := range configs {
		entries = append(entries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Transport: e.tr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: name, NumPartitions: e.cfg.Kafka.Partitions, ReplicationFactor: 1, ConfigEntries: entries}}})
	if err != nil {
		e.t.Fatalf("create topic %s: %v", name, err)
	}
	if err := resp.Errors[name]; err != nil {
		e.t.Fatalf("create topic %s: %v", name, err)
	}
}

// readBig is readAll for topics holding records up to 16 MiB.
func (e *env) readBig(topic string) []kafka.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conns := map[int]int64{}
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Transport: e.tr}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		e.t.Fatalf("metadata %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, p := range md.Topics[0].Partitions {
		offs, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			topic: {kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID)}}})
		if err != nil {
			e.t.Fatalf("list offsets: %v", err)
		}
		po := offs.Topics[topic][0]
		conns[p.ID] = po.LastOffset
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.brokers, Topic: topic, Partition: p.ID,
			MaxWait: 100 * time.Millisecond, MaxBytes: 16 << 20})
		_ = r.SetOffset(po.FirstOffset)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				e.t.Fatalf("read %s/%d: %v", topic, p.ID, err)
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

func headerMap(hs []kafka.Header) map[string]string {
	h := map[string]string{}
	for _, x := range hs {
		h[x.Key] = string(x.Value)
	}
	return h
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return b
}

// TestHostileInputThroughPipeline produces every record of the decoder's
// hostile corpus, plus generated ones (over the decoder's 64 KiB limit, over
// the broker's 1 MiB default, with big headers, empty and binary keys),
// interleaved with good events, through real Kafka and Redis. Every bad
// record must be dead-lettered once with its code and source offset, nothing
// else may be, every good event must be scored, and the pipeline must never
// stall.
func TestHostileInputThroughPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	k := e.cfg.Kafka
	// The input topic takes records up to 16 MiB, as a producer's topic may;
	// the output and dead-letter topics keep the broker default (1 MiB).
	e.createTopic(k.InputTopic, map[string]string{"max.message.bytes": strconv.Itoa(16 << 20)})
	e.createTopic(k.OutputTopic, nil)
	e.createTopic(k.DeadLetterTopic, nil)

	type bad struct {
		msg  kafka.Message
		code string
	}
	var bads []bad
	dir := "../../events/testdata/hostile"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		code, _, ok := strings.Cut(ent.Name(), "__")
		if !ok || ent.IsDir() {
			continue
		}
		v, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		bads = append(bads, bad{kafka.Message{Key: []byte("hostile-" + ent.Name()), Value: v}, code})
	}
	if len(bads) < 30 {
		t.Fatalf("hostile corpus: %d files", len(bads))
	}
	good := event("pad", "big-lead", "email_open")
	goodJSON, _ := events.Encode(good)
	const huge = 2 << 20 // twice the broker's default max.message.bytes
	bads = append(bads,
		// Just over the decoder's limit.
		bad{kafka.Message{Key: []byte("over-64k"), Value: append(bytes.Repeat([]byte(" "), 64<<10+1-len(goodJSON)+1), goodJSON...)}, events.CodeOversize},
		// Over the broker's default limit, incompressible (the service
		// publishes with snappy): its dead letter must be cut to fit.
		bad{kafka.Message{Key: []byte("huge"), Value: randomBytes(huge)}, events.CodeOversize},
		// Same key, so same dead-letter partition and, very likely, the same
		// publish batch as the previous one; and 300 KiB of headers, which the
		// dead letter keeps.
		bad{kafka.Message{Key: []byte("huge"), Value: randomBytes(huge),
			Headers: []kafka.Header{{Key: "x-big", Value: randomBytes(300 << 10)}}}, events.CodeOversize},
		// Empty and binary keys with bad values.
		bad{kafka.Message{Value: []byte(`{"event_id":`)}, events.CodeMalformedJSON},
		bad{kafka.Message{Key: []byte{0, 0xff, 0xfe, '\n', 0x80}, Value: []byte(`{}`)}, events.CodeMissingField},
		bad{kafka.Message{Key: randomBytes(1 << 10), Value: randomBytes(100)}, ""}, // random: invalid_utf8 or malformed_json
	)

	// Good events for ten leads, some keyed oddly: the key is the producer's
	// business, the lead is in the value.
	var goods []events.Event
	for i := 0; i < 60; i++ {
		goods = append(goods, event(fmt.Sprintf("good-%d", i), fmt.Sprintf("lead-%d", i%10), "email_open"))
	}
	var msgs []kafka.Message
	for i := range bads {
		bads[i].msg.Headers = append(bads[i].msg.Headers, kafka.Header{Key: headerTestID, Value: []byte(strconv.Itoa(i))})
	}
	for i, g := range goods {
		m := record(g)
		switch i % 6 {
		case 1:
			m.Key = nil
		case 3:
			m.Key = []byte{0xff, 0, 0xc3, 0x28}
		}
		m.Headers = []kafka.Header{{Key: headerTestID, Value: []byte("good-" + strconv.Itoa(i))}}
		msgs = append(msgs, m)
		if i < len(bads) {
			msgs = append(msgs, bads[i].msg)
		}
	}
	for i := len(goods); i < len(bads); i++ {
		msgs = append(msgs, bads[i].msg)
	}

	httpAddr, stop := e.start()
	defer stop()
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: k.InputTopic, Transport: e.tr,
		Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond,
		BatchSize: 1000, BatchBytes: 16 << 20}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cancel()
	_ = w.Close()
	e.waitNoLag(40 * time.Second)

	// Where each record landed on the input topic.
	type pos struct{ p, off int }
	src := map[string]pos{}
	for _, m := range e.readBig(k.InputTopic) {
		src[headerMap(m.Headers)[headerTestID]] = pos{m.Partition, int(m.Offset)}
	}
	if len(src) != len(msgs) {
		t.Fatalf("input topic holds %d tagged records, produced %d", len(src), len(msgs))
	}

	dlq := e.readBig(k.DeadLetterTopic)
	seen := map[string]int{}
	for _, m := range dlq {
		h := headerMap(m.Headers)
		id := h[headerTestID]
		seen[id]++
		i, err := strconv.Atoi(id)
		if err != nil || i < 0 || i >= len(bads) {
			t.Errorf("dead letter for a record that is not bad: test.id %q, code %s", id, h[sink.HeaderErrorCode])
			continue
		}
		b := bads[i]
		want := b.code
		if want == "" && (h[sink.HeaderErrorCode] == events.CodeInvalidUTF8 || h[sink.HeaderErrorCode] == events.CodeMalformedJSON) {
			want = h[sink.HeaderErrorCode]
		}
		if h[sink.HeaderErrorCode] != want {
			t.Errorf("record %d (%s): code %s, want %s (%s)", i, b.msg.Key, h[sink.HeaderErrorCode], want, h[sink.HeaderErrorMessage])
		}
		if p := src[id]; h[sink.HeaderSourceOffset] != strconv.Itoa(p.off) || h[sink.HeaderSourcePartition] != strconv.Itoa(p.p) ||
			h[sink.HeaderSourceTopic] != k.InputTopic {
			t.Errorf("record %d: source %s/%s/%s, want %s/%d/%d", i, h[sink.HeaderSourceTopic], h[sink.HeaderSourcePartition],
				h[sink.HeaderSourceOffset], k.InputTopic, p.p, p.off)
		}
		if !bytes.Equal(m.Key, b.msg.Key) {
			t.Errorf("record %d: dead letter key %q, want the original %q", i, m.Key, b.msg.Key)
		}
		size := len(m.Key) + len(m.Value)
		for _, x := range m.Headers {
			size += len(x.Key) + len(x.Value)
		}
		switch {
		case len(b.msg.Value) > 1<<20:
			if h[sink.HeaderValueTruncated] != strconv.Itoa(len(b.msg.Value)) || !bytes.HasPrefix(b.msg.Value, m.Value) || size > 1<<20 {
				t.Errorf("record %d: dead letter of %d bytes (value %d, truncated_from %q), want a prefix of the value, at most 1 MiB in all",
					i, size, len(m.Value), h[sink.HeaderValueTruncated])
			}
		default:
			if !bytes.Equal(m.Value, b.msg.Value) || h[sink.HeaderValueTruncated] != "" {
				t.Errorf("record %d: dead letter value differs from the original (%d vs %d bytes)", i, len(m.Value), len(b.msg.Value))
			}
		}
	}
	for i := range bads {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Errorf("record %d (%s, %s): %d dead letters, want 1", i, bads[i].msg.Key, bads[i].code, n)
		}
	}
	t.Logf("%d records in, %d dead letters", len(msgs), len(dlq))

	// Every good event was scored: six email opens per lead.
	var leads []string
	for i := 0; i < 10; i++ {
		leads = append(leads, fmt.Sprintf("lead-%d", i))
	}
	for id, st := range e.storedStates(leads) {
		if !st.Found || st.State.Events != 6 {
			t.Errorf("lead %s: found %v, %d events, want 6", id, st.Found, st.State.Events)
		}
	}

	// And the pipeline never stalled.
	body := metricsText(t, httpAddr)
	for _, want := range []string{"leadscore_pipeline_stalled 0", fmt.Sprintf(`leadscore_dead_letters_total{reason="oversize"} %d`, 3)} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(body, "leadscore_"))
		}
	}
	if strings.Contains(body, "leadscore_retries_total{") {
		t.Errorf("the pipeline retried:\n%s", grepLines(body, "leadscore_retries_total"))
	}
}
