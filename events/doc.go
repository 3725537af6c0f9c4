// Package events is what comes in: the contract for behaviour events from
// marketing platforms, and the decoding and validation of Kafka record values
// into an Event.
//
// # The contract
//
// A record value is one JSON object in UTF-8 (content-type absent,
// "application/json" or "application/json; charset=utf-8"):
//
//	{
//	  "event_id":    "evt_01HZX3K9W2",                  // required, 1..256 bytes
//	  "lead_id":     "lead_8f3a2c",                     // required, 1..256 bytes
//	  "type":        "page_view",                       // required, 1..128 bytes, free-form
//	  "occurred_at": "2024-05-01T14:34:56.789+02:00",   // required, RFC 3339, any offset
//	  "properties":  {"url": "/pricing", "seconds": 54} // optional, at most 64 entries
//	}
//
// Identifiers are trimmed of surrounding whitespace and may not hold control
// characters; occurred_at is stored in UTC and must lie between
// Limits.MinTime and Limits.MaxFutureSkew past the decoder's clock. Property
// values keep their text: strings as decoded, numbers in their original JSON
// form ("54", "1e3"), booleans as "true"/"false"; null values are dropped;
// nested objects and arrays are rejected. Unknown top-level fields are
// ignored, so producers can add fields before we read them; keys match
// exactly (case matters). The last of duplicate keys wins.
//
// Encode writes the canonical form of an Event, and Decode(Encode(e)) == e
// for every Event Decode returns.
//
// # Errors
//
// Decode and Event.Validate return a *DecodeError whose Code is one of a
// small, stable set (CodeMalformedJSON, CodeMissingField, …) fit for
// dead-letter headers and metric labels, and whose Field names the offending
// field. Messages name the field and the problem and never contain the
// record, an identifier or a property value, since those can be personal
// data (an e-mail address as lead_id or in a property).
//
// Decode never panics, whatever the input; FuzzDecode checks this, and that
// its decoding agrees with encoding/json.
//
// # Performance and concurrency
//
// Decode sits on the consumer's hot path (100k events/s), so it checks the
// value with a hand-written, allocation-free JSON scanner instead of
// reflection, and parses occurred_at without time.Parse (which allocates a
// Location for every offset). A decoded Event costs one allocation for all
// its text, plus the map when it has properties: 1 allocation without
// properties, 3 with. BenchmarkDecode measures a typical 200-byte event.
//
// A Decoder is immutable after NewDecoder and safe for concurrent use by any
// number of goroutines; the Event it returns shares no memory with the
// value passed in, which the caller may reuse at once.
package events
