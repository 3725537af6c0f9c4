package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/internal/explain"
)

const rulesUsage = `Usage:
  leadscore rules check FILE   validate a rules file and explain the model in plain words

FILE holds the rules section alone (as LEADSCORE_RULES_FILE does) or a whole
configuration (as --config does). Problems are listed with their YAML line;
the exit status is 1 when there are any.
`

func cmdRules(_ context.Context, args []string, stdout, stderr io.Writer) error {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "check":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, rulesUsage)
		return nil
	case "":
		fmt.Fprint(stderr, rulesUsage)
		return errors.New("rules: missing subcommand")
	default:
		fmt.Fprint(stderr, rulesUsage)
		return fmt.Errorf("rules: unknown subcommand %q", sub)
	}
	fs := flag.NewFlagSet("rules check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rulesUsage) }
	files, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(files) != 1 {
		fs.Usage()
		return errors.New("rules check: name one FILE")
	}
	return checkRules(files[0], stdout)
}

// checkRules loads the rules FILE holds, validates them and explains them,
// or returns every problem with its line.
func checkRules(path string, stdout io.Writer) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("rules check: %w", err)
	}
	whole := config.HoldsWholeConfig(src)
	root := "rules" // a rules file's fields are named rules.… in errors, as in a whole configuration
	if whole {
		root = ""
	}
	pos, _ := config.FieldPositions(src, root) // a file that is not YAML fails to load below, with its line

	var rules config.Rules
	if whole {
		noEnv := func(string) (string, bool) { return "", false }
		var cfg config.Config
		cfg, err = config.Load(path, noEnv)
		rules = cfg.Rules
	} else {
		rules, err = config.LoadRules(path)
	}
	if err != nil {
		return problemsError(path, "does not parse", explain.ParseProblems(err, pos))
	}
	// A whole configuration is laid over the defaults: what its rules section
	// leaves out, leadscore takes from the built-in rules.
	var note string
	if whole {
		note = inheritedNote(path, pos)
	}
	if errs := rules.Validate(); len(errs) > 0 {
		problems := explain.Problems(errs, pos)
		if note != "" {
			problems = append(problems, note)
		}
		return problemsError(path, "has invalid rules", problems)
	}
	if note != "" {
		fmt.Fprintln(stdout, note)
	}
	return explain.Rules(stdout, &rules)
}

// inheritedNote names what a whole configuration takes from the built-in
// rules, or returns "".
func inheritedNote(path string, pos []config.FieldPos) string {
	has := func(field string) bool {
		return slices.ContainsFunc(pos, func(p config.FieldPos) bool { return p.Field == field })
	}
	if !has("rules") {
		return fmt.Sprintf("note: %s has no rules: section; leadscore runs the built-in rules with it.", path)
	}
	var missing []string
	for _, f := range []string{"rules.rules", "rules.bands", "rules.stages"} {
		if !has(f) {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("note: %s's rules section replaces the built-in rules whole, and it sets no %s.", path, strings.Join(missing, ", "))
}

func problemsError(path, what string, problems []string) error {
	n := "1 problem"
	if len(problems) != 1 {
		n = fmt.Sprintf("%d problems", len(problems))
	}
	return fmt.Errorf("%s %s (%s):\n%s", path, what, n, strings.Join(problems, "\n"))
}

// parseInterspersed parses flags given before, between or after the
// positional arguments (the flag package alone stops at the first
// positional one), and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		if consumed := len(args) - fs.NArg(); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, fs.Args()...), nil // after --, nothing is a flag
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
