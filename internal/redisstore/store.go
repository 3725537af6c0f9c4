// Package redisstore is the Redis adapter of scorer.Store.
//
// Each lead is one hash, <prefix>{<lead_id>}, with three fields: v
// (version), s (the binary scoring state) and x (the explanation: top
// contributors, recent score changes and transitions). The braces are a Redis Cluster hash tag: every
// key a lead will ever have lands in the lead's slot, so a per-lead script
// stays legal in a cluster. Loads are one pipelined HMGET per lead; saves are
// one pipelined EVALSHA of a compare-and-set script per lead. The script is
// loaded at start-up and again whenever Redis answers NOSCRIPT (a restart or
// a failover empties the script cache; go-redis' own fallback does not work
// inside a pipeline, go-redis #3228).
//
// A Store is safe for concurrent use.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadscore/leadscore/scorer"
)

// casScript writes the state only if the version is the one the caller read.
// Running it twice (go-redis retries a pipeline on a broken connection) is
// harmless: the second run sees the new version and reports a conflict, the
// scorer reloads, and the watermark marks the events as applied.
const casScript = `
local v = redis.call('HGET', KEYS[1], 'v')
if not v then v = '0' end
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(v) + 1), 's', ARGV[2], 'x', ARGV[3])
return 1
`

// Store keeps lead states in Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string

	mu  sync.Mutex
	sha string
}

// New loads the script and returns a Store.
func New(ctx context.Context, rdb redis.UniversalClient, keyPrefix string) (*Store, error) {
	s := &Store{rdb: rdb, prefix: keyPrefix}
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
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, s.Key(id), "v", "s", "x")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("hmget %d leads: %w", len(ids), err)
	}
	out := make([]scorer.Stored, len(ids))
	for i, c := range cmds {
		vals := c.Val()
		if len(vals) != 3 || vals[0] == nil {
			continue
		}
		vs, _ := vals[0].(string)
		blob, _ := vals[1].(string)
		explain, _ := vals[2].(string)
		v, err := strconv.ParseInt(vs, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("lead %s: version %q: %w", s.Key(ids[i]), vs, scorer.ErrCorruptState)
		}
		if err := out[i].State.UnmarshalBinary(ids[i], []byte(blob), []byte(explain)); err != nil {
			return nil, fmt.Errorf("lead %s: %w", s.Key(ids[i]), err)
		}
		out[i].Version, out[i].Found = v, true
	}
	return out, nil
}

// Save implements scorer.Store.
func (s *Store) Save(ctx context.Context, ws []scorer.Write) ([]bool, error) {
	ok := make([]bool, len(ws))
	todo := make([]int, len(ws))
	for i := range todo {
		todo[i] = i
	}
	var buf []byte
	blobs := make([]string, len(ws))
	explains := make([]string, len(ws))
	for i, w := range ws {
		buf = w.State.AppendBinary(buf[:0])
		blobs[i] = string(buf)
		buf = w.State.AppendExplain(buf[:0])
		explains[i] = string(buf)
	}
	for attempt := 0; ; attempt++ {
		sha := s.scriptSHA()
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(todo))
		for j, i := range todo {
			cmds[j] = pipe.EvalSha(ctx, sha, []string{s.Key(ws[i].LeadID)}, ws[i].Version, blobs[i], explains[i])
			// The schedule is a hint, written beside the state (another slot
			// in a cluster, so not atomically): LT only ever moves it earlier.
			if w := ws[i]; w.Schedule && !w.NextChange.IsZero() && attempt == 0 {
				pipe.ZAddLT(ctx, s.scheduleKey(w.LeadID), redis.Z{Score: float64(w.NextChange.UnixMilli()), Member: w.LeadID})
			}
		}
		_, _ = pipe.Exec(ctx) // errors are read per command below
		var noscript []int
		for j, c := range cmds {
			n, err := c.Int()
			switch {
			case err == nil:
				ok[todo[j]] = n == 1
			case redis.HasErrorPrefix(err, "NOSCRIPT"):
				noscript = append(noscript, todo[j])
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

// scheduleShards spreads the decay schedule over sorted sets so that a
// cluster spreads it over nodes.
const scheduleShards = 16

func (s *Store) scheduleKey(leadID string) string {
	h := fnv.New32a()
	h.Write([]byte(leadID))
	return s.shardKey(int(h.Sum32() % scheduleShards))
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
