package config

import (
	"bytes"
	"testing"
)

// rulesSection cuts the rules section out of default.yaml and unindents it,
// so the fuzzer starts from the model that ships.
func rulesSection(t testing.TB) []byte {
	t.Helper()
	y := DefaultYAML()
	i := bytes.Index(y, []byte("\nrules:\n"))
	if i < 0 {
		t.Fatal("default.yaml has no rules section")
	}
	var out bytes.Buffer
	for _, line := range bytes.Split(y[i+len("\nrules:\n"):], []byte("\n")) {
		out.Write(bytes.TrimPrefix(line, []byte("  ")))
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// ruleSeeds are the seeds FuzzParseRules (and scorer's FuzzNewModel) start
// from: the default model and variants that touch every field and limit.
func ruleSeeds(t testing.TB) [][]byte {
	return [][]byte{
		rulesSection(t),
		[]byte(""),
		[]byte("rules: []\nbands: [{name: cold}]\nstages: [{name: lead}]\n"),
		[]byte("half_life: 1h\nrules: [{name: a, type: t, points: 1e6, cap: {points: 1e6, per: 366d}}]\nbands: [{name: cold}, {name: hot, min: 1e300}]\nstages: [{name: lead}, {name: mql, min_score: -1e300}]\n"),
		[]byte("rules: [{name: a, type: '*', score: fit, points: -3, conditions: [{property: p, glob: '[a-'}]}]\nbands: [{name: c}]\nstages: [{name: lead}]\n"),
		[]byte("bands: [{name: c}, {name: w, min: 5, exit: 4}]\nstages: [{name: lead}, {name: mql, from: [lead, recycled], on_events: [x]}, {name: recycled, from: [mql], on_events: [y]}]\n"),
		[]byte("stages: [{name: lead}, {name: a, from: [b], min_score: 1}, {name: b, from: [a], min_score: 2}]\nbands: [{name: c}]\n"),
		[]byte("half_life: 1000000d\nrules: [{name: a, type: t, points: .nan}]\nbands: [{name: c, exit: .inf}]\nstages: [{name: lead}]\n"),
		[]byte("rules:\n  - name: r\n    type: t\n    points: 2\n    when: {k: v}\n    conditions: [{property: n, gt: 1, lte: 10, in: [a, b], exists: true, prefix: x, equals: y}]\n    first_time_only: true\nbands: [{name: c}]\nstages: [{name: lead}, {name: s, enter_when: [{on_rules: [r], recent_events: [t], within: 1d, min_score: 3}]}]\n"),
		[]byte("&a [*a]"),
		[]byte("rules: {name: x}"),
	}
}

// FuzzParseRules feeds arbitrary YAML to the rules parser and validator: they
// must never panic, and whatever they accept must describe and version
// without panicking either. (That accepted rules compile is checked by
// scorer's FuzzNewModel: config cannot import scorer.)
func FuzzParseRules(f *testing.F) {
	for _, s := range ruleSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRules(b)
		if err != nil {
			return
		}
		errs := r.Validate()
		for _, e := range errs {
			if e == nil || e.Error() == "" {
				t.Fatalf("empty validation error in %v", errs)
			}
		}
		_ = r.VersionOf()
		for i := range r.Stages {
			_ = r.StageFrom(i)
		}
	})
}

// TestRulesSectionSeedParses keeps the seed honest: if default.yaml's layout
// changes, the fuzzer must still start from the real model.
func TestRulesSectionSeedParses(t *testing.T) {
	r, err := ParseRules(rulesSection(t))
	if err != nil {
		t.Fatal(err)
	}
	if errs := r.Validate(); len(errs) > 0 || len(r.Rules) < 10 {
		t.Fatalf("rules section of default.yaml: %d rules, errors %v", len(r.Rules), errs)
	}
}
