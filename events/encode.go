package events

import (
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Encode writes e in the canonical JSON form Decode reads:
//
//	{"event_id":…,"lead_id":…,"type":…,"occurred_at":"<RFC 3339 nano, UTC>","properties":{…}}
//
// Properties are written as JSON strings with keys sorted, and left out when
// empty. Encode does not apply Limits (tests encode invalid events on
// purpose); it fails only for what JSON or RFC 3339 cannot carry: text that
// is not valid UTF-8 and years outside 0000–9999. For a decoded Event,
// Decode(Encode(e)) returns e.
func Encode(e Event) ([]byte, error) {
	at := e.OccurredAt.UTC()
	if y := at.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("encode event: occurred_at year %d is outside 0000-9999", y)
	}
	for _, s := range [...]string{e.ID, e.LeadID, e.Type} {
		if !utf8.ValidString(s) {
			return nil, errors.New("encode event: an identifier is not valid UTF-8")
		}
	}
	keys := make([]string, 0, len(e.Properties))
	size := len(e.ID) + len(e.LeadID) + len(e.Type) + 100
	for k, v := range e.Properties {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, errors.New("encode event: a property is not valid UTF-8")
		}
		keys = append(keys, k)
		size += len(k) + len(v) + 6
	}
	slices.Sort(keys)

	b := make([]byte, 0, size)
	b = append(b, `{"event_id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"lead_id":`...)
	b = appendString(b, e.LeadID)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"occurred_at":"`...)
	b = at.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if len(keys) > 0 {
		b = append(b, `,"properties":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, e.Properties[k])
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendString appends s as a JSON string. s must be valid UTF-8.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
