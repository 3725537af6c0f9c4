package events

import (
	"math/rand/v2"
	"testing"
)

func naiveNextSpecialByte(data []byte, i int) int {
	for ; i < len(data); i++ {
		if c := data[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return i
}

// The word-at-a-time search must agree with the obvious loop, including
// around the bytes where borrows and high bits could fool it.
func TestNextSpecialByte(t *testing.T) {
	buf := make([]byte, 24)
	for p := range 17 {
		for c := range 256 {
			for _, before := range []byte{'x', 0x00, 0x1f, 0x20, 0x21, 0x80, 0xff} {
				for i := range buf {
					buf[i] = 'x'
				}
				if p > 0 {
					buf[p-1] = before
				}
				buf[p] = byte(c)
				for start := range 3 {
					if got, want := nextSpecialByte(buf, start), naiveNextSpecialByte(buf, start); got != want {
						t.Fatalf("buf %q from %d: got %d, want %d", buf, start, got, want)
					}
				}
			}
		}
	}

	interesting := []byte{0x00, 0x01, 0x1f, 0x20, 0x21, '"', '#', '[', '\\', ']', 0x7f, 0x80, 0xa2, 0xdc, 0xff, 'a'}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = interesting[rng.IntN(len(interesting))]
			} else {
				b[i] = byte(0x23 + rng.IntN(0x38)) // plain ASCII below '\'
			}
		}
		start := 0
		if len(b) > 0 {
			start = rng.IntN(len(b))
		}
		if got, want := nextSpecialByte(b, start), naiveNextSpecialByte(b, start); got != want {
			t.Fatalf("buf %q from %d: got %d, want %d", b, start, got, want)
		}
	}
}

func TestAppendUnescapedRejectsBrokenInput(t *testing.T) {
	// appendUnescaped only sees bodies the scanner accepted, but must not
	// panic or accept anything else either.
	for _, raw := range []string{`\`, `\u`, `\u12`, `\u12g4`, `\x`, `\ud800`, `\ud800\`, `\ud800\u`, `\ud800\ud800`, `\udc00`} {
		if _, ok := appendUnescaped(nil, []byte(raw)); ok {
			t.Errorf("appendUnescaped(%q) accepted", raw)
		}
	}
	got, ok := appendUnescaped(nil, []byte(`a\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00z`))
	if want := "a\"\\/\b\f\n\r\té😀z"; !ok || string(got) != want {
		t.Errorf("appendUnescaped = %q, %v; want %q", got, ok, want)
	}
}
