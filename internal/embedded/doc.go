// Package embedded runs an in-process Kafka broker (franz-go's kfake) and an
// in-process Redis (miniredis) so that `leadscore dev` needs nothing installed.
//
// Both speak the real wire protocols on a TCP address, so the service talks
// to them with the same clients (kafka-go, go-redis) it uses in production.
// They are fakes: state lives in memory and is gone after Close, and neither
// replaces real Kafka and Redis in the integration suite.
//
// Known differences that matter to leadscore (see the package tests, which
// exercise exactly the calls the service makes):
//
//   - Kafka advertises the address it listens on in its metadata, so listen on
//     an address clients can dial (the default host is 127.0.0.1).
//   - Kafka: OffsetFetch for a group that has never committed answers the
//     group-level error GROUP_ID_NOT_FOUND (kafka.GroupIdNotFound) where real
//     Kafka answers offset -1 per partition; lag code must read both as
//     "nothing committed yet".
//   - Redis (miniredis): go-redis clients should set DisableIdentity: true;
//     TIME is frozen and TTLs only move with FastForward, so scripts must be
//     given "now" as an argument; there is no FUNCTION/FCALL and no cluster.
//
// Concurrency: Start* return a running server whose goroutines are owned by
// the returned value; Close stops them and is safe to call more than once.
package embedded
