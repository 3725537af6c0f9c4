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
}

// Batch bounds how many records one scoring step handles.
type Batch struct {
	MaxEvents int           `yaml:"max_events" env:"LEADSCORE_BATCH_MAX_EVENTS"`
	MaxWait   time.Duration `yaml:"max_wait" env:"LEADSCORE_BATCH_MAX_WAIT"`
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
}

// Log configures zap.
type Log struct {
	Level  string `yaml:"level" env:"LEADSCORE_LOG_LEVEL"`
	Format string `yaml:"format" env:"LEADSCORE_LOG_FORMAT"`
}

// Rules is the scoring model: what each event earns, the bands and the stages.
type Rules struct {
	Version string  `yaml:"version"`
	Rules   []Rule  `yaml:"rules"`
	Bands   []Band  `yaml:"bands"`
	Stages  []Stage `yaml:"stages"`
}

// Rule gives Points to every event of Type whose properties equal all of When.
type Rule struct {
	Name   string            `yaml:"name"`
	Type   string            `yaml:"type"`
	When   map[string]string `yaml:"when,omitempty"`
	Points float64           `yaml:"points"`
}

// Band is entered when the score is at least Min (the first band has no minimum).
type Band struct {
	Name string  `yaml:"name"`
	Min  float64 `yaml:"min"`
}

// Stage is reached when the score is at least MinScore or an event of one of
// the OnEvents types arrives. The first stage is where every lead starts.
type Stage struct {
	Name     string   `yaml:"name"`
	MinScore *float64 `yaml:"min_score,omitempty"`
	OnEvents []string `yaml:"on_events,omitempty"`
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
// path is not empty), then the LEADSCORE_RULES_FILE rules file, then the
// environment. It does not validate.
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
	var r Rules
	if err := decodeYAML(b, &r); err != nil {
		return Rules{}, fmt.Errorf("rules %s: %w", path, err)
	}
	return r, nil
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
