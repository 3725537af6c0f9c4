package events

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a JSON (RFC 8259) syntax checker that remembers where the
// known top-level fields are, so Decode can build an Event without
// reflection or a generic tree. It runs on input already known to be valid
// UTF-8, so it only looks at ASCII bytes outside strings.

// kind is the JSON type of a scanned value.
type kind uint8

const (
	kindAbsent kind = iota
	kindString
	kindNumber
	kindBool
	kindNull
	kindObject
	kindArray
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindNumber:
		return "number"
	case kindBool:
		return "boolean"
	case kindNull:
		return "null"
	case kindObject:
		return "object"
	case kindArray:
		return "array"
	}
	return "nothing"
}

// span locates a scanned value in the input. For a string it covers the
// bytes between the quotes; for anything else, the whole value.
type span struct {
	kind       kind
	escaped    bool // a string that holds backslash escapes
	start, end int
	members    int // for an object, its number of members (duplicates counted)
}

// rawEvent holds the last occurrence of each known top-level field.
type rawEvent struct {
	id, lead, typ, at, props span
}

// maxDepth bounds nesting so a record of 64 KiB of '[' cannot grow the
// stack without limit. Events are flat; only unknown fields can nest at all.
const maxDepth = 1000

type scanner struct {
	data []byte
	pos  int

	// The first syntax error. showChar means msg describes data[errPos].
	failed   bool
	errPos   int
	errMsg   string
	showChar bool
}

// document scans the whole input, which must be one JSON object with
// nothing but whitespace after it, and fills r.
func (s *scanner) document(r *rawEvent) bool {
	s.skipWS()
	if s.pos >= len(s.data) {
		return s.eof()
	}
	if s.data[s.pos] != '{' {
		if s.pos == 0 && len(s.data) >= 3 && s.data[0] == 0xEF && s.data[1] == 0xBB && s.data[2] == 0xBF {
			return s.fail(0, "value starts with a UTF-8 byte order mark", false)
		}
		start := s.pos
		v, ok := s.value(0)
		if !ok {
			return false
		}
		s.skipWS()
		if s.pos < len(s.data) {
			return s.fail(s.pos, "after the top-level value", true)
		}
		return s.fail(start, "top-level value is "+article(v.kind)+", want an object", false)
	}
	if _, ok := s.object(1, r); !ok {
		return false
	}
	s.skipWS()
	if s.pos < len(s.data) {
		return s.fail(s.pos, "after the top-level object", true)
	}
	return true
}

func article(k kind) string {
	switch k {
	case kindArray, kindObject:
		return "an " + k.String()
	case kindNull:
		return "null"
	}
	return "a " + k.String()
}

func (s *scanner) fail(pos int, msg string, showChar bool) bool {
	if !s.failed {
		s.failed, s.errPos, s.errMsg, s.showChar = true, pos, msg, showChar
	}
	return false
}

func (s *scanner) eof() bool { return s.fail(len(s.data), "unexpected end of input", false) }

// err turns the recorded syntax error into a DecodeError. It names the
// offending byte and its offset, never the surrounding text.
func (s *scanner) err() *DecodeError {
	msg := s.errMsg
	if s.showChar && s.errPos < len(s.data) {
		msg = "invalid character " + describeByte(s.data[s.errPos]) + " " + msg
	}
	return newError(CodeMalformedJSON, "", fmt.Sprintf("%s at offset %d", msg, s.errPos))
}

func describeByte(c byte) string {
	if c > 0x20 && c < 0x7f && c != '\'' {
		return "'" + string(rune(c)) + "'"
	}
	return fmt.Sprintf("0x%02x", c)
}

// plainStringByte reports the bytes a string can hold as they are: not
// the closing quote, a backslash or a control character.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// nextSpecialByte returns the index of the first quote, backslash or
// control character in data[i:], or len(data). Strings are most of a
// record, so it looks at 8 bytes at a time.
func nextSpecialByte(data []byte, i int) int {
	for ; i+8 <= len(data); i += 8 {
		if m := specialBytes(binary.LittleEndian.Uint64(data[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(data); i++ {
		if !plainStringByte[data[i]] {
			return i
		}
	}
	return i
}

// specialBytes returns a mask with the high bit set in each byte of w that
// is a quote, a backslash or a control character. Each term is the classic
// "has a zero byte" test (on w-0x20.., w^'"'.., w^'\\'..); a borrow can
// flag a byte above a real hit, never below, so the lowest flag is exact.
func specialBytes(w uint64) uint64 {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	q := w ^ (lsb * '"')
	bs := w ^ (lsb * '\\')
	return ((w-lsb*0x20)&^w | (q-lsb)&^q | (bs-lsb)&^bs) & msb
}

func (s *scanner) skipWS() {
	// Most calls find no whitespace at all: compact JSON.
	if s.pos < len(s.data) && s.data[s.pos] > ' ' {
		return
	}
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value scans the value at s.pos; depth counts the containers around it.
func (s *scanner) value(depth int) (span, bool) {
	if s.pos >= len(s.data) {
		return span{}, s.eof()
	}
	switch c := s.data[s.pos]; {
	case c == '"':
		return s.str()
	case c == '{':
		return s.object(depth+1, nil)
	case c == '[':
		return s.array(depth + 1)
	case c == 't':
		return s.literal("true", kindBool)
	case c == 'f':
		return s.literal("false", kindBool)
	case c == 'n':
		return s.literal("null", kindNull)
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	}
	return span{}, s.fail(s.pos, "looking for the beginning of a value", true)
}

// object scans an object. When r is non-nil, the values of known keys are
// recorded in it (the last duplicate wins).
func (s *scanner) object(depth int, r *rawEvent) (span, bool) {
	if depth > maxDepth {
		return span{}, s.fail(s.pos, fmt.Sprintf("nesting deeper than %d levels", maxDepth), false)
	}
	start := s.pos
	s.pos++ // '{'
	s.skipWS()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return span{kind: kindObject, start: start, end: s.pos}, true
	}
	members := 0
	for {
		members++
		if s.pos >= len(s.data) {
			return span{}, s.eof()
		}
		if s.data[s.pos] != '"' {
			return span{}, s.fail(s.pos, "looking for the beginning of an object key", true)
		}
		key, ok := s.str()
		if !ok {
			return span{}, false
		}
		s.skipWS()
		if s.pos >= len(s.data) {
			return span{}, s.eof()
		}
		if s.data[s.pos] != ':' {
			return span{}, s.fail(s.pos, "after an object key", true)
		}
		s.pos++
		s.skipWS()
		v, ok := s.value(depth)
		if !ok {
			return span{}, false
		}
		if r != nil {
			if slot := r.slot(s.data, key); slot != nil {
				*slot = v
			}
		}
		s.skipWS()
		if s.pos >= len(s.data) {
			return span{}, s.eof()
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipWS()
		case '}':
			s.pos++
			return span{kind: kindObject, start: start, end: s.pos, members: members}, true
		default:
			return span{}, s.fail(s.pos, "after an object member", true)
		}
	}
}

func (s *scanner) array(depth int) (span, bool) {
	if depth > maxDepth {
		return span{}, s.fail(s.pos, fmt.Sprintf("nesting deeper than %d levels", maxDepth), false)
	}
	start := s.pos
	s.pos++ // '['
	s.skipWS()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return span{kind: kindArray, start: start, end: s.pos}, true
	}
	for {
		if _, ok := s.value(depth); !ok {
			return span{}, false
		}
		s.skipWS()
		if s.pos >= len(s.data) {
			return span{}, s.eof()
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipWS()
		case ']':
			s.pos++
			return span{kind: kindArray, start: start, end: s.pos}, true
		default:
			return span{}, s.fail(s.pos, "after an array element", true)
		}
	}
}

// str scans a string starting at its opening quote.
func (s *scanner) str() (span, bool) {
	data := s.data
	start := s.pos + 1
	escaped := false
	for i := start; ; {
		i = nextSpecialByte(data, i)
		if i >= len(data) {
			break
		}
		switch c := data[i]; c {
		case '"':
			s.pos = i + 1
			return span{kind: kindString, escaped: escaped, start: start, end: i}, true
		case '\\':
			escaped = true
			if i+1 >= len(data) {
				return span{}, s.eof()
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j >= len(data) {
						return span{}, s.eof()
					}
					if !isHex(data[j]) {
						return span{}, s.fail(j, "in a \\u escape", true)
					}
				}
				i += 6
			default:
				return span{}, s.fail(i+1, "in a string escape", true)
			}
		default:
			return span{}, s.fail(i, "(control character) in a string", true)
		}
	}
	return span{}, s.eof()
}

func (s *scanner) number() (span, bool) {
	data := s.data
	start := s.pos
	i := start
	if data[i] == '-' {
		i++
	}
	if i >= len(data) {
		return span{}, s.eof()
	}
	switch {
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i = skipDigits(data, i+1)
	default:
		return span{}, s.fail(i, "in a number", true)
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) {
			return span{}, s.eof()
		}
		if !isDigit(data[i]) {
			return span{}, s.fail(i, "after a decimal point", true)
		}
		i = skipDigits(data, i+1)
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) {
			return span{}, s.eof()
		}
		if !isDigit(data[i]) {
			return span{}, s.fail(i, "in an exponent", true)
		}
		i = skipDigits(data, i+1)
	}
	s.pos = i
	return span{kind: kindNumber, start: start, end: i}, true
}

func (s *scanner) literal(lit string, k kind) (span, bool) {
	start := s.pos
	for j := 0; j < len(lit); j++ {
		if start+j >= len(s.data) {
			return span{}, s.eof()
		}
		if s.data[start+j] != lit[j] {
			return span{}, s.fail(start+j, "in a literal", true)
		}
	}
	s.pos = start + len(lit)
	return span{kind: k, start: start, end: s.pos}, true
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && isDigit(data[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// slot returns where the value of key goes, or nil for an unknown key.
// Keys match exactly (unlike encoding/json, which ignores case).
func (r *rawEvent) slot(data []byte, key span) *span {
	k := data[key.start:key.end]
	if key.escaped {
		// Unescaping never lengthens text, and no known key is longer than
		// 11 bytes, so anything longer than 11 escapes cannot match.
		const longest = len("occurred_at")
		if len(k) > 6*longest {
			return nil
		}
		var buf [6 * longest]byte
		u, ok := appendUnescaped(buf[:0], k)
		if !ok {
			return nil
		}
		k = u
	}
	switch string(k) {
	case "event_id":
		return &r.id
	case "lead_id":
		return &r.lead
	case "type":
		return &r.typ
	case "occurred_at":
		return &r.at
	case "properties":
		return &r.props
	}
	return nil
}

// appendUnescaped appends the text of a JSON string body (the bytes between
// the quotes) to dst. ok is false when the body holds an unpaired UTF-16
// surrogate escape, or is not a syntactically valid string body.
//
// encoding/json turns an unpaired surrogate into U+FFFD; we reject it
// instead, so two distinct event ids can never decode to the same text.
func appendUnescaped(dst, raw []byte) ([]byte, bool) {
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(raw) {
			return dst, false
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			dst = append(dst, raw[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw[i+2:])
			if !ok {
				return dst, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r >= 0xDC00 || i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
					return dst, false
				}
				lo, ok := hex4(raw[i+2:])
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return dst, false
				}
				r = utf16.DecodeRune(r, lo)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, false
		}
		i += 2
	}
	return dst, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}
