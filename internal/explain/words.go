package explain

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// minus is the typographic minus: "−5" reads better than "-5" in a table.
const minus = "−"

// num formats a number without trailing zeros, to at most two decimals.
func num(f float64) string {
	f = math.Round(f*100) / 100
	if f == 0 {
		return "0" // also for -0
	}
	s := strconv.FormatFloat(math.Abs(f), 'f', -1, 64)
	if f < 0 {
		return minus + s
	}
	return s
}

// signed formats points with their sign: +4, −5, 0.
func signed(f float64) string {
	s := num(f)
	if s == "0" || strings.HasPrefix(s, minus) {
		return s
	}
	return "+" + s
}

// span says a duration in words: 30 days, 1 day 12 hours, 90 minutes.
func span(d time.Duration) string {
	if d <= 0 {
		return "0 seconds"
	}
	units := []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}}
	var parts []string
	for _, u := range units {
		if n := d / u.d; n > 0 {
			parts = append(parts, plural(int(n), u.name))
			d -= n * u.d
		}
	}
	if len(parts) == 0 {
		return d.String()
	}
	return strings.Join(parts, " ")
}

// per says "per day" for one day and "per 7 days" for more.
func per(d time.Duration) string {
	s := span(d)
	if rest, ok := strings.CutPrefix(s, "1 "); ok && !strings.Contains(rest, " ") {
		return "per " + rest
	}
	return "per " + s
}

// short says a duration tersely, for "in 6d 10h".
func short(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d < 24*time.Hour:
		return trimZero(fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute))
	}
	return trimZero(fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour))
}

func trimZero(s string) string {
	s, _ = strings.CutSuffix(s, " 0h")
	s, _ = strings.CutSuffix(s, " 0m")
	return s
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// quote leaves plain words bare and quotes anything else: pricing, "".
func quote(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./:@+", r)) {
			return strconv.Quote(s)
		}
	}
	return s
}

// orList joins a, b or c.
func orList(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// width counts what a terminal shows: ≥ and − are one column each.
func width(s string) int { return utf8.RuneCountInString(s) }

// pad fills s with spaces to n columns.
func pad(s string, n int) string {
	if w := width(s); w < n {
		return s + strings.Repeat(" ", n-w)
	}
	return s
}

// padLeft right-aligns s in n columns.
func padLeft(s string, n int) string {
	if w := width(s); w < n {
		return strings.Repeat(" ", n-w) + s
	}
	return s
}
