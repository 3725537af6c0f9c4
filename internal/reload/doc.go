// Package reload applies a new version of the scoring rules to a running
// service, without a restart: when a value arrives on a trigger channel
// (cmd/leadscore feeds it SIGHUP) or when the configuration file or the rules
// file (LEADSCORE_RULES_FILE) changes on disk.
//
// A reload reads the files the way start-up does (config.Load), validates the
// whole configuration, compiles the new rules and swaps the model with one
// atomic store (scorer.Scorer.SetModel). A file that does not parse or
// validate is refused: the active model stays and the error names the file
// and every problem. Only the rules are hot; the other sections are compared
// with the running configuration and those that differ are named in a
// warning, because they need a restart.
//
// In-flight work: Scorer.Score reads the model once per batch, so a batch
// being scored during a swap finishes entirely under the old rules (its
// transitions carry the old rules_version) and the next batch uses the new
// ones. No event is scored twice or skipped, and no offset is committed out of
// turn: the pipeline never notices the swap.
//
// Concurrency: all the work happens on the goroutine that calls Run; Run
// starts no other goroutine.
package reload
