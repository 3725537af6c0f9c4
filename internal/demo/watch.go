package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Default topics the Watcher reads.
const (
	DefaultTransitionsTopic = "lead-transitions"
	DefaultDeadLetterTopic  = "lead-events-dlq"
)

// Dead-letter headers the Watcher shows.
const (
	HeaderErrorCode    = "leadscore.error.code"
	HeaderErrorMessage = "leadscore.error.message"
)

// Errors from NewWatcher.
var (
	ErrNoBrokers = errors.New("demo: watcher needs at least one broker address")
	ErrNoOutput  = errors.New("demo: watcher needs an output writer")
)

// WatchOptions configure a Watcher.
type WatchOptions struct {
	// Brokers are the bootstrap addresses ("host:port"). Required.
	Brokers []string
	// TransitionsTopic is read for transitions. Default DefaultTransitionsTopic.
	TransitionsTopic string
	// DeadLetterTopic is read for dead letters. Default DefaultDeadLetterTopic.
	DeadLetterTopic string
	// Out receives the lines. Required. When it is a terminal (an *os.File
	// on a character device) the `to` values are colored and the summary
	// is redrawn in place under the stream; otherwise lines are plain text.
	Out io.Writer
	// Summary, if set, is called for the running summary line.
	// Default nil: no summary.
	Summary func() Summary
	// SummaryEvery is how often the summary is shown. Default 1 s on a
	// terminal, 10 s otherwise.
	SummaryEvery time.Duration
	// Location is the time zone of the times shown. Default time.Local.
	Location *time.Location
	// Log reports problems that do not stop the Watcher. Default: no logs.
	Log *zap.Logger
}

// Watcher prints the transitions and dead letters the service produces, one
// line each, as they arrive. It reads every partition of both topics from
// their end at start-up, without a consumer group, so it shows only new
// records, commits nothing and never disturbs the service's consumers.
// Partitions added after start-up are not read.
type Watcher struct {
	o     WatchOptions
	tty   bool
	ready chan struct{}
}

// NewWatcher checks o and returns a Watcher; call Run to start it.
func NewWatcher(o WatchOptions) (*Watcher, error) {
	if len(o.Brokers) == 0 {
		return nil, ErrNoBrokers
	}
	if o.Out == nil {
		return nil, ErrNoOutput
	}
	if o.TransitionsTopic == "" {
		o.TransitionsTopic = DefaultTransitionsTopic
	}
	if o.DeadLetterTopic == "" {
		o.DeadLetterTopic = DefaultDeadLetterTopic
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	w := &Watcher{o: o, tty: IsTerminal(o.Out), ready: make(chan struct{})}
	if w.o.SummaryEvery <= 0 {
		w.o.SummaryEvery = 10 * time.Second
		if w.tty {
			w.o.SummaryEvery = time.Second
		}
	}
	return w, nil
}

// Ready is closed once the Watcher has found where both topics end: every
// record produced after that is shown.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Run reads and prints until ctx ends, then returns nil; it returns an error
// if it cannot read the topics or write the output. Call it once.
//
// If a topic does not exist yet, Run waits for it to be created.
func (w *Watcher) Run(ctx context.Context) error {
	// kafka-go's transport answers Metadata from a cache (6 s by default):
	// keep it short so that topics created while we wait are seen promptly.
	tr := &kafka.Transport{DialTimeout: 5 * time.Second, MetadataTTL: 250 * time.Millisecond}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(w.o.Brokers...), Timeout: 10 * time.Second, Transport: tr}

	starts, err := w.endOffsets(ctx, client)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var readers []*kafka.Reader
	defer func() {
		cancel()
		for _, r := range readers {
			r.Close()
		}
		wg.Wait()
	}()

	items := make(chan item)
	for _, s := range starts {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   w.o.Brokers,
			Topic:     s.topic,
			Partition: s.partition,
			MinBytes:  1,
			MaxBytes:  1 << 20,
			MaxWait:   500 * time.Millisecond,
		})
		if err := r.SetOffset(s.offset); err != nil {
			r.Close()
			return fmt.Errorf("start reading %s/%d at %d: %w", s.topic, s.partition, s.offset, err)
		}
		readers = append(readers, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.read(ctx, r, s.topic == w.o.DeadLetterTopic, items)
		}()
	}
	close(w.ready)
	return w.show(ctx, items)
}

type start struct {
	topic     string
	partition int
	offset    int64
}

// endOffsets finds every partition of both topics and its end offset,
// waiting for topics that do not exist yet. Errors are retried for a minute:
// right after a topic is created a broker may answer "not leader" for a while.
func (w *Watcher) endOffsets(ctx context.Context, c *kafka.Client) ([]start, error) {
	topics := []string{w.o.TransitionsTopic, w.o.DeadLetterTopic}
	wait := time.NewTicker(500 * time.Millisecond)
	defer wait.Stop()
	giveUp := time.Now().Add(time.Minute)
	loggedMissing, loggedErr := false, false
	for {
		starts, missing, err := w.tryEndOffsets(ctx, c, topics)
		switch {
		case err == nil && len(missing) == 0:
			return starts, nil
		case err != nil && (ctx.Err() != nil || time.Now().After(giveUp)):
			return nil, err
		case err != nil && !loggedErr:
			w.o.Log.Info("watcher retrying", zap.Error(err))
			loggedErr = true
		case err == nil && !loggedMissing:
			w.o.Log.Info("watcher waiting for topics", zap.Strings("topics", missing))
			loggedMissing = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait.C:
		}
	}
}

func (w *Watcher) tryEndOffsets(ctx context.Context, c *kafka.Client, topics []string) ([]start, []string, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, nil, fmt.Errorf("metadata of %v: %w", topics, err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	var missing []string
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			if t.Error != nil && !errors.Is(t.Error, kafka.UnknownTopicOrPartition) &&
				!errors.Is(t.Error, kafka.LeaderNotAvailable) {
				return nil, nil, fmt.Errorf("metadata of %s: %w", t.Name, t.Error)
			}
			missing = append(missing, t.Name)
			continue
		}
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	if len(missing) > 0 {
		return nil, missing, nil
	}
	lo, err := c.ListOffsets(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("end offsets of %v: %w", topics, err)
	}
	var starts []start
	for topic, parts := range lo.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return nil, nil, fmt.Errorf("end offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			starts = append(starts, start{topic, p.Partition, p.LastOffset})
		}
	}
	return starts, nil, nil
}

type item struct {
	msg        kafka.Message
	deadLetter bool
	err        error
}

func (w *Watcher) read(ctx context.Context, r *kafka.Reader, deadLetter bool, items chan<- item) {
	for {
		m, err := r.FetchMessage(ctx) // no group: nothing to commit
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			err = fmt.Errorf("read %s/%d: %w", r.Config().Topic, r.Config().Partition, err)
		}
		select {
		case items <- item{msg: m, deadLetter: deadLetter, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// show owns the output: stream lines, and the summary under them.
func (w *Watcher) show(ctx context.Context, items <-chan item) error {
	p := &printer{out: w.o.Out, tty: w.tty, loc: w.o.Location, leads: make(map[string]struct{})}
	var tick <-chan time.Time
	if w.o.Summary != nil {
		t := time.NewTicker(w.o.SummaryEvery)
		defer t.Stop()
		tick = t.C
		p.summarize = w.o.Summary
		if p.tty {
			p.refreshSummary() // a baseline, and something to look at right away
		}
	}
	for {
		select {
		case <-ctx.Done():
			p.finish()
			if p.err != nil {
				return fmt.Errorf("write watcher output: %w", p.err)
			}
			return nil
		case it := <-items:
			if it.err != nil {
				p.finish()
				return it.err
			}
			if it.deadLetter {
				p.line(formatDeadLetter(it.msg, p.loc))
			} else {
				p.transition(it.msg, w.o.Log)
			}
		case <-tick:
			p.refreshSummary()
		}
		if p.err != nil {
			return fmt.Errorf("write watcher output: %w", p.err)
		}
	}
}

// ANSI sequences, used only on a terminal.
const (
	clearLine = "\r\x1b[2K"
	reset     = "\x1b[0m"
	red       = "\x1b[31m"
	green     = "\x1b[32m"
	yellow    = "\x1b[33m"
	blue      = "\x1b[34m"
)

type printer struct {
	out       io.Writer
	tty       bool
	loc       *time.Location
	summarize func() Summary
	summary   string // last summary line, shown under the stream on a terminal
	leads     map[string]struct{}
	err       error // first write error
}

func (p *printer) write(s string) {
	if p.err == nil {
		_, p.err = io.WriteString(p.out, s)
	}
}

// line prints one stream line; on a terminal the summary is cleared first
// and redrawn under it.
func (p *printer) line(s string) {
	if p.tty && p.summary != "" {
		p.write(clearLine + s + "\n" + p.summary)
		return
	}
	p.write(s + "\n")
}

func (p *printer) transition(m kafka.Message, log *zap.Logger) {
	var t transition
	if err := json.Unmarshal(m.Value, &t); err != nil {
		log.Warn("undecodable transition record",
			zap.String("topic", m.Topic), zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset), zap.Error(err))
		p.line(fmt.Sprintf("%s  ?    undecodable transition record (partition %d, offset %d)",
			clock(m.Time, p.loc), m.Partition, m.Offset))
		return
	}
	p.leads[t.LeadID] = struct{}{}
	p.line(formatTransition(t, m.Time, p.loc, p.tty))
}

func (p *printer) refreshSummary() {
	s := p.summarize()
	s.Leads = len(p.leads)
	p.summary = s.String()
	if p.tty {
		p.write(clearLine + p.summary)
	} else {
		p.write(p.summary + "\n")
	}
}

// finish prints a last summary and leaves the cursor on a fresh line.
func (p *printer) finish() {
	if p.summarize == nil {
		return
	}
	p.refreshSummary()
	if p.tty {
		p.write("\n")
	}
}

// transition is the lead-transitions record, restated for the demo.
type transition struct {
	TransitionID   string  `json:"transition_id"`
	LeadID         string  `json:"lead_id"`
	Kind           string  `json:"kind"`
	From           string  `json:"from"`
	To             string  `json:"to"`
	Score          float64 `json:"score"`
	OccurredAt     string  `json:"occurred_at"`
	CauseEventID   string  `json:"cause_event_id"`
	CauseEventType string  `json:"cause_event_type"`
	RulesVersion   string  `json:"rules_version"`
}

// formatTransition renders
// "18:00:01  lead-000042  band   cold → warm   score 6   ← page_view (demo-1-17)".
// The time is occurred_at, or the record's timestamp if that is unreadable.
func formatTransition(t transition, recordTime time.Time, loc *time.Location, color bool) string {
	at := recordTime
	if ts, err := time.Parse(time.RFC3339Nano, t.OccurredAt); err == nil {
		at = ts
	}
	to := clean(t.To)
	shownTo := to
	if c := colorOf(t.Kind, to); color && c != "" {
		shownTo = c + to + reset
	}
	shownTo += strings.Repeat(" ", max(0, 4-utf8.RuneCountInString(to)))

	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-11s  %-5s  %-4s → %s   score %-3s",
		clock(at, loc), clean(t.LeadID), clean(t.Kind), clean(t.From), shownTo, formatScore(t.Score))
	if t.CauseEventType != "" || t.CauseEventID != "" {
		b.WriteString(" ← ")
		b.WriteString(clean(t.CauseEventType))
		if t.CauseEventID != "" {
			fmt.Fprintf(&b, " (%s)", clean(t.CauseEventID))
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// maxMessage is how many characters of a dead letter's error message are shown.
const maxMessage = 120

// formatDeadLetter renders "18:00:01  DLQ  malformed_json: unexpected end of JSON input".
func formatDeadLetter(m kafka.Message, loc *time.Location) string {
	code, msg := "unknown", ""
	for _, h := range m.Headers {
		switch h.Key {
		case HeaderErrorCode:
			code = clean(string(h.Value))
		case HeaderErrorMessage:
			msg = clean(string(h.Value))
		}
	}
	if r := []rune(msg); len(r) > maxMessage {
		msg = string(r[:maxMessage-1]) + "…"
	}
	s := clock(m.Time, loc) + "  DLQ  " + code
	if msg != "" {
		s += ": " + msg
	}
	return s
}

func colorOf(kind, to string) string {
	switch kind {
	case "band":
		switch to {
		case "hot":
			return red
		case "warm":
			return yellow
		case "cold":
			return blue
		}
	case "stage":
		return green
	}
	return ""
}

func clock(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "--:--:--"
	}
	return t.In(loc).Format("15:04:05")
}

func formatScore(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// clean makes text from a record safe to print on a terminal: control
// characters (escape sequences included) and invalid UTF-8 become '?'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// IsTerminal reports whether w is a character device, e.g. a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
