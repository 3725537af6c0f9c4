package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/leadscore/leadscore/internal/redisstore"
	"github.com/leadscore/leadscore/internal/testsvc"
	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/scorer/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// redisAddr is where the real Redis is; the test is skipped without one.
func redisAddr(t testing.TB) string {
	t.Helper()
	return testsvc.Redis(t)
}

func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	// DisableIdentity: miniredis refuses CLIENT SETINFO; real Redis does not need it.
	rdb := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func miniClient(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	return mr, newClient(t, mr.Addr())
}

func realClient(t testing.TB) *redis.Client {
	t.Helper()
	rdb := newClient(t, redisAddr(t))
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("redis at %s: %v", rdb.Options().Addr, err)
	}
	return rdb
}

// testPrefix returns a key prefix of its own ("test-<random>:") and deletes
// every key under it when the test ends, so runs on a shared Redis neither
// see nor leave each other's leads.
func testPrefix(t testing.TB, rdb *redis.Client) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random prefix: %v", err)
	}
	prefix := "test-" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background() // t.Context() is already cancelled here
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("scan %s*: %v", prefix, err)
		}
		for chunk := range slices.Chunk(keys, 500) {
			if err := rdb.Del(ctx, chunk...).Err(); err != nil {
				t.Errorf("delete %d keys of %s*: %v", len(chunk), prefix, err)
			}
		}
	})
	return prefix
}

func newStore(t testing.TB, rdb redis.UniversalClient, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(t.Context(), rdb, prefix)
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	return s
}

func TestContractMiniredis(t *testing.T) {
	storetest.Run(t, func(t *testing.T) scorer.Store {
		_, rdb := miniClient(t)
		return newStore(t, rdb, "ls:")
	})
}

func TestContractRedis(t *testing.T) {
	rdb := realClient(t)
	s := newStore(t, rdb, testPrefix(t, rdb))
	storetest.Run(t, func(*testing.T) scorer.Store { return s })
}

// backends are the Redis servers the adapter-specific tests run against.
var backends = []struct {
	name   string
	client func(t *testing.T) *redis.Client
}{
	{"miniredis", func(t *testing.T) *redis.Client { _, rdb := miniClient(t); return rdb }},
	{"redis", func(t *testing.T) *redis.Client { return realClient(t) }},
}

func TestSaveReloadsFlushedScript(t *testing.T) {
	// A restart or failover empties Redis' script cache; Save must load the
	// script again rather than fail, and keep doing so each time.
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rdb := b.client(t)
			var seen noscriptReplies
			rdb.AddHook(&seen)
			s := newStore(t, rdb, testPrefix(t, rdb))
			const id = "lead-noscript"
			for v := range int64(3) {
				if err := rdb.ScriptFlush(t.Context()).Err(); err != nil {
					t.Fatalf("SCRIPT FLUSH: %v", err)
				}
				st := storetest.State(id, int(v))
				ok, err := s.Save(t.Context(), []scorer.Write{{LeadID: id, Version: v, State: &st}})
				if err != nil {
					t.Fatalf("Save after SCRIPT FLUSH #%d: %v", v+1, err)
				}
				if !ok[0] {
					t.Fatalf("Save after SCRIPT FLUSH #%d from version %d refused", v+1, v)
				}
				if n := seen.n.Load(); n != v+1 {
					t.Fatalf("after SCRIPT FLUSH #%d Redis answered NOSCRIPT %d times, want %d: the reload path did not run", v+1, n, v+1)
				}
			}
			got, err := s.Load(t.Context(), []string{id})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got[0].Version != 3 {
				t.Errorf("version after 3 saves = %d, want 3", got[0].Version)
			}
		})
	}
}

// noscriptReplies counts pipelined commands that Redis answered NOSCRIPT,
// to show that the reload path, not luck, made a Save succeed.
type noscriptReplies struct{ n atomic.Int64 }

func (*noscriptReplies) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*noscriptReplies) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *noscriptReplies) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
				h.n.Add(1)
			}
		}
		return err
	}
}

// crc16 is Redis Cluster's key hash: CRC-16/XMODEM (polynomial 0x1021).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// hashTag returns what Redis hashes for a key's slot: the text between the
// first '{' and the next '}', when that is not empty.
func hashTag(key string) (string, bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key, false
	}
	n := strings.IndexByte(key[open+1:], '}')
	if n <= 0 {
		return key, false
	}
	return key[open+1 : open+1+n], true
}

// keySlot is CLUSTER KEYSLOT, computed in Go.
func keySlot(key string) uint16 {
	tag, _ := hashTag(key)
	return crc16(tag) % 16384
}

func TestKeySlotMatchesRedis(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT docs.
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	for key, want := range map[string]uint16{"somekey": 11058, "foo{hash_tag}": 2515, "bar{hash_tag}": 2515} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestKeysShareTheLeadsHashTag(t *testing.T) {
	const prefix = "ls:"
	tests := []struct {
		name, id string
		tag      string // what Redis hashes; "" when the key has no usable tag
	}{
		{"plain", "lead-42", "lead-42"},
		{"email", "ada@example.com", "ada@example.com"},
		{"spaces", " a lead ", " a lead "},
		{"unicode", "lëad-日本-🚀", "lëad-日本-🚀"},
		{"open brace", "{x", "{x"},
		// Redis ends a tag at the first '}', so the store escapes it (and
		// '%', to stay injective): the tag is always the whole id.
		{"close brace inside", "a}b", "a%7Db"},
		{"close brace first", "}x", "%7Dx"},
		{"percent", "50%}", "50%25%7D"},
	}
	mr, rdb := miniClient(t)
	s := newStore(t, rdb, prefix)
	var wantKeys []string
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := s.Key(tc.id)
			if want := prefix + "{" + tc.tag + "}"; key != want {
				t.Fatalf("Key(%q) = %q, want %q", tc.id, key, want)
			}
			tag, ok := hashTag(key)
			if tc.tag == "" {
				if ok {
					t.Errorf("key %q: Redis would hash tag %q, want the whole key", key, tag)
				}
			} else {
				if !ok || tag != tc.tag {
					t.Fatalf("key %q: hash tag %q (ok=%v), want %q", key, tag, ok, tc.tag)
				}
				want := crc16(tc.tag) % 16384
				// Any key of the lead, whatever its prefix or suffix, lands in
				// the slot of the tag alone.
				for _, k := range []string{key, "{" + tc.tag + "}", "other:{" + tc.tag + "}:history"} {
					if got := keySlot(k); got != want {
						t.Errorf("keySlot(%q) = %d, want %d (the slot of tag %q)", k, got, want, tc.tag)
					}
				}
			}

			// A save writes that one key, a string starting with the
			// version, and nothing else.
			st := storetest.State(tc.id, i)
			if ok, err := s.Save(t.Context(), []scorer.Write{{LeadID: tc.id, State: &st}}); err != nil || !ok[0] {
				t.Fatalf("Save = %v, %v", ok, err)
			}
			if v, err := rdb.GetRange(t.Context(), key, 0, 7).Result(); err != nil || v != "\x00\x00\x00\x00\x00\x00\x00\x01" {
				t.Errorf("GETRANGE %q 0 7 = %q, %v; want version 1", key, v, err)
			}
		})
		wantKeys = append(wantKeys, prefix+"{"+tc.tag+"}")
	}
	if got := mr.Keys(); !slices.Equal(sorted(got), sorted(wantKeys)) {
		t.Errorf("keys in Redis = %q, want %q", got, wantKeys)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestLoadCorruptState(t *testing.T) {
	good := storetest.State("lead", 1)
	valid := string(good.AppendBinary(nil))
	v1 := "\x00\x00\x00\x00\x00\x00\x00\x01"
	withLen := func(n int) string { return string(binary.AppendUvarint(nil, uint64(n))) }
	tests := []struct {
		name  string
		value string // the raw value stored under the lead's key
	}{
		{"value shorter than a version", "garbage"},
		{"value empty", ""},
		{"version zero", "\x00\x00\x00\x00\x00\x00\x00\x00" + withLen(len(valid)) + valid},
		{"no length", v1},
		{"length past the end", v1 + withLen(len(valid)+1) + valid},
		{"state truncated", v1 + withLen(len(valid)/2) + valid[:len(valid)/2]},
		{"state is garbage", v1 + withLen(7) + "garbage"},
		{"explanation is garbage", v1 + withLen(len(valid)) + valid + "garbage"},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rdb := b.client(t)
			s := newStore(t, rdb, testPrefix(t, rdb))
			ok, err := s.Save(t.Context(), []scorer.Write{{LeadID: "lead-good", State: &good}})
			if err != nil || !ok[0] {
				t.Fatalf("Save good lead = %v, %v", ok, err)
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					id := "lead-" + strings.ReplaceAll(tc.name, " ", "-")
					if err := rdb.Set(t.Context(), s.Key(id), tc.value, 0).Err(); err != nil {
						t.Fatalf("SET: %v", err)
					}
					got, err := s.Load(t.Context(), []string{"lead-good", id})
					if !errors.Is(err, scorer.ErrCorruptState) {
						t.Fatalf("Load = %v, %v; want an error wrapping scorer.ErrCorruptState", got, err)
					}
				})
			}
		})
	}
}
