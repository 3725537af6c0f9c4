package service_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/internal/httpapi"
	"github.com/leadscore/leadscore/internal/service"
)

// hotRules is a rules file (LEADSCORE_RULES_FILE) in which an email open
// earns openPoints and a lead turns warm at 5.
func hotRules(version string, openPoints int) string {
	return fmt.Sprintf(`version: %s
rules:
  - {name: email-open, type: email_open, points: %d}
bands:
  - {name: cold}
  - {name: warm, min: 5}
stages:
  - {name: lead}
  - {name: mql, min_score: 50}
`, version, openPoints)
}

// writeAtomically replaces a file by renaming a complete copy over it.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestHotReload changes the rules of a running service on real Kafka and
// Redis: a new version applies from the next batch, without a restart, and
// its transitions carry the new rules_version; a bad file is refused and the
// version in use stays.
func TestHotReload(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	rulesPath := filepath.Join(t.TempDir(), "rules.yaml")
	writeAtomically(t, rulesPath, hotRules("it-v1", 1))
	e.cfg.Rules = must(config.LoadRules(rulesPath)) // as config.Load does at start-up
	reload := make(chan struct{})
	httpAddr, stop := e.startWith(service.Options{
		Reload: reload,
		Env:    envOf(e.cfg, map[string]string{"LEADSCORE_RULES_FILE": rulesPath}),
		// Only the trigger reloads, so the counts below are exact; the
		// Reloader's unit tests cover file polling.
		ReloadInterval: time.Hour,
	})
	defer stop()
	trigger := func() {
		t.Helper()
		select {
		case reload <- struct{}{}:
		case <-time.After(10 * time.Second):
			t.Fatal("the reloader did not take the trigger within 10s")
		}
	}
	lead := func(id string) httpapi.LeadView {
		t.Helper()
		var v httpapi.LeadView
		if code := getJSON(t, "http://"+httpAddr+"/v1/leads/"+id, &v); code != 200 {
			t.Fatalf("GET /v1/leads/%s = %d", id, code)
		}
		return v
	}
	waitMetrics(t, httpAddr, `leadscore_rules_info{version="it-v1"} 1`)

	// it-v1: three opens make 3 points; lead-a stays cold.
	e.produce(record(event("a-1", "lead-a", "email_open")), record(event("a-2", "lead-a", "email_open")),
		record(event("a-3", "lead-a", "email_open")))
	e.waitNoLag(60 * time.Second)
	if got := e.readAll(e.cfg.Kafka.OutputTopic); len(got) != 0 {
		t.Fatalf("transitions under it-v1: %+v", transitions(t, got))
	}
	if v := lead("lead-a"); v.Score != 3 || v.Band != "cold" {
		t.Fatalf("lead-a under it-v1: score %v, band %s; want 3, cold", v.Score, v.Band)
	}

	// it-v2: an open earns 2. Once applied, one more open takes lead-a to 5.
	writeAtomically(t, rulesPath, hotRules("it-v2", 2))
	trigger()
	waitMetrics(t, httpAddr, `leadscore_config_reloads_total{result="applied"} 1`, `leadscore_rules_info{version="it-v2"} 1`)
	e.produce(record(event("a-4", "lead-a", "email_open")))
	e.waitNoLag(60 * time.Second)
	trs := transitions(t, e.readAll(e.cfg.Kafka.OutputTopic))
	if len(trs) != 1 {
		t.Fatalf("transitions after the reload: %+v, want lead-a cold → warm", trs)
	}
	if tr := trs[0]; tr.LeadID != "lead-a" || tr.Kind != "band" || tr.From != "cold" || tr.To != "warm" ||
		tr.Score != 5 || tr.RulesVersion != "it-v2" || tr.CauseEventID != "a-4" {
		t.Errorf("transition %+v, want lead-a band cold → warm, score 5, rules it-v2, caused by a-4", tr)
	}

	// A file that does not validate (an open would earn 100, and the bands
	// are out of order) is refused: it-v2 stays.
	writeAtomically(t, rulesPath, `version: it-v3
rules:
  - {name: email-open, type: email_open, points: 100}
bands:
  - {name: cold}
  - {name: warm, min: 5}
  - {name: hot, min: 3}
stages:
  - {name: lead}
`)
	trigger()
	waitMetrics(t, httpAddr, `leadscore_config_reloads_total{result="refused"} 1`)
	e.produce(record(event("a-5", "lead-a", "email_open")),
		record(event("b-1", "lead-b", "email_open")), record(event("b-2", "lead-b", "email_open")),
		record(event("b-3", "lead-b", "email_open")))
	e.waitNoLag(60 * time.Second)
	if v := lead("lead-a"); v.Score != 7 || v.Band != "warm" || v.Events != 5 {
		t.Errorf("lead-a after the refused file: score %v, band %s, %d events; want 7 (it-v2's +2), warm, 5", v.Score, v.Band, v.Events)
	}
	trs = transitions(t, e.readAll(e.cfg.Kafka.OutputTopic))
	var b []string
	for _, tr := range trs {
		if tr.LeadID == "lead-b" {
			b = append(b, fmt.Sprintf("%s %s>%s score %v rules %s cause %s", tr.Kind, tr.From, tr.To, tr.Score, tr.RulesVersion, tr.CauseEventID))
		}
	}
	if want := "band cold>warm score 6 rules it-v2 cause b-3"; len(trs) != 2 || strings.Join(b, "|") != want {
		t.Errorf("lead-b transitions %q (of %d in all), want [%s] (of 2)", b, len(trs), want)
	}

	body := metricsText(t, httpAddr)
	for _, want := range []string{
		`leadscore_config_reloads_total{result="applied"} 1`,
		`leadscore_config_reloads_total{result="refused"} 1`,
		`leadscore_config_reloads_total{result="unchanged"} 0`,
		`leadscore_rules_info{version="it-v2"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(body, "leadscore_config_reloads_total"))
		}
	}
	for _, gone := range []string{`leadscore_rules_info{version="it-v1"}`, `leadscore_rules_info{version="it-v3"}`} {
		if strings.Contains(body, gone) {
			t.Errorf("metrics still show %s:\n%s", gone, grepLines(body, "leadscore_rules_info"))
		}
	}
}

// waitMetrics waits until /metrics shows every one of the lines.
func waitMetrics(t *testing.T, httpAddr string, lines ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := metricsText(t, httpAddr)
		missing := ""
		for _, l := range lines {
			if !strings.Contains(body, l) {
				missing = l
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %s:\n%s", missing, grepLines(body, "leadscore_"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
