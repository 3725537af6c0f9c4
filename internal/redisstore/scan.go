package redisstore

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/leadscore/leadscore/scorer"
)

// scanCount is the COUNT hint of each SCAN call and the size of the pages
// ScanLeads hands out.
const scanCount = 1000

// LeadID is the inverse of Key: the lead id a key of this store holds, and
// whether the key is a lead key of this store at all (the decay schedule's
// keys, and keys under other prefixes, are not).
func (s *Store) LeadID(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, s.prefix+"{")
	if !ok || !strings.HasSuffix(rest, "}") {
		return "", false
	}
	return tagUnescaper.Replace(rest[:len(rest)-1]), true
}

var tagUnescaper = strings.NewReplacer("%7D", "}", "%25", "%")

// ScanLeads calls fn with the ids of the leads stored under the store's
// prefix, a page at a time, until every key has been seen or fn fails. It is
// SCAN: a lead present throughout is handed out at least once, and may be
// handed out twice when Redis rehashes meanwhile. It walks the whole
// keyspace (on every master of a cluster), so it is for offline tools such
// as `leadscore rescore`, never for the hot path.
func (s *Store) ScanLeads(ctx context.Context, fn func(ids []string) error) error {
	return s.scan(ctx, globEscape(s.prefix)+"{*", func(keys []string) error {
		ids := make([]string, 0, len(keys))
		for _, k := range keys {
			if id, ok := s.LeadID(k); ok {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		return fn(ids)
	})
}

// DeleteAll unlinks every key under the store's prefix — lead states and the
// decay schedule — and returns how many it unlinked. It exists for scratch
// prefixes (`leadscore rescore` replays into one); called on a prefix that
// is a prefix of others, it deletes theirs too.
func (s *Store) DeleteAll(ctx context.Context) (int64, error) {
	var n int64
	err := s.scan(ctx, globEscape(s.prefix)+"*", func(keys []string) error {
		// One UNLINK per key: keys of different leads are in different
		// cluster slots, where a multi-key UNLINK is refused.
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.Unlink(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("unlink %d keys: %w", len(keys), err)
		}
		for _, c := range cmds {
			n += c.Val()
		}
		return nil
	})
	return n, err
}

// scan runs SCAN MATCH pattern over the keyspace (every master of a
// cluster) and calls fn with each non-empty page of keys, one call at a time.
func (s *Store) scan(ctx context.Context, pattern string, fn func(keys []string) error) error {
	var mu sync.Mutex // a cluster's masters are scanned concurrently
	one := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, scanCount).Result()
			if err != nil {
				return fmt.Errorf("scan %s: %w", pattern, err)
			}
			if len(keys) > 0 {
				mu.Lock()
				err := fn(keys)
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	}
	return one(ctx, s.rdb)
}

// globEscape quotes the characters SCAN MATCH treats as a pattern, so that a
// prefix matches itself only.
func globEscape(s string) string {
	return globEscaper.Replace(s)
}

var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// RescheduleAll sets the decay schedule entry of each lead to its At
// exactly (zero removes it), in one pipelined round trip: unlike Save's
// Schedule, which only ever moves an entry earlier, it also moves entries
// later. For offline tools that replace lead states wholesale (`leadscore
// rescore --switch`).
func (s *Store) RescheduleAll(ctx context.Context, leads []scorer.Due) error {
	if len(leads) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for _, d := range leads {
		key := s.scheduleKey(d.LeadID)
		if d.At.IsZero() {
			pipe.ZRem(ctx, key, d.LeadID)
		} else {
			pipe.ZAdd(ctx, key, redis.Z{Score: float64(d.At.UnixMilli()), Member: d.LeadID})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("reschedule %d leads: %w", len(leads), err)
	}
	return nil
}
