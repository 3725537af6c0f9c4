package sink_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sink"
)

func transition(leadID string, kind scorer.Kind, from, to string, at time.Time) scorer.Transition {
	return scorer.Transition{
		ID:     scorer.TransitionID(leadID, "evt-1", kind, from, to),
		LeadID: leadID, Kind: kind, From: from, To: to, Score: 15.5, OccurredAt: at,
		CauseEventID: "evt-1", CauseEventType: "page_view", RulesVersion: "a1b2c3d4e5f6",
		Replayed: true, // not part of the record
	}
}

func TestTransitionRecord(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name       string
		tr         scorer.Transition
		occurredAt string // as the JSON must carry it: UTC, RFC 3339
	}{
		{"band", transition("lead-42", scorer.KindBand, "warm", "hot", time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)),
			"2025-03-14T09:26:53Z"},
		{"stage, local time, nanoseconds", transition("lëad 日本", scorer.KindStage, "lead", "mql",
			time.Date(2025, 3, 14, 10, 26, 53, 123456789, paris)), "2025-03-14T09:26:53.123456789Z"},
	}
	documented := []string{"cause_event_id", "cause_event_type", "cause_rules", "from", "kind", "lead_id", "occurred_at",
		"rules_version", "score", "to", "transition_id"}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := sink.Transition("lead-transitions", &tc.tr)
			if msg.Topic != "lead-transitions" || string(msg.Key) != tc.tr.LeadID {
				t.Errorf("topic %q key %q, want lead-transitions and the lead id %q", msg.Topic, msg.Key, tc.tr.LeadID)
			}
			wantHeaders := map[string]string{"content-type": "application/json", "leadscore.transition_id": tc.tr.ID}
			if got := headerMap(msg.Headers); !maps.Equal(got, wantHeaders) {
				t.Errorf("headers = %v, want %v", got, wantHeaders)
			}

			var got map[string]any
			if err := json.Unmarshal(msg.Value, &got); err != nil {
				t.Fatalf("value is not JSON: %v\n%s", err, msg.Value)
			}
			if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, documented) {
				t.Fatalf("fields = %v, want exactly %v", keys, documented)
			}
			want := map[string]any{
				"transition_id": tc.tr.ID, "lead_id": tc.tr.LeadID, "kind": string(tc.tr.Kind),
				"from": tc.tr.From, "to": tc.tr.To, "score": tc.tr.Score, "occurred_at": tc.occurredAt,
				"cause_event_id": "evt-1", "cause_event_type": "page_view", "rules_version": "a1b2c3d4e5f6",
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s = %#v, want %#v", k, got[k], w)
				}
			}
		})
	}
}

func headerMap(hs []kafka.Header) map[string]string {
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestDeadLetter(t *testing.T) {
	_, decodeErr := events.NewDecoder(events.DefaultLimits(), time.Now).Decode([]byte("{"), "")
	var de *events.DecodeError
	if !errors.As(decodeErr, &de) || de.Code != events.CodeMalformedJSON {
		t.Fatalf("decoding %q: err = %#v, want a *events.DecodeError with code %s", "{", decodeErr, events.CodeMalformedJSON)
	}
	at := time.Date(2025, 3, 14, 10, 0, 0, 5, time.FixedZone("CET", 3600))
	source := func(value string) *kafka.Message {
		return &kafka.Message{
			Topic: "lead-events", Partition: 3, Offset: 1 << 40, Time: at,
			Key: []byte("lead-42"), Value: []byte(value),
			Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/json")}, {Key: "trace", Value: []byte("t-1")}},
		}
	}
	// The budget covers key and headers too: leave 64 bytes for the value.
	const room = 64
	long := strings.Repeat("v", 100)
	tests := []struct {
		name      string
		value     string
		err       error
		wantCode  string
		wantMsg   string // the message header: the decoder's message without its code
		wantValue string
		truncated string // the truncated_from header; "" when absent
	}{
		{"decode error", "{", decodeErr, de.Code, de.Msg, "{", ""},
		{"wrapped decode error", "{", fmt.Errorf("record 7: %w", decodeErr), de.Code, de.Msg, "{", ""},
		{"other error", "{}", errors.New("lead id is on the block list"), "invalid", "lead id is on the block list", "{}", ""},
		{"value at the limit", long[:room], decodeErr, de.Code, de.Msg, long[:room], ""},
		// Cut to the room left once the truncated_from header is added.
		{"value over the limit", long, decodeErr, de.Code, de.Msg, long[:room-len(sink.HeaderValueTruncated)-len("100")], "100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := source(tc.value)
			srcHeaders := slices.Clone(src.Headers)
			empty := sink.DeadLetter("lead-events-dlq", source(""), tc.err, 1<<20)
			maxValue := recordSize(&empty) + room
			dl := sink.DeadLetter("lead-events-dlq", src, tc.err, maxValue)

			if dl.Topic != "lead-events-dlq" || string(dl.Key) != "lead-42" || string(dl.Value) != tc.wantValue {
				t.Errorf("topic %q key %q value %q, want lead-events-dlq, lead-42, %q", dl.Topic, dl.Key, dl.Value, tc.wantValue)
			}
			// The original headers first, unchanged, then leadscore's own.
			if n := len(srcHeaders); len(dl.Headers) < n || !slices.EqualFunc(dl.Headers[:n], srcHeaders, sameHeader) {
				t.Errorf("headers = %v, want the original %v first", dl.Headers, srcHeaders)
			}
			want := map[string]string{
				"content-type":             "application/json",
				"trace":                    "t-1",
				sink.HeaderErrorCode:       tc.wantCode,
				sink.HeaderErrorMessage:    tc.wantMsg,
				sink.HeaderSourceTopic:     "lead-events",
				sink.HeaderSourcePartition: "3",
				sink.HeaderSourceOffset:    "1099511627776",
				sink.HeaderSourceTimestamp: "2025-03-14T09:00:00.000000005Z",
				sink.HeaderValueTruncated:  tc.truncated,
			}
			if tc.truncated == "" {
				delete(want, sink.HeaderValueTruncated)
			}
			if got := headerMap(dl.Headers); !maps.Equal(got, want) {
				t.Errorf("headers:\n got %v\nwant %v", got, want)
			}
			if len(dl.Headers) != len(want) {
				t.Errorf("%d headers, want %d (no duplicates)", len(dl.Headers), len(want))
			}
			// Building the dead letter leaves the source record alone.
			if !slices.EqualFunc(src.Headers, srcHeaders, sameHeader) || string(src.Value) != tc.value {
				t.Errorf("source record changed: headers %v value %q", src.Headers, src.Value)
			}
		})
	}
}

func sameHeader(a, b kafka.Header) bool { return a.Key == b.Key && string(a.Value) == string(b.Value) }

func TestReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"decode error", &events.DecodeError{Code: events.CodeMissingField, Field: "lead_id", Msg: "is missing"}, events.CodeMissingField},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", &events.DecodeError{Code: events.CodeOversize})), events.CodeOversize},
		{"joined", errors.Join(errors.New("x"), &events.DecodeError{Code: events.CodeEmpty}), events.CodeEmpty},
		{"plain error", errors.New("boom"), "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sink.Reason(tc.err); got != tc.want {
				t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
