package events

import (
	"testing"
	"time"
)

// parseRFC3339 must agree with time.Parse on everything time.Parse handles.
func TestParseRFC3339MatchesTimeParse(t *testing.T) {
	inputs := []string{
		"2024-05-01T12:00:00Z",
		"2024-05-01T12:00:00.5Z",
		"2024-05-01T12:00:00.123456789Z",
		"2024-05-01T12:00:00+02:00",
		"2024-05-01T12:00:00-00:00",
		"2024-05-01T00:00:00+23:59",
		"2024-05-01T23:59:59.999-23:59",
		"0000-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999999Z",
		"2000-02-29T00:00:00Z",
		"1900-02-29T00:00:00Z",
		"2024-13-01T00:00:00Z",
		"2024-00-01T00:00:00Z",
		"2024-04-31T00:00:00Z",
		"2024-05-00T00:00:00Z",
		"2024-05-01T12:60:00Z",
		"2024-05-01T12:00:61Z",
		"2024-05-01T12:00:00",
		"2024-05-01T12:00:00+2:00",
		"2024-05-01T12:00:00+02:00:00",
		"2024-05-01T12:00:00+02",
		"2024-05-01T12:00:00.Z",
		"2024-05-01T12:00:00ZZ",
		"2024-5-01T12:00:00Z",
		"20240501T120000Z",
		"+2024-05-01T12:00:00Z",
		"2024-05-01T1a:00:00Z",
		"",
		"garbage",
	}
	for _, in := range inputs {
		want, wantErr := time.Parse(time.RFC3339Nano, in)
		got, ok := parseRFC3339([]byte(in))
		if ok != (wantErr == nil) {
			t.Errorf("%q: ok = %v, time.Parse error = %v", in, ok, wantErr)
			continue
		}
		if ok && (!got.Equal(want) || got.Location() != time.UTC) {
			t.Errorf("%q = %v, want %v in UTC", in, got, want.UTC())
		}
	}
}

// time.Parse accepts a comma before fractional seconds (ISO 8601); RFC 3339
// does not, and neither do we.
func TestParseRFC3339RejectsComma(t *testing.T) {
	if _, ok := parseRFC3339([]byte("2024-05-01T12:00:00,5Z")); ok {
		t.Error("accepted a comma before fractional seconds")
	}
}

func TestParseRFC3339Extensions(t *testing.T) {
	want := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	for _, in := range []string{
		"2024-05-01t12:00:00.123456789z",         // RFC 3339 §5.6 allows lower case
		"2024-05-01T12:00:00.1234567891234Z",     // truncated past nanoseconds
		"2024-05-01T13:00:00.123456789999+01:00", //
	} {
		got, ok := parseRFC3339([]byte(in))
		if !ok || !got.Equal(want) {
			t.Errorf("%q = %v, %v; want %v", in, got, ok, want)
		}
	}
}

func TestParseRFC3339DoesNotAllocate(t *testing.T) {
	in := []byte("2024-05-01T14:34:56.789+02:00")
	if n := testing.AllocsPerRun(100, func() { parseRFC3339(in) }); n != 0 {
		t.Errorf("parseRFC3339 allocates %v times, want 0", n)
	}
}
