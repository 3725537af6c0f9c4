package events

// Codes are the stable, machine-readable reasons a record is rejected. They
// end up in dead-letter headers and metric labels, so they never change
// meaning and new ones are only added.
const (
	// CodeMalformedJSON: the value is not JSON, not a JSON object at the top
	// level, or has data after the object.
	CodeMalformedJSON = "malformed_json"
	// CodeMissingField: a required field is absent, null or blank.
	CodeMissingField = "missing_field"
	// CodeInvalidField: a field has the wrong JSON type, is too long, holds
	// control characters, or (occurred_at) is not RFC 3339 or out of range.
	CodeInvalidField = "invalid_field"
	// CodeUnsupportedEncoding: the record's content-type is not JSON in UTF-8.
	CodeUnsupportedEncoding = "unsupported_encoding"
	// CodeOversize: the value is larger than Limits.MaxRecordBytes.
	CodeOversize = "oversize"
	// CodeInvalidUTF8: the value is not valid UTF-8, or a decoded string
	// holds an unpaired UTF-16 surrogate escape (\ud800).
	CodeInvalidUTF8 = "invalid_utf8"
	// CodeEmpty: the value is nil, empty or only JSON whitespace.
	CodeEmpty = "empty_record"
)

// DecodeError is the only error type Decode and Validate return.
//
// Msg names the field and the problem. It never holds the record, an
// identifier or a property value: those may be personal data (a lead_id can
// be an e-mail address), and the message goes to logs and dead-letter headers.
type DecodeError struct {
	Code  string // one of the Code… constants
	Field string // the offending top-level field ("lead_id", "properties"); empty when the record as a whole is wrong
	Msg   string
}

func (e *DecodeError) Error() string { return e.Code + ": " + e.Msg }

func newError(code, field, msg string) *DecodeError {
	return &DecodeError{Code: code, Field: field, Msg: msg}
}
