package embedded

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func startRedis(t *testing.T) (*Redis, *redis.Client) {
	t.Helper()
	r, err := StartRedis("127.0.0.1:0")
	if err != nil {
		t.Fatalf("StartRedis: %v", err)
	}
	t.Cleanup(r.Close)
	c := redis.NewClient(&redis.Options{
		Addr:            r.Addr(),
		DisableIdentity: true, // miniredis does not know CLIENT SETINFO
	})
	t.Cleanup(func() { c.Close() })
	return r, c
}

// casScript is shaped like the store's save: compare the version field, then
// write the state and bump the version.
const casScript = `
local v = redis.call('HGET', KEYS[1], 'v')
if (v or '0') ~= ARGV[1] then return {0, v or '0'} end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
return {1, ARGV[2]}
`

func TestRedisScriptLoadAndEvalSha(t *testing.T) {
	_, c := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	sha, err := c.ScriptLoad(ctx, casScript).Result()
	if err != nil {
		t.Fatalf("SCRIPT LOAD: %v", err)
	}
	if want := redis.NewScript(casScript).Hash(); sha != want {
		t.Errorf("SCRIPT LOAD sha = %s, want %s", sha, want)
	}
	exists, err := c.ScriptExists(ctx, sha).Result()
	if err != nil || len(exists) != 1 || !exists[0] {
		t.Errorf("SCRIPT EXISTS = %v, %v; want [true]", exists, err)
	}

	key := "lead:{lead-000042}"
	tests := []struct {
		name        string
		expect, set string
		want        []any
	}{
		{"first write", "0", "1", []any{int64(1), "1"}},
		{"stale version", "0", "1", []any{int64(0), "1"}},
		{"next version", "1", "2", []any{int64(1), "2"}},
	}
	for _, tt := range tests {
		got, err := c.EvalSha(ctx, sha, []string{key}, tt.expect, tt.set, "state-"+tt.set).Slice()
		if err != nil {
			t.Fatalf("%s: EVALSHA: %v", tt.name, err)
		}
		if len(got) != 2 || got[0] != tt.want[0] || got[1] != tt.want[1] {
			t.Errorf("%s: EVALSHA = %#v, want %#v", tt.name, got, tt.want)
		}
	}
	if s, err := c.HGet(ctx, key, "s").Result(); err != nil || s != "state-2" {
		t.Errorf("HGET s = %q, %v; want state-2", s, err)
	}

	// The state field is binary: it must pass through Lua unchanged.
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	if err := c.EvalSha(ctx, sha, []string{key}, "2", "3", bin).Err(); err != nil {
		t.Fatalf("EVALSHA with binary state: %v", err)
	}
	if got, err := c.HGet(ctx, key, "s").Bytes(); err != nil || string(got) != string(bin) {
		t.Errorf("binary state after Lua HSET = %x, %v; want %x", got, err, bin)
	}
}

func TestRedisPipelinedEvalShaAndNoScript(t *testing.T) {
	_, c := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// An unknown sha answers NOSCRIPT, which the store must handle itself
	// inside pipelines.
	unknown := redis.NewScript("return 1").Hash()
	err := c.EvalSha(ctx, unknown, nil).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		t.Errorf("EVALSHA of an unloaded script: err = %v, want NOSCRIPT", err)
	}

	sha, err := c.ScriptLoad(ctx, casScript).Result()
	if err != nil {
		t.Fatalf("SCRIPT LOAD: %v", err)
	}
	keys := []string{"lead:{a}", "lead:{b}", "lead:{c}"}
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.EvalSha(ctx, sha, []string{k}, "0", "1", "s")
		}
		p.HMGet(ctx, keys[0], "v", "s")
		return nil
	})
	if err != nil {
		t.Fatalf("pipelined EVALSHA: %v", err)
	}
	for i, k := range keys {
		got, err := cmds[i].(*redis.Cmd).Slice()
		if err != nil || got[0] != int64(1) {
			t.Errorf("pipelined EVALSHA %s = %v, %v; want [1 1]", k, got, err)
		}
	}
	if got := cmds[len(keys)].(*redis.SliceCmd).Val(); len(got) != 2 || got[0] != "1" || got[1] != "s" {
		t.Errorf("pipelined HMGET = %#v, want [1 s]", got)
	}
}

// TestRedisScriptTimeIsFrozen pins the miniredis behaviour that forces the
// store to pass "now" into scripts.
func TestRedisScriptTimeIsFrozen(t *testing.T) {
	r, c := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	at := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	r.Server().SetTime(at)
	got, err := c.Eval(ctx, "return redis.call('TIME')[1]", nil).Text()
	if err != nil {
		t.Fatalf("EVAL TIME: %v", err)
	}
	if want := "1796320800"; got != want {
		t.Errorf("TIME in a script = %s, want the set time %s", got, want)
	}
}

func TestStartRedisAddrInUse(t *testing.T) {
	r, _ := startRedis(t)
	if _, err := StartRedis(r.Addr()); err == nil {
		t.Errorf("second StartRedis on %s: no error", r.Addr())
	}
	if _, err := StartRedis("no-port"); err == nil {
		t.Errorf("StartRedis without port: no error")
	}
	r.Close()
	r.Close() // twice is fine
}

// TestRedisWithoutDisableIdentity pins what happens when a client forgets
// DisableIdentity: miniredis rejects CLIENT SETINFO, go-redis ignores that
// error, and commands still work. The option only saves a wasted round trip
// per connection.
func TestRedisWithoutDisableIdentity(t *testing.T) {
	r, _ := startRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	sha, err := c.ScriptLoad(ctx, casScript).Result()
	if err != nil {
		t.Fatalf("SCRIPT LOAD: %v", err)
	}
	if err := c.EvalSha(ctx, sha, []string{"lead:{x}"}, "0", "1", "s").Err(); err != nil {
		t.Fatalf("EVALSHA: %v", err)
	}
}
