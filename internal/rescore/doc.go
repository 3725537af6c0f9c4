// Package rescore re-scores every lead under a new rules version by replaying
// the input topic, and — only when asked — switches the live state over to
// the result, publishing one net transition per lead whose band or stage the
// new rules change. It is `leadscore rescore`.
//
// The replay covers, per partition, the records from a chosen start (the
// beginning of the log, or the first record at or after a time) up to the
// consumer group's committed offset, so that the rebuilt state is exactly the
// state the group resumes from. It goes into a scratch key prefix
// (<key_prefix>rescore-<version>:), never into the live leads, and publishes
// nothing: a dry run only compares the scratch state with the live one and
// deletes the scratch keys.
//
// A switch requires the consumer group to be empty (the service stopped). It
// publishes each lead's net transitions — ids derived from the lead,
// "rescore@<version>", kind, from and to — with acks=all BEFORE it
// compare-and-sets the new state over the live key, so a crash between the
// two loses nothing: running the switch again publishes the same ids again.
//
// Run owns every goroutine it starts (one reader per partition) and joins
// them before it returns.
package rescore
