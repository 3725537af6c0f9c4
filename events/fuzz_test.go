package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecode checks, for any value and content type, that Decode
//   - never panics and only returns *DecodeError with a known code and a
//     short, printable message;
//   - returns events that pass Validate and survive Decode(Encode(e));
//   - agrees with encoding/json on what is valid JSON, and on the decoded
//     fields of every record it accepts.
//
// Seeds: testdata/fuzz/FuzzDecode, the table of TestDecode and the hostile corpus.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add(tc.value, tc.contentType)
	}
	for name := range hostileFiles(f) {
		v, err := os.ReadFile(filepath.Join(hostileDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v, "")
	}

	tightLimits := Limits{MaxRecordBytes: 256, MaxProperties: 3, MaxPropertyBytes: 8, MaxFutureSkew: time.Hour}
	decoders := []struct {
		d      *Decoder
		limits Limits
	}{
		{testDecoder(), Limits{}},
		{NewDecoder(tightLimits, func() time.Time { return testNow }), tightLimits},
	}

	f.Fuzz(func(t *testing.T, value []byte, contentType string) {
		for _, dec := range decoders {
			ev, err := dec.d.Decode(value, contentType)
			if err != nil {
				checkFuzzError(t, err, value, contentType, dec.limits)
				continue
			}
			checkFuzzEvent(t, dec.d, dec.limits, ev)
			if contentType == "" {
				compareWithEncodingJSON(t, value, ev)
			}
		}
	})
}

var knownCodes = map[string]bool{
	CodeMalformedJSON: true, CodeMissingField: true, CodeInvalidField: true, CodeUnsupportedEncoding: true,
	CodeOversize: true, CodeInvalidUTF8: true, CodeEmpty: true,
}

func checkFuzzError(t *testing.T, err error, value []byte, contentType string, l Limits) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v is a %T, want *DecodeError", err, err)
	}
	if !knownCodes[de.Code] {
		t.Fatalf("unknown code %q", de.Code)
	}
	if de.Msg == "" || len(de.Msg) > 200 || !utf8.ValidString(de.Msg) {
		t.Fatalf("bad message %q", de.Msg)
	}
	for _, r := range de.Msg {
		if r < 0x20 || r == 0x7f {
			t.Fatalf("message holds a control character: %q", de.Msg)
		}
	}

	// The checks that do not depend on JSON syntax must agree with it.
	l = l.withDefaults()
	valid := json.Valid(value)
	blank := len(bytes.TrimLeft(value, " \t\r\n")) == 0
	switch {
	case len(value) > l.MaxRecordBytes:
		if de.Code != CodeOversize {
			t.Fatalf("%d-byte value: code %s, want oversize", len(value), de.Code)
		}
	case contentType != "" || de.Code == CodeUnsupportedEncoding:
		// content-type parsing is covered by TestDecode.
	case blank:
		if de.Code != CodeEmpty {
			t.Fatalf("blank value: code %s, want empty_record", de.Code)
		}
	case !utf8.Valid(value):
		if de.Code != CodeInvalidUTF8 {
			t.Fatalf("invalid UTF-8: code %s, want invalid_utf8", de.Code)
		}
	case !valid:
		if de.Code != CodeMalformedJSON {
			t.Fatalf("encoding/json rejects the value, Decode says %v", de)
		}
	case de.Code == CodeMalformedJSON:
		// encoding/json accepts it: only a non-object or very deep nesting may be refused.
		if !strings.Contains(de.Msg, "want an object") && !strings.Contains(de.Msg, "nesting deeper") {
			t.Fatalf("encoding/json accepts the value, Decode says %v", de)
		}
	}
}

func checkFuzzEvent(t *testing.T, d *Decoder, l Limits, ev Event) {
	t.Helper()
	if err := ev.Validate(l, testNow); err != nil {
		t.Fatalf("decoded event fails Validate: %v\n%#v", err, ev)
	}
	if ev.OccurredAt.Location() != time.UTC {
		t.Fatalf("OccurredAt in %v, want UTC", ev.OccurredAt.Location())
	}
	if ev.Properties != nil && len(ev.Properties) == 0 {
		t.Fatal("empty Properties map, want nil")
	}
	b, err := Encode(ev)
	if err != nil {
		t.Fatalf("Encode of a decoded event: %v", err)
	}
	again, err := d.Decode(b, "application/json")
	if err != nil {
		t.Fatalf("Decode(Encode(e)): %v\n%s", err, b)
	}
	if !eventsEqual(again, ev) {
		t.Fatalf("Decode(Encode(e)) =\n%#v\nwant\n%#v", again, ev)
	}
}

// compareWithEncodingJSON decodes an accepted value with encoding/json
// (exact keys through a map, unlike its case-insensitive struct fields)
// and checks that it finds the same fields.
func compareWithEncodingJSON(t *testing.T, value []byte, ev Event) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(value, &top); err != nil {
		t.Fatalf("Decode accepted a value encoding/json rejects: %v", err)
	}
	for field, got := range map[string]string{"event_id": ev.ID, "lead_id": ev.LeadID, "type": ev.Type} {
		var s string
		if err := json.Unmarshal(top[field], &s); err != nil {
			t.Fatalf("%s: encoding/json: %v", field, err)
		}
		if strings.TrimSpace(s) != got {
			t.Fatalf("%s = %q, encoding/json says %q", field, got, s)
		}
	}
	var at string
	if err := json.Unmarshal(top["occurred_at"], &at); err != nil {
		t.Fatalf("occurred_at: encoding/json: %v", err)
	}
	// time.Parse lacks our lower-case and >9-digit extensions; compare
	// where it has an answer.
	if want, err := time.Parse(time.RFC3339Nano, at); err == nil && !want.Equal(ev.OccurredAt) {
		t.Fatalf("occurred_at = %v, time.Parse says %v", ev.OccurredAt, want)
	}

	want := map[string]string{}
	if raw, ok := top["properties"]; ok && string(raw) != "null" {
		var props map[string]json.RawMessage
		if err := json.Unmarshal(raw, &props); err != nil {
			t.Fatalf("properties: encoding/json: %v", err)
		}
		for k, v := range props {
			switch {
			case string(v) == "null":
			case v[0] == '"':
				var s string
				if err := json.Unmarshal(v, &s); err != nil {
					t.Fatalf("property: encoding/json: %v", err)
				}
				want[k] = s
			default:
				want[k] = string(v)
			}
		}
	}
	if len(want) != len(ev.Properties) {
		t.Fatalf("%d properties, encoding/json finds %d", len(ev.Properties), len(want))
	}
	for k, v := range want {
		if got, ok := ev.Properties[k]; !ok || got != v {
			t.Fatalf("a property differs from encoding/json's (key %q)", k)
		}
	}
}
