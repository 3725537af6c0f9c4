package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Publisher writes records to Kafka and returns only when the brokers have
// acknowledged all of them (acks=all), so an offset committed after Publish
// never covers a record that could still be lost.
type Publisher struct {
	w  *kafka.Writer
	tr *kafka.Transport
}

// NewPublisher returns a Publisher for brokers. Records carry their own topic.
//
// Settings that differ from kafka-go's defaults, and why:
//   - RequiredAcks = RequireAll (a Writer{} literal defaults to fire-and-forget);
//   - Murmur2 partitioner on the record key (the lead id), as Java clients do,
//     so other producers keying by lead agree on partitions;
//   - BatchTimeout = linger (default 1 s would add a second to every publish);
//   - synchronous writes: Async swallows errors;
//   - BatchSize = 1000: kafka-go allocates room for BatchSize messages
//     (~150 bytes each) for every partition of every write, used or not
//     (segmentio/kafka-go #1193); at 10,000 that was 1.5 MB per partition
//     per publish, a fifth of leadscore's CPU at 10k events/s. A batch of
//     transitions for one partition rarely holds more; more go out as a
//     second request;
//   - BatchBytes = 1 MiB, the broker's default max.message.bytes, which
//     limits a whole produced batch: at 16 MiB two 900 KiB dead letters for
//     one partition went out as one batch, the broker refused it
//     (MESSAGE_TOO_LARGE) and the partition stalled for good.
func NewPublisher(brokers []string, linger time.Duration) *Publisher {
	tr := &kafka.Transport{} // its own, so Close leaves no connection goroutines behind
	return &Publisher{tr: tr, w: &kafka.Writer{
		Transport:              tr,
		Addr:                   kafka.TCP(brokers...),
		Balancer:               &kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           linger,
		BatchSize:              1000,
		BatchBytes:             1 << 20,
		MaxAttempts:            5,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        time.Second,
		Compression:            kafka.Snappy,
		AllowAutoTopicCreation: false,
	}}
}

// Publish writes msgs and waits for their acknowledgement.
func (p *Publisher) Publish(ctx context.Context, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d records: %w", len(msgs), err)
	}
	return nil
}

// Close flushes and closes the writer and its connections.
func (p *Publisher) Close() error {
	err := p.w.Close()
	p.tr.CloseIdleConnections()
	return err
}
