package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the documented default configuration file.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Config is leadscore's whole configuration. Defaults live in default.yaml;
// each field's env tag names the variable that overrides it.
type Config struct {
	Kafka Kafka `yaml:"kafka"`
	Redis Redis `yaml:"redis"`
	HTTP  HTTP  `yaml:"http"`
	Batch Batch `yaml:"batch"`
	Input Input `yaml:"input"`
	State State `yaml:"state"`
	Log   Log   `yaml:"log"`
	Rules Rules `yaml:"rules"`
}

// Kafka configures the consumer group and the three topics.
type Kafka struct {
	Brokers           []string      `yaml:"brokers" env:"LEADSCORE_KAFKA_BROKERS"`
	GroupID           string        `yaml:"group_id" env:"LEADSCORE_GROUP_ID"`
	InputTopic        string        `yaml:"input_topic" env:"LEADSCORE_INPUT_TOPIC"`
	OutputTopic       string        `yaml:"output_topic" env:"LEADSCORE_OUTPUT_TOPIC"`
	DeadLetterTopic   string        `yaml:"dead_letter_topic" env:"LEADSCORE_DLQ_TOPIC"`
	CreateTopics      bool          `yaml:"create_topics" env:"LEADSCORE_KAFKA_CREATE_TOPICS"`
	Partitions        int           `yaml:"partitions" env:"LEADSCORE_KAFKA_PARTITIONS"`
	ReplicationFactor int           `yaml:"replication_factor" env:"LEADSCORE_KAFKA_REPLICATION_FACTOR"`
	SessionTimeout    time.Duration `yaml:"session_timeout" env:"LEADSCORE_KAFKA_SESSION_TIMEOUT"`
	LagInterval       time.Duration `yaml:"lag_interval" env:"LEADSCORE_KAFKA_LAG_INTERVAL"`
}

// Redis configures the state store.
type Redis struct {
	Addr      string `yaml:"addr" env:"LEADSCORE_REDIS_ADDR"`
	Username  string `yaml:"username" env:"LEADSCORE_REDIS_USERNAME"`
	Password  Secret `yaml:"password" env:"LEADSCORE_REDIS_PASSWORD"`
	DB        int    `yaml:"db" env:"LEADSCORE_REDIS_DB"`
	KeyPrefix string `yaml:"key_prefix" env:"LEADSCORE_REDIS_KEY_PREFIX"`
}

// HTTP configures the listener for metrics, health and the lead API.
type HTTP struct {
	Addr string `yaml:"addr" env:"LEADSCORE_HTTP_ADDR"`
	// PProf serves Go's profiler under /debug/pprof/ (off by default: it
	// exposes internals and costs CPU while a profile runs).
	PProf bool `yaml:"pprof" env:"LEADSCORE_HTTP_PPROF"`
}

// Batch bounds how many records one scoring step handles.
type Batch struct {
	MaxEvents int           `yaml:"max_events" env:"LEADSCORE_BATCH_MAX_EVENTS"`
	MaxWait   time.Duration `yaml:"max_wait" env:"LEADSCORE_BATCH_MAX_WAIT"`
	// InFlight is how many batches may be scored ahead of publishing (one
	// more may be committing): batch N+1 is decoded and scored while batch N
	// is being published. 1 scores a batch only once the previous one is
	// published.
	InFlight int `yaml:"in_flight" env:"LEADSCORE_BATCH_IN_FLIGHT"`
}

// Input bounds what an input record may be.
type Input struct {
	MaxRecordBytes int           `yaml:"max_record_bytes" env:"LEADSCORE_INPUT_MAX_RECORD_BYTES"`
	MaxFutureSkew  time.Duration `yaml:"max_future_skew" env:"LEADSCORE_INPUT_MAX_FUTURE_SKEW"`
}

// State bounds what is kept per lead.
type State struct {
	DedupeWindow int `yaml:"dedupe_window" env:"LEADSCORE_STATE_DEDUPE_WINDOW"`
	History      int `yaml:"history" env:"LEADSCORE_STATE_HISTORY"`
	// DecayInterval is how often the decay scheduler looks for leads whose
	// band time alone has changed.
	DecayInterval time.Duration `yaml:"decay_interval" env:"LEADSCORE_STATE_DECAY_INTERVAL"`
}

// Log configures zap.
type Log struct {
	Level  string `yaml:"level" env:"LEADSCORE_LOG_LEVEL"`
	Format string `yaml:"format" env:"LEADSCORE_LOG_FORMAT"`
}

// Rules is the scoring model: what each event earns, how scores decay, the
// bands and the stages.
type Rules struct {
	Version string `yaml:"version"`
	// HalfLife is how long the engagement score takes to halve with no new
	// activity; 0 turns decay off. Fit scores never decay.
	HalfLife Duration `yaml:"half_life,omitempty"`
	Rules    []Rule   `yaml:"rules"`
	Bands    []Band   `yaml:"bands"`
	Stages   []Stage  `yaml:"stages"`
}

// Score kinds a rule can feed.
const (
	ScoreEngagement = "engagement"
	ScoreFit        = "fit"
)

// Rule gives Points to every event of Type (or any type, for "*") whose
// properties satisfy When (equality) and every Condition.
type Rule struct {
	Name       string            `yaml:"name"`
	Type       string            `yaml:"type"`
	When       map[string]string `yaml:"when,omitempty"`
	Conditions []Condition       `yaml:"conditions,omitempty"`
	Points     float64           `yaml:"points"`
	// Score is "engagement" (the default: behaviour, decays) or "fit" (who
	// the lead is: the lead's latest values of the properties fit rules
	// name, taken from events of the rule's Type — "*" for any event; does
	// not decay, and a changed job title re-scores).
	Score string `yaml:"score,omitempty"`
	// FirstTimeOnly scores the rule once per lead, ever.
	FirstTimeOnly bool `yaml:"first_time_only,omitempty"`
	// Cap limits what the rule gives one lead per window of time.
	Cap *Cap `yaml:"cap,omitempty"`
}

// Condition tests one event property. Every operator given must hold.
type Condition struct {
	Property string   `yaml:"property"`
	Equals   *string  `yaml:"equals,omitempty"`
	Prefix   string   `yaml:"prefix,omitempty"`
	Glob     string   `yaml:"glob,omitempty"` // path.Match syntax: * ? [a-z]
	In       []string `yaml:"in,omitempty"`
	Exists   *bool    `yaml:"exists,omitempty"`
	GT       *float64 `yaml:"gt,omitempty"`
	GTE      *float64 `yaml:"gte,omitempty"`
	LT       *float64 `yaml:"lt,omitempty"`
	LTE      *float64 `yaml:"lte,omitempty"`
}

// Cap bounds a rule's points per lead per window (windows are aligned on
// the Unix epoch, by the events' occurred_at).
type Cap struct {
	Points float64  `yaml:"points"`
	Per    Duration `yaml:"per"`
}

// Band is entered when the score reaches Min and left when it falls below
// Exit (default Min): Exit below Min is hysteresis, so a lead hovering at a
// boundary does not flap. The first band has neither.
type Band struct {
	Name string   `yaml:"name"`
	Min  float64  `yaml:"min"`
	Exit *float64 `yaml:"exit,omitempty"`
}

// Stage is a lifecycle stage. The first stage is where every lead starts.
// A lead moves to a stage when one of its entry criteria holds and its
// current stage is listed in From; when several stages qualify, the one
// declared last wins.
type Stage struct {
	Name string `yaml:"name"`
	// From lists the stages a lead may enter this one from: these are the
	// only moves there are. Default: every stage declared before it.
	From []string `yaml:"from,omitempty"`
	// MinScore and OnEvents are shorthands: each adds one entry criterion.
	MinScore *float64 `yaml:"min_score,omitempty"`
	OnEvents []string `yaml:"on_events,omitempty"`
	// EnterWhen lists further entry criteria; any one suffices.
	EnterWhen []Criterion `yaml:"enter_when,omitempty"`
	// ResetEngagement sets the engagement score to 0 when a lead enters the
	// stage (fit stays): a lead sent back to nurture must earn its way back
	// with new activity instead of re-qualifying on its old score.
	ResetEngagement bool `yaml:"reset_engagement,omitempty"`
}

// Criterion holds when all of its parts do.
type Criterion struct {
	MinScore *float64 `yaml:"min_score,omitempty"` // the combined score is at least this
	OnEvents []string `yaml:"on_events,omitempty"` // the event being applied is of one of these types
	OnRules  []string `yaml:"on_rules,omitempty"`  // the event being applied matched one of these rules
	// RecentEvents and Within: an event of one of these types happened
	// within Within before the event being applied.
	RecentEvents []string `yaml:"recent_events,omitempty"`
	Within       Duration `yaml:"within,omitempty"`
}

// Duration is a time.Duration that YAML and the environment may also write
// in days ("30d", "1d12h").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration parses "30d", "1d12h", "90m", "2h45m".
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	orig := s
	var days int64
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("invalid duration %q: use forms like 30d, 12h, 90m", s)
		}
		days, s = n, s[i+1:]
		if s == "" {
			return Duration(time.Duration(days) * 24 * time.Hour), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use forms like 30d, 12h, 90m", orig)
	}
	return Duration(time.Duration(days)*24*time.Hour + d), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String formats days when whole.
func (d Duration) String() string {
	t := time.Duration(d)
	if t != 0 && t%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", t/(24*time.Hour))
	}
	return t.String()
}

// Secret is a string that never prints.
type Secret string

func (Secret) String() string { return "[redacted]" }

// GoString keeps %#v from printing the value.
func (Secret) GoString() string { return `"[redacted]"` }

// MarshalText keeps JSON (and zap.Any) from printing the value.
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// Default returns the default configuration.
func Default() Config {
	var c Config
	if err := decodeYAML(defaultYAML, &c); err != nil {
		panic(fmt.Sprintf("config: embedded default.yaml: %v", err)) // a build defect, caught by tests
	}
	return c
}

// Load builds the configuration: defaults, then the YAML file at path (if
// path is not empty; its rules section, if any, replaces the default model
// whole), then the LEADSCORE_RULES_FILE rules file, then the environment.
// It does not validate.
func Load(path string, env func(string) (string, bool)) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read config: %w", err)
		}
		if err := decodeYAML(b, &c); err != nil {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
		// A file's rules section replaces the default model whole: merged,
		// its rules would meet default stages naming rules it does not have.
		var probe struct {
			Rules yaml.Node `yaml:"rules"`
		}
		if err := yaml.Unmarshal(b, &probe); err == nil && probe.Rules.Kind != 0 {
			c.Rules = Rules{}
			if err := probe.Rules.Decode(&c.Rules); err != nil {
				return c, fmt.Errorf("config %s: %w", path, err)
			}
		}
	}
	if rf, ok := env("LEADSCORE_RULES_FILE"); ok && rf != "" {
		r, err := LoadRules(rf)
		if err != nil {
			return c, fmt.Errorf("LEADSCORE_RULES_FILE: %w", err)
		}
		c.Rules = r
	}
	if err := applyEnv(reflect.ValueOf(&c).Elem(), env); err != nil {
		return c, err
	}
	return c, nil
}

// LoadRules reads a file holding the rules section alone.
func LoadRules(path string) (Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Rules{}, fmt.Errorf("read rules: %w", err)
	}
	r, err := ParseRules(b)
	if err != nil {
		return Rules{}, fmt.Errorf("rules %s: %w", path, err)
	}
	return r, nil
}

// ParseRules decodes a rules section from YAML. It does not validate.
func ParseRules(b []byte) (Rules, error) {
	var r Rules
	err := decodeYAML(b, &r)
	return r, err
}

// decodeYAML decodes strictly: an unknown field is a typo, not something to
// ignore. An empty document changes nothing.
func decodeYAML(b []byte, into any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// applyEnv sets every field that has an env tag and a variable in env.
func applyEnv(v reflect.Value, env func(string) (string, bool)) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, env); err != nil {
				return err
			}
			continue
		}
		name := f.Tag.Get("env")
		if name == "" {
			continue
		}
		raw, ok := env(name)
		if !ok {
			continue
		}
		if err := setFromString(fv, raw); err != nil {
			return &FieldError{Field: name, Problem: fmt.Sprintf("cannot use %q: %v", shorten(raw, f.Type), err),
				Fix: "set it to a valid " + kindName(f.Type)}
		}
	}
	return nil
}

func setFromString(fv reflect.Value, raw string) error {
	raw = strings.TrimSpace(raw)
	switch {
	case fv.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
	case fv.Kind() == reflect.String:
		fv.SetString(raw)
	case fv.Kind() == reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return errors.New("not a whole number")
		}
		fv.SetInt(int64(n))
	case fv.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not true or false")
		}
		fv.SetBool(b)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		var out []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		fv.Set(reflect.ValueOf(out))
	default:
		return fmt.Errorf("unsupported field kind %s", fv.Kind())
	}
	return nil
}

func shorten(raw string, t reflect.Type) string {
	if t.Name() == "Secret" {
		return "[redacted]"
	}
	if len(raw) > 40 {
		return raw[:40] + "…"
	}
	return raw
}

func kindName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration such as 500ms, 30s or 5m"
	case t.Kind() == reflect.Int:
		return "whole number"
	case t.Kind() == reflect.Bool:
		return "boolean (true or false)"
	case t.Kind() == reflect.Slice:
		return "comma-separated list"
	}
	return "value"
}
