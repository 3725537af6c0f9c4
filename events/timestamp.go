package events

import "time"

// parseRFC3339 parses an RFC 3339 date-time ("2024-05-01T12:00:00Z",
// "2024-05-01T14:00:00.123+02:00") and returns it in UTC.
//
// It exists because time.Parse allocates a *time.Location for every
// non-Z offset, which is most of what our producers send. It accepts what
// RFC 3339 section 5.6 allows: 'T'/'t', 'Z'/'z', any number of fractional
// digits (digits past nanoseconds are truncated), offsets up to ±23:59.
// Leap seconds (:60) are rejected, as time.Parse does.
func parseRFC3339(b []byte) (time.Time, bool) {
	const minLen = len("2006-01-02T15:04:05Z")
	if len(b) < minLen ||
		b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := atoi(b[0:4])
	month, ok2 := atoi(b[5:7])
	day, ok3 := atoi(b[8:10])
	hour, ok4 := atoi(b[11:13])
	minute, ok5 := atoi(b[14:16])
	sec, ok6 := atoi(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}

	i := 19
	nsec := 0
	if b[i] == '.' {
		i++
		n := 0
		for ; i < len(b) && isDigit(b[i]); i++ {
			if n < 9 {
				nsec = nsec*10 + int(b[i]-'0')
			}
			n++
		}
		if n == 0 {
			return time.Time{}, false
		}
		for ; n < 9; n++ {
			nsec *= 10
		}
	}
	if i >= len(b) {
		return time.Time{}, false
	}
	offset := 0 // seconds east of UTC
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != len("+07:00") || b[i+3] != ':' {
			return time.Time{}, false
		}
		oh, ok1 := atoi(b[i+1 : i+3])
		om, ok2 := atoi(b[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if b[i] == '-' {
			offset = -offset
		}
		i += len("+07:00")
	default:
		return time.Time{}, false
	}
	if i != len(b) {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

// atoi parses a short run of ASCII digits.
func atoi(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
