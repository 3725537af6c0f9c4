// Package testsvc tells integration tests where the real Kafka and Redis are.
//
// In order: the addresses in LEADSCORE_TEST_KAFKA_BROKERS and
// LEADSCORE_TEST_REDIS_ADDR (what `make test` sets after
// `scripts/services.sh up`); else containers started with testcontainers-go
// when a Docker engine answers; else the test is skipped — except under
// CI=true, where a missing service fails the test: CI must never pass by
// silently skipping the integration suite.
package testsvc

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	kafkaEnv = "LEADSCORE_TEST_KAFKA_BROKERS"
	redisEnv = "LEADSCORE_TEST_REDIS_ADDR"

	// containerKafkaPort is the fixed host port of a Kafka container: Kafka
	// advertises the address clients must use, so it has to be known before
	// the container starts.
	containerKafkaPort = "19092"
)

// Kafka returns the brokers of a real Kafka 4.x.
func Kafka(t testing.TB) []string {
	t.Helper()
	if v := os.Getenv(kafkaEnv); v != "" {
		return strings.Split(v, ",")
	}
	return []string{fromContainer(t, "kafka", startKafka)}
}

// Redis returns the address of a real Redis.
func Redis(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(redisEnv); v != "" {
		return v
	}
	return fromContainer(t, "redis", startRedis)
}

// Containers are shared by all tests of a package and live until the test
// binary exits (testcontainers' reaper removes them).
var (
	mu         sync.Mutex
	containers = map[string]string{}
)

func fromContainer(t testing.TB, name string, start func(context.Context) (string, error)) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if addr, ok := containers[name]; ok {
		return addr
	}
	if err := dockerHealthy(); err != nil {
		missing(t, name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addr, err := start(ctx)
	if err != nil {
		missing(t, name, err)
	}
	containers[name] = addr
	return addr
}

func missing(t testing.TB, name string, why error) {
	t.Helper()
	msg := fmt.Sprintf("no real %s for the integration test: set %s/%s (make test does, via scripts/services.sh up) or run a Docker engine (%v)",
		name, kafkaEnv, redisEnv, why)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func dockerHealthy() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker provider: %v", r)
		}
	}()
	p, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Health(context.Background())
}

func startRedis(ctx context.Context) (string, error) {
	c, err := testcontainers.Run(ctx, "redis:7-alpine",
		testcontainers.WithExposedPorts("6379/tcp"),
		testcontainers.WithWaitStrategy(wait.ForLog("Ready to accept connections")))
	if err != nil {
		return "", fmt.Errorf("start redis container: %w", err)
	}
	return c.PortEndpoint(ctx, "6379/tcp", "")
}

func startKafka(ctx context.Context) (string, error) {
	_, err := testcontainers.Run(ctx, "apache/kafka:4.1.1",
		testcontainers.WithExposedPorts(containerKafkaPort+":9092/tcp"),
		testcontainers.WithEnv(map[string]string{
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                "PLAINTEXT://:9092,CONTROLLER://:9093",
			"KAFKA_ADVERTISED_LISTENERS":                     "PLAINTEXT://127.0.0.1:" + containerKafkaPort,
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9093",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
			"KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS":             "2000",
			"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                "false",
		}),
		testcontainers.WithWaitStrategy(wait.ForLog("Kafka Server started")))
	if err != nil {
		return "", fmt.Errorf("start kafka container: %w", err)
	}
	return "127.0.0.1:" + containerKafkaPort, nil
}
