// Package demo makes `leadscore dev` show something on its first run: a
// generator that plays realistic buyer journeys as records for the
// lead-events topic, and a Watcher that prints the lifecycle transitions and
// dead letters the service produces, with a one-line running summary.
//
// The record formats are restated here with local structs on purpose: the
// demo is a client of the service's wire contract, not of its Go types, so
// it keeps working (and keeps testing that contract) when internals move.
//
// Concurrency: a Generator is not safe for concurrent use. Run and
// (*Watcher).Run block until their context ends (or, for Run, until
// Options.Duration has passed) and leave no goroutine behind.
package demo
