package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldPos is where one field of a YAML file is.
type FieldPos struct {
	Field  string // named as FieldError.Field names it: rules.stages[2].from[0]
	Line   int
	Column int
	Value  string // a scalar's text; "" for a mapping or a list
}

// FieldPositions lists every field of a YAML document, in file order, with
// the path a FieldError would name it by. root is the path the document
// stands for: "" for a whole configuration, "rules" for a file holding the
// rules section alone (LEADSCORE_RULES_FILE), whose fields validation names
// rules.….
func FieldPositions(src []byte, root string) ([]FieldPos, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(src)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var out []FieldPos
	if len(doc.Content) > 0 {
		walkFields(doc.Content[0], root, &out, 0)
	}
	return out, nil
}

// walkFields appends n and everything under it. depth bounds alias cycles.
func walkFields(n *yaml.Node, path string, out *[]FieldPos, depth int) {
	if depth > 64 {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			value := ""
			if v.Kind == yaml.ScalarNode {
				value = v.Value
			}
			// A field is where its key is: that is the line a reader looks for.
			*out = append(*out, FieldPos{Field: p, Line: k.Line, Column: k.Column, Value: value})
			if v.Kind != yaml.ScalarNode {
				walkFields(v, p, out, depth+1)
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			value := ""
			if v.Kind == yaml.ScalarNode {
				value = v.Value
			}
			*out = append(*out, FieldPos{Field: p, Line: v.Line, Column: v.Column, Value: value})
			if v.Kind != yaml.ScalarNode {
				walkFields(v, p, out, depth+1)
			}
		}
	}
}

// FieldLine returns the line of field among pos or, when the file leaves
// that field out (an empty name is a missing one), the line of the nearest
// field that encloses it; 0 when the file has none of them.
func FieldLine(pos []FieldPos, field string) int {
	lines := make(map[string]int, len(pos))
	for _, p := range pos {
		if _, dup := lines[p.Field]; !dup {
			lines[p.Field] = p.Line
		}
	}
	for f := field; f != ""; f = parentField(f) {
		if l, ok := lines[f]; ok {
			return l
		}
	}
	return 0
}

// parentField drops the last step of a path: a.b[2].c → a.b[2] → a.b → a.
func parentField(f string) string {
	if strings.HasSuffix(f, "]") {
		if i := strings.LastIndexByte(f, '['); i >= 0 {
			return f[:i]
		}
	}
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		return f[:i]
	}
	return ""
}

// HoldsWholeConfig reports whether src is a whole configuration rather than
// a rules section alone: it has a top-level section other than the rules
// model's own fields, or a rules: key that is a section (a mapping) rather
// than the list of rules.
func HoldsWholeConfig(src []byte) bool {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return false
	}
	sections := yamlNames(reflect.TypeOf(Config{}))
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i].Value, top.Content[i+1]
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if k == "rules" {
			if v.Kind == yaml.MappingNode {
				return true
			}
			continue
		}
		if sections[k] {
			return true
		}
	}
	return false
}

// DescribeType names a configuration type as YAML errors spell it
// ("config.Rule") in words ("a rule") and lists the fields it takes, in
// declaration order. ok is false for a type that is not the configuration's.
func DescribeType(name string) (what string, fields []string, ok bool) {
	d, ok := describedTypes[name]
	if !ok {
		return "", nil, false
	}
	return d.what, yamlFields(d.t), true
}

var describedTypes = map[string]struct {
	what string
	t    reflect.Type
}{
	"config.Config":    {"the configuration", reflect.TypeOf(Config{})},
	"config.Kafka":     {"the kafka section", reflect.TypeOf(Kafka{})},
	"config.Redis":     {"the redis section", reflect.TypeOf(Redis{})},
	"config.HTTP":      {"the http section", reflect.TypeOf(HTTP{})},
	"config.Batch":     {"the batch section", reflect.TypeOf(Batch{})},
	"config.Input":     {"the input section", reflect.TypeOf(Input{})},
	"config.State":     {"the state section", reflect.TypeOf(State{})},
	"config.Log":       {"the log section", reflect.TypeOf(Log{})},
	"config.Rules":     {"the rules section", reflect.TypeOf(Rules{})},
	"config.Rule":      {"a rule", reflect.TypeOf(Rule{})},
	"config.Condition": {"a condition", reflect.TypeOf(Condition{})},
	"config.Cap":       {"a cap", reflect.TypeOf(Cap{})},
	"config.Band":      {"a band", reflect.TypeOf(Band{})},
	"config.Stage":     {"a stage", reflect.TypeOf(Stage{})},
	"config.Criterion": {"an enter_when criterion", reflect.TypeOf(Criterion{})},
}

// yamlFields lists the YAML field names of a struct type, in declaration order.
func yamlFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

func yamlNames(t reflect.Type) map[string]bool {
	m := map[string]bool{}
	for _, n := range yamlFields(t) {
		m[n] = true
	}
	return m
}
