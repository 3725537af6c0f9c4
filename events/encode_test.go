package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestEncode(t *testing.T) {
	e := Event{
		ID:         "evt-1",
		LeadID:     "lead \"1\"\\",
		Type:       "page_view",
		OccurredAt: time.Date(2024, 5, 1, 14, 0, 0, 120000000, time.FixedZone("CEST", 2*3600)),
		Properties: map[string]string{"b": "line\nbreak\x01", "a": "42", "é": "😀"},
	}
	got, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"event_id":"evt-1","lead_id":"lead \"1\"\\","type":"page_view","occurred_at":"2024-05-01T12:00:00.12Z",` +
		`"properties":{"a":"42","b":"line\nbreak\u0001","é":"😀"}}`
	if string(got) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(got) {
		t.Fatalf("Encode produced invalid JSON: %s", got)
	}

	noProps, err := Encode(event(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"event_id":"evt-1","lead_id":"lead-1","type":"page_view","occurred_at":"2024-05-01T12:00:00Z"}`; string(noProps) != want {
		t.Fatalf("Encode without properties = %s, want %s", noProps, want)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	d := testDecoder()
	for _, tc := range decodeCases {
		if tc.code != "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			b, err := Encode(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Decode(b, "application/json")
			if err != nil {
				t.Fatalf("Decode(Encode(e)): %v\n%s", err, b)
			}
			if !eventsEqual(got, tc.want) {
				t.Fatalf("Decode(Encode(e)) =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	cases := map[string]Event{
		"year 10000":          event(func(e *Event) { e.OccurredAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"negative year":       event(func(e *Event) { e.OccurredAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"invalid UTF-8 id":    event(func(e *Event) { e.LeadID = "\xff" }),
		"invalid UTF-8 key":   event(func(e *Event) { e.Properties = map[string]string{"\xff": "v"} }),
		"invalid UTF-8 value": event(func(e *Event) { e.Properties = map[string]string{"k": "a\xc0"} }),
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			if b, err := Encode(e); err == nil {
				t.Fatalf("Encode = %s, want an error", b)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 1025)
	cases := []struct {
		name  string
		e     Event
		code  string
		field string
	}{
		{"valid", event(func(e *Event) { e.Properties = map[string]string{"a": "1"} }), "", ""},
		{"valid with an offset", event(func(e *Event) { e.OccurredAt = e.OccurredAt.In(time.FixedZone("X", -3600)) }), "", ""},
		{"empty id", event(func(e *Event) { e.ID = "" }), CodeMissingField, "event_id"},
		{"empty lead", event(func(e *Event) { e.LeadID = "" }), CodeMissingField, "lead_id"},
		{"empty type", event(func(e *Event) { e.Type = "" }), CodeMissingField, "type"},
		{"zero time", event(func(e *Event) { e.OccurredAt = time.Time{} }), CodeMissingField, "occurred_at"},
		{"untrimmed lead", event(func(e *Event) { e.LeadID = " lead-1" }), CodeInvalidField, "lead_id"},
		{"control character", event(func(e *Event) { e.Type = "a\x7f\x00" }), CodeInvalidField, "type"},
		{"long id", event(func(e *Event) { e.ID = strings.Repeat("e", 257) }), CodeInvalidField, "event_id"},
		{"long type", event(func(e *Event) { e.Type = strings.Repeat("t", 129) }), CodeInvalidField, "type"},
		{"invalid UTF-8 lead", event(func(e *Event) { e.LeadID = "a\xff" }), CodeInvalidUTF8, "lead_id"},
		{"before MinTime", event(func(e *Event) { e.OccurredAt = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) }), CodeInvalidField, "occurred_at"},
		{"future", event(func(e *Event) { e.OccurredAt = testNow.Add(25 * time.Hour) }), CodeInvalidField, "occurred_at"},
		{"too many properties", event(func(e *Event) {
			e.Properties = map[string]string{}
			for i := range 65 {
				e.Properties[strings.Repeat("k", i+1)] = "v"
			}
		}), CodeInvalidField, "properties"},
		{"long key", event(func(e *Event) { e.Properties = map[string]string{strings.Repeat("k", 129): "v"} }), CodeInvalidField, "properties"},
		{"long value", event(func(e *Event) { e.Properties = map[string]string{"k": long} }), CodeInvalidField, "properties"},
		{"invalid UTF-8 key", event(func(e *Event) { e.Properties = map[string]string{"\xff": "v"} }), CodeInvalidUTF8, "properties"},
		{"invalid UTF-8 value", event(func(e *Event) { e.Properties = map[string]string{"k": "\xff"} }), CodeInvalidUTF8, "properties"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.Validate(Limits{}, testNow)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			checkDecodeError(t, err, tc.code, tc.field, "")
		})
	}
}

// Every event Decode accepts passes Validate: they enforce one contract.
func TestDecodedEventsValidate(t *testing.T) {
	for _, tc := range decodeCases {
		if tc.code != "" {
			continue
		}
		if err := tc.want.Validate(Limits{}, testNow); err != nil {
			t.Errorf("%s: Validate: %v", tc.name, err)
		}
	}
}
