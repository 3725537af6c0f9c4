package config

import (
	"fmt"
	"slices"
	"testing"
)

func TestFieldLine(t *testing.T) {
	src := []byte(`kafka:
  brokers: ["a:1"]
rules:
  half_life: 30d
  rules:
    - {name: a, type: b, points: 1, cap: {points: 2, per: 1d}}
    - name: c
      type: d
  stages:
    - {name: lead}
    - name: mql
      from:
        - lead
        - mq
`)
	pos, err := FieldPositions(src, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field string
		want  int
	}{
		{"kafka.brokers", 2},
		{"kafka.brokers[0]", 2},
		{"rules", 3},
		{"rules.half_life", 4},
		{"rules.rules[0].cap.per", 6},
		{"rules.rules[1].type", 8},
		{"rules.rules[1].points", 7}, // missing: the rule it belongs to
		{"rules.rules[1]", 7},
		{"rules.stages[1].from[1]", 14},
		{"rules.stages[1]", 11},
		{"rules.bands[0].name", 3}, // no bands in the file: the rules section
		{"redis.addr", 0},
	}
	for _, tt := range tests {
		if got := FieldLine(pos, tt.field); got != tt.want {
			t.Errorf("FieldLine(%s) = %d, want %d", tt.field, got, tt.want)
		}
	}
}

func TestFieldPositionsOfRulesFile(t *testing.T) {
	src := []byte("bands:\n  - &b {name: cold}\nstages:\n  - *b\n")
	pos, err := FieldPositions(src, "rules")
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, p := range pos {
		fields = append(fields, p.Field)
	}
	want := []string{"rules.bands", "rules.bands[0]", "rules.bands[0].name", "rules.stages", "rules.stages[0]", "rules.stages[0].name"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields %q, want %q", fields, want)
	}
	if pos[2].Value != "cold" || pos[2].Line != 2 {
		t.Errorf("bands[0].name at %+v", pos[2])
	}
	if pos, err := FieldPositions(nil, "rules"); err != nil || len(pos) != 0 {
		t.Errorf("empty file: %v, %v", pos, err)
	}
	if _, err := FieldPositions([]byte("a: [1"), ""); err == nil {
		t.Error("broken YAML: no error")
	}
}

func TestHoldsWholeConfig(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{"rules:\n  rules: []\n", true},     // the rules section of a config
		{"kafka: {brokers: [a:1]}\n", true}, // a config that keeps the default rules
		{"log: {level: info}\nrules: {bands: []}", true},
		{"rules:\n  - {name: a}\nbands: []\n", false}, // a rules file: rules is the list
		{"half_life: 30d\nstages: []\n", false},
		{"", false},
		{"- a\n- b\n", false}, // not a mapping at all
	}
	for _, tt := range tests {
		if got := HoldsWholeConfig([]byte(tt.src)); got != tt.want {
			t.Errorf("HoldsWholeConfig(%q) = %v, want %v", tt.src, got, tt.want)
		}
	}
}

func TestDescribeType(t *testing.T) {
	what, fields, ok := DescribeType("config.Band")
	if !ok || what != "a band" || !slices.Equal(fields, []string{"name", "min", "exit"}) {
		t.Errorf("config.Band: %q %q %v", what, fields, ok)
	}
	if _, _, ok := DescribeType("config.Nope"); ok {
		t.Error("config.Nope described")
	}
	// Every type a YAML error can name is described.
	for _, typ := range []any{Config{}, Kafka{}, Redis{}, HTTP{}, Batch{}, Input{}, State{}, Log{}, Rules{}, Rule{}, Condition{}, Cap{}, Band{}, Stage{}, Criterion{}} {
		name := fmt.Sprintf("%T", typ)
		if _, _, ok := DescribeType(name); !ok {
			t.Errorf("%s not described", name)
		}
	}
}
