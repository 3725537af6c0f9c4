// Package sink is what leadscore sends out: lifecycle transitions to the
// output topic and bad input records to the dead-letter topic, through a
// Publisher that waits for acks=all.
//
// A Publisher is safe for concurrent use (kafka-go's Writer is).
package sink
