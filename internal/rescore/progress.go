package rescore

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// Progress display settings.
const (
	barWidth      = 30
	ttyRedraw     = 200 * time.Millisecond // a terminal's bar is redrawn this often
	plainInterval = 5 * time.Second        // a pipe or file gets a line this often
)

// progress shows how far the replay is. On a terminal it is one line
// redrawn in place; elsewhere (a pipe, a log file) a plain line every
// interval. It is used by one goroutine only.
type progress struct {
	w        io.Writer
	tty      bool
	now      func() time.Time
	interval time.Duration
	total    int64
	done     int64
	start    time.Time
	drawn    bool
}

func newProgress(w io.Writer, tty bool, total int64, now func() time.Time, interval time.Duration) *progress {
	if interval <= 0 {
		interval = plainInterval
		if tty {
			interval = ttyRedraw
		}
	}
	return &progress{w: w, tty: tty, now: now, interval: interval, total: total, start: now()}
}

func (p *progress) add(n int) { p.done += int64(n) }

// draw shows the current state: the bar on a terminal, a line elsewhere.
func (p *progress) draw() {
	rate, eta := p.rate()
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", barLine(p.done, p.total, rate, eta, barWidth))
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, plainLine(p.done, p.total, rate, eta))
}

// finish ends the display with a summary line.
func (p *progress) finish() {
	elapsed := p.now().Sub(p.start)
	rate, _ := p.rate()
	if p.tty && p.drawn {
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", barLine(p.done, p.total, rate, 0, barWidth))
	}
	fmt.Fprintln(p.w, doneLine(p.done, elapsed, rate))
}

// rate is the records per second since the start, and the time the rest
// will take at that rate (negative: unknown).
func (p *progress) rate() (float64, time.Duration) {
	secs := p.now().Sub(p.start).Seconds()
	if secs <= 0 || p.done == 0 {
		return 0, -1
	}
	rate := float64(p.done) / secs
	left := max(p.total-p.done, 0)
	return rate, time.Duration(float64(left) / rate * float64(time.Second))
}

// barLine is the terminal form:
//
//	[###############---------------]  53% 1.2M/2.3M records  48k rec/s  ETA 23s
func barLine(done, total int64, rate float64, eta time.Duration, width int) string {
	frac := fraction(done, total)
	full := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %3d%% %s/%s records  %s rec/s  ETA %s",
		strings.Repeat("#", full), strings.Repeat("-", width-full), int(frac*100),
		human(float64(done)), human(float64(total)), human(rate), etaString(eta))
}

// plainLine is the form for pipes and files.
func plainLine(done, total int64, rate float64, eta time.Duration) string {
	return fmt.Sprintf("replay: %d%% %s/%s records  %s rec/s  ETA %s",
		int(fraction(done, total)*100), human(float64(done)), human(float64(total)), human(rate), etaString(eta))
}

func doneLine(done int64, elapsed time.Duration, rate float64) string {
	return fmt.Sprintf("replayed %s records in %s (%s rec/s)", commas(done), elapsed.Round(100*time.Millisecond), human(rate))
}

func fraction(done, total int64) float64 {
	if total <= 0 {
		return 1
	}
	return math.Min(1, math.Max(0, float64(done)/float64(total)))
}

// human writes a count the way a progress bar does: 999, 1.2k, 48k, 2.3M.
func human(v float64) string {
	units := []string{"", "k", "M", "G", "T"}
	u := 0
	for u < len(units)-1 && v >= 999.5 {
		v /= 1000
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%.0f", v)
	}
	if v < 9.95 {
		return fmt.Sprintf("%.1f%s", v, units[u])
	}
	return fmt.Sprintf("%.0f%s", v, units[u])
}

// etaString writes a duration left: 23s, 4m05s, 1h02m; "-" when unknown.
func etaString(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	s := int64(math.Round(d.Seconds()))
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	default:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
}

// commas writes an integer with thousands separators: 1,234,567.
func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// IsTerminal reports whether w is a terminal (a character device), where
// the progress bar is redrawn in place.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
