// Package bench is leadscore's end-to-end benchmark (issue #6): a load
// generator that writes a realistic event mix into real Kafka at full speed
// or at a fixed rate, the phases that measure throughput, Redis memory per
// lead, produce-to-transition latency, catch-up after an outage and a naive
// baseline, and the report (a markdown table and JSON). cmd/bench runs it;
// `make bench` is the documented command.
//
// Everything runs on one machine: Kafka and Redis of the benchmark's own
// (scripts/services.sh on private ports, see internal/localsvc), leadscore
// as a subprocess configured by environment variables only, and the
// generator in this process. A Run owns every goroutine and process it
// starts and stops them before it returns, also when its context ends.
package bench
