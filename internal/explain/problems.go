package explain

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/leadscore/leadscore/config"
)

// Problems turns validation errors into lines that name the YAML line of
// the field at fault, where the file has it (or the nearest field that
// encloses it): "line 14: rules.stages[2].from[0]: "mq" is not a declared
// stage; name a stage declared in rules.stages". pos comes from
// config.FieldPositions.
func Problems(errs []error, pos []config.FieldPos) []string {
	out := make([]string, 0, len(errs))
	for _, err := range errs {
		line := 0
		if fe, ok := errors.AsType[*config.FieldError](err); ok {
			line = config.FieldLine(pos, fe.Field)
		}
		out = append(out, atLine(line, err.Error()))
	}
	return out
}

var (
	// The messages of go.yaml.in/yaml/v3 and of config.Duration, which carry
	// the line but not the field.
	lineMsg       = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownField  = regexp.MustCompile("^field (\\S+) not found in type (\\S+)$")
	cannotDecode  = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")
	quotedInvalid = regexp.MustCompile(`^invalid duration "([^"]*)"`)
)

// ParseProblems turns an error from config.Load or config.LoadRules into
// lines naming the YAML line and, where it can be told, the field: "line 7:
// rules.rules[2].pointz: unknown field in a rule; use name, type, …". pos
// may be nil (a file that is not YAML at all).
func ParseProblems(err error, pos []config.FieldPos) []string {
	var msgs []string
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		msgs = te.Errors
	} else {
		// Drop the "rules FILE: " the loaders put in front (the caller names
		// the file), down to the error that names the line, if one does.
		msgs = []string{err.Error()}
		for e := err; e != nil; e = errors.Unwrap(e) {
			if lineMsg.MatchString(e.Error()) {
				msgs = []string{e.Error()}
				break
			}
		}
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, parseProblem(m, pos))
	}
	return out
}

// parserErrors are the YAML parser's messages, which go.yaml.in/yaml/v3
// numbers from 0 (its scanner's, from 1): one is added to them.
var parserErrors = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
}

func parseProblem(msg string, pos []config.FieldPos) string {
	sm := lineMsg.FindStringSubmatch(msg)
	if sm == nil {
		return strings.TrimPrefix(msg, "yaml: ")
	}
	line, _ := strconv.Atoi(sm[1])
	text := sm[2]
	if strings.HasPrefix(msg, "yaml: ") { // a syntax error: the line is where the broken part starts
		if parserErrors[text] {
			line++
		}
		return atLine(line, "YAML syntax error near here: "+text)
	}
	if m := unknownField.FindStringSubmatch(text); m != nil {
		key := m[1]
		what, fields, ok := config.DescribeType(m[2])
		if !ok {
			what = "this section"
		}
		text = fmt.Sprintf("unknown field %q in %s", key, what)
		if len(fields) > 0 {
			text += "; use " + orList(fields)
		}
		f := fieldAt(pos, line, func(p config.FieldPos) bool { return lastStep(p.Field) == key })
		if parent := strings.TrimSuffix(f, "."+key); parent != "" && parent != f {
			text = parent + ": " + text
		}
		return atLine(line, text)
	}
	if m := cannotDecode.FindStringSubmatch(text); m != nil {
		tag, value, into := m[1], m[2], m[3]
		found := map[string]string{"map": "a mapping", "seq": "a list"}[tag]
		if found == "" {
			found = strconv.Quote(value)
		}
		text = fmt.Sprintf("%s is not %s", found, goTypeWords(into))
		f := fieldAt(pos, line, func(p config.FieldPos) bool { return tag != "map" && tag != "seq" && p.Value == value })
		if f != "" {
			text = f + ": " + text
		}
		return atLine(line, text)
	}
	if m := quotedInvalid.FindStringSubmatch(text); m != nil {
		if !strings.Contains(text, "use forms") { // config.ParseDuration gives the forms for some mistakes only
			text += ": use forms like 30d, 12h, 90m"
		}
		if f := fieldAt(pos, line, func(p config.FieldPos) bool { return strings.Contains(p.Value, m[1]) }); f != "" {
			text = f + ": " + text
		}
	}
	return atLine(line, text)
}

// fieldAt returns the first field on line that ok accepts, or "" when
// none or several do (a guess would mislead).
func fieldAt(pos []config.FieldPos, line int, ok func(config.FieldPos) bool) string {
	found := ""
	for _, p := range pos {
		if p.Line == line && ok(p) {
			if found != "" {
				return ""
			}
			found = p.Field
		}
	}
	return found
}

func lastStep(field string) string {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		return field[i+1:]
	}
	return field
}

// goTypeWords says what a Go type expects, for people who write YAML.
func goTypeWords(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping (name: value)"
	case t == "float64" || t == "float32":
		return "a number"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	case t == "time.Duration":
		return "a duration such as 30s or 5m"
	}
	t = strings.TrimPrefix(t, "*")
	if what, _, ok := config.DescribeType(t); ok {
		return what + " (a mapping)"
	}
	return "a " + t
}

func atLine(line int, text string) string {
	if line <= 0 {
		return text
	}
	return fmt.Sprintf("line %d: %s", line, text)
}
