package sink

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/scorer"
)

// TransitionRecord is the JSON value published on the transitions topic. The
// record key is the lead id, so one lead's transitions stay in order on one
// partition.
type TransitionRecord struct {
	TransitionID   string    `json:"transition_id"`
	LeadID         string    `json:"lead_id"`
	Kind           string    `json:"kind"`
	From           string    `json:"from"`
	To             string    `json:"to"`
	Score          float64   `json:"score"`
	OccurredAt     time.Time `json:"occurred_at"`
	CauseEventID   string    `json:"cause_event_id"`
	CauseEventType string    `json:"cause_event_type"`
	CauseRules     []string  `json:"cause_rules"` // the rules the causing event matched (empty for decay)
	RulesVersion   string    `json:"rules_version"`
}

// Record returns a transition's JSON form.
func Record(t *scorer.Transition) TransitionRecord {
	t.EnsureID() // one decoded from a stored history has none yet
	return TransitionRecord{
		TransitionID:   t.ID,
		LeadID:         t.LeadID,
		Kind:           string(t.Kind),
		From:           t.From,
		To:             t.To,
		Score:          t.Score,
		OccurredAt:     t.OccurredAt.UTC(),
		CauseEventID:   t.CauseEventID,
		CauseEventType: t.CauseEventType,
		CauseRules:     append([]string{}, t.CauseRules...),
		RulesVersion:   t.RulesVersion,
	}
}

// Transition builds the Kafka record of a transition.
func Transition(topic string, t *scorer.Transition) kafka.Message {
	v, _ := json.Marshal(Record(t)) // cannot fail: plain fields only
	return kafka.Message{
		Topic: topic,
		Key:   []byte(t.LeadID),
		Value: v,
		Headers: []kafka.Header{
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "leadscore.transition_id", Value: []byte(t.ID)},
		},
	}
}

// Dead-letter headers, after Kafka Connect's convention: the original key,
// value and headers are kept; these say why and where from.
const (
	HeaderErrorCode       = "leadscore.error.code"
	HeaderErrorMessage    = "leadscore.error.message"
	HeaderSourceTopic     = "leadscore.source.topic"
	HeaderSourcePartition = "leadscore.source.partition"
	HeaderSourceOffset    = "leadscore.source.offset"
	HeaderSourceTimestamp = "leadscore.source.timestamp"
	HeaderValueTruncated  = "leadscore.value.truncated_from"
	HeaderHeadersDropped  = "leadscore.headers.dropped" // how many original headers were left out to fit
	HeaderKeyTruncated    = "leadscore.key.truncated_from"
)

// Reason is the stable code of why a record was refused: the decoder's
// code, or "invalid".
func Reason(err error) string {
	var de *events.DecodeError
	if errors.As(err, &de) {
		return de.Code
	}
	return "invalid"
}

// DeadLetter builds the dead-letter record of a bad input record. A record
// whose key, value and headers together exceed maxValue bytes has its value
// cut so that they fit (the header leadscore.value.truncated_from gives the
// original size): the dead letter itself must fit the broker's limit, or it
// would stall its partition for good.
func DeadLetter(topic string, src *kafka.Message, err error, maxValue int) kafka.Message {
	code, msg := Reason(err), err.Error()
	var de *events.DecodeError
	if errors.As(err, &de) {
		msg = de.Msg // the code has a header of its own
	}
	hs := make([]kafka.Header, 0, len(src.Headers)+7)
	hs = append(hs, src.Headers...)
	hs = append(hs,
		kafka.Header{Key: HeaderErrorCode, Value: []byte(code)},
		kafka.Header{Key: HeaderErrorMessage, Value: []byte(msg)},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(src.Topic)},
		kafka.Header{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(src.Partition), 10)},
		kafka.Header{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, src.Offset, 10)},
		kafka.Header{Key: HeaderSourceTimestamp, Value: []byte(src.Time.UTC().Format(time.RFC3339Nano))},
	)
	// The broker's limit applies to the whole record: key and headers count
	// too. The value is cut first; then, for a record whose key and headers
	// alone exceed the budget, the original headers are dropped and the key
	// cut, each saying so in a header.
	key, value := src.Key, src.Value
	if size(key, value, hs) > maxValue {
		hs = append(hs, kafka.Header{Key: HeaderValueTruncated, Value: strconv.AppendInt(nil, int64(len(value)), 10)})
		if n := len(src.Headers); size(key, nil, hs) > maxValue && n > 0 {
			hs = append(hs[n:], kafka.Header{Key: HeaderHeadersDropped, Value: strconv.AppendInt(nil, int64(n), 10)})
		}
		if size(key, nil, hs) > maxValue {
			hs = append(hs, kafka.Header{Key: HeaderKeyTruncated, Value: strconv.AppendInt(nil, int64(len(key)), 10)})
			key = key[:max(0, maxValue-size(nil, nil, hs))]
		}
		value = value[:min(len(value), max(0, maxValue-size(key, nil, hs)))]
	}
	return kafka.Message{Topic: topic, Key: key, Value: value, Headers: hs}
}

// size is what a record's key, value and headers weigh against maxValue.
func size(key, value []byte, hs []kafka.Header) int {
	n := len(key) + len(value)
	for _, h := range hs {
		n += len(h.Key) + len(h.Value)
	}
	return n
}
