package rescore

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBarLine(t *testing.T) {
	for _, tc := range []struct {
		name        string
		done, total int64
		rate        float64
		eta         time.Duration
		width       int
		want        string
	}{
		{"the issue's example", 1_219_000, 2_300_000, 48_000, 23 * time.Second, 10,
			"[#####-----]  53% 1.2M/2.3M records  48k rec/s  ETA 23s"},
		{"start, rate unknown", 0, 2_300_000, 0, -1, 10,
			"[----------]   0% 0/2.3M records  0 rec/s  ETA -"},
		{"done", 2_300_000, 2_300_000, 51_234, 0, 10,
			"[##########] 100% 2.3M/2.3M records  51k rec/s  ETA 0s"},
		{"minutes", 5_000, 1_000_000, 1_234.4, 4*time.Minute + 5*time.Second, 4,
			"[----]   0% 5.0k/1.0M records  1.2k rec/s  ETA 4m05s"},
		{"hours", 600_000_000, 1_200_000_000, 999, 2*time.Hour + 3*time.Minute, 4,
			"[##--]  50% 600M/1.2G records  999 rec/s  ETA 2h03m"},
		{"nothing to do", 0, 0, 0, -1, 4,
			"[####] 100% 0/0 records  0 rec/s  ETA -"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := barLine(tc.done, tc.total, tc.rate, tc.eta, tc.width); got != tc.want {
				t.Errorf("barLine\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestPlainLine(t *testing.T) {
	got := plainLine(1_219_000, 2_300_000, 48_000, 23*time.Second)
	want := "replay: 53% 1.2M/2.3M records  48k rec/s  ETA 23s"
	if got != want {
		t.Errorf("plainLine\n got %q\nwant %q", got, want)
	}
}

func TestHuman(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 999: "999", 999.4: "999", 999.6: "1.0k", 1_234: "1.2k", 9_949: "9.9k", 9_960: "10k",
		48_000: "48k", 999_400: "999k", 999_600: "1.0M", 2_300_000: "2.3M", 12_000_000: "12M", 3e9: "3.0G",
	} {
		if got := human(v); got != want {
			t.Errorf("human(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestCommas(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}

// fakeClock is a clock the test sets.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestProgressOnATerminalRedrawsOneLine(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	p := newProgress(&buf, true, 4000, clk.now, 0)
	if p.interval != ttyRedraw {
		t.Errorf("terminal interval %v, want %v", p.interval, ttyRedraw)
	}
	clk.advance(2 * time.Second)
	p.add(1000)
	p.draw() // 1,000 records in 2 s: 500/s, 3,000 left: 6 s
	clk.advance(2 * time.Second)
	p.add(3000)
	p.finish()
	out := buf.String()
	if strings.Count(out, "\n") != 2 || !strings.HasPrefix(out, "\r[") {
		t.Fatalf("want in-place redraws (\\r…\\x1b[K), then a final bar and a summary line; got %q", out)
	}
	if !strings.Contains(out, "\x1b[K") || !strings.Contains(out, " 25% 1.0k/4.0k records  500 rec/s  ETA 6s") {
		t.Errorf("first draw: got %q", out)
	}
	if !strings.HasSuffix(out, "replayed 4,000 records in 4s (1.0k rec/s)\n") {
		t.Errorf("summary: got %q", out)
	}
}

func TestProgressElsewherePrintsPlainLines(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	p := newProgress(&buf, false, 4000, clk.now, 0)
	if p.interval != plainInterval {
		t.Errorf("plain interval %v, want %v", p.interval, plainInterval)
	}
	clk.advance(2 * time.Second)
	p.add(1000)
	p.draw() // 1,000 records in 2 s: 500/s, 3,000 left: 6 s
	clk.advance(2 * time.Second)
	p.add(3000)
	p.finish()
	want := "replay: 25% 1.0k/4.0k records  500 rec/s  ETA 6s\nreplayed 4,000 records in 4s (1.0k rec/s)\n"
	if got := buf.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if strings.ContainsAny(buf.String(), "\r\x1b") {
		t.Error("plain output holds terminal control characters")
	}
}

func TestIsTerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
}
