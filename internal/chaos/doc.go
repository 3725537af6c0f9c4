// Package chaos is leadscore's fault suite (issue #5): it streams a generated
// workload into a real Kafka while it SIGKILLs, restarts and rebalances
// leadscore processes, restarts the Kafka broker and Redis, and pauses Redis;
// then it checks every lead's state and every transition against an
// independent reference (reference.go) computed from the input topic as Kafka
// stored it, and the dead-letter topic against the bad records produced.
//
// Run is single-use and owns every goroutine and child process it starts;
// they are all gone when it returns.
package chaos
