package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// runMainEnv makes the test binary run main() instead of the tests, so a
// test can see the real exit status.
const runMainEnv = "LEADSCORE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// leadscore runs the command in a child process and returns its exit
// status and output.
func leadscore(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run leadscore %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

const defaultYAML = "../../config/default.yaml"

func TestRulesCheckDefaultConfig(t *testing.T) {
	code, stdout, stderr := leadscore(t, "rules", "check", defaultYAML)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"rules version ", " — 26 rules, 3 bands, 6 stages\n",
		"Decay: engagement halves every 30 days without activity; fit never decays.\n",
		"Engagement rules (an event earns the sum of every rule it matches):\n",
		"Fit rules (from the lead's latest attributes; the score is engagement + fit):\n",
		"  warm  enter at 5, leave below 4\n",
		"Stages (a lead moves only along these; if several qualify, the last listed wins):\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestRulesCheckBrokenDefaultConfig(t *testing.T) {
	src, err := os.ReadFile(defaultYAML)
	if err != nil {
		t.Fatal(err)
	}
	const good, bad = "from: [lead, mql, recycled]", "from: [lead, mq, recycled]"
	i := bytes.Index(src, []byte(good))
	if i < 0 {
		t.Fatalf("%q not in default.yaml", good)
	}
	line := bytes.Count(src[:i], []byte("\n")) + 1
	path := filepath.Join(t.TempDir(), "leadscore.yaml")
	writeFile(t, path, strings.Replace(string(src), good, bad, 1))

	code, stdout, stderr := leadscore(t, "rules", "check", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	want := "line " + strconv.Itoa(line) + `: rules.stages[2].from[1]: "mq" is not a declared stage; name a stage declared in rules.stages`
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if stdout != "" {
		t.Errorf("a failed check explained the rules anyway:\n%s", stdout)
	}
}

func TestRulesCheckProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // lines of the error, after the first
	}{
		{"rules file: undeclared stage",
			"rules:\n  - {name: a, type: b, points: 1}\nbands: [{name: cold}]\nstages:\n  - {name: lead}\n  - name: mql\n    from: [mq]\n    min_score: 3\n",
			[]string{
				`line 7: rules.stages[1].from[0]: "mq" is not a declared stage; name a stage declared in rules.stages`,
				`line 7: rules.stages[1].from: stage "mql" cannot be reached from "lead"; list in from a stage that leads back to the first one`,
			}},
		{"rules file: unknown field",
			"rules:\n  - name: a\n    type: b\n    point: 1\nbands: [{name: cold}]\nstages: [{name: lead}]\n",
			[]string{`line 4: rules.rules[0]: unknown field "point" in a rule; use name, type, when, conditions, points, score, first_time_only or cap`}},
		{"rules file: no bands or stages", "rules: []\n",
			[]string{
				`rules.bands: 0 bands; declare 1 to 32 bands, lowest first`,
				`rules.stages: 0 stages; declare 1 to 32 stages, first stage first`,
			}},
		{"whole config: bad exit", "kafka:\n  partitions: 3\nrules:\n  bands:\n    - {name: cold}\n    - {name: warm, min: 5, exit: 6}\n",
			[]string{
				`line 6: rules.bands[1].exit: 6 is above the band's min 5; set exit at or below min: enter at min, leave below exit`,
				`line 3: rules.stages: 0 stages; declare 1 to 32 stages, first stage first`,
				`note: FILE's rules section replaces the built-in rules whole, and it sets no rules.rules, rules.stages.`,
			}},
		{"whole config: unknown field outside the rules", "kafka:\n  partitions: 3\n  partitons: 4\n",
			[]string{`line 3: kafka: unknown field "partitons" in the kafka section; use brokers, group_id, input_topic, output_topic, dead_letter_topic, create_topics, partitions, replication_factor, session_timeout or lag_interval`}},
		{"whole config: condition", "rules:\n  rules:\n    - name: a\n      type: b\n      points: 1\n      conditions:\n        - {property: x, glob: \"[\"}\n",
			[]string{
				`line 7: rules.rules[0].conditions[0].glob: "[" is not a valid pattern; use * ? and [a-z] (path.Match syntax)`,
				// A config's rules section replaces the built-in one whole.
				`line 1: rules.bands: 0 bands; declare 1 to 32 bands, lowest first`,
				`line 1: rules.stages: 0 stages; declare 1 to 32 stages, first stage first`,
				`note: FILE's rules section replaces the built-in rules whole, and it sets no rules.bands, rules.stages.`,
			}},
		{"not YAML", "rules: [\n", []string{`line 2: YAML syntax error near here: did not find expected node content`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rules.yaml")
			writeFile(t, path, tt.yaml)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"rules", "check", path}, &stdout, &stderr)
			if err == nil {
				t.Fatalf("no error; output:\n%s", stdout.String())
			}
			lines := strings.Split(err.Error(), "\n")
			if !strings.HasPrefix(lines[0], path+" ") {
				t.Errorf("first line %q does not name the file", lines[0])
			}
			got := strings.ReplaceAll(strings.Join(lines[1:], "\n"), path, "FILE")
			if got != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", got, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestRulesCheckForms(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"rules file", "half_life: 0\nrules:\n  - {name: a, type: b, points: 2}\nbands: [{name: cold}]\nstages: [{name: lead}]\n",
			"rules version "},
		{"whole config without rules", "kafka:\n  partitions: 3\n",
			"has no rules: section; leadscore runs the built-in rules with it.\nrules version "},
		{"whole config with rules", "log: {level: debug}\nrules:\n  half_life: 0\n  rules: [{name: a, type: b, points: 1}]\n  bands: [{name: cold}]\n  stages: [{name: lead}]\n", "Decay: none; scores never decay.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.yaml")
			writeFile(t, path, tt.yaml)
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{"rules", "check", path}, &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout.String(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, stdout.String())
			}
		})
	}
}

func TestRulesUsage(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"rules"}, "rules: missing subcommand"},
		{[]string{"rules", "lint"}, `rules: unknown subcommand "lint"`},
		{[]string{"rules", "check"}, "rules check: name one FILE"},
		{[]string{"rules", "check", "a.yaml", "b.yaml"}, "rules check: name one FILE"},
		{[]string{"rules", "check", "/nonexistent/rules.yaml"}, "rules check: open /nonexistent/rules.yaml: no such file or directory"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, &stdout, &stderr)
		if err == nil || err.Error() != tt.wantErr {
			t.Errorf("%v: error %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
