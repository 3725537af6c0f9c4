// Package redisstore is the Redis adapter of scorer.Store.
//
// Each lead is one string key, <prefix>{<lead_id>}, holding the version
// (8 bytes, big-endian), the length of the binary scoring state (uvarint),
// the scoring state, and the explanation (top contributors, recent score
// changes and transitions) — one key rather than a hash of three fields
// because a hash whose values pass 64 bytes leaves Redis' compact listpack
// encoding and costs some 200 bytes more per lead (docs/BENCHMARKS.md). The
// braces are a Redis Cluster hash tag: every key a lead will ever have
// lands in the lead's slot.
//
// Loads are MGETs and saves EVALSHAs of a compare-and-set script, each over
// up to batchKeys leads per call, pipelined: per-call overhead dominates
// Redis' cost of such small writes. On a Redis Cluster client every call
// holds one lead (keys of different leads are in different slots). The
// script is loaded at start-up and again whenever Redis answers NOSCRIPT (a
// restart or a failover empties the script cache; go-redis' own fallback
// does not work inside a pipeline, go-redis #3228).
//
// A Store is safe for concurrent use.
package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/leadscore/leadscore/scorer"
)

// casScript writes each lead's new value only if the stored version (the
// value's first 8 bytes; "" for a lead not stored yet) is the one the caller
// read: KEYS[i] gets ARGV[2i] if its version is ARGV[2i-1]. It returns 1 or
// 0 per key. Running it twice (go-redis retries a pipeline on a broken
// connection) is harmless: the second run sees the new version and reports
// a conflict, the scorer reloads, and the watermark marks the events as
// applied.
const casScript = `
local out = {}
for i = 1, #KEYS do
  if redis.call('GETRANGE', KEYS[i], 0, 7) == ARGV[2*i-1] then
    redis.call('SET', KEYS[i], ARGV[2*i])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`

// batchKeys is how many leads one MGET or script call covers at most.
const batchKeys = 64

// Store keeps lead states in Redis.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	perCall int // leads per MGET or script call: batchKeys, or 1 on a cluster

	mu  sync.Mutex
	sha string
}

// New loads the script and returns a Store.
func New(ctx context.Context, rdb redis.UniversalClient, keyPrefix string) (*Store, error) {
	s := &Store{rdb: rdb, prefix: keyPrefix, perCall: batchKeys}
	if _, cluster := rdb.(*redis.ClusterClient); cluster {
		s.perCall = 1
	}
	if _, err := s.loadScript(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Key returns the Redis key of a lead's state. Inside the hash tag, '%' and
// '}' are escaped (%25, %7D) so that an id holding '}' still tags its whole
// self, and no two ids share a key.
func (s *Store) Key(leadID string) string { return s.prefix + "{" + tagEscaper.Replace(leadID) + "}" }

var tagEscaper = strings.NewReplacer("%", "%25", "}", "%7D")

func (s *Store) loadScript(ctx context.Context) (string, error) {
	sha, err := s.rdb.ScriptLoad(ctx, casScript).Result()
	if err != nil {
		return "", fmt.Errorf("load cas script: %w", err)
	}
	s.mu.Lock()
	s.sha = sha
	s.mu.Unlock()
	return sha, nil
}

func (s *Store) scriptSHA() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sha
}

// Load implements scorer.Store.
func (s *Store) Load(ctx context.Context, ids []string) ([]scorer.Stored, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, 0, len(ids)/s.perCall+1)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.Key(id)
	}
	for i := 0; i < len(keys); i += s.perCall {
		cmds = append(cmds, pipe.MGet(ctx, keys[i:min(i+s.perCall, len(keys))]...))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("mget %d leads: %w", len(ids), err)
	}
	out := make([]scorer.Stored, len(ids))
	i := 0
	for _, c := range cmds {
		for _, val := range c.Val() {
			if val != nil {
				v, _ := val.(string)
				if err := decode(&out[i], ids[i], v); err != nil {
					return nil, fmt.Errorf("lead %s: %w", keys[i], err)
				}
			}
			i++
		}
	}
	return out, nil
}

// decode reads a stored value into st.
func decode(st *scorer.Stored, id, v string) error {
	if len(v) < 8 {
		return fmt.Errorf("value of %d bytes: %w", len(v), scorer.ErrCorruptState)
	}
	// Read in place: decoding copies out everything it keeps, so the
	// reply's bytes are only read, never retained or written.
	b := unsafe.Slice(unsafe.StringData(v), len(v))
	ver := binary.BigEndian.Uint64(b[:8])
	rest := b[8:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) || ver == 0 || ver > math.MaxInt64 {
		return fmt.Errorf("value header: %w", scorer.ErrCorruptState)
	}
	rest = rest[k:]
	if err := st.State.UnmarshalBinary(id, rest[:n], rest[n:]); err != nil {
		return err
	}
	st.Version, st.Found = int64(ver), true
	return nil
}

// appendValue appends the stored form of a state at version ver to buf;
// scratch is reused for the scoring state, whose length goes first.
func appendValue(buf, scratch []byte, ver int64, st *scorer.LeadState) (value, scratchOut []byte) {
	scratch = st.AppendBinary(scratch[:0])
	buf = binary.BigEndian.AppendUint64(buf, uint64(ver))
	buf = binary.AppendUvarint(buf, uint64(len(scratch)))
	buf = append(buf, scratch...)
	return st.AppendExplain(buf), scratch
}

// versionArg is the script's expected-version argument: the stored value's
// first 8 bytes, or "" for a lead not stored yet.
func versionArg(ver int64) string {
	if ver == 0 {
		return ""
	}
	return string(binary.BigEndian.AppendUint64(nil, uint64(ver)))
}

// Save implements scorer.Store.
func (s *Store) Save(ctx context.Context, ws []scorer.Write) ([]bool, error) {
	ok := make([]bool, len(ws))
	// One buffer for every value; a slice taken before the buffer grew keeps
	// the bytes it was taken with, so each stays valid until Exec.
	var buf, scratch []byte
	vals := make([][]byte, len(ws))
	for i := range ws {
		at := len(buf)
		buf, scratch = appendValue(buf, scratch, ws[i].Version+1, ws[i].State)
		vals[i] = buf[at:len(buf):len(buf)]
	}

	todo := make([]int, len(ws))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; ; attempt++ {
		sha := s.scriptSHA()
		pipe := s.rdb.Pipeline()
		type call struct {
			cmd  *redis.Cmd
			idxs []int
		}
		calls := make([]call, 0, len(todo)/s.perCall+1)
		for j := 0; j < len(todo); j += s.perCall {
			idxs := todo[j:min(j+s.perCall, len(todo))]
			keys := make([]string, len(idxs))
			args := make([]any, 0, 2*len(idxs))
			for k, i := range idxs {
				keys[k] = s.Key(ws[i].LeadID)
				args = append(args, versionArg(ws[i].Version), vals[i])
			}
			calls = append(calls, call{pipe.EvalSha(ctx, sha, keys, args...), idxs})
		}
		if attempt == 0 {
			s.schedule(ctx, pipe, ws)
		}
		_, _ = pipe.Exec(ctx) // errors are read per command below
		var noscript []int
		for _, c := range calls {
			res, err := c.cmd.Int64Slice()
			switch {
			case err == nil && len(res) == len(c.idxs):
				for k, i := range c.idxs {
					ok[i] = res[k] == 1
				}
			case err == nil:
				return nil, fmt.Errorf("cas: %d results for %d leads", len(res), len(c.idxs))
			case redis.HasErrorPrefix(err, "NOSCRIPT"):
				noscript = append(noscript, c.idxs...)
			default:
				return nil, fmt.Errorf("cas %d leads: %w", len(todo), err)
			}
		}
		if len(noscript) == 0 {
			return ok, nil
		}
		if attempt > 0 {
			return nil, fmt.Errorf("cas: %w", errors.New("script cache keeps losing the script (NOSCRIPT after reload)"))
		}
		if _, err := s.loadScript(ctx); err != nil {
			return nil, err
		}
		todo = noscript
	}
}

// schedule queues the decay-schedule updates of ws on pipe: one ZADD LT per
// schedule shard. The schedule is a hint, written beside the states (other
// slots in a cluster, so not atomically): LT only ever moves an entry
// earlier, so a stale early entry costs one look.
func (s *Store) schedule(ctx context.Context, pipe redis.Pipeliner, ws []scorer.Write) {
	var shards [scheduleShards][]redis.Z
	for _, w := range ws {
		if w.Schedule && !w.NextChange.IsZero() {
			sh := s.shardOf(w.LeadID)
			shards[sh] = append(shards[sh], redis.Z{Score: float64(w.NextChange.UnixMilli()), Member: w.LeadID})
		}
	}
	for sh, zs := range shards {
		if len(zs) > 0 {
			pipe.ZAddLT(ctx, s.shardKey(sh), zs...)
		}
	}
}

// scheduleShards spreads the decay schedule over sorted sets so that a
// cluster spreads it over nodes.
const scheduleShards = 16

func (s *Store) scheduleKey(leadID string) string { return s.shardKey(s.shardOf(leadID)) }

func (s *Store) shardOf(leadID string) int {
	h := fnv.New32a()
	h.Write([]byte(leadID))
	return int(h.Sum32() % scheduleShards)
}

func (s *Store) shardKey(shard int) string {
	return s.prefix + "schedule:{" + strconv.Itoa(shard) + "}"
}

// Due implements scorer.Schedule.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]scorer.Due, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, scheduleShards)
	for i := range cmds {
		cmds[i] = pipe.ZRangeByScoreWithScores(ctx, s.shardKey(i), &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(limit)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read decay schedule: %w", err)
	}
	var out []scorer.Due
	for _, c := range cmds {
		for _, z := range c.Val() {
			id, _ := z.Member.(string)
			out = append(out, scorer.Due{LeadID: id, At: time.UnixMilli(int64(z.Score)).UTC()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Reschedule implements scorer.Schedule.
func (s *Store) Reschedule(ctx context.Context, leadID string, next time.Time) error {
	key := s.scheduleKey(leadID)
	if next.IsZero() {
		return s.rdb.ZRem(ctx, key, leadID).Err()
	}
	return s.rdb.ZAdd(ctx, key, redis.Z{Score: float64(next.UnixMilli()), Member: leadID}).Err()
}

// Ping checks that Redis answers, for readiness.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }
