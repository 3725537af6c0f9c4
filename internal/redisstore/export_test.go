package redisstore

import "github.com/leadscore/leadscore/scorer"

// For the benchmarks in package redisstore_test, which drive the store's
// script with go-redis directly: the stored value and the script's
// arguments exactly as Save builds them.
const BatchKeys = batchKeys

func AppendValue(buf []byte, ver int64, st *scorer.LeadState) []byte {
	v, _ := appendValue(buf, nil, ver, st)
	return v
}

var VersionArg = versionArg
