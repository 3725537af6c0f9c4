package events

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one behaviour event from a marketing platform.
//
// A decoded Event is canonical: identifiers are trimmed, OccurredAt is UTC and
// Properties is nil when there are none. The strings of a decoded Event share
// one allocation (properties of more than 1 KiB of JSON get their own), so
// keeping one identifier keeps at most a few KiB alive.
type Event struct {
	ID         string            // "event_id": required, 1..256 bytes
	LeadID     string            // "lead_id": required, 1..256 bytes
	Type       string            // "type": required, 1..128 bytes, free-form (matched by rules)
	OccurredAt time.Time         // "occurred_at": required, RFC 3339 with any offset, stored as UTC
	Properties map[string]string // "properties": optional; strings, numbers (original JSON text) and booleans as text
}

// Field length limits that are part of the contract, not configuration.
const (
	maxIDBytes          = 256
	maxTypeBytes        = 128
	maxPropertyKeyBytes = 128
	// maxTimestampBytes bounds occurred_at before parsing: a valid RFC 3339
	// time with nanoseconds and an offset is 35 bytes.
	maxTimestampBytes = 64
)

// Limits bound what Decode accepts. A zero or negative field means its default.
type Limits struct {
	// MaxRecordBytes is the largest value accepted; larger ones are rejected
	// with CodeOversize before parsing. Default 64 KiB.
	MaxRecordBytes int
	// MaxProperties is the most entries Properties may have. Default 64.
	MaxProperties int
	// MaxPropertyBytes is the longest property value, in bytes of its text.
	// Default 1024.
	MaxPropertyBytes int
	// MaxFutureSkew is how far past the decoder's clock occurred_at may be,
	// to tolerate producers whose clocks run fast. Default 24h.
	MaxFutureSkew time.Duration
	// MinTime is the earliest occurred_at accepted; it catches zero and epoch
	// timestamps from broken producers. Default 2000-01-01T00:00:00Z.
	MinTime time.Time
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MaxRecordBytes:   64 << 10,
		MaxProperties:    64,
		MaxPropertyBytes: 1024,
		MaxFutureSkew:    24 * time.Hour,
		MinTime:          time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxRecordBytes <= 0 {
		l.MaxRecordBytes = d.MaxRecordBytes
	}
	if l.MaxProperties <= 0 {
		l.MaxProperties = d.MaxProperties
	}
	if l.MaxPropertyBytes <= 0 {
		l.MaxPropertyBytes = d.MaxPropertyBytes
	}
	if l.MaxFutureSkew <= 0 {
		l.MaxFutureSkew = d.MaxFutureSkew
	}
	if l.MinTime.IsZero() {
		l.MinTime = d.MinTime
	}
	return l
}

// Validate checks e against the contract and l, as Decode does for a
// decoded record; now is the reference for MaxFutureSkew. It is for events
// built in code (the demo generator, tests); a decoded Event always passes.
// Identifiers must already be trimmed.
func (e Event) Validate(l Limits, now time.Time) error {
	l = l.withDefaults()
	if err := checkText("event_id", e.ID, maxIDBytes); err != nil {
		return err
	}
	if err := checkText("lead_id", e.LeadID, maxIDBytes); err != nil {
		return err
	}
	if err := checkText("type", e.Type, maxTypeBytes); err != nil {
		return err
	}
	if e.OccurredAt.IsZero() {
		return newError(CodeMissingField, "occurred_at", `"occurred_at" is required`)
	}
	if err := checkTime(e.OccurredAt, l, now); err != nil {
		return err
	}
	if len(e.Properties) > l.MaxProperties {
		return tooManyProperties(l.MaxProperties)
	}
	for k, v := range e.Properties {
		if err := checkPropertyKey(k); err != nil {
			return err
		}
		if !utf8.ValidString(k) {
			return newError(CodeInvalidUTF8, "properties", `"properties" has a key that is not valid UTF-8`)
		}
		if err := checkPropertyValue(k, v, l.MaxPropertyBytes); err != nil {
			return err
		}
		if !utf8.ValidString(v) {
			return newError(CodeInvalidUTF8, "properties", fmt.Sprintf(`"properties" value%s is not valid UTF-8`, ofKey(k)))
		}
	}
	return nil
}

// checkText adds to checkIdentifier what Decode guarantees by construction.
func checkText(field, s string, max int) *DecodeError {
	if err := checkIdentifier(field, s, max, true); err != nil {
		return err
	}
	if !utf8.ValidString(s) {
		return newError(CodeInvalidUTF8, field, `"`+field+`" is not valid UTF-8`)
	}
	if strings.TrimSpace(s) != s {
		return newError(CodeInvalidField, field, `"`+field+`" has surrounding whitespace`)
	}
	return nil
}

func checkTime(t time.Time, l Limits, now time.Time) *DecodeError {
	if t.Before(l.MinTime) {
		return newError(CodeInvalidField, "occurred_at", fmt.Sprintf(`"occurred_at" %s is before %s`,
			formatTime(t), formatTime(l.MinTime)))
	}
	if t.After(now.Add(l.MaxFutureSkew)) {
		return newError(CodeInvalidField, "occurred_at", fmt.Sprintf(`"occurred_at" %s is more than %s in the future`,
			formatTime(t), l.MaxFutureSkew))
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func checkPropertyKey[T string | []byte](k T) *DecodeError {
	if len(k) > maxPropertyKeyBytes {
		return newError(CodeInvalidField, "properties", fmt.Sprintf(`"properties" has a key of %d bytes, limit is %d`,
			len(k), maxPropertyKeyBytes))
	}
	return nil
}

func checkPropertyValue[T string | []byte](k, v T, max int) *DecodeError {
	if len(v) > max {
		return newError(CodeInvalidField, "properties", fmt.Sprintf(`"properties" value%s is %d bytes, limit is %d`,
			ofKey(string(k)), len(v), max))
	}
	return nil
}

func tooManyProperties(max int) *DecodeError {
	return newError(CodeInvalidField, "properties", fmt.Sprintf(`"properties" has more than %d entries`, max))
}

// ofKey names a property key in a message so operators can find the bad
// property, but only when it looks like a name chosen by the producer
// ("utm_source", "$browser", "page.url"). Anything else (an e-mail, a phone
// number used as a key) is left out. Values are never quoted.
func ofKey(k string) string {
	if len(k) == 0 || len(k) > 40 || ('0' <= k[0] && k[0] <= '9') {
		return ""
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		isName := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '-' || c == '.' || c == '$'
		if !isName {
			return ""
		}
	}
	return ` of key "` + k + `"`
}
