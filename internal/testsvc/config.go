package testsvc

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/config"
)

// Config returns a configuration for one integration test against the real
// Kafka and Redis: topics, consumer group and Redis key prefix of its own
// (named <kind>-<random>), short session timeouts, an HTTP listener on a
// free port. It also returns a Kafka transport for the test, closed at its
// end.
func Config(t *testing.T, kind string) (config.Config, *kafka.Transport) {
	t.Helper()
	brokers, redisAddr := Kafka(t), Redis(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := kind + "-" + hex.EncodeToString(b)
	cfg := config.Default()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.GroupID = id
	cfg.Kafka.InputTopic = id + "-events"
	cfg.Kafka.OutputTopic = id + "-transitions"
	cfg.Kafka.DeadLetterTopic = id + "-dlq"
	cfg.Kafka.Partitions = 4
	cfg.Kafka.SessionTimeout = 6 * time.Second
	cfg.Kafka.LagInterval = 200 * time.Millisecond
	cfg.Redis.Addr = redisAddr
	cfg.Redis.KeyPrefix = id + ":"
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Log.Level = "warn"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Logf("real Kafka %v, real Redis %s, topics %s-*", brokers, redisAddr, id)
	tr := &kafka.Transport{MetadataTTL: 500 * time.Millisecond}
	t.Cleanup(tr.CloseIdleConnections)
	return cfg, tr
}
