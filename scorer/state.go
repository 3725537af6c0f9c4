package scorer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"
)

// LeadState is everything leadscore keeps about one lead. Its size is bounded:
// it does not grow with the number of events the lead has had.
type LeadState struct {
	Score       float64
	Band, Stage string
	Events      uint64    // events applied (duplicates excluded)
	FirstSeen   time.Time // occurred_at of the first applied event
	LastEventAt time.Time // the latest occurred_at applied

	// Watermarks hold, per input partition, the highest offset applied to this
	// lead: a redelivered record is recognised exactly, whatever its age.
	Watermarks []Watermark
	// Recent holds hashes of the last dedupe-window event ids, oldest first:
	// a producer's re-sent event (same event_id, new offset) counts once.
	Recent []uint64
	// History holds the last few transitions, oldest first: a redelivered
	// event's transitions are re-published from here with their original ids.
	History []Transition
}

// Watermark is the highest offset of a partition applied to a lead.
type Watermark struct {
	Partition int32
	Offset    int64
}

// eventHash is a stable 64-bit hash of an event id (FNV-1a).
func eventHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

const stateEncoding = 1

// ErrCorruptState is returned when stored state cannot be decoded.
var ErrCorruptState = errors.New("corrupt lead state")

// AppendBinary appends the state's compact binary form to b.
func (s *LeadState) AppendBinary(b []byte) []byte {
	b = append(b, stateEncoding)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Score))
	b = appendString(b, s.Band)
	b = appendString(b, s.Stage)
	b = binary.AppendUvarint(b, s.Events)
	b = binary.AppendVarint(b, unixMilli(s.FirstSeen))
	b = binary.AppendVarint(b, unixMilli(s.LastEventAt))
	b = binary.AppendUvarint(b, uint64(len(s.Watermarks)))
	for _, w := range s.Watermarks {
		b = binary.AppendVarint(b, int64(w.Partition))
		b = binary.AppendVarint(b, w.Offset)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Recent)))
	for _, h := range s.Recent {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	b = binary.AppendUvarint(b, uint64(len(s.History)))
	for i := range s.History {
		t := &s.History[i]
		b = appendString(b, string(t.Kind))
		b = appendString(b, t.From)
		b = appendString(b, t.To)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(t.Score))
		b = binary.AppendVarint(b, t.OccurredAt.UnixNano())
		b = appendString(b, t.CauseEventID)
		b = appendString(b, t.CauseEventType)
		b = appendString(b, t.RulesVersion)
	}
	return b
}

// UnmarshalBinary decodes what AppendBinary wrote. leadID fills the
// transitions' LeadID and ID, which are not stored.
func (s *LeadState) UnmarshalBinary(leadID string, b []byte) error {
	r := reader{b: b}
	if v := r.byte(); v != stateEncoding {
		return fmt.Errorf("%w: encoding %d", ErrCorruptState, v)
	}
	*s = LeadState{}
	s.Score = r.float()
	s.Band = r.string()
	s.Stage = r.string()
	s.Events = r.uvarint()
	s.FirstSeen = fromMilli(r.varint())
	s.LastEventAt = fromMilli(r.varint())
	if n := r.count(2); n > 0 {
		s.Watermarks = make([]Watermark, n)
		for i := range s.Watermarks {
			s.Watermarks[i] = Watermark{Partition: int32(r.varint()), Offset: r.varint()}
		}
	}
	if n := r.count(8); n > 0 {
		s.Recent = make([]uint64, n)
		for i := range s.Recent {
			s.Recent[i] = r.uint64()
		}
	}
	if n := r.count(15); n > 0 {
		s.History = make([]Transition, n)
		for i := range s.History {
			t := &s.History[i]
			t.LeadID = leadID
			t.Kind = Kind(r.string())
			t.From = r.string()
			t.To = r.string()
			t.Score = r.float()
			t.OccurredAt = time.Unix(0, r.varint()).UTC()
			t.CauseEventID = r.string()
			t.CauseEventType = r.string()
			t.RulesVersion = r.string()
			t.ID = TransitionID(leadID, t.CauseEventID, t.Kind, t.From, t.To)
		}
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorruptState, len(r.b))
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// reader decodes with sticky errors so that corrupt input never panics.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated %s", ErrCorruptState, what)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail("header")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uint64() uint64 {
	if len(r.b) < 8 {
		r.fail("fixed field")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) float() float64 { return math.Float64frombits(r.uint64()) }

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length and checks it against the bytes left, given the
// smallest size of one element, so a corrupt length cannot allocate wildly.
func (r *reader) count(minElem int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/minElem) {
		r.fail("list")
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("string")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
