package embedded

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// ErrPartitions is returned by StartKafka when partitions is below 1.
var ErrPartitions = errors.New("embedded: partitions must be at least 1")

// Kafka is a single-broker, in-memory Kafka cluster (franz-go's kfake) that
// listens on a TCP address. It supports produce, fetch, classic consumer
// groups with committed offsets, and topic administration — what kafka-go's
// Reader, Writer and Client use.
type Kafka struct {
	cluster *kfake.Cluster
	addr    string
	once    sync.Once
}

// StartKafka starts a one-broker cluster listening on addr ("host:port"; port
// 0 picks a free port, an empty host means 127.0.0.1). Topics are created
// with the given number of partitions, and so are topics created later
// without an explicit partition count (CreateTopics with -1).
//
// The broker advertises the address it actually listens on, so clients must
// be able to dial it: prefer 127.0.0.1 to 0.0.0.0.
func StartKafka(addr string, partitions int, topics ...string) (*Kafka, error) {
	if partitions < 1 {
		return nil, ErrPartitions
	}
	listenAddr, err := normalizeAddr(addr)
	if err != nil {
		return nil, err
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		// kfake always asks for 127.0.0.1:<port>; honour the caller's host
		// and port instead.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, listenAddr)
		}),
		kfake.DefaultNumPartitions(partitions),
		kfake.SeedTopics(int32(partitions), topics...),
	)
	if err != nil {
		return nil, fmt.Errorf("start kafka on %s: %w", listenAddr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, fmt.Errorf("start kafka on %s: %d listeners, want 1", listenAddr, len(addrs))
	}
	return &Kafka{cluster: c, addr: addrs[0]}, nil
}

// Addr returns the "host:port" the broker listens on (and advertises).
func (k *Kafka) Addr() string { return k.addr }

// Close stops the broker and drops all data. Clients still connected see
// their connections closed. Safe to call more than once.
func (k *Kafka) Close() {
	k.once.Do(k.cluster.Close)
}

// normalizeAddr fills in a missing host so that the address the broker
// advertises is dialable.
func normalizeAddr(addr string) (string, error) {
	if addr == "" {
		return "127.0.0.1:0", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}
