package scorer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sync/atomic"
	"time"
)

// LeadState is everything leadscore keeps about one lead. Its size is bounded:
// it does not grow with the number of events the lead has had.
type LeadState struct {
	// Eng is the engagement score at time Ref; it decays from there with the
	// model's half-life (Model.ScoreAt). Keeping the value at a reference
	// time makes the score independent of the order events arrive in.
	Eng   float64
	Ref   time.Time
	Fit   float64   // the fit score of the lead's current attributes
	Clock time.Time // the latest time the lead was evaluated at (event or decay)

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
	Attrs  []Attr   // the latest values of the properties fit rules read
	Fired  []uint32 // hashes of the first-time-only rules that have fired
	Caps   []CapUse // points used per capped rule, for its last two windows
	Seen   []Seen   // when event types that stage criteria ask about last happened

	// Explanation, kept apart from the scoring state (field x in Redis).
	Top     []Contribution // the rules that contributed most, valued at Ref
	Changes []Change       // the last score changes, oldest first
	// History holds the last few transitions, oldest first: a redelivered
	// event's transitions are re-published from here with their original ids.
	// It keeps at least the last state.history transitions, and every
	// transition of the last few saves (Model.SetInFlight): those may not
	// be published yet.
	History []Transition
	// Saves counts the saves of this state, the one being prepared
	// included: Apply and Tick add one. Transitions carry the count of the
	// save that recorded them (Transition.Save).
	Saves uint64

	// The oldest entries of Changes and History as loaded, still encoded:
	// scoring an event only appends to those lists, so a loaded lead's
	// entries are copied through to its next save without being decoded.
	// The full lists are these followed by Changes and History; reading
	// them needs DecodeLists first.
	oldChanges, oldHistory encodedList
}

// encodedList is a run of a list's records in their stored form, oldest
// first. b aliases the loaded value: it is never written.
type encodedList struct {
	b []byte
	n int
}

// UnpublishedSaves is how many of a lead's latest saves may have
// transitions not yet published, at most: a pipeline saves up to
// batch.in_flight (at most 8) batches ahead of publishing, plus the one
// committing, and the decay loop one more. A transition re-published for a
// redelivered record counts as made by that save, so a rebalance's new
// owner protects what the old one may not have published.
const UnpublishedSaves = 8 + 1 + 1

// SetInFlight sizes the history's protection for a pipeline with inFlight
// batches scored ahead of publishing (batch.in_flight), instead of the most
// any configuration needs: a busy lead then keeps fewer transitions. Call it
// before the model is used.
func (m *Model) SetInFlight(inFlight int) {
	m.keepFor = uint64(min(max(inFlight, 1)+2, UnpublishedSaves))
}

// Watermark is the highest offset of a partition applied to a lead.
type Watermark struct {
	Partition int32
	Offset    int64
}

// Attr is one profile attribute.
type Attr struct{ Key, Value string }

// CapUse is what a capped rule gave a lead in one window.
type CapUse struct {
	Rule   uint32
	Window int64 // window number: occurred_at (ms) / window length
	Used   float64
}

// Seen is when an event type last happened for a lead.
type Seen struct {
	Type string
	At   time.Time
}

// Contribution is one rule's share of the engagement score, valued at Ref.
type Contribution struct {
	Rule   string
	Points float64
}

// Change is one event's effect on the score.
type Change struct {
	EventID, Type string
	Rules         []string
	Delta         float64 // points the event added (after caps), fit changes included
	Score         float64 // the combined score after it
	At            time.Time
}

// eventHash is a stable 64-bit hash of an event id (FNV-1a).
func eventHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// Encodings of the scoring blob (1 was leadscore 0.1's: one blob, no
// decay) and of the explanation (2: no save counts; 3: the state's save
// count, and every score change and transition as a length-prefixed record,
// a transition's led by its save count, so that they can be carried
// through undecoded).
const (
	encodingV1 = 1
	encodingV2 = 2
	encodingV3 = 3
)

// ErrCorruptState is returned when stored state cannot be decoded.
var ErrCorruptState = errors.New("corrupt lead state")

// AppendBinary appends the scoring state's compact binary form to b.
func (s *LeadState) AppendBinary(b []byte) []byte {
	b = append(b, encodingV2)
	b = appendFloat(b, s.Eng)
	b = binary.AppendVarint(b, unixMilli(s.Ref))
	b = appendFloat(b, s.Fit)
	b = binary.AppendVarint(b, unixMilli(s.Clock))
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
	b = binary.AppendUvarint(b, uint64(len(s.Attrs)))
	for _, a := range s.Attrs {
		b = appendString(b, a.Key)
		b = appendString(b, a.Value)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Fired)))
	for _, h := range s.Fired {
		b = binary.LittleEndian.AppendUint32(b, h)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Caps)))
	for _, c := range s.Caps {
		b = binary.LittleEndian.AppendUint32(b, c.Rule)
		b = binary.AppendVarint(b, c.Window)
		b = appendFloat(b, c.Used)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Seen)))
	for _, x := range s.Seen {
		b = appendString(b, x.Type)
		b = binary.AppendVarint(b, unixMilli(x.At))
	}
	return b
}

// AppendExplain appends the explanation blob: contributions, score changes
// and recent transitions.
func (s *LeadState) AppendExplain(b []byte) []byte {
	b = append(b, encodingV3)
	b = binary.AppendUvarint(b, s.Saves)
	b = binary.AppendUvarint(b, uint64(len(s.Top)))
	for _, c := range s.Top {
		b = appendString(b, c.Rule)
		b = appendFloat(b, c.Points)
	}
	b = binary.AppendUvarint(b, uint64(s.oldChanges.n+len(s.Changes)))
	b = append(b, s.oldChanges.b...)
	for i := range s.Changes {
		b = appendRecord(b, &s.Changes[i], appendChange)
	}
	b = binary.AppendUvarint(b, uint64(s.oldHistory.n+len(s.History)))
	b = append(b, s.oldHistory.b...)
	for i := range s.History {
		b = binary.AppendUvarint(b, s.History[i].Save)
		b = appendRecord(b, &s.History[i], appendTransition)
	}
	return b
}

// appendRecord appends x encoded by enc, after its length.
func appendRecord[T any](b []byte, x *T, enc func([]byte, *T) []byte) []byte {
	at := len(b)
	b = append(b, 0) // most records are under 128 bytes: a one-byte length
	b = enc(b, x)
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	var l [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(l[:], uint64(n))
	b = append(b, l[:k-1]...) // room for the longer length
	copy(b[at+k:], b[at+1:at+1+n])
	copy(b[at:], l[:k])
	return b
}

func appendChange(b []byte, c *Change) []byte {
	b = appendString(b, c.EventID)
	b = appendString(b, c.Type)
	b = appendStrings(b, c.Rules)
	b = appendFloat(b, c.Delta)
	b = appendFloat(b, c.Score)
	return binary.AppendVarint(b, unixMilli(c.At))
}

func appendTransition(b []byte, t *Transition) []byte {
	b = appendString(b, string(t.Kind))
	b = appendString(b, t.From)
	b = appendString(b, t.To)
	b = appendFloat(b, t.Score)
	b = binary.AppendVarint(b, t.OccurredAt.UnixNano())
	b = appendString(b, t.CauseEventID)
	b = appendString(b, t.CauseEventType)
	b = appendString(b, t.RulesVersion)
	return appendStrings(b, t.CauseRules)
}

// UnmarshalBinary decodes what AppendBinary (scoring) and AppendExplain
// (explain, may be empty) wrote. leadID fills the transitions' LeadID and ID,
// which are not stored. The score changes and transitions are checked but
// left encoded, aliasing explain, which must not change afterwards: see
// DecodeLists.
func (s *LeadState) UnmarshalBinary(leadID string, scoring, explain []byte) error {
	*s = LeadState{}
	r := reader{b: scoring}
	switch v := r.byte(); v {
	case encodingV1:
		s.decodeV1(leadID, &r)
	case encodingV2:
		s.decodeV2(&r)
	default:
		if r.err == nil {
			return fmt.Errorf("%w: encoding %d", ErrCorruptState, v)
		}
	}
	if err := r.done(); err != nil {
		return err
	}
	if len(explain) == 0 {
		return nil
	}
	r = reader{b: explain}
	v := r.byte()
	switch v {
	case encodingV2:
	case encodingV3:
		s.Saves = r.uvarint()
	default:
		if r.err == nil {
			return fmt.Errorf("%w: explanation encoding %d", ErrCorruptState, v)
		}
	}
	if n := r.count(9); n > 0 {
		s.Top = make([]Contribution, n)
		for i := range s.Top {
			s.Top[i] = Contribution{Rule: r.name(), Points: r.float()}
		}
	}
	if v == encodingV2 {
		if n := r.count(20); n > 0 {
			s.Changes = make([]Change, n)
			for i := range s.Changes {
				s.Changes[i] = r.change()
			}
		}
		s.History = r.transitions(leadID, true)
		return r.done()
	}
	s.oldChanges = r.records(false)
	s.oldHistory = r.records(true)
	return r.done()
}

// records reads a version-3 list, checking each record's framing but not
// its contents, and returns it as it is stored.
func (r *reader) records(saves bool) encodedList {
	n := r.count(1)
	start := r.b
	for range n {
		r.entry(saves)
	}
	if r.err != nil || n == 0 {
		return encodedList{}
	}
	return encodedList{b: start[:len(start)-len(r.b)], n: n}
}

// DecodeLists decodes the score changes and transitions UnmarshalBinary
// left encoded into Changes and History, ahead of the entries added since.
// Anything reading those lists of a loaded state calls it first; it does
// nothing on a state decoded already or built in memory. A record that
// does not decode (a corrupt value) is dropped, and reported.
func (s *LeadState) DecodeLists(leadID string) error {
	var errs []error
	if s.oldChanges.n > 0 {
		s.Changes = decodeList(s.oldChanges, false, s.Changes, &errs, func(r *reader, _ uint64) Change {
			return r.change()
		})
		s.oldChanges = encodedList{}
	}
	if s.oldHistory.n > 0 {
		s.History = decodeList(s.oldHistory, true, s.History, &errs, func(r *reader, save uint64) Transition {
			t := r.transition(leadID, true)
			t.Save = save
			return t
		})
		s.oldHistory = encodedList{}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lead %s: %d explanation records dropped: %w", leadID, len(errs), errs[0])
	}
	return nil
}

// decodeList decodes l's records with dec, followed by newer; a record
// that does not decode is left out and its error added to errs.
func decodeList[T any](l encodedList, saves bool, newer []T, errs *[]error, dec func(*reader, uint64) T) []T {
	out := make([]T, 0, l.n+len(newer))
	r := reader{b: l.b}
	for range l.n {
		save, b := r.entry(saves)
		rec := reader{b: b}
		x := dec(&rec, save)
		if err := rec.done(); err != nil {
			*errs = append(*errs, err)
			continue
		}
		out = append(out, x)
	}
	return append(out, newer...)
}

// appendChangeBounded appends c to the lead's score changes, dropping the
// oldest beyond max, encoded ones first.
func (s *LeadState) appendChangeBounded(c Change, max int) {
	for s.oldChanges.n > 0 && s.oldChanges.n+len(s.Changes) >= max {
		s.oldChanges.dropFirst(false)
	}
	s.Changes = appendBounded(s.Changes, c, max)
}

// dropFirst removes the oldest record.
func (l *encodedList) dropFirst(saves bool) {
	r := reader{b: l.b}
	r.entry(saves)
	if l.n--; l.n == 0 {
		*l = encodedList{}
		return
	}
	l.b = r.b
}

// firstSave is the save count of the oldest record of a transition list.
func (l *encodedList) firstSave() uint64 {
	r := reader{b: l.b}
	return r.uvarint()
}

// entry reads one record of a version-3 list: its save count (transition
// lists only) and its length-prefixed body.
func (r *reader) entry(saves bool) (save uint64, body []byte) {
	if saves {
		save = r.uvarint()
	}
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("record")
		return 0, nil
	}
	body = r.b[:n]
	r.b = r.b[n:]
	return save, body
}

func (r *reader) change() Change {
	var c Change
	c.EventID, c.Type, c.Rules = r.string(), r.name(), r.names()
	c.Delta, c.Score, c.At = r.float(), r.float(), fromMilli(r.varint())
	return c
}

func (s *LeadState) decodeV2(r *reader) {
	s.Eng = r.float()
	s.Ref = fromMilli(r.varint())
	s.Fit = r.float()
	s.Clock = fromMilli(r.varint())
	s.Band = r.name()
	s.Stage = r.name()
	s.Events = r.uvarint()
	s.FirstSeen = fromMilli(r.varint())
	s.LastEventAt = fromMilli(r.varint())
	s.decodeIDs(r)
	if n := r.count(2); n > 0 {
		s.Attrs = make([]Attr, n)
		for i := range s.Attrs {
			s.Attrs[i] = Attr{Key: r.name(), Value: r.string()}
		}
	}
	if n := r.count(4); n > 0 {
		s.Fired = make([]uint32, n)
		for i := range s.Fired {
			s.Fired[i] = r.uint32()
		}
	}
	if n := r.count(13); n > 0 {
		s.Caps = make([]CapUse, n)
		for i := range s.Caps {
			s.Caps[i] = CapUse{Rule: r.uint32(), Window: r.varint(), Used: r.float()}
		}
	}
	if n := r.count(2); n > 0 {
		s.Seen = make([]Seen, n)
		for i := range s.Seen {
			s.Seen[i] = Seen{Type: r.name(), At: fromMilli(r.varint())}
		}
	}
}

// decodeV1 reads leadscore 0.1's single blob: no decay, so its score is
// the engagement score at the lead's last event.
func (s *LeadState) decodeV1(leadID string, r *reader) {
	s.Eng = r.float()
	s.Band = r.name()
	s.Stage = r.name()
	s.Events = r.uvarint()
	s.FirstSeen = fromMilli(r.varint())
	s.LastEventAt = fromMilli(r.varint())
	s.Ref, s.Clock = s.LastEventAt, s.LastEventAt
	s.decodeIDs(r)
	s.History = r.transitions(leadID, false)
}

func (s *LeadState) decodeIDs(r *reader) {
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
}

// transitions reads a version-1 or -2 history (version 1: no rules).
func (r *reader) transitions(leadID string, withRules bool) []Transition {
	n := r.count(15)
	if n == 0 {
		return nil
	}
	ts := make([]Transition, n)
	for i := range ts {
		ts[i] = r.transition(leadID, withRules)
	}
	return ts
}

func (r *reader) transition(leadID string, withRules bool) Transition {
	t := Transition{LeadID: leadID}
	t.Kind = Kind(r.name())
	t.From = r.name()
	t.To = r.name()
	t.Score = r.float()
	t.OccurredAt = time.Unix(0, r.varint()).UTC()
	t.CauseEventID = r.string()
	t.CauseEventType = r.name()
	t.RulesVersion = r.name()
	if withRules {
		t.CauseRules = r.names()
	}
	// ID is not stored, and not derived here either: it is a SHA-256, and
	// only the few transitions that leave the scorer again need it
	// (EnsureID).
	return t
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
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

func (r *reader) uint32() uint32 {
	if len(r.b) < 4 {
		r.fail("fixed field")
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// names reads a list of names (see name).
func (r *reader) names() []string {
	n := r.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.name()
	}
	return out
}

// name reads a string that decoded states repeat over and over — a rule,
// band, stage, event type or rules version — and returns the one shared
// copy of it, allocating only the first time a name is seen.
func (r *reader) name() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("string")
		return ""
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return intern(b)
}

// internedNames is an immutable map, replaced whole on insert: lookups
// from concurrent decoders take no lock. Inserts stop at maxNames, so
// free-form input (event types) cannot grow it without bound.
var internedNames atomic.Pointer[map[string]string]

const (
	maxNames    = 4096
	maxNameSize = 64
)

func intern(b []byte) string {
	m := internedNames.Load()
	if m != nil {
		if s, ok := (*m)[string(b)]; ok {
			return s
		}
	}
	s := string(b)
	if len(b) > maxNameSize || (m != nil && len(*m) >= maxNames) {
		return s
	}
	next := make(map[string]string, 1+mapLen(m))
	if m != nil {
		for k, v := range *m {
			next[k] = v
		}
	}
	next[s] = s
	// A lost race only drops this insert; the name is interned next time.
	internedNames.CompareAndSwap(m, &next)
	return s
}

func mapLen(m *map[string]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// done reports a decoding error, or trailing bytes.
func (r *reader) done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorruptState, len(r.b))
	}
	return nil
}

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
