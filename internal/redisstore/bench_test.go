package redisstore_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadscore/leadscore/internal/redisstore"
	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/scorer/storetest"
)

// The Redis script path, against a real Redis only:
//
//	redis-server --port 16779 --save '' --appendonly no --daemonize yes
//	LEADSCORE_TEST_REDIS_ADDR=127.0.0.1:16779 go test -run '^$' -bench . -benchmem ./internal/redisstore
//
// Each benchmark writes under a key prefix of its own and deletes its keys
// when it ends (testPrefix). Besides leads/s, each reports the CPU time Redis
// spent per lead (redis_cpu_us/lead; from INFO CPU, so meaningful only on a
// Redis nobody else is using): 1e6 divided by it is what one Redis core
// could do if its clients kept it busy.

// benchBatch is the number of leads of one Load or Save: a batch of the
// pipeline holds a few thousand distinct leads (batch.max_events 10000), which
// the scorer loads and saves in up to 4 parallel chunks.
const benchBatch = 1000

// benchRedis returns a client of the real Redis in LEADSCORE_TEST_REDIS_ADDR.
// Without it the benchmark is skipped: it measures the Redis it is pointed
// at, never a container or miniredis.
func benchRedis(b *testing.B) *redis.Client {
	b.Helper()
	if os.Getenv("LEADSCORE_TEST_REDIS_ADDR") == "" {
		b.Skip("the Redis benchmarks need a real Redis: start one (redis-server --port 16779 --save '' --appendonly no --daemonize yes) " +
			"and set LEADSCORE_TEST_REDIS_ADDR=127.0.0.1:16779")
	}
	return realClient(b)
}

// benchLeads returns the ids of a batch of leads and a state for each: the
// store contract tests' (storetest.State) grown to what a long-lived lead
// keeps under the default state bounds — a full dedupe window of 32 event
// ids, 10 score changes, 8 transitions — about 0.4 KB of scoring state and
// 1.1 KB of explanation, 1.5 KB in all (payload_B/lead; scorer's
// BenchmarkStateEncode has a lead of the default rules at 0.6 and 1.7 KB).
func benchLeads(n int) ([]string, []scorer.LeadState) {
	ids := make([]string, n)
	states := make([]scorer.LeadState, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-lead-%04d", i)
		st := storetest.State(ids[i], i)
		for len(st.Recent) < 32 {
			st.Recent = append(st.Recent, uint64(len(st.Recent))*0x9E3779B97F4A7C15)
		}
		for len(st.Changes) < 10 {
			st.Changes = append(st.Changes, st.Changes[0])
		}
		for len(st.History) < 8 {
			st.History = append(st.History, st.History[0])
		}
		states[i] = st
	}
	return ids, states
}

// reportPayload reports the bytes a save of the leads sends per lead: the
// scoring state and the explanation.
func reportPayload(b *testing.B, states []scorer.LeadState) {
	n := 0
	for i := range states {
		n += len(states[i].AppendBinary(nil)) + len(states[i].AppendExplain(nil))
	}
	b.ReportMetric(float64(n)/float64(len(states)), "payload_B/lead")
}

// redisCPU returns the CPU time the Redis server has used (INFO CPU).
func redisCPU(b *testing.B, rdb *redis.Client) time.Duration {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatalf("INFO CPU: %v", err)
	}
	var total time.Duration
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || k != "used_cpu_sys" && k != "used_cpu_user" {
			continue
		}
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil {
			b.Fatalf("INFO CPU %s: %q: %v", k, v, err)
		}
		total += time.Duration(secs * float64(time.Second))
	}
	return total
}

// reportRate reports the benchmark's rate of items (leads, script calls),
// perOp of them in each of its b.N operations, as <item>s/s, and the CPU
// time Redis spent per item since cpu0 (what redisCPU returned before the
// loop) as redis_cpu_us/<item>.
func reportRate(b *testing.B, rdb *redis.Client, cpu0 time.Duration, perOp int, item string) {
	b.Helper()
	n := float64(b.N * perOp)
	b.ReportMetric(n/b.Elapsed().Seconds(), item+"s/s")
	b.ReportMetric(float64((redisCPU(b, rdb)-cpu0).Microseconds())/n, "redis_cpu_us/"+item)
}

// BenchmarkSave measures Store.Save of a batch of 1000 leads: pipelined
// EVALSHAs of the compare-and-set script, 64 leads each, every one a successful
// write (the version follows) of a long-lived lead's state (benchLeads).
// with_schedule also indexes each lead's next decay change (ZADD LT), as the
// scorer's saves do for leads that decay will move.
func BenchmarkSave(b *testing.B) {
	for _, schedule := range []bool{false, true} {
		name := "cas"
		if schedule {
			name = "with_schedule"
		}
		b.Run(name, func(b *testing.B) {
			rdb := benchRedis(b)
			s := newStore(b, rdb, testPrefix(b, rdb))
			ids, states := benchLeads(benchBatch)
			next := time.Now().Add(24 * time.Hour)
			ws := make([]scorer.Write, len(ids))
			for i := range ws {
				ws[i] = scorer.Write{LeadID: ids[i], State: &states[i], Schedule: schedule, NextChange: next}
			}
			ctx := b.Context()
			cpu0 := redisCPU(b, rdb)
			b.ReportAllocs()
			for b.Loop() {
				ok, err := s.Save(ctx, ws)
				if err != nil {
					b.Fatalf("Save: %v", err)
				}
				if i := slices.Index(ok, false); i >= 0 {
					b.Fatalf("lead %s: conflict with no other writer", ids[i])
				}
				for i := range ws {
					ws[i].Version++
				}
			}
			reportRate(b, rdb, cpu0, len(ids), "lead")
			reportPayload(b, states)
		})
	}
}

// BenchmarkLoad measures Store.Load of a batch of 1000 stored leads:
// pipelined MGETs of 64 keys and the decoding of each state.
func BenchmarkLoad(b *testing.B) {
	rdb := benchRedis(b)
	s := newStore(b, rdb, testPrefix(b, rdb))
	ids, states := benchLeads(benchBatch)
	ws := make([]scorer.Write, len(ids))
	for i := range ws {
		ws[i] = scorer.Write{LeadID: ids[i], State: &states[i]}
	}
	ctx := b.Context()
	if ok, err := s.Save(ctx, ws); err != nil || slices.Contains(ok, false) {
		b.Fatalf("Save = %v, %v", ok, err)
	}
	cpu0 := redisCPU(b, rdb)
	b.ReportAllocs()
	for b.Loop() {
		stored, err := s.Load(ctx, ids)
		if err != nil {
			b.Fatalf("Load: %v", err)
		}
		if i := slices.IndexFunc(stored, func(st scorer.Stored) bool { return !st.Found }); i >= 0 {
			b.Fatalf("lead %s not found", ids[i])
		}
	}
	reportRate(b, rdb, cpu0, len(ids), "lead")
	reportPayload(b, states)
}

// BenchmarkSaveLoad measures what a batch costs the store, one round of the
// scorer's: Load 1000 leads, then Save them back at the versions read.
// leads/s counts each lead once (one load and one save).
func BenchmarkSaveLoad(b *testing.B) {
	rdb := benchRedis(b)
	s := newStore(b, rdb, testPrefix(b, rdb))
	ids, states := benchLeads(benchBatch)
	ws := make([]scorer.Write, len(ids))
	ctx := b.Context()
	cpu0 := redisCPU(b, rdb)
	b.ReportAllocs()
	for b.Loop() {
		stored, err := s.Load(ctx, ids)
		if err != nil {
			b.Fatalf("Load: %v", err)
		}
		for i := range ws {
			ws[i] = scorer.Write{LeadID: ids[i], Version: stored[i].Version, State: &states[i]}
		}
		ok, err := s.Save(ctx, ws)
		if err != nil {
			b.Fatalf("Save: %v", err)
		}
		if i := slices.Index(ok, false); i >= 0 {
			b.Fatalf("lead %s: conflict with no other writer", ids[i])
		}
	}
	reportRate(b, rdb, cpu0, len(ids), "lead")
	reportPayload(b, states)
}

// scriptRecorder keeps the script of the last SCRIPT LOAD sent through the
// client it hooks: the store's own compare-and-set script, whatever it is.
type scriptRecorder struct{ script string }

func (*scriptRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (*scriptRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *scriptRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); len(a) == 3 && cmd.Name() == "script" && fmt.Sprint(a[1]) == "load" {
			h.script, _ = a[2].(string)
		}
		return next(ctx, cmd)
	}
}

// BenchmarkEvalSHA is the ceiling Store.Save is measured against: the very
// compare-and-set script the store loads, with go-redis directly and no
// leadscore code in the loop — pipelined EVALSHAs of BatchKeys leads each,
// 1000 leads per round trip, each a successful write of the payload
// BenchmarkSave writes. leads/s is the reference figure for what one Redis
// core does with the store's script.
// one_pipeline is one client goroutine, as the scorer runs;
// pipeline_per_cpu keeps GOMAXPROCS pipelines in flight (RunParallel, each
// goroutine with leads of its own), so that Redis rarely waits for the client.
func BenchmarkEvalSHA(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		name := "one_pipeline"
		if parallel {
			name = "pipeline_per_cpu"
		}
		b.Run(name, func(b *testing.B) {
			rdb := benchRedis(b)
			var rec scriptRecorder
			rdb.AddHook(&rec)
			s := newStore(b, rdb, testPrefix(b, rdb)) // loads the script: rec keeps it
			if rec.script == "" {
				b.Fatal("redisstore.New sent no SCRIPT LOAD")
			}
			ctx := b.Context()
			sha, err := rdb.ScriptLoad(ctx, rec.script).Result()
			if err != nil {
				b.Fatalf("SCRIPT LOAD: %v", err)
			}
			pipelines := 1
			if parallel {
				pipelines = runtime.GOMAXPROCS(0) // RunParallel's goroutines
			}
			// One batch of leads per pipeline, so that no write conflicts.
			type batch struct {
				keys     []string
				states   []scorer.LeadState
				versions []int64
				cmds     []*redis.Cmd
				buf      []byte // the values of one round
			}
			batches := make([]*batch, pipelines)
			var states []scorer.LeadState
			for p := range batches {
				var ids []string
				ids, states = benchLeads(benchBatch)
				bt := &batch{states: states, versions: make([]int64, len(ids))}
				for _, id := range ids {
					bt.keys = append(bt.keys, s.Key(fmt.Sprintf("p%d-%s", p, id)))
				}
				batches[p] = bt
			}
			// Values are built in the loop, as Save builds them: each
			// write carries its new version.
			run := func(bt *batch) error {
				pipe := rdb.Pipeline()
				bt.cmds = bt.cmds[:0]
				buf := bt.buf[:0]
				for j := 0; j < len(bt.keys); j += redisstore.BatchKeys {
					hi := min(j+redisstore.BatchKeys, len(bt.keys))
					args := make([]any, 0, 2*(hi-j))
					for i := j; i < hi; i++ {
						at := len(buf)
						buf = redisstore.AppendValue(buf, bt.versions[i]+1, &bt.states[i])
						args = append(args, redisstore.VersionArg(bt.versions[i]), buf[at:len(buf):len(buf)])
					}
					bt.cmds = append(bt.cmds, pipe.EvalSha(ctx, sha, bt.keys[j:hi], args...))
				}
				bt.buf = buf
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
				for c, cmd := range bt.cmds {
					res, err := cmd.Int64Slice()
					if err != nil {
						return fmt.Errorf("EVALSHA of %d leads: %w", len(res), err)
					}
					for k, n := range res {
						i := c*redisstore.BatchKeys + k
						if n != 1 {
							return fmt.Errorf("EVALSHA %s at version %d = %d; want 1", bt.keys[i], bt.versions[i], n)
						}
						bt.versions[i]++
					}
				}
				return nil
			}
			cpu0 := redisCPU(b, rdb)
			b.ReportAllocs()
			if !parallel {
				for b.Loop() {
					if err := run(batches[0]); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				var worker atomic.Int32
				b.RunParallel(func(pb *testing.PB) {
					bt := batches[worker.Add(1)-1]
					for pb.Next() {
						if err := run(bt); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			reportRate(b, rdb, cpu0, benchBatch, "lead")
			reportPayload(b, states)
		})
	}
}
