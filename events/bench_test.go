package events

import (
	"encoding/json"
	"testing"
	"time"
)

// typicalEvent is what most of the traffic looks like: ~200 bytes, a
// non-UTC offset with milliseconds, and a few properties of each kind.
var typicalEvent = []byte(`{"event_id":"evt_01HZX3K9W2QJ7TB8M4N6P0R5SV","lead_id":"lead_8f3a2c91","type":"page_view",` +
	`"occurred_at":"2024-05-01T14:34:56.789+02:00","properties":{"url":"/pricing","seconds":54,"returning":true}}`)

// reportEventRate reports events/s: b.N records decoded in the benchmark's
// elapsed time (wall clock: for a parallel benchmark, all goroutines' events).
func reportEventRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecode measures Decode of a typical record on one core.
func BenchmarkDecode(b *testing.B) {
	d := NewDecoder(Limits{}, func() time.Time { return testNow })
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalEvent)))
	for b.Loop() {
		if _, err := d.Decode(typicalEvent, "application/json"); err != nil {
			b.Fatal(err)
		}
	}
	// One core's worth, against the 100k events/s the pipeline must sustain.
	reportEventRate(b)
}

// BenchmarkDecodeCases covers the other shapes the hot path sees, including
// rejections (a burst of bad records must not slow the consumer down much).
func BenchmarkDecodeCases(b *testing.B) {
	cases := []struct {
		name  string
		value []byte
	}{
		{"no_properties", []byte(`{"event_id":"evt_01HZX3K9W2QJ7TB8M4N6P0R5SV","lead_id":"lead_8f3a2c91","type":"email_open","occurred_at":"2024-05-01T12:34:56Z"}`)},
		{"escaped", []byte(`{"event_id":"evt_01HZX3K9W2","lead_id":"l\u00e9ad_8f3a2c91","type":"Email Link Clicked","occurred_at":"2024-05-01T12:34:56.789Z","properties":{"link":"https:\/\/example.com\/pricing?x=\"1\""}}`)},
		{"16_properties", record("properties", manyProperties(16))},
		{"missing_field", record("lead_id", "-")},
		{"malformed", typicalEvent[:150]},
	}
	d := NewDecoder(Limits{}, func() time.Time { return testNow })
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.value)))
			for b.Loop() {
				_, _ = d.Decode(c.value, "")
			}
			reportEventRate(b)
		})
	}
}

// BenchmarkDecodeParallel measures Decode of a typical record on every core
// at once (GOMAXPROCS goroutines sharing one Decoder, as the pipeline may):
// events/s is the total.
func BenchmarkDecodeParallel(b *testing.B) {
	d := NewDecoder(Limits{}, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalEvent)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.Decode(typicalEvent, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportEventRate(b)
}

// BenchmarkEncodingJSONBaseline is the obvious alternative (encoding/json
// into a struct, properties left raw, time.Parse) for comparison; it does
// less validation than Decode.
func BenchmarkEncodingJSONBaseline(b *testing.B) {
	var v struct {
		EventID    string          `json:"event_id"`
		LeadID     string          `json:"lead_id"`
		Type       string          `json:"type"`
		OccurredAt string          `json:"occurred_at"`
		Properties json.RawMessage `json:"properties"`
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalEvent)))
	for b.Loop() {
		if err := json.Unmarshal(typicalEvent, &v); err != nil {
			b.Fatal(err)
		}
		if _, err := time.Parse(time.RFC3339Nano, v.OccurredAt); err != nil {
			b.Fatal(err)
		}
	}
	reportEventRate(b)
}
