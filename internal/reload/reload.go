package reload

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/scorer"
)

// DefaultInterval is how often the files are checked for changes when
// Options.Interval is 0.
const DefaultInterval = 2 * time.Second

// Models holds the active model; *scorer.Scorer satisfies it.
type Models interface {
	Model() *scorer.Model
	SetModel(*scorer.Model)
}

// Options configure a Reloader.
type Options struct {
	// ConfigPath is the YAML file the service was started with; empty when
	// it runs on defaults and the environment.
	ConfigPath string
	// Env is the environment a reload reads, as config.Load does: the
	// LEADSCORE_* overrides and LEADSCORE_RULES_FILE [os.LookupEnv].
	Env func(string) (string, bool)
	// Running is the configuration the service runs with. A reload builds
	// the new model from its non-rules sections (they are not hot) and warns
	// about loaded sections that differ from them.
	Running config.Config
	// Build compiles a model from a configuration (service.BuildModel).
	// Required.
	Build func(config.Config) (*scorer.Model, error)
	// Models is where the active model is read and swapped. Required.
	Models Models
	// Trigger reloads once per value received [nil: file changes only].
	Trigger <-chan struct{}
	// Interval is how often the config and rules files are hashed to detect
	// a change [DefaultInterval].
	Interval time.Duration
	// Registerer receives the metrics [a private registry].
	Registerer prometheus.Registerer
	// Log [zap.NewNop()].
	Log *zap.Logger
}

// Reloader reloads the rules on a trigger or a file change; see the package
// documentation.
type Reloader struct {
	opt       Options
	env       func(string) (string, bool)
	rulesPath string
	files     []string // watched: the config file and the rules file, if set
	sums      []string // their contents' SHA-256 when last read
	rules     config.Rules
	warned    []string // sections last reported as needing a restart
	log       *zap.Logger

	reloads *prometheus.CounterVec
	info    *prometheus.GaugeVec
}

// Results of a reload: the values of leadscore_config_reloads_total's result label.
const (
	Applied   = "applied"   // a new rules version is active
	Refused   = "refused"   // the files did not load or validate: the old version stays
	Unchanged = "unchanged" // the rules version is the active one: nothing swapped
)

// New returns a Reloader, registers its metrics and publishes the active
// rules version in leadscore_rules_info. It reads the watched files once, so
// that only later changes trigger a reload.
func New(o Options) (*Reloader, error) {
	if o.Build == nil || o.Models == nil {
		return nil, errors.New("reload: Build and Models are required")
	}
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	r := &Reloader{opt: o, env: o.Env, rules: o.Running.Rules, log: o.Log}
	if o.ConfigPath != "" {
		r.files = append(r.files, o.ConfigPath)
	}
	if rf, ok := o.Env("LEADSCORE_RULES_FILE"); ok && rf != "" {
		r.rulesPath = rf
		r.files = append(r.files, rf)
	}
	r.sums = r.hash()

	r.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leadscore_config_reloads_total",
		Help: "Configuration reloads (SIGHUP or a changed config or rules file), by result: applied (a new rules version is active), refused (the files did not load or validate: the old rules stay), unchanged (same rules version: nothing swapped).",
	}, []string{"result"})
	r.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "leadscore_rules_info",
		Help: "The active rules version: 1 for its version label, the version transitions carry in rules_version.",
	}, []string{"version"})
	for _, c := range []prometheus.Collector{r.reloads, r.info} {
		if err := o.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("register reload metrics: %w", err)
		}
	}
	for _, res := range []string{Applied, Refused, Unchanged} {
		r.reloads.WithLabelValues(res)
	}
	r.info.WithLabelValues(o.Models.Model().Version()).Set(1)
	return r, nil
}

// Run reloads on every trigger and every change of the watched files until
// ctx ends. A change is noticed within two intervals: the poll that sees new
// contents waits for the next one to see them again. It returns nil when ctx ends; a closed trigger channel only stops
// the triggers.
func (r *Reloader) Run(ctx context.Context) error {
	var tick <-chan time.Time
	if len(r.files) > 0 {
		t := time.NewTicker(r.opt.Interval)
		defer t.Stop()
		tick = t.C
	}
	trigger := r.opt.Trigger
	var pending []string // changed contents waiting to stay the same for one interval
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-trigger:
			if !ok {
				trigger = nil
				continue
			}
			pending = nil
			r.reload("request", r.hash())
		case <-tick:
			// A changed file is read once it has stayed the same for one
			// interval, so a file still being written is not refused.
			switch sums := r.hash(); {
			case slices.Equal(sums, r.sums):
				pending = nil
			case slices.Equal(sums, pending):
				pending = nil
				r.reload("file_change", sums)
			default:
				pending = sums
			}
		}
	}
}

// hash returns the SHA-256 of each watched file's contents (the modification
// time is not enough: a copy keeps it, and two edits may share it). A file
// that cannot be read hashes to its error, so that it appearing again is a
// change too.
func (r *Reloader) hash() []string {
	sums := make([]string, len(r.files))
	for i, f := range r.files {
		b, err := os.ReadFile(f)
		if err != nil {
			sums[i] = "unreadable: " + err.Error()
			continue
		}
		sums[i] = fmt.Sprintf("%x", sha256.Sum256(b))
	}
	return sums
}

// reload loads, validates and applies the configuration files. sums are the
// files' hashes read before loading them: a change made while loading is
// then seen by the next poll.
func (r *Reloader) reload(trigger string, sums []string) {
	r.sums = sums
	log := r.log.With(zap.String("trigger", trigger))
	active := r.opt.Models.Model()

	loaded, err := config.Load(r.opt.ConfigPath, r.env)
	if err == nil {
		if verr := loaded.Validate(); verr != nil {
			err = fmt.Errorf("invalid configuration: %w", verr)
		}
	}
	var model *scorer.Model
	if err == nil {
		// The model takes its non-rules settings (state bounds) from the
		// running configuration: only the rules are hot.
		next := r.opt.Running
		next.Rules = loaded.Rules
		model, err = r.opt.Build(next)
	}
	if err == nil && model.Version() == active.Version() && contentOf(loaded.Rules) != contentOf(r.rules) {
		err = &config.FieldError{Field: "rules.version",
			Problem: fmt.Sprintf("%q is the active version, but the rules differ from it", active.Version()),
			Fix:     "give changed rules a new version, or leave version empty to version them by hash"}
	}
	if err != nil {
		r.reloads.WithLabelValues(Refused).Inc()
		log.Error("config reload refused, the active rules stay", r.fileFields(
			zap.String("active_version", active.Version()), zap.Strings("problems", problems(err)))...)
		return
	}

	restart := restartNeeded(r.opt.Running, loaded)
	if !slices.Equal(restart, r.warned) {
		r.warned = restart
		if len(restart) > 0 {
			log.Warn("config changes need a restart",
				r.fileFields(zap.Strings("sections", restart))...)
		}
	}

	if model.Version() == active.Version() {
		r.reloads.WithLabelValues(Unchanged).Inc()
		log.Debug("rules unchanged", zap.String("version", active.Version()))
		return
	}
	r.opt.Models.SetModel(model)
	r.rules = loaded.Rules
	r.info.DeleteLabelValues(active.Version())
	r.info.WithLabelValues(model.Version()).Set(1)
	r.reloads.WithLabelValues(Applied).Inc()
	log.Info("rules reloaded", zap.String("from_version", active.Version()), zap.String("to_version", model.Version()))
}

func (r *Reloader) fileFields(fs ...zap.Field) []zap.Field {
	if r.opt.ConfigPath != "" {
		fs = append(fs, zap.String("config_file", r.opt.ConfigPath))
	}
	if r.rulesPath != "" {
		fs = append(fs, zap.String("rules_file", r.rulesPath))
	}
	return fs
}

// contentOf identifies the rules by what they say, whatever version they claim.
func contentOf(r config.Rules) string {
	r.Version = ""
	return r.VersionOf()
}

// restartNeeded names the top-level sections (by their YAML key) other than
// the rules whose loaded value differs from the running one.
func restartNeeded(running, loaded config.Config) []string {
	var out []string
	rv, lv := reflect.ValueOf(running), reflect.ValueOf(loaded)
	rulesType := reflect.TypeOf(config.Rules{})
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		if !f.IsExported() || f.Type == rulesType {
			continue
		}
		if !reflect.DeepEqual(rv.Field(i).Interface(), lv.Field(i).Interface()) {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			out = append(out, name)
		}
	}
	return out
}

// problems lists every problem in err, one per entry: config.Validate joins
// one error per field, and YAML errors put one problem per line.
func problems(err error) []string {
	var errs []error
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		errs = joined.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []string
	for _, e := range errs {
		for _, line := range strings.Split(e.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, line)
			}
		}
	}
	return out
}
