package reload_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/internal/reload"
	"github.com/leadscore/leadscore/internal/service"
	"github.com/leadscore/leadscore/scorer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// models is a fake holder of the active model that counts swaps.
type models struct {
	mu    sync.Mutex
	m     *scorer.Model
	swaps int
}

func (f *models) Model() *scorer.Model {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m
}

func (f *models) SetModel(m *scorer.Model) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = m
	f.swaps++
}

func rulesYAML(version string, openPoints string) string {
	return `version: "` + version + `"
rules:
  - {name: email-open, type: email_open, points: ` + openPoints + `}
  - {name: download, type: download, points: 3}
bands:
  - {name: cold}
  - {name: warm, min: 5}
stages:
  - {name: lead}
  - {name: mql, min_score: 8}
`
}

// harness runs a Reloader over temp files, as the service does.
type harness struct {
	t          *testing.T
	rulesPath  string
	configPath string // "" when the case has no config file
	models     *models
	reg        *prometheus.Registry
	logs       *observer.ObservedLogs
	trigger    chan struct{}
	startVer   string
	stop       func()
}

func start(t *testing.T, rules, configFile string, interval time.Duration) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, rulesPath: filepath.Join(dir, "rules.yaml"), trigger: make(chan struct{}, 1),
		reg: prometheus.NewRegistry()}
	writeFile(t, h.rulesPath, rules)
	if configFile != "" {
		h.configPath = filepath.Join(dir, "leadscore.yaml")
		writeFile(t, h.configPath, configFile)
	}
	env := func(k string) (string, bool) {
		if k == "LEADSCORE_RULES_FILE" {
			return h.rulesPath, true
		}
		return "", false
	}
	running, err := config.Load(h.configPath, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := running.Validate(); err != nil {
		t.Fatal(err)
	}
	m, err := service.BuildModel(running)
	if err != nil {
		t.Fatal(err)
	}
	h.models = &models{m: m}
	h.startVer = m.Version()
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	r, err := reload.New(reload.Options{
		ConfigPath: h.configPath, Env: env, Running: running, Build: service.BuildModel, Models: h.models,
		Trigger: h.trigger, Interval: interval, Registerer: h.reg, Log: zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v", err)
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

// writeFile replaces a file atomically, as editors and config management
// tools do (a half-written file would be a different test).
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// count reads leadscore_config_reloads_total{result} from the registry the
// Reloader registered on.
func (h *harness) count(result string) int {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "leadscore_config_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	return 0
}

// waitReloads waits until n reloads (of any result) have happened, then
// stops the Reloader so that what it did can be inspected.
func (h *harness) waitReloads(n int) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.count(reload.Applied)+h.count(reload.Refused)+h.count(reload.Unchanged) < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("%d reloads after 5s, want %d", h.count(reload.Applied)+h.count(reload.Refused)+h.count(reload.Unchanged), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.stop()
}

func (h *harness) results() map[string]int {
	return map[string]int{reload.Applied: h.count(reload.Applied), reload.Refused: h.count(reload.Refused),
		reload.Unchanged: h.count(reload.Unchanged)}
}

// activeInfo returns the version labels of leadscore_rules_info.
func (h *harness) activeInfo() []string {
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() == "leadscore_rules_info" {
			for _, m := range mf.GetMetric() {
				if m.GetGauge().GetValue() == 1 {
					out = append(out, m.GetLabel()[0].GetValue())
				}
			}
		}
	}
	return out
}

func (h *harness) entries(msg string) []observer.LoggedEntry {
	return h.logs.FilterMessage(msg).All()
}

// loud returns the log entries above debug.
func (h *harness) loud() []string {
	var out []string
	for _, e := range h.logs.All() {
		if e.Level > zapcore.DebugLevel {
			out = append(out, e.Level.String()+" "+e.Message)
		}
	}
	return out
}

const (
	appliedMsg = "rules reloaded"
	refusedMsg = "config reload refused, the active rules stay"
	restartMsg = "config changes need a restart"
)

func TestReload(t *testing.T) {
	tests := []struct {
		name    string
		rules   string // the rules file at start
		config  string // the config file at start ("" for none)
		trigger bool   // reload by trigger; else by the file poll
		edit    func(h *harness)
		reloads int // reloads to wait for
		want    map[string]int
		// newVersion: the version active at the end ("" for the starting one).
		newVersion string
		check      func(t *testing.T, h *harness)
	}{{
		name:  "a changed rules file applies",
		rules: rulesYAML("", "1"),
		edit:  func(h *harness) { writeFile(h.t, h.rulesPath, rulesYAML("", "2")) },
		want:  map[string]int{reload.Applied: 1}, reloads: 1,
		newVersion: mustVersion(rulesYAML("", "2")),
		check: func(t *testing.T, h *harness) {
			e := h.entries(appliedMsg)
			if len(e) != 1 || e[0].ContextMap()["from_version"] != h.startVer ||
				e[0].ContextMap()["to_version"] != mustVersion(rulesYAML("", "2")) || e[0].ContextMap()["trigger"] != "file_change" {
				t.Errorf("apply log: %+v", e)
			}
		},
	}, {
		name:    "a trigger applies",
		rules:   rulesYAML("v1", "1"),
		trigger: true,
		edit:    func(h *harness) { writeFile(h.t, h.rulesPath, rulesYAML("v2", "2")) },
		want:    map[string]int{reload.Applied: 1}, reloads: 1,
		newVersion: "v2",
		check: func(t *testing.T, h *harness) {
			e := h.entries(appliedMsg)
			if len(e) != 1 || e[0].ContextMap()["from_version"] != "v1" || e[0].ContextMap()["to_version"] != "v2" ||
				e[0].ContextMap()["trigger"] != "request" {
				t.Errorf("apply log: %+v", e)
			}
		},
	}, {
		name:  "bad YAML is refused, the old version stays",
		rules: rulesYAML("v1", "1"),
		edit:  func(h *harness) { writeFile(h.t, h.rulesPath, "rules: [\n  - {name: x\n") },
		want:  map[string]int{reload.Refused: 1}, reloads: 1,
		check: func(t *testing.T, h *harness) {
			e := h.entries(refusedMsg)
			if len(e) != 1 || e[0].Level != zapcore.ErrorLevel {
				t.Fatalf("refusal log: %+v", h.logs.All())
			}
			f := e[0].ContextMap()
			problems := strings.Join(toStrings(f["problems"]), "|")
			if f["rules_file"] != h.rulesPath || f["active_version"] != "v1" || !strings.Contains(problems, h.rulesPath) || !strings.Contains(problems, "yaml") {
				t.Errorf("refusal log fields: %v", f)
			}
		},
	}, {
		name:  "invalid rules are refused with every problem",
		rules: rulesYAML("v1", "1"),
		edit: func(h *harness) {
			writeFile(h.t, h.rulesPath, `version: v2
rules:
  - {name: "", type: email_open, points: 50}
bands:
  - {name: cold}
  - {name: warm, min: 5}
  - {name: hot, min: 3}
stages:
  - {name: lead}
`)
		},
		want: map[string]int{reload.Refused: 1}, reloads: 1,
		check: func(t *testing.T, h *harness) {
			e := h.entries(refusedMsg)
			if len(e) != 1 {
				t.Fatalf("refusal log: %+v", h.logs.All())
			}
			got := toStrings(e[0].ContextMap()["problems"])
			want := []string{
				"rules.rules[0].name: is empty; name every rule: names appear in explanations",
				"rules.bands[2].min: 3 is not above the previous band's 5; list bands lowest first with rising minimums",
			}
			for _, w := range want {
				if !slices.Contains(got, w) {
					t.Errorf("problems %q lack %q", got, w)
				}
			}
		},
	}, {
		name:  "changed rules under the active version are refused",
		rules: rulesYAML("v1", "1"),
		edit:  func(h *harness) { writeFile(h.t, h.rulesPath, rulesYAML("v1", "2")) },
		want:  map[string]int{reload.Refused: 1}, reloads: 1,
		check: func(t *testing.T, h *harness) {
			e := h.entries(refusedMsg)
			if len(e) != 1 || !strings.HasPrefix(strings.Join(toStrings(e[0].ContextMap()["problems"]), "|"), "rules.version:") {
				t.Errorf("refusal log: %+v", h.logs.All())
			}
		},
	}, {
		name:   "a non-rules change warns and the rules still apply",
		rules:  rulesYAML("v1", "1"),
		config: "log: {level: info}\nbatch: {max_events: 100}\n",
		edit: func(h *harness) {
			writeFile(h.t, h.configPath, "log: {level: debug}\nbatch: {max_events: 200}\n")
			writeFile(h.t, h.rulesPath, rulesYAML("v2", "2"))
		},
		want: map[string]int{reload.Applied: 1}, reloads: 1,
		newVersion: "v2",
		check: func(t *testing.T, h *harness) {
			e := h.entries(restartMsg)
			if len(e) != 1 || e[0].Level != zapcore.WarnLevel {
				t.Fatalf("restart warning: %+v", h.logs.All())
			}
			if got := toStrings(e[0].ContextMap()["sections"]); !slices.Equal(got, []string{"batch", "log"}) {
				t.Errorf("sections = %q, want [batch log]", got)
			}
			if e[0].ContextMap()["config_file"] != h.configPath {
				t.Errorf("warning does not name the config file: %v", e[0].ContextMap())
			}
		},
	}, {
		name:    "a non-rules change alone warns once",
		rules:   rulesYAML("v1", "1"),
		config:  "log: {level: info}\n",
		trigger: true,
		edit:    func(h *harness) { writeFile(h.t, h.configPath, "log: {level: debug}\n") },
		want:    map[string]int{reload.Unchanged: 2}, reloads: 2, // the trigger is sent twice
		check: func(t *testing.T, h *harness) {
			if e := h.entries(restartMsg); len(e) != 1 {
				t.Errorf("%d restart warnings, want 1: %+v", len(e), h.logs.All())
			}
			if h.models.swaps != 0 {
				t.Errorf("%d swaps", h.models.swaps)
			}
		},
	}, {
		name:    "unchanged is quiet",
		rules:   rulesYAML("", "1"),
		config:  "log: {level: info}\n",
		trigger: true,
		edit:    func(h *harness) {},
		want:    map[string]int{reload.Unchanged: 1}, reloads: 1,
		check: func(t *testing.T, h *harness) {
			if loud := h.loud(); len(loud) > 0 {
				t.Errorf("logs above debug: %q", loud)
			}
			if len(h.entries("rules unchanged")) != 1 {
				t.Errorf("no debug log: %+v", h.logs.All())
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			interval := 10 * time.Millisecond
			if tc.trigger {
				interval = time.Hour // only the trigger reloads
			}
			h := start(t, tc.rules, tc.config, interval)
			tc.edit(h)
			if tc.trigger {
				for i := 0; i < tc.reloads; i++ {
					h.trigger <- struct{}{}
					h.waitFor(i + 1)
				}
			}
			h.waitReloads(tc.reloads)
			for _, res := range []string{reload.Applied, reload.Refused, reload.Unchanged} {
				if got := h.results()[res]; got != tc.want[res] {
					t.Errorf("reloads{result=%q} = %d, want %d", res, got, tc.want[res])
				}
			}
			wantVer := tc.newVersion
			if wantVer == "" {
				wantVer = h.startVer
			}
			if got := h.models.Model().Version(); got != wantVer {
				t.Errorf("active version %s, want %s", got, wantVer)
			}
			if got := h.activeInfo(); !slices.Equal(got, []string{wantVer}) {
				t.Errorf("leadscore_rules_info versions = %q, want only %s", got, wantVer)
			}
			if wantSwaps := tc.want[reload.Applied]; h.models.swaps != wantSwaps {
				t.Errorf("%d swaps, want %d", h.models.swaps, wantSwaps)
			}
			tc.check(t, h)
		})
	}
}

// waitFor waits until n reloads have happened, leaving the Reloader running.
func (h *harness) waitFor(n int) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.count(reload.Applied)+h.count(reload.Refused)+h.count(reload.Unchanged) < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("reload %d did not happen within 5s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPollWaitsForAFileToSettle: contents seen once are not loaded; a file
// being written (here: empty, then complete) is read when it stops changing.
func TestPollWaitsForAFileToSettle(t *testing.T) {
	h := start(t, rulesYAML("v1", "1"), "", 50*time.Millisecond)
	writeFile(t, h.rulesPath, "") // mid-write
	time.Sleep(60 * time.Millisecond)
	writeFile(t, h.rulesPath, rulesYAML("v2", "2"))
	h.waitReloads(1)
	if got := h.results(); got[reload.Applied] != 1 || got[reload.Refused] != 0 {
		t.Errorf("results %v, want one applied and none refused", got)
	}
}

// TestTriggerClosed: a closed trigger channel stops the triggers, not Run.
func TestTriggerClosed(t *testing.T) {
	h := start(t, rulesYAML("v1", "1"), "", 10*time.Millisecond)
	close(h.trigger)
	writeFile(t, h.rulesPath, rulesYAML("v2", "2"))
	h.waitReloads(1)
	if got := h.models.Model().Version(); got != "v2" {
		t.Errorf("version %s after a file change, want v2", got)
	}
}

func mustVersion(rules string) string {
	var r config.Rules
	dir, err := os.MkdirTemp("", "rules")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "r.yaml")
	if err := os.WriteFile(p, []byte(rules), 0o600); err != nil {
		panic(err)
	}
	if r, err = config.LoadRules(p); err != nil {
		panic(err)
	}
	return r.VersionOf()
}

func toStrings(v any) []string {
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		out := make([]string, len(x))
		for i := range x {
			out[i], _ = x[i].(string)
		}
		return out
	}
	return nil
}
