package redisstore

import (
	"testing"

	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/scorer/storetest"
)

// FuzzDecodeValue: no stored value, however damaged, makes decode panic;
// whatever decodes encodes back to a value that decodes to the same
// version and state.
func FuzzDecodeValue(f *testing.F) {
	st := storetest.State("L", 3)
	f.Add(appendValueOnce(7, &st))
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got scorer.Stored
		if err := decode(&got, "L", string(b)); err != nil {
			return
		}
		var again scorer.Stored
		if err := decode(&again, "L", string(appendValueOnce(got.Version, &got.State))); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if again.Version != got.Version || again.State.Events != got.State.Events || again.State.Band != got.State.Band {
			t.Fatalf("round trip changed the lead: %+v then %+v", got, again)
		}
	})
}

func appendValueOnce(ver int64, st *scorer.LeadState) []byte {
	v, _ := appendValue(nil, nil, ver, st)
	return v
}
