package events

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const hostileDir = "testdata/hostile"

// hostileFiles returns the corpus files and the code each must produce,
// taken from the file name: "<code>__<what>.json".
func hostileFiles(tb testing.TB) map[string]string {
	tb.Helper()
	entries, err := os.ReadDir(hostileDir)
	if err != nil {
		tb.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "README.md" {
			continue
		}
		code, _, ok := strings.Cut(name, "__")
		if !ok {
			tb.Fatalf("%s: name does not start with <code>__", name)
		}
		files[name] = code
	}
	return files
}

func TestHostileCorpus(t *testing.T) {
	d := testDecoder()
	files := hostileFiles(t)
	if len(files) < 15 {
		t.Fatalf("hostile corpus has %d files, want at least 15", len(files))
	}
	for name, code := range files {
		t.Run(name, func(t *testing.T) {
			value, err := os.ReadFile(filepath.Join(hostileDir, name))
			if err != nil {
				t.Fatal(err)
			}
			_, err = d.Decode(value, "")
			checkDecodeError(t, err, code, "", "")
		})
	}

	t.Run("generated oversize", func(t *testing.T) {
		value := record("properties", `{"email":"`+piiSentinel+`","pad":"`+strings.Repeat("x", 64<<10)+`"}`)
		value = value[:64<<10+1]
		_, err := d.Decode(value, "")
		checkDecodeError(t, err, CodeOversize, "", "")
	})
}

// The README lists every file with its expected code; keep them in step.
func TestHostileReadme(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(hostileDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		code := strings.Trim(strings.TrimSpace(cells[2]), "`")
		if strings.Contains(name, "__") {
			listed[name] = true
			if want, _, _ := strings.Cut(name, "__"); code != want {
				t.Errorf("README: %s is listed with code %s, its name says %s", name, code, want)
			}
		}
	}
	for name := range hostileFiles(t) {
		if !listed[name] {
			t.Errorf("README does not list %s", name)
		}
		delete(listed, name)
	}
	for name := range listed {
		t.Errorf("README lists %s, which is not in %s", name, hostileDir)
	}
}
