package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadscore/leadscore/config"
)

// envOf returns an env lookup over a fixed map.
func envOf(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultValidates(t *testing.T) {
	c := config.Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	// Load with no file and no environment is the default.
	got, err := config.Load("", envOf(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("Load(\"\", empty env) differs from Default():\n got %+v\nwant %+v", got, c)
	}
}

func TestLoadFileOverridesSomeFields(t *testing.T) {
	path := writeFile(t, "leadscore.yaml", `
kafka:
  group_id: scorers-eu
  input_topic: events-eu
batch:
  max_wait: 50ms
log:
  level: debug
`)
	c, err := config.Load(path, envOf(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := config.Default()
	want.Kafka.GroupID = "scorers-eu"
	want.Kafka.InputTopic = "events-eu"
	want.Batch.MaxWait = 50 * time.Millisecond
	want.Log.Level = "debug"
	// Everything the file does not mention keeps its default.
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", c, want)
	}
}

func TestLoadEnv(t *testing.T) {
	rulesFile := writeFile(t, "rules.yaml", `
version: r-2025-03
rules:
  - {name: demo, type: demo_request, points: 10}
bands:
  - {name: cold}
  - {name: hot, min: 10}
stages:
  - {name: lead}
  - {name: sql, on_events: [demo_request]}
`)
	configFile := writeFile(t, "leadscore.yaml", "kafka:\n  group_id: from-file\n")

	tests := []struct {
		name string
		file string
		env  map[string]string
		want func(c *config.Config) // edits Default() into what Load should give
	}{
		{"string", "", map[string]string{"LEADSCORE_INPUT_TOPIC": "events-v2"},
			func(c *config.Config) { c.Kafka.InputTopic = "events-v2" }},
		{"string trimmed", "", map[string]string{"LEADSCORE_REDIS_ADDR": " redis:6380 "},
			func(c *config.Config) { c.Redis.Addr = "redis:6380" }},
		{"group id", "", map[string]string{"LEADSCORE_GROUP_ID": "scorers"},
			func(c *config.Config) { c.Kafka.GroupID = "scorers" }},
		{"env beats file", configFile, map[string]string{"LEADSCORE_GROUP_ID": "from-env"},
			func(c *config.Config) { c.Kafka.GroupID = "from-env" }},
		{"file without env", configFile, nil,
			func(c *config.Config) { c.Kafka.GroupID = "from-file" }},
		{"int", "", map[string]string{"LEADSCORE_BATCH_MAX_EVENTS": "250"},
			func(c *config.Config) { c.Batch.MaxEvents = 250 }},
		{"bool", "", map[string]string{"LEADSCORE_KAFKA_CREATE_TOPICS": "false"},
			func(c *config.Config) { c.Kafka.CreateTopics = false }},
		{"duration", "", map[string]string{"LEADSCORE_KAFKA_SESSION_TIMEOUT": "45s"},
			func(c *config.Config) { c.Kafka.SessionTimeout = 45 * time.Second }},
		{"comma list", "", map[string]string{"LEADSCORE_KAFKA_BROKERS": "a:1, b:2"},
			func(c *config.Config) { c.Kafka.Brokers = []string{"a:1", "b:2"} }},
		{"comma list drops empty items", "", map[string]string{"LEADSCORE_KAFKA_BROKERS": ",a:1,, b:2 ,"},
			func(c *config.Config) { c.Kafka.Brokers = []string{"a:1", "b:2"} }},
		{"secret", "", map[string]string{"LEADSCORE_REDIS_PASSWORD": "hunter2"},
			func(c *config.Config) { c.Redis.Password = "hunter2" }},
		{"rules file", "", map[string]string{"LEADSCORE_RULES_FILE": rulesFile},
			func(c *config.Config) {
				c.Rules = config.Rules{
					Version: "r-2025-03",
					Rules:   []config.Rule{{Name: "demo", Type: "demo_request", Points: 10}},
					Bands:   []config.Band{{Name: "cold"}, {Name: "hot", Min: 10}},
					Stages:  []config.Stage{{Name: "lead"}, {Name: "sql", OnEvents: []string{"demo_request"}}},
				}
			}},
		{"empty rules file variable is ignored", "", map[string]string{"LEADSCORE_RULES_FILE": ""},
			func(*config.Config) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := config.Load(tc.file, envOf(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := config.Default()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load with %v:\n got %+v\nwant %+v", tc.env, got, want)
			}
		})
	}
}

// envFields lists every field that has an env tag, with its variable.
func envFields(v reflect.Value, out map[string]reflect.Value) {
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			envFields(fv, out)
			continue
		}
		if name := f.Tag.Get("env"); name != "" {
			out[name] = fv
		}
	}
}

func TestEveryEnvVariableApplies(t *testing.T) {
	// Walks the Config so that a new field with an env tag is covered, and
	// checks default.yaml documents its variable.
	var probe config.Config
	fields := map[string]reflect.Value{}
	envFields(reflect.ValueOf(&probe).Elem(), fields)
	if len(fields) < 20 {
		t.Fatalf("found %d env variables, expected every Config field", len(fields))
	}
	for name, fv := range fields {
		t.Run(name, func(t *testing.T) {
			var raw string
			var want any
			switch {
			case fv.Type() == reflect.TypeOf(time.Duration(0)):
				raw, want = "1234ms", 1234*time.Millisecond
			case fv.Kind() == reflect.Int:
				raw, want = "4242", 4242
			case fv.Kind() == reflect.Bool:
				def := config.Default()
				var defFields = map[string]reflect.Value{}
				envFields(reflect.ValueOf(&def).Elem(), defFields)
				b := !defFields[name].Bool()
				raw, want = fmt.Sprint(b), b
			case fv.Kind() == reflect.Slice:
				raw, want = "x:1, y:2", []string{"x:1", "y:2"}
			case fv.Kind() == reflect.String:
				raw, want = "from-env", reflect.ValueOf("from-env").Convert(fv.Type()).Interface()
			default:
				t.Fatalf("no test value for a %s field", fv.Type())
			}
			c, err := config.Load("", envOf(map[string]string{name: raw}))
			if err != nil {
				t.Fatalf("Load with %s=%q: %v", name, raw, err)
			}
			got := map[string]reflect.Value{}
			envFields(reflect.ValueOf(&c).Elem(), got)
			if !reflect.DeepEqual(got[name].Interface(), want) {
				t.Errorf("%s=%q gave %#v, want %#v", name, raw, got[name].Interface(), want)
			}
			if !bytes.Contains(config.DefaultYAML(), []byte(name)) {
				t.Errorf("default.yaml does not mention %s", name)
			}
		})
	}
}

func TestLoadBadEnvNamesVariable(t *testing.T) {
	tests := []struct{ name, value, fix string }{
		{"LEADSCORE_BATCH_MAX_EVENTS", "lots", "whole number"},
		{"LEADSCORE_BATCH_MAX_EVENTS", "", "whole number"},
		{"LEADSCORE_REDIS_DB", "1.5", "whole number"},
		{"LEADSCORE_KAFKA_CREATE_TOPICS", "yes please", "true or false"},
		{"LEADSCORE_BATCH_MAX_WAIT", "20", "duration"},
		{"LEADSCORE_KAFKA_SESSION_TIMEOUT", "soon", "duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			_, err := config.Load("", envOf(map[string]string{tc.name: tc.value}))
			var fe *config.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Load = %v, want a *config.FieldError", err)
			}
			if fe.Field != tc.name || !strings.Contains(err.Error(), tc.name) {
				t.Errorf("error %q names field %q, want %s", err, fe.Field, tc.name)
			}
			if !strings.Contains(fe.Fix, tc.fix) {
				t.Errorf("fix %q does not say %q", fe.Fix, tc.fix)
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error %v does not wrap config.ErrInvalid", err)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name     string
		file     string // contents; "" means a path that does not exist
		rules    bool   // the file is a rules file (LEADSCORE_RULES_FILE)
		wantText []string
	}{
		{"unknown field", "kafka:\n  brokers: [a:1]\n  group_idd: x\n", false,
			[]string{"line 3", "group_idd"}},
		{"unknown section", "log:\n  level: info\nmetrics:\n  port: 9\n", false,
			[]string{"line 3", "metrics"}},
		{"wrong type", "batch:\n  max_events: many\n", false,
			[]string{"line 2", "many"}},
		{"unknown rule field", "rules:\n  - name: a\n    type: b\n    pionts: 3\n", true,
			[]string{"line 4", "pionts"}},
		{"missing config file", "", false, []string{"missing.yaml"}},
		{"missing rules file", "", true, []string{"missing.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "missing.yaml")
			if tc.file != "" {
				path = writeFile(t, "file.yaml", tc.file)
			}
			var err error
			if tc.rules {
				_, err = config.Load("", envOf(map[string]string{"LEADSCORE_RULES_FILE": path}))
			} else {
				_, err = config.Load(path, envOf(nil))
			}
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, s := range tc.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

// fieldErrors returns the FieldErrors that Validate joined.
func fieldErrors(t *testing.T, err error) []*config.FieldError {
	t.Helper()
	if err == nil {
		return nil
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Errorf("Validate error %v does not wrap config.ErrInvalid", err)
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []*config.FieldError
	for _, e := range errs {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("Validate error %v is not a *config.FieldError", e)
		}
		out = append(out, fe)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func TestValidate(t *testing.T) {
	type want struct{ field, fix string }
	tests := []struct {
		name   string
		mutate func(c *config.Config)
		want   []want // every error Validate must return, in order; none for a valid config
	}{
		{"no brokers", func(c *config.Config) { c.Kafka.Brokers = nil },
			[]want{{"kafka.brokers", "LEADSCORE_KAFKA_BROKERS=host:port"}}},
		{"broker without port", func(c *config.Config) { c.Kafka.Brokers = []string{"a:1", "kafka"} },
			[]want{{"kafka.brokers", "host:port"}}},
		{"broker as URL", func(c *config.Config) { c.Kafka.Brokers = []string{"kafka://a:9092"} },
			[]want{{"kafka.brokers", "host:port"}}},
		{"empty group id", func(c *config.Config) { c.Kafka.GroupID = "" },
			[]want{{"kafka.group_id", "1-249 characters"}}},
		{"topic with a space", func(c *config.Config) { c.Kafka.InputTopic = "lead events" },
			[]want{{"kafka.input_topic", "1-249 characters"}}},
		{"topic with a slash", func(c *config.Config) { c.Kafka.OutputTopic = "leads/out" },
			[]want{{"kafka.output_topic", "1-249 characters"}}},
		{"topic of 250 bytes", func(c *config.Config) { c.Kafka.OutputTopic = strings.Repeat("t", 250) },
			[]want{{"kafka.output_topic", "1-249 characters"}}},
		{"topic ..", func(c *config.Config) { c.Kafka.DeadLetterTopic = ".." },
			[]want{{"kafka.dead_letter_topic", "1-249 characters"}}},
		{"topic of 249 bytes", func(c *config.Config) { c.Kafka.OutputTopic = strings.Repeat("t", 249) }, nil},
		{"input topic is the output topic", func(c *config.Config) { c.Kafka.OutputTopic = c.Kafka.InputTopic },
			[]want{{"kafka.input_topic", "distinct names"}}},
		{"input topic is the dead-letter topic", func(c *config.Config) { c.Kafka.DeadLetterTopic = c.Kafka.InputTopic },
			[]want{{"kafka.input_topic", "distinct names"}}},
		{"bands with equal minimums", func(c *config.Config) {
			c.Rules.Bands = []config.Band{{Name: "cold"}, {Name: "warm", Min: 5}, {Name: "hot", Min: 5}}
		}, []want{{"rules.bands[2].min", "lowest first with rising minimums"}}},
		{"bands descending", func(c *config.Config) {
			c.Rules.Bands = []config.Band{{Name: "cold"}, {Name: "warm", Min: 15}, {Name: "hot", Min: 5}}
		}, []want{{"rules.bands[2].min", "lowest first with rising minimums"}}},
		{"stage without a way in", func(c *config.Config) {
			c.Rules.Stages = []config.Stage{{Name: "lead"}, {Name: "mql"}}
		}, []want{{"rules.stages[1]", "give it min_score, on_events or enter_when"}}},
		{"stage with min_score only", func(c *config.Config) {
			c.Rules.Stages = []config.Stage{{Name: "lead"}, {Name: "mql", MinScore: ptr(8.0)}}
		}, nil},
		{"duplicate rule names", func(c *config.Config) { c.Rules.Rules[3].Name = c.Rules.Rules[0].Name },
			[]want{{"rules.rules[3].name", "distinct name"}}},
		{"points NaN", func(c *config.Config) { c.Rules.Rules[0].Points = math.NaN() },
			[]want{{"rules.rules[0].points", "use -1e+06 to 1e+06"}}},
		{"points +Inf", func(c *config.Config) { c.Rules.Rules[0].Points = math.Inf(1) },
			[]want{{"rules.rules[0].points", "use -1e+06 to 1e+06"}}},
		{"points huge negative", func(c *config.Config) { c.Rules.Rules[1].Points = -2e6 },
			[]want{{"rules.rules[1].points", "use -1e+06 to 1e+06"}}},
		{"points at the limits", func(c *config.Config) { c.Rules.Rules[0].Points, c.Rules.Rules[1].Points = 1e6, -1e6 }, nil},
		{"log level unknown", func(c *config.Config) { c.Log.Level = "verbose" },
			[]want{{"log.level", "use debug, info, warn or error"}}},
		{"log level in capitals", func(c *config.Config) { c.Log.Level = "INFO" },
			[]want{{"log.level", "use debug, info, warn or error"}}},
		{"every problem reported", func(c *config.Config) { c.Kafka.Brokers, c.Log.Level = nil, "loud" },
			[]want{{"kafka.brokers", "host:port"}, {"log.level", "debug, info, warn or error"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			tc.mutate(&c)
			err := c.Validate()
			got := fieldErrors(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("Validate() = %v\nwant %d error(s): %v", err, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if got[i].Field != w.field || !strings.Contains(got[i].Fix, w.fix) {
					t.Errorf("error %d = %q\nwant field %q with a fix saying %q", i, got[i], w.field, w.fix)
				}
				if msg := got[i].Error(); !strings.HasPrefix(msg, w.field+": ") || !strings.Contains(msg, w.fix) {
					t.Errorf("error text %q should start with the field and give the fix", msg)
				}
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const pw = "hunter2-s3cret"
	c := config.Default()
	c.Redis.Password = pw
	values := map[string]any{"Secret": c.Redis.Password, "Redis": c.Redis, "*Config": &c, "Config": c}
	for name, v := range values {
		for _, verb := range []string{"%v", "%s", "%+v", "%q", "%x"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, pw) || strings.Contains(out, fmt.Sprintf("%x", pw)) {
				t.Errorf("fmt %s of %s shows the secret: %s", verb, name, out)
			}
		}
	}
	if got := c.Redis.Password.Reveal(); got != pw {
		t.Errorf("Reveal() = %q, want %q", got, pw)
	}
}

func TestVersionOf(t *testing.T) {
	base := config.Default().Rules
	v := base.VersionOf()
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(v) {
		t.Fatalf("VersionOf() = %q, want 12 hex digits", v)
	}

	t.Run("stable", func(t *testing.T) {
		// A rule with several conditions: map order must not leak in.
		r := config.Default().Rules
		r.Rules[0].When = map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}
		first := r.VersionOf()
		for range 20 {
			again := config.Default().Rules
			again.Rules[0].When = map[string]string{"e": "5", "d": "4", "c": "3", "b": "2", "a": "1"}
			if got := again.VersionOf(); got != first {
				t.Fatalf("VersionOf() = %q, then %q for the same rules", first, got)
			}
		}
		if again := config.Default().Rules; again.VersionOf() != v {
			t.Errorf("VersionOf() of equal rules differs: %q vs %q", again.VersionOf(), v)
		}
	})

	changes := []struct {
		name   string
		mutate func(r *config.Rules)
	}{
		{"rule points", func(r *config.Rules) { r.Rules[0].Points++ }},
		{"rule points by a fraction", func(r *config.Rules) { r.Rules[0].Points += 0.001 }},
		{"rule condition", func(r *config.Rules) { r.Rules[0].When = map[string]string{"page": "home"} }},
		{"rule type", func(r *config.Rules) { r.Rules[0].Type = "email_opened" }},
		{"rule removed", func(r *config.Rules) { r.Rules = r.Rules[1:] }},
		{"rules reordered", func(r *config.Rules) { r.Rules[0], r.Rules[1] = r.Rules[1], r.Rules[0] }},
		{"band minimum", func(r *config.Rules) { r.Bands[1].Min++ }},
		{"stage threshold", func(r *config.Rules) { *r.Stages[1].MinScore++ }},
		{"stage events", func(r *config.Rules) { r.Stages[1].OnEvents = append(r.Stages[1].OnEvents, "demo") }},
	}
	for _, tc := range changes {
		t.Run("changes with "+tc.name, func(t *testing.T) {
			r := config.Default().Rules
			tc.mutate(&r)
			if got := r.VersionOf(); got == v {
				t.Errorf("VersionOf() = %q, unchanged after changing the %s", got, tc.name)
			}
		})
	}

	t.Run("explicit version wins", func(t *testing.T) {
		r := config.Default().Rules
		r.Version = "2025-03-spring"
		before := r.VersionOf()
		r.Rules[0].Points++
		if after := r.VersionOf(); before != "2025-03-spring" || after != "2025-03-spring" {
			t.Errorf("VersionOf() = %q, then %q after a change; want the explicit version both times", before, after)
		}
	})
}

func TestDefaultYAMLIsACopy(t *testing.T) {
	b := config.DefaultYAML()
	orig := slices.Clone(b)
	clear(b)
	if !bytes.Equal(config.DefaultYAML(), orig) {
		t.Error("changing DefaultYAML()'s result changed the next one")
	}
}
