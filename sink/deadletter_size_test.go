package sink_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/sink"
)

// recordSize is what a record weighs against the broker's limit, record
// framing aside.
func recordSize(m *kafka.Message) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// TestDeadLetterCountsKeyAndHeaders is the regression test of a dead letter
// that did not fit the dead-letter topic: the value was cut to the budget
// but the original headers and key were not counted, so a 2 MiB record with
// 300 KiB of headers made a 1.2 MiB dead letter, the broker refused it
// (MESSAGE_TOO_LARGE) and its partition stalled for good
// (TestHostileInputThroughPipeline found it).
func TestDeadLetterCountsKeyAndHeaders(t *testing.T) {
	const budget = 900 << 10
	big := func(n int) []byte { return bytes.Repeat([]byte("x"), n) }
	err := errors.New("too big")
	tests := []struct {
		name                      string
		key                       []byte
		headers                   int // bytes of original headers, in one header
		value                     int
		valueCut, dropped, keyCut bool
	}{
		{"small", []byte("k"), 10, 100, false, false, false},
		{"value over", []byte("k"), 0, 2 << 20, true, false, false},
		{"big headers", []byte("k"), 300 << 10, 2 << 20, true, false, false},
		{"big headers, small value", []byte("k"), 890 << 10, 20 << 10, true, false, false},
		{"headers alone over", []byte("k"), 1 << 20, 10, true, true, false},
		{"key alone over", big(2 << 20), 10, 10, true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &kafka.Message{Topic: "in", Key: tc.key, Value: big(tc.value)}
			if tc.headers > 0 {
				src.Headers = []kafka.Header{{Key: "h", Value: big(tc.headers)}}
			}
			dl := sink.DeadLetter("dlq", src, err, budget)
			if n := recordSize(&dl); n > budget {
				t.Errorf("dead letter weighs %d bytes, budget %d", n, budget)
			}
			h := map[string]string{}
			for _, x := range dl.Headers {
				h[x.Key] = string(x.Value)
			}
			if got := h[sink.HeaderValueTruncated] != ""; got != tc.valueCut {
				t.Errorf("value truncated: %v, want %v", got, tc.valueCut)
			} else if got && h[sink.HeaderValueTruncated] != strconv.Itoa(tc.value) {
				t.Errorf("truncated_from %q, want %d", h[sink.HeaderValueTruncated], tc.value)
			}
			if got := h[sink.HeaderHeadersDropped] == "1"; got != tc.dropped {
				t.Errorf("headers dropped: %v, want %v", got, tc.dropped)
			}
			if got := h[sink.HeaderKeyTruncated] != ""; got != tc.keyCut {
				t.Errorf("key truncated: %v, want %v", got, tc.keyCut)
			}
			if !bytes.HasPrefix(src.Value, dl.Value) || !bytes.HasPrefix(src.Key, dl.Key) {
				t.Error("the dead letter's key and value must be prefixes of the original")
			}
			if !tc.valueCut && (len(dl.Value) != tc.value || strings.Contains(h[sink.HeaderErrorCode], "x")) {
				t.Errorf("value of %d bytes changed to %d", tc.value, len(dl.Value))
			}
			if h[sink.HeaderErrorCode] == "" || h[sink.HeaderSourceOffset] == "" {
				t.Errorf("leadscore's own headers must survive: %v", dl.Headers)
			}
		})
	}
}
