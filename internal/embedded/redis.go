package embedded

import (
	"fmt"
	"sync"

	"github.com/alicebob/miniredis/v2"
)

// Redis is an in-memory Redis (miniredis) listening on a TCP address. It
// supports what leadscore's store uses: hashes, EVAL/EVALSHA and SCRIPT LOAD.
//
// go-redis clients should set DisableIdentity: true: miniredis rejects
// CLIENT SETINFO (go-redis ignores the error, so it only costs a round trip
// per connection). Its TIME is frozen and keys with a TTL only expire when
// Server().FastForward is called.
type Redis struct {
	srv  *miniredis.Miniredis
	once sync.Once
}

// StartRedis starts a server on addr ("host:port"; port 0 picks a free port,
// an empty host means 127.0.0.1).
func StartRedis(addr string) (*Redis, error) {
	listenAddr, err := normalizeAddr(addr)
	if err != nil {
		return nil, err
	}
	srv := miniredis.NewMiniRedis()
	if err := srv.StartAddr(listenAddr); err != nil {
		return nil, fmt.Errorf("start redis on %s: %w", listenAddr, err)
	}
	return &Redis{srv: srv}, nil
}

// Addr returns the "host:port" the server listens on.
func (r *Redis) Addr() string { return r.srv.Addr() }

// Server gives access to the underlying miniredis, e.g. to move its clock
// (FastForward, SetTime) or inspect keys.
func (r *Redis) Server() *miniredis.Miniredis { return r.srv }

// Close stops the server and drops all data. Safe to call more than once.
func (r *Redis) Close() {
	r.once.Do(r.srv.Close)
}
