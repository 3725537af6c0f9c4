package events

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Decoder decodes record values into Events. It holds only its limits and
// clock, never changes after NewDecoder, and is safe for concurrent use.
type Decoder struct {
	limits Limits
	now    func() time.Time
}

// NewDecoder returns a Decoder that enforces l (zero fields take their
// defaults, see Limits) and judges "in the future" by now. A nil now means
// time.Now.
func NewDecoder(l Limits, now func() time.Time) *Decoder {
	if now == nil {
		now = time.Now
	}
	return &Decoder{limits: l.withDefaults(), now: now}
}

// Decode decodes and validates one record value. contentType is the
// record's "content-type" header value ("" when absent). Any error is a
// *DecodeError; the checks run in this order, and the first failure wins:
// oversize, content type, empty, UTF-8, JSON syntax, then the fields in the
// order event_id, lead_id, type, occurred_at, properties.
func (d *Decoder) Decode(value []byte, contentType string) (Event, error) {
	ev, err := d.decode(value, contentType)
	if err != nil {
		return Event{}, err
	}
	return ev, nil
}

func (d *Decoder) decode(value []byte, contentType string) (Event, *DecodeError) {
	if len(value) > d.limits.MaxRecordBytes {
		return Event{}, newError(CodeOversize, "", fmt.Sprintf("record is %d bytes, limit is %d",
			len(value), d.limits.MaxRecordBytes))
	}
	if err := checkContentType(contentType); err != nil {
		return Event{}, err
	}
	if isBlank(value) {
		if len(value) == 0 {
			return Event{}, newError(CodeEmpty, "", "record is empty")
		}
		return Event{}, newError(CodeEmpty, "", "record is only whitespace")
	}
	if !utf8.Valid(value) {
		return Event{}, newError(CodeInvalidUTF8, "", fmt.Sprintf("record is not valid UTF-8 (first bad byte at offset %d)",
			firstInvalidUTF8(value)))
	}

	var raw rawEvent
	s := scanner{data: value}
	if !s.document(&raw) {
		return Event{}, s.err()
	}
	return d.build(value, &raw)
}

// build turns the located fields into an Event, checking each in turn.
func (d *Decoder) build(data []byte, r *rawEvent) (Event, *DecodeError) {
	if err := requireString("event_id", r.id); err != nil {
		return Event{}, err
	}
	if err := requireString("lead_id", r.lead); err != nil {
		return Event{}, err
	}
	if err := requireString("type", r.typ); err != nil {
		return Event{}, err
	}

	// All the strings of an event share one allocation: the identifiers and,
	// when they are small, the properties. Large properties get their own,
	// so that a caller keeping an identifier pins at most a few KiB.
	// (Unescaped text is never longer than its JSON form, so the raw
	// lengths are enough.)
	var ev Event
	var b strings.Builder
	size := (r.id.end - r.id.start) + (r.lead.end - r.lead.start) + (r.typ.end - r.typ.start)
	if r.props.kind == kindObject && r.props.end-r.props.start <= maxSharedPropertiesBytes {
		size += r.props.end - r.props.start
	}
	b.Grow(size)
	var err *DecodeError
	if ev.ID, err = identifier(&b, data, "event_id", r.id, maxIDBytes); err != nil {
		return Event{}, err
	}
	if ev.LeadID, err = identifier(&b, data, "lead_id", r.lead, maxIDBytes); err != nil {
		return Event{}, err
	}
	if ev.Type, err = identifier(&b, data, "type", r.typ, maxTypeBytes); err != nil {
		return Event{}, err
	}
	if ev.OccurredAt, err = d.occurredAt(data, r.at); err != nil {
		return Event{}, err
	}
	if ev.Properties, err = d.properties(&b, data, r.props); err != nil {
		return Event{}, err
	}
	return ev, nil
}

func requireString(field string, v span) *DecodeError {
	switch v.kind {
	case kindString:
		return nil
	case kindAbsent:
		return newError(CodeMissingField, field, `"`+field+`" is required`)
	case kindNull:
		return newError(CodeMissingField, field, `"`+field+`" is required (got null)`)
	}
	return newError(CodeInvalidField, field, `"`+field+`" must be a string, got `+v.kind.String())
}

// identifier decodes, trims and checks a required string field, appends it
// to b and returns it as a string that shares b's memory.
func identifier(b *strings.Builder, data []byte, field string, v span, max int) (string, *DecodeError) {
	text := data[v.start:v.end]
	if v.escaped {
		// Declared here, not above: zeroing scratch buffers on every call
		// was a measurable share of Decode, and escapes are rare.
		var buf [maxIDBytes]byte
		var ok bool
		if text, ok = appendUnescaped(buf[:0], text); !ok {
			return "", surrogateError(field)
		}
	}
	text = bytes.TrimSpace(text)
	// Raw control characters are a syntax error in JSON strings, so only
	// escaped text can hold one.
	if err := checkIdentifier(field, text, max, v.escaped); err != nil {
		return "", err
	}
	off := b.Len()
	b.Write(text)
	return b.String()[off:], nil
}

// checkIdentifier checks what Decode and Validate agree on for identifiers.
// It never quotes s: identifiers can be e-mail addresses.
func checkIdentifier[T string | []byte](field string, s T, max int, mayHoldControl bool) *DecodeError {
	if len(s) == 0 {
		return newError(CodeMissingField, field, `"`+field+`" is required`)
	}
	if len(s) > max {
		return newError(CodeInvalidField, field, fmt.Sprintf(`"%s" is %d bytes, limit is %d`, field, len(s), max))
	}
	for i := 0; mayHoldControl && i < len(s); i++ {
		if s[i] < 0x20 {
			return newError(CodeInvalidField, field, `"`+field+`" contains a control character`)
		}
	}
	return nil
}

func surrogateError(field string) *DecodeError {
	return newError(CodeInvalidUTF8, field, `"`+field+`" holds an unpaired UTF-16 surrogate escape`)
}

func (d *Decoder) occurredAt(data []byte, v span) (time.Time, *DecodeError) {
	if v.kind != kindString && v.kind != kindAbsent && v.kind != kindNull {
		return time.Time{}, newError(CodeInvalidField, "occurred_at",
			`"occurred_at" must be an RFC 3339 string, got `+v.kind.String())
	}
	if err := requireString("occurred_at", v); err != nil {
		return time.Time{}, err
	}
	text := data[v.start:v.end]
	if len(text) > 6*maxTimestampBytes {
		return time.Time{}, newError(CodeInvalidField, "occurred_at", `"occurred_at" is not RFC 3339`)
	}
	if v.escaped {
		var buf [6 * maxTimestampBytes]byte
		var ok bool
		if text, ok = appendUnescaped(buf[:0], text); !ok {
			return time.Time{}, surrogateError("occurred_at")
		}
	}
	t, ok := time.Time{}, false
	if len(text) <= maxTimestampBytes {
		t, ok = parseRFC3339(text)
	}
	if !ok {
		return time.Time{}, newError(CodeInvalidField, "occurred_at", `"occurred_at" `+quoteTimestamp(text)+`is not RFC 3339`)
	}
	if err := checkTime(t, d.limits, d.now()); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// quoteTimestamp quotes a rejected occurred_at for a message when it is
// short and looks like a date ("2024-05-01 12:00:00"), which is what an
// operator needs to see to fix the producer. Anything else could be a
// misplaced e-mail or phone number, and is left out.
func quoteTimestamp(b []byte) string {
	if len(b) < 5 || len(b) > 40 || !isDigit(b[0]) || !isDigit(b[1]) || !isDigit(b[2]) || !isDigit(b[3]) || b[4] != '-' {
		return ""
	}
	for _, c := range b {
		if !isDigit(c) && !strings.ContainsRune("-:.+ ,/TZtz", rune(c)) {
			return ""
		}
	}
	return `"` + string(b) + `" `
}

// quoteShort quotes a short, printable ASCII value, followed by a space,
// for a message; anything else is left out, so a message stays short and
// printable. Only for values that cannot hold personal data (content types).
func quoteShort(b []byte) string {
	if len(b) == 0 || len(b) > 40 {
		return ""
	}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return strconv.Quote(string(b)) + " "
}

// maxSharedPropertiesBytes is the largest "properties" object (in JSON
// bytes) whose text shares the identifiers' allocation.
const maxSharedPropertiesBytes = 1024

// properties decodes the "properties" object. Its keys and values go to
// shared when the object is small, else to an allocation of their own.
func (d *Decoder) properties(shared *strings.Builder, data []byte, v span) (map[string]string, *DecodeError) {
	switch v.kind {
	case kindAbsent, kindNull:
		return nil, nil
	case kindObject:
	default:
		return nil, newError(CodeInvalidField, "properties", `"properties" must be an object, got `+v.kind.String())
	}

	// The scanner already accepted this object, so the walk below cannot
	// meet a syntax error; the checks only keep it panic-free.
	s := scanner{data: data[:v.end], pos: v.start + 1}
	var m map[string]string
	b := shared
	if v.end-v.start > maxSharedPropertiesBytes {
		b = new(strings.Builder)
		b.Grow(v.end - v.start)
	}
	for {
		s.skipWS()
		if s.pos >= len(s.data) || s.data[s.pos] == '}' {
			break
		}
		if s.data[s.pos] == ',' {
			s.pos++
			continue
		}
		k, ok := s.str()
		if !ok {
			return nil, s.err()
		}
		s.skipWS()
		s.pos++ // ':'
		s.skipWS()
		val, ok := s.value(1)
		if !ok {
			return nil, s.err()
		}

		key := data[k.start:k.end]
		if k.escaped {
			var keyBuf [maxPropertyKeyBytes]byte
			if key, ok = appendUnescaped(keyBuf[:0], key); !ok {
				return nil, newError(CodeInvalidUTF8, "properties", `"properties" has a key with an unpaired UTF-16 surrogate escape`)
			}
		}
		if err := checkPropertyKey(key); err != nil {
			return nil, err
		}

		text := data[val.start:val.end]
		switch val.kind {
		case kindNull:
			// Dropped, and as the last duplicate it wins over earlier ones.
			delete(m, string(key))
			continue
		case kindObject, kindArray:
			return nil, newError(CodeInvalidField, "properties", fmt.Sprintf(
				`"properties" value%s is %s; only strings, numbers, booleans and null are allowed`,
				ofKey(string(key)), article(val.kind)))
		case kindString:
			if val.escaped {
				var valBuf [1024]byte
				if text, ok = appendUnescaped(valBuf[:0], text); !ok {
					return nil, newError(CodeInvalidUTF8, "properties", fmt.Sprintf(
						`"properties" value%s holds an unpaired UTF-16 surrogate escape`, ofKey(string(key))))
				}
			}
		}
		if err := checkPropertyValue(key, text, d.limits.MaxPropertyBytes); err != nil {
			return nil, err
		}

		if m == nil {
			// The hint saves a grow step; duplicates and nulls make it
			// an overestimate at worst.
			m = make(map[string]string, min(v.members, d.limits.MaxProperties+1))
		}
		off := b.Len()
		b.Write(key)
		b.Write(text)
		all := b.String()
		m[all[off:off+len(key)]] = all[off+len(key):]
		if len(m) > d.limits.MaxProperties {
			return nil, tooManyProperties(d.limits.MaxProperties)
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// checkContentType accepts JSON in UTF-8: "", "application/json" with an
// optional charset=utf-8 (case-insensitive, other parameters ignored).
func checkContentType(ct string) *DecodeError {
	if ct == "" || ct == "application/json" {
		return nil
	}
	mediaType, params, _ := strings.Cut(ct, ";")
	mediaType = strings.TrimSpace(mediaType)
	if mediaType == "" && strings.TrimSpace(params) == "" {
		return nil // a blank header is an absent one
	}
	if !strings.EqualFold(mediaType, "application/json") {
		if strings.EqualFold(mediaType, "application/cloudevents+json") ||
			strings.EqualFold(mediaType, "application/cloudevents-batch+json") {
			return newError(CodeUnsupportedEncoding, "", "CloudEvents structured mode ("+strings.ToLower(mediaType)+
				") is not supported yet; send application/json")
		}
		return newError(CodeUnsupportedEncoding, "",
			"content-type "+quoteShort([]byte(ct))+"is not supported; want application/json")
	}
	for params != "" {
		var param string
		param, params, _ = strings.Cut(params, ";")
		name, value, ok := strings.Cut(param, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "charset") {
			continue
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		if !strings.EqualFold(value, "utf-8") {
			return newError(CodeUnsupportedEncoding, "",
				"charset "+quoteShort([]byte(value))+"is not supported; want utf-8")
		}
	}
	return nil
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}
