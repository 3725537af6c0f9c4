package events

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNow is the clock of every test decoder, so "future" is stable.
var testNow = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

func testDecoder() *Decoder {
	return NewDecoder(Limits{}, func() time.Time { return testNow })
}

// piiSentinel is planted in identifiers and property values of bad records;
// no error message may ever contain it.
const piiSentinel = "jane.doe@example.com"

// record builds a JSON object from a valid base event, with kv (key, raw
// JSON value) pairs replacing or adding fields; a raw value of "-" drops
// the field.
func record(kv ...string) []byte {
	keys := []string{"event_id", "lead_id", "type", "occurred_at"}
	vals := map[string]string{
		"event_id":    `"evt-1"`,
		"lead_id":     `"lead-1"`,
		"type":        `"page_view"`,
		"occurred_at": `"2024-05-01T12:00:00Z"`,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if _, ok := vals[kv[i]]; !ok {
			keys = append(keys, kv[i])
		}
		vals[kv[i]] = kv[i+1]
	}
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, k := range keys {
		if vals[k] == "-" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, "%q:%s", k, vals[k])
	}
	b.WriteByte('}')
	return []byte(b.String())
}

// event returns the Event of record() with the given changes applied.
func event(change func(*Event)) Event {
	e := Event{
		ID:         "evt-1",
		LeadID:     "lead-1",
		Type:       "page_view",
		OccurredAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
	}
	if change != nil {
		change(&e)
	}
	return e
}

func manyProperties(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":"v"`, i)
	}
	b.WriteByte('}')
	return b.String()
}

type decodeCase struct {
	name        string
	value       []byte
	contentType string
	want        Event  // when code is ""
	code        string // expected DecodeError.Code
	field       string // expected DecodeError.Field
	msgHas      string // optional substring of the message
}

var decodeCases = []decodeCase{
	// Happy paths.
	{name: "minimal", value: record(), want: event(nil)},
	{name: "string properties", value: record("properties", `{"url":"/pricing","plan":"pro"}`),
		want: event(func(e *Event) { e.Properties = map[string]string{"url": "/pricing", "plan": "pro"} })},
	{name: "number properties keep their JSON text", value: record("properties", `{"n":42,"neg":-1.50,"exp":1E+3,"zero":0,"big":123456789012345678901234567890}`),
		want: event(func(e *Event) {
			e.Properties = map[string]string{"n": "42", "neg": "-1.50", "exp": "1E+3", "zero": "0", "big": "123456789012345678901234567890"}
		})},
	{name: "boolean properties", value: record("properties", `{"yes":true,"no":false}`),
		want: event(func(e *Event) { e.Properties = map[string]string{"yes": "true", "no": "false"} })},
	{name: "null properties are dropped", value: record("properties", `{"a":"x","b":null}`),
		want: event(func(e *Event) { e.Properties = map[string]string{"a": "x"} })},
	{name: "null after a duplicate removes it", value: record("properties", `{"a":"x","a":null}`), want: event(nil)},
	{name: "all-null properties are nil", value: record("properties", `{"a":null}`), want: event(nil)},
	{name: "empty properties are nil", value: record("properties", `{}`), want: event(nil)},
	{name: "null properties", value: record("properties", `null`), want: event(nil)},
	{name: "property escapes are decoded", value: record("properties", `{"k\u00e9y":"a\n\"b\"\u0000\ud83d\ude00"}`),
		want: event(func(e *Event) { e.Properties = map[string]string{"kéy": "a\n\"b\"\x00😀"} })},
	{name: "property values are not trimmed", value: record("properties", `{"a":"  x  ","":""}`),
		want: event(func(e *Event) { e.Properties = map[string]string{"a": "  x  ", "": ""} })},
	{name: "64 properties", value: record("properties", manyProperties(64)),
		want: event(func(e *Event) {
			e.Properties = map[string]string{}
			for i := range 64 {
				e.Properties[fmt.Sprintf("k%d", i)] = "v"
			}
		})},
	{name: "property value of 1024 bytes", value: record("properties", `{"a":"`+strings.Repeat("x", 1024)+`"}`),
		want: event(func(e *Event) { e.Properties = map[string]string{"a": strings.Repeat("x", 1024)} })},
	{name: "escaped value longer in JSON than the limit", value: record("properties", `{"a":"`+strings.Repeat(`\u00e9`, 512)+`"}`),
		want: event(func(e *Event) { e.Properties = map[string]string{"a": strings.Repeat("é", 512)} })},
	{name: "positive offset", value: record("occurred_at", `"2024-05-01T14:30:00+02:30"`), want: event(nil)},
	{name: "negative offset", value: record("occurred_at", `"2024-05-01T07:00:00-05:00"`), want: event(nil)},
	{name: "offset crossing a day", value: record("occurred_at", `"2024-04-30T23:00:00-13:00"`), want: event(nil)},
	{name: "fractional seconds", value: record("occurred_at", `"2024-05-01T12:00:00.123Z"`),
		want: event(func(e *Event) { e.OccurredAt = e.OccurredAt.Add(123 * time.Millisecond) })},
	{name: "nanoseconds with offset", value: record("occurred_at", `"2024-05-01T13:00:00.123456789+01:00"`),
		want: event(func(e *Event) { e.OccurredAt = e.OccurredAt.Add(123456789) })},
	{name: "digits past nanoseconds are truncated", value: record("occurred_at", `"2024-05-01T12:00:00.1234567899Z"`),
		want: event(func(e *Event) { e.OccurredAt = e.OccurredAt.Add(123456789) })},
	{name: "lower-case t and z", value: record("occurred_at", `"2024-05-01t12:00:00z"`), want: event(nil)},
	{name: "leap day", value: record("occurred_at", `"2024-02-29T12:00:00Z"`),
		want: event(func(e *Event) { e.OccurredAt = time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC) })},
	{name: "exactly MinTime", value: record("occurred_at", `"2000-01-01T00:00:00Z"`),
		want: event(func(e *Event) { e.OccurredAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) })},
	{name: "exactly the future skew", value: record("occurred_at", `"2024-06-02T00:00:00Z"`),
		want: event(func(e *Event) { e.OccurredAt = testNow.Add(24 * time.Hour) })},
	{name: "escaped occurred_at", value: record("occurred_at", `"2024-05-01T12:00:00\u005a"`), want: event(nil)},
	{name: "identifiers are trimmed", value: record("event_id", `"  evt-1\t"`, "lead_id", `"\n lead-1 \r\n"`, "type", `"\u00a0page_view "`),
		want: event(nil)},
	{name: "escaped identifiers", value: record("lead_id", `"l\u00e9ad\/\ud83d\ude00"`),
		want: event(func(e *Event) { e.LeadID = "léad/😀" })},
	{name: "identifiers at their limits", value: record("event_id", `"`+strings.Repeat("e", 256)+`"`,
		"lead_id", `"`+strings.Repeat("l", 256)+`"`, "type", `"`+strings.Repeat("t", 128)+`"`),
		want: event(func(e *Event) {
			e.ID, e.LeadID, e.Type = strings.Repeat("e", 256), strings.Repeat("l", 256), strings.Repeat("t", 128)
		})},
	{name: "unknown fields are ignored", value: record("source", `{"a":[1,{"b":null}],"c":"\ud800"}`, "Lead_ID", `42`, "v", `2`),
		want: event(nil)},
	{name: "last duplicate wins", value: []byte(`{"lead_id":42,"event_id":"evt-1","lead_id":"lead-1","type":"page_view","occurred_at":"2024-05-01T12:00:00Z"}`),
		want: event(nil)},
	{name: "escaped key", value: []byte(`{"lead\u005fid":"lead-1","event_id":"evt-1","type":"page_view","\u006fccurred_at":"2024-05-01T12:00:00Z"}`),
		want: event(nil)},
	{name: "whitespace around and inside", value: []byte(" \r\n\t{ \"event_id\" : \"evt-1\" ,\n\"lead_id\":\"lead-1\",\"type\":\"page_view\",\"occurred_at\":\"2024-05-01T12:00:00Z\" , \"properties\" : { \"a\" : 1 , \"b\" : true } }\n "),
		want: event(func(e *Event) { e.Properties = map[string]string{"a": "1", "b": "true"} })},
	{name: "content type application/json", value: record(), contentType: "application/json", want: event(nil)},
	{name: "content type with charset", value: record(), contentType: "application/json; charset=utf-8", want: event(nil)},
	{name: "content type case-insensitive", value: record(), contentType: "Application/JSON;CHARSET=UTF-8", want: event(nil)},
	{name: "content type quoted charset", value: record(), contentType: `application/json; charset="utf-8"`, want: event(nil)},
	{name: "content type other parameters ignored", value: record(), contentType: "application/json; version=2; x", want: event(nil)},
	{name: "blank content type", value: record(), contentType: "  ", want: event(nil)},

	// oversize is in TestDecodeOversize: it needs a record larger than a table entry should be.

	{name: "avro", value: record(), contentType: "application/avro", code: CodeUnsupportedEncoding},
	{name: "cloudevents", value: record(), contentType: "application/cloudevents+json", code: CodeUnsupportedEncoding, msgHas: "not supported yet"},
	{name: "cloudevents batch", value: record(), contentType: "application/cloudevents-batch+json; charset=utf-8", code: CodeUnsupportedEncoding, msgHas: "not supported yet"},
	{name: "text/plain", value: record(), contentType: "text/plain", code: CodeUnsupportedEncoding},
	{name: "latin-1 charset", value: record(), contentType: "application/json; charset=iso-8859-1", code: CodeUnsupportedEncoding},
	{name: "json suffix type", value: record(), contentType: "application/vnd.segment+json", code: CodeUnsupportedEncoding},

	{name: "nil", value: nil, code: CodeEmpty},
	{name: "zero bytes", value: []byte{}, code: CodeEmpty},
	{name: "only whitespace", value: []byte(" \t\r\n  "), code: CodeEmpty},
	{name: "empty with a JSON content type", value: nil, contentType: "application/json", code: CodeEmpty},

	{name: "invalid UTF-8 in lead_id", value: record("lead_id", "\"le\xffad\""), code: CodeInvalidUTF8},
	{name: "invalid UTF-8 in an unknown field", value: record("x", "\"\xc3\x28\""), code: CodeInvalidUTF8},
	{name: "invalid UTF-8 outside strings", value: []byte("\xfe{}"), code: CodeInvalidUTF8},
	{name: "overlong encoding", value: record("type", "\"\xc0\xaf\""), code: CodeInvalidUTF8},
	{name: "UTF-16 surrogate in UTF-8", value: record("type", "\"\xed\xa0\x80\""), code: CodeInvalidUTF8},
	{name: "unpaired high surrogate escape", value: record("lead_id", `"a\ud800b"`), code: CodeInvalidUTF8, field: "lead_id"},
	{name: "unpaired low surrogate escape", value: record("event_id", `"\udc00"`), code: CodeInvalidUTF8, field: "event_id"},
	{name: "high surrogate and a non-surrogate", value: record("type", `"\ud83d\u0041"`), code: CodeInvalidUTF8, field: "type"},
	{name: "unpaired surrogate in a property value", value: record("properties", `{"email":"`+piiSentinel+`\ud800"}`), code: CodeInvalidUTF8, field: "properties"},
	{name: "unpaired surrogate in a property key", value: record("properties", `{"\ud800":"x"}`), code: CodeInvalidUTF8, field: "properties"},

	{name: "truncated", value: record()[:40], code: CodeMalformedJSON, msgHas: "unexpected end of input"},
	{name: "truncated in an escape", value: []byte(`{"lead_id":"a\u00`), code: CodeMalformedJSON},
	{name: "trailing garbage", value: append(record(), "x"...), code: CodeMalformedJSON, msgHas: "after the top-level object"},
	{name: "two objects", value: append(record(), record()...), code: CodeMalformedJSON},
	{name: "trailing comma", value: []byte(`{"event_id":"evt-1",}`), code: CodeMalformedJSON},
	{name: "missing colon", value: []byte(`{"event_id" "evt-1"}`), code: CodeMalformedJSON},
	{name: "single quotes", value: []byte(`{'event_id':'evt-1'}`), code: CodeMalformedJSON},
	{name: "unquoted key", value: []byte(`{event_id:"evt-1"}`), code: CodeMalformedJSON},
	{name: "leading zero", value: record("properties", `{"a":01}`), code: CodeMalformedJSON},
	{name: "bare decimal point", value: record("properties", `{"a":1.}`), code: CodeMalformedJSON},
	{name: "plus sign", value: record("properties", `{"a":+1}`), code: CodeMalformedJSON},
	{name: "NaN", value: record("properties", `{"a":NaN}`), code: CodeMalformedJSON},
	{name: "bad literal", value: record("properties", `{"a":tru}`), code: CodeMalformedJSON},
	{name: "bad escape", value: record("lead_id", `"\x41"`), code: CodeMalformedJSON},
	{name: "bad unicode escape", value: record("lead_id", `"\u12g4"`), code: CodeMalformedJSON},
	{name: "raw control character in a string", value: record("lead_id", "\"a\tb\""), code: CodeMalformedJSON, msgHas: "control character"},
	{name: "top-level array", value: []byte(`[` + string(record()) + `]`), code: CodeMalformedJSON, msgHas: "want an object"},
	{name: "top-level null", value: []byte(`null`), code: CodeMalformedJSON, msgHas: "want an object"},
	{name: "top-level string", value: []byte(`"x"`), code: CodeMalformedJSON},
	{name: "top-level number", value: []byte(`42`), code: CodeMalformedJSON},
	{name: "byte order mark", value: append([]byte("\xef\xbb\xbf"), record()...), code: CodeMalformedJSON, msgHas: "byte order mark"},
	{name: "too deep", value: record("x", strings.Repeat("[", 1001)+strings.Repeat("]", 1001)), code: CodeMalformedJSON, msgHas: "nesting"},
	{name: "syntax error after a bad field", value: []byte(`{"lead_id":42,"x":}`), code: CodeMalformedJSON},

	{name: "no event_id", value: record("event_id", "-"), code: CodeMissingField, field: "event_id", msgHas: `"event_id" is required`},
	{name: "no lead_id", value: record("lead_id", "-"), code: CodeMissingField, field: "lead_id"},
	{name: "no type", value: record("type", "-"), code: CodeMissingField, field: "type"},
	{name: "no occurred_at", value: record("occurred_at", "-"), code: CodeMissingField, field: "occurred_at"},
	{name: "empty object", value: []byte(`{}`), code: CodeMissingField, field: "event_id"},
	{name: "null lead_id", value: record("lead_id", "null"), code: CodeMissingField, field: "lead_id"},
	{name: "blank event_id", value: record("event_id", `" \t "`), code: CodeMissingField, field: "event_id"},
	{name: "empty type", value: record("type", `""`), code: CodeMissingField, field: "type"},
	{name: "null occurred_at", value: record("occurred_at", "null"), code: CodeMissingField, field: "occurred_at"},

	{name: "numeric lead_id", value: record("lead_id", "42"), code: CodeInvalidField, field: "lead_id", msgHas: "must be a string, got number"},
	{name: "boolean type", value: record("type", "true"), code: CodeInvalidField, field: "type"},
	{name: "object event_id", value: record("event_id", `{"id":"x"}`), code: CodeInvalidField, field: "event_id"},
	{name: "array lead_id", value: record("lead_id", `["`+piiSentinel+`"]`), code: CodeInvalidField, field: "lead_id"},
	{name: "event_id too long", value: record("event_id", `"`+strings.Repeat("e", 257)+`"`), code: CodeInvalidField, field: "event_id"},
	{name: "lead_id too long", value: record("lead_id", `"`+strings.Repeat(piiSentinel, 13)+`"`), code: CodeInvalidField, field: "lead_id"},
	{name: "type too long", value: record("type", `"`+strings.Repeat("t", 129)+`"`), code: CodeInvalidField, field: "type"},
	{name: "escaped newline inside lead_id", value: record("lead_id", `"`+piiSentinel+`\nx"`), code: CodeInvalidField, field: "lead_id", msgHas: "control character"},
	{name: "escaped NUL in type", value: record("type", `"a\u0000"`), code: CodeInvalidField, field: "type"},
	{name: "unix millis", value: record("occurred_at", "1714564800000"), code: CodeInvalidField, field: "occurred_at", msgHas: "must be an RFC 3339 string, got number"},
	{name: "e-mail in occurred_at is not quoted", value: record("occurred_at", `"`+piiSentinel+`"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "phone number in occurred_at is not quoted", value: record("occurred_at", `"+1 555-0100"`), code: CodeInvalidField, field: "occurred_at", msgHas: `"occurred_at" is not RFC 3339`},
	{name: "date only", value: record("occurred_at", `"2024-05-01"`), code: CodeInvalidField, field: "occurred_at", msgHas: "is not RFC 3339"},
	{name: "space separator", value: record("occurred_at", `"2024-05-01 12:00:00Z"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "no offset", value: record("occurred_at", `"2024-05-01T12:00:00"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "surrounding whitespace in occurred_at", value: record("occurred_at", `" 2024-05-01T12:00:00Z"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "February 30", value: record("occurred_at", `"2024-02-30T12:00:00Z"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "February 29 of a common year", value: record("occurred_at", `"2023-02-29T12:00:00Z"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "hour 24", value: record("occurred_at", `"2024-05-01T24:00:00Z"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "leap second", value: record("occurred_at", `"2016-12-31T23:59:60Z"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "offset hour 24", value: record("occurred_at", `"2024-05-01T12:00:00+24:00"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "offset without colon", value: record("occurred_at", `"2024-05-01T12:00:00+0200"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "empty fraction", value: record("occurred_at", `"2024-05-01T12:00:00.Z"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "long occurred_at", value: record("occurred_at", `"2024-05-01T12:00:00.`+strings.Repeat("1", 100)+`Z"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "before MinTime", value: record("occurred_at", `"1999-12-31T23:59:59.999Z"`), code: CodeInvalidField, field: "occurred_at", msgHas: "is before"},
	{name: "epoch", value: record("occurred_at", `"1970-01-01T00:00:00Z"`), code: CodeInvalidField, field: "occurred_at"},
	{name: "too far in the future", value: record("occurred_at", `"2024-06-02T00:00:00.000000001Z"`), code: CodeInvalidField, field: "occurred_at", msgHas: "in the future"},
	{name: "properties array", value: record("properties", `[1,2]`), code: CodeInvalidField, field: "properties"},
	{name: "properties string", value: record("properties", `"`+piiSentinel+`"`), code: CodeInvalidField, field: "properties"},
	{name: "nested object property", value: record("properties", `{"email":"`+piiSentinel+`","address":{"city":"x"}}`), code: CodeInvalidField, field: "properties", msgHas: `key "address" is an object`},
	{name: "nested array property", value: record("properties", `{"tags":["a"]}`), code: CodeInvalidField, field: "properties"},
	{name: "property key too long", value: record("properties", `{"`+strings.Repeat("k", 129)+`":"v"}`), code: CodeInvalidField, field: "properties"},
	{name: "property value too long", value: record("properties", `{"email":"`+strings.Repeat(piiSentinel, 60)+`"}`), code: CodeInvalidField, field: "properties", msgHas: `value of key "email" is 1200 bytes`},
	{name: "65 properties", value: record("properties", manyProperties(65)), code: CodeInvalidField, field: "properties", msgHas: "more than 64"},
	{name: "PII-like key is not quoted", value: record("properties", `{"`+piiSentinel+`":["x"]}`), code: CodeInvalidField, field: "properties"},
	{name: "first bad field wins", value: record("lead_id", "42", "type", "42"), code: CodeInvalidField, field: "lead_id"},
}

func TestDecode(t *testing.T) {
	d := testDecoder()
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.Decode(tc.value, tc.contentType)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !eventsEqual(got, tc.want) {
					t.Fatalf("Decode =\n%#v\nwant\n%#v", got, tc.want)
				}
				return
			}
			checkDecodeError(t, err, tc.code, tc.field, tc.msgHas)
			if !reflect.DeepEqual(got, Event{}) {
				t.Errorf("Decode returned a non-zero Event with an error: %#v", got)
			}
		})
	}
}

func checkDecodeError(t *testing.T, err error, code, field, msgHas string) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("Decode error = %v (%T), want a *DecodeError with code %s", err, err, code)
	}
	if de.Code != code {
		t.Errorf("Code = %q, want %q (%v)", de.Code, code, de)
	}
	if field != "" && de.Field != field {
		t.Errorf("Field = %q, want %q (%v)", de.Field, field, de)
	}
	if msgHas != "" && !strings.Contains(de.Msg, msgHas) {
		t.Errorf("Msg = %q, want it to contain %q", de.Msg, msgHas)
	}
	checkMessage(t, de)
}

// checkMessage asserts what every error message must be: short, and free of
// personal data.
func checkMessage(t *testing.T, de *DecodeError) {
	t.Helper()
	if de.Msg == "" {
		t.Errorf("empty message for code %s", de.Code)
	}
	if len(de.Msg) > 200 {
		t.Errorf("message is %d bytes, want a short one: %q", len(de.Msg), de.Msg)
	}
	if strings.Contains(de.Error(), "@") {
		t.Errorf("message may hold personal data: %q", de.Error())
	}
	if want := de.Code + ": " + de.Msg; de.Error() != want {
		t.Errorf("Error() = %q, want %q", de.Error(), want)
	}
}

// eventsEqual compares events, times by instant and location by name.
func eventsEqual(a, b Event) bool {
	return a.ID == b.ID && a.LeadID == b.LeadID && a.Type == b.Type &&
		a.OccurredAt.Equal(b.OccurredAt) && a.OccurredAt.Location() == b.OccurredAt.Location() &&
		reflect.DeepEqual(a.Properties, b.Properties)
}

func TestDecodeOversize(t *testing.T) {
	big := record("properties", `{"a":"`+strings.Repeat("x", 64<<10)+`"}`)
	_, err := testDecoder().Decode(big, "")
	checkDecodeError(t, err, CodeOversize, "", "limit is 65536")

	// Oversize is checked before anything else, even the content type.
	_, err = testDecoder().Decode(append(big, 0xff), "application/avro")
	checkDecodeError(t, err, CodeOversize, "", "")

	small := NewDecoder(Limits{MaxRecordBytes: 100}, func() time.Time { return testNow })
	if _, err := small.Decode(record(), ""); err != nil {
		t.Fatalf("record of %d bytes: %v", len(record()), err)
	}
	_, err = small.Decode(record("properties", `{"a":"`+strings.Repeat("x", 20)+`"}`), "")
	checkDecodeError(t, err, CodeOversize, "", "limit is 100")
}

func TestDecodeCustomLimits(t *testing.T) {
	minTime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	d := NewDecoder(Limits{MaxProperties: 2, MaxPropertyBytes: 4, MaxFutureSkew: time.Minute, MinTime: minTime},
		func() time.Time { return testNow })
	cases := []struct {
		name  string
		value []byte
		code  string
	}{
		{"two properties", record("properties", `{"a":"1","b":"2"}`), ""},
		{"duplicates count once", record("properties", `{"a":"1","b":"2","a":"3"}`), ""},
		{"nulls do not count", record("properties", `{"a":"1","b":"2","c":null}`), ""},
		{"three properties", record("properties", `{"a":"1","b":"2","c":"3"}`), CodeInvalidField},
		{"value of 4 bytes", record("properties", `{"a":"1234"}`), ""},
		{"value of 5 bytes", record("properties", `{"a":"12345"}`), CodeInvalidField},
		{"number of 5 bytes", record("properties", `{"a":12345}`), CodeInvalidField},
		{"a minute ahead", record("occurred_at", `"2024-06-01T00:01:00Z"`), ""},
		{"more than a minute ahead", record("occurred_at", `"2024-06-01T00:01:01Z"`), CodeInvalidField},
		{"at the new MinTime", record("occurred_at", `"2020-01-01T00:00:00Z"`), ""},
		{"before the new MinTime", record("occurred_at", `"2019-12-31T23:59:59Z"`), CodeInvalidField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Decode(tc.value, "")
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			checkDecodeError(t, err, tc.code, "", "")
		})
	}
}

func TestNewDecoderDefaults(t *testing.T) {
	d := NewDecoder(Limits{MaxRecordBytes: -1, MaxFutureSkew: -time.Hour}, nil)
	if d.limits != DefaultLimits() {
		t.Errorf("limits = %+v, want the defaults %+v", d.limits, DefaultLimits())
	}
	// A nil clock means time.Now: an event of a minute ago is accepted.
	v := record("occurred_at", `"`+time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)+`"`)
	if _, err := d.Decode(v, ""); err != nil {
		t.Fatalf("Decode with the wall clock: %v", err)
	}
}

// The decoded strings share memory with nothing the caller owns: reusing
// the input buffer (as Kafka clients do) must not change a decoded Event.
func TestDecodeDoesNotAliasInput(t *testing.T) {
	v := record("properties", `{"plan":"pro","n":42}`)
	ev, err := testDecoder().Decode(v, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range v {
		v[i] = 'X'
	}
	want := event(func(e *Event) { e.Properties = map[string]string{"plan": "pro", "n": "42"} })
	if !eventsEqual(ev, want) {
		t.Fatalf("after overwriting the input: %#v, want %#v", ev, want)
	}
}

func TestDecodeConcurrent(t *testing.T) {
	d := testDecoder()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				for _, tc := range decodeCases {
					got, err := d.Decode(tc.value, tc.contentType)
					if (err == nil) != (tc.code == "") || (err == nil && !eventsEqual(got, tc.want)) {
						t.Errorf("%s: concurrent Decode = %v, %v", tc.name, got, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
