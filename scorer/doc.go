// Package scorer is leadscore's domain: the compiled scoring model (rules,
// bands, stages), the per-lead state and the pure function that applies
// events to it, and the Scorer that runs batches against a Store.
//
// The Store is a port: the Redis adapter lives in internal/redisstore and an
// in-memory one in this package (MemStore) serves unit tests. Every Store
// must pass the contract suite in scorer/storetest.
//
// Concurrency: a Model is immutable. A Scorer may be used from several
// goroutines; correctness between processes comes from the Store's per-lead
// compare-and-set, not from locks.
package scorer
