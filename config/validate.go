package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"path"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every validation error, so callers can tell a
// configuration mistake from an I/O failure.
var ErrInvalid = errors.New("invalid configuration")

// FieldError names the field at fault, what is wrong and how to fix it.
type FieldError struct {
	Field   string // the YAML path (kafka.brokers) or the variable (LEADSCORE_…)
	Problem string
	Fix     string
}

func (e *FieldError) Error() string {
	if e.Fix == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Problem)
	}
	return fmt.Sprintf("%s: %s; %s", e.Field, e.Problem, e.Fix)
}

func (e *FieldError) Unwrap() error { return ErrInvalid }

// Limits that keep a hostile or mistaken configuration from hurting the service.
const (
	maxPoints     = 1e6
	maxRules      = 10000
	maxLevels     = 32
	maxNameBytes  = 64
	maxDedupe     = 1024
	maxHistory    = 256
	maxBatch      = 100000
	maxPartitions = 10000
	maxConditions = 32
)

const (
	// maxTypeBytes is the decoder's limit on an event's type
	// (events.DefaultLimits): a rule for a longer type could never match.
	maxTypeBytes    = 128
	maxVersionBytes = 128 // the version is in every transition record
)

// Validate checks the whole configuration once, at start-up, and returns
// every problem found (joined), each naming its field and the fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, problem, fix string) {
		errs = append(errs, &FieldError{Field: field, Problem: problem, Fix: fix})
	}

	k := c.Kafka
	if len(k.Brokers) == 0 {
		add("kafka.brokers", "no broker given", "set LEADSCORE_KAFKA_BROKERS=host:port[,host:port]")
	}
	for _, b := range k.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			add("kafka.brokers", fmt.Sprintf("%q is not host:port", b), "write each broker as host:port, e.g. 127.0.0.1:9092")
		}
	}
	for _, t := range []struct{ field, value string }{
		{"kafka.group_id", k.GroupID}, {"kafka.input_topic", k.InputTopic},
		{"kafka.output_topic", k.OutputTopic}, {"kafka.dead_letter_topic", k.DeadLetterTopic},
	} {
		if !validTopicName(t.value) {
			add(t.field, fmt.Sprintf("%q is not a valid name", t.value), "use 1-249 characters of a-z, A-Z, 0-9, '.', '_' or '-'")
		}
	}
	switch {
	case k.InputTopic == k.OutputTopic || k.InputTopic == k.DeadLetterTopic:
		add("kafka.input_topic", "is also used as the output or dead-letter topic", "give the three topics distinct names")
	case k.OutputTopic == k.DeadLetterTopic:
		add("kafka.dead_letter_topic", "is also the output topic: bad input would reach CRMs", "give the three topics distinct names")
	}
	if k.Partitions < 1 || k.Partitions > maxPartitions {
		add("kafka.partitions", fmt.Sprintf("%d is out of range", k.Partitions), fmt.Sprintf("use 1 to %d", maxPartitions))
	}
	if k.ReplicationFactor < 1 {
		add("kafka.replication_factor", fmt.Sprintf("%d is out of range", k.ReplicationFactor), "use 1 or more (3 in production)")
	}
	if k.SessionTimeout < time.Second || k.SessionTimeout > 30*time.Minute {
		add("kafka.session_timeout", fmt.Sprintf("%s is out of range", k.SessionTimeout), "use 1s to 30m (the broker's group.min.session.timeout.ms applies too)")
	}
	if k.LagInterval < 100*time.Millisecond {
		add("kafka.lag_interval", fmt.Sprintf("%s is too short", k.LagInterval), "use 100ms or more")
	}

	if _, _, err := net.SplitHostPort(c.Redis.Addr); err != nil {
		add("redis.addr", fmt.Sprintf("%q is not host:port", c.Redis.Addr), "set LEADSCORE_REDIS_ADDR=host:port, e.g. 127.0.0.1:6379")
	}
	if c.Redis.DB < 0 {
		add("redis.db", "is negative", "use 0 or more")
	}
	if strings.ContainsAny(c.Redis.KeyPrefix, "{}") {
		add("redis.key_prefix", "contains '{' or '}'", "leave braces out: leadscore adds the {lead_id} hash tag itself")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		add("http.addr", fmt.Sprintf("%q is not host:port", c.HTTP.Addr), "set LEADSCORE_HTTP_ADDR=host:port, e.g. 127.0.0.1:8080 or :8080")
	}
	if c.Batch.MaxEvents < 1 || c.Batch.MaxEvents > maxBatch {
		add("batch.max_events", fmt.Sprintf("%d is out of range", c.Batch.MaxEvents), fmt.Sprintf("use 1 to %d", maxBatch))
	}
	if c.Batch.MaxWait < 0 || c.Batch.MaxWait > 10*time.Second {
		add("batch.max_wait", fmt.Sprintf("%s is out of range", c.Batch.MaxWait), "use 0 to 10s")
	}
	if c.Input.MaxRecordBytes < 256 || c.Input.MaxRecordBytes > 16<<20 {
		add("input.max_record_bytes", fmt.Sprintf("%d is out of range", c.Input.MaxRecordBytes), "use 256 to 16777216")
	}
	if c.Input.MaxFutureSkew < 0 {
		add("input.max_future_skew", "is negative", "use 0 or a positive duration such as 24h")
	}
	if c.State.DedupeWindow < 1 || c.State.DedupeWindow > maxDedupe {
		add("state.dedupe_window", fmt.Sprintf("%d is out of range", c.State.DedupeWindow), fmt.Sprintf("use 1 to %d", maxDedupe))
	}
	if c.State.History < 1 || c.State.History > maxHistory {
		add("state.history", fmt.Sprintf("%d is out of range", c.State.History), fmt.Sprintf("use 1 to %d", maxHistory))
	}
	if c.Batch.InFlight < 1 || c.Batch.InFlight > 8 {
		add("batch.in_flight", fmt.Sprintf("%d is out of range", c.Batch.InFlight), "use 1 to 8")
	}
	if c.State.DecayInterval < 10*time.Millisecond || c.State.DecayInterval > time.Hour {
		add("state.decay_interval", fmt.Sprintf("%s is out of range", c.State.DecayInterval), "use 10ms to 1h")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", fmt.Sprintf("%q is unknown", c.Log.Level), "use debug, info, warn or error")
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		add("log.format", fmt.Sprintf("%q is unknown", c.Log.Format), "use json or console")
	}
	errs = append(errs, c.Rules.Validate()...)
	return errors.Join(errs...)
}

// Validate checks the scoring model and returns every problem found.
func (r *Rules) Validate() []error {
	var errs []error
	add := func(field, problem, fix string) {
		errs = append(errs, &FieldError{Field: field, Problem: problem, Fix: fix})
	}
	if len(r.Version) > maxVersionBytes {
		add("rules.version", fmt.Sprintf("is %d bytes", len(r.Version)), fmt.Sprintf("use at most %d bytes, or leave it empty for a hash", maxVersionBytes))
	}
	if len(r.Rules) > maxRules {
		add("rules.rules", fmt.Sprintf("%d rules", len(r.Rules)), fmt.Sprintf("keep it to %d at most", maxRules))
	}
	names := map[string]bool{}
	for i, rule := range r.Rules {
		f := fmt.Sprintf("rules.rules[%d]", i)
		if rule.Name == "" {
			add(f+".name", "is empty", "name every rule: names appear in explanations")
		} else if len(rule.Name) > maxNameBytes {
			add(f+".name", fmt.Sprintf("is %d bytes", len(rule.Name)), fmt.Sprintf("use at most %d bytes: names appear in every transition", maxNameBytes))
		} else if names[rule.Name] {
			add(f+".name", fmt.Sprintf("%q is used twice", rule.Name), "give each rule a distinct name")
		}
		if len(rule.Type) > maxTypeBytes {
			add(f+".type", fmt.Sprintf("is %d bytes", len(rule.Type)), fmt.Sprintf("use at most %d bytes: the decoder refuses longer event types", maxTypeBytes))
		}
		names[rule.Name] = true
		if rule.Type == "" {
			add(f+".type", "is empty", "set the event type this rule scores, e.g. email_open")
		}
		if math.IsNaN(rule.Points) || math.Abs(rule.Points) > maxPoints {
			add(f+".points", fmt.Sprintf("%v is out of range", rule.Points), fmt.Sprintf("use -%g to %g", float64(maxPoints), float64(maxPoints)))
		}
		switch rule.Score {
		case "", ScoreEngagement, ScoreFit:
		default:
			add(f+".score", fmt.Sprintf("%q is unknown", rule.Score), "use engagement (behaviour, decays) or fit (who the lead is)")
		}
		if rule.Type == "*" && rule.Score != ScoreFit {
			add(f+".type", `"*" (any event) is for fit rules`, "name an event type, or set score: fit")
		}
		if len(rule.Conditions) > maxConditions {
			add(f+".conditions", fmt.Sprintf("%d conditions", len(rule.Conditions)), fmt.Sprintf("keep it to %d", maxConditions))
		}
		for j, c := range rule.Conditions {
			validateCondition(add, fmt.Sprintf("%s.conditions[%d]", f, j), c)
		}
		if c := rule.Cap; c != nil {
			if !(c.Points > 0) || c.Points > maxPoints {
				add(f+".cap.points", fmt.Sprintf("%v is out of range", c.Points), "use a positive number of points per window")
			}
			if c.Per.D() < time.Minute || c.Per.D() > 366*24*time.Hour {
				add(f+".cap.per", fmt.Sprintf("%s is out of range", c.Per), "use a window from 1m to 366d, e.g. 1d")
			}
			if rule.Score == ScoreFit {
				add(f+".cap", "fit rules cannot be capped", "remove the cap: a fit rule counts once while its conditions hold")
			}
		}
		if rule.FirstTimeOnly && rule.Score == ScoreFit {
			add(f+".first_time_only", "fit rules count once already", "remove first_time_only")
		}
	}
	if h := r.HalfLife.D(); h != 0 && (h < time.Hour || h > 10*366*24*time.Hour) {
		add("rules.half_life", fmt.Sprintf("%s is out of range", r.HalfLife), "use 0 (no decay) or 1h to 3660d, e.g. 30d")
	}
	if len(r.Bands) == 0 || len(r.Bands) > maxLevels {
		add("rules.bands", fmt.Sprintf("%d bands", len(r.Bands)), fmt.Sprintf("declare 1 to %d bands, lowest first", maxLevels))
	}
	seen := map[string]bool{}
	for i, b := range r.Bands {
		f := fmt.Sprintf("rules.bands[%d]", i)
		checkName(add, f+".name", b.Name, seen)
		if i == 0 && b.Min != 0 {
			add(f+".min", "the first band has no minimum", "leave min out of the first band: every score below the second band's minimum is in it")
		}
		if i > 1 && b.Min <= r.Bands[i-1].Min {
			add(f+".min", fmt.Sprintf("%v is not above the previous band's %v", b.Min, r.Bands[i-1].Min), "list bands lowest first with rising minimums")
		}
		if math.IsNaN(b.Min) || math.IsInf(b.Min, 0) {
			add(f+".min", "is not a finite number", "use a number")
		}
		if b.Exit != nil {
			switch {
			case i == 0:
				add(f+".exit", "the first band cannot be left downwards", "remove exit from the first band")
			case math.IsNaN(*b.Exit) || *b.Exit > b.Min:
				add(f+".exit", fmt.Sprintf("%v is above the band's min %v", *b.Exit, b.Min), "set exit at or below min: enter at min, leave below exit")
			case i > 1 && *b.Exit <= r.Bands[i-1].Min:
				add(f+".exit", fmt.Sprintf("%v is not above the previous band's min %v", *b.Exit, r.Bands[i-1].Min), "keep exit between the previous band's min and this band's min")
			}
		}
	}
	if len(r.Stages) == 0 || len(r.Stages) > maxLevels {
		add("rules.stages", fmt.Sprintf("%d stages", len(r.Stages)), fmt.Sprintf("declare 1 to %d stages, first stage first", maxLevels))
	}
	seen = map[string]bool{}
	stageIdx := map[string]int{}
	for i, st := range r.Stages {
		if _, dup := stageIdx[st.Name]; !dup {
			stageIdx[st.Name] = i
		}
	}
	for i, st := range r.Stages {
		f := fmt.Sprintf("rules.stages[%d]", i)
		checkName(add, f+".name", st.Name, seen)
		if i == 0 {
			if st.MinScore != nil || len(st.OnEvents) > 0 || len(st.EnterWhen) > 0 || len(st.From) > 0 || st.ResetEngagement {
				add(f, "the first stage has entry conditions", "leave min_score, on_events, enter_when, from and reset_engagement out: every lead starts there")
			}
			continue
		}
		if st.MinScore == nil && len(st.OnEvents) == 0 && len(st.EnterWhen) == 0 {
			add(f, "has no way in", "give it min_score, on_events or enter_when")
		}
		if st.MinScore != nil && (math.IsNaN(*st.MinScore) || math.IsInf(*st.MinScore, 0)) {
			add(f+".min_score", "is not a finite number", "use a number")
		}
		for j, t := range st.OnEvents {
			if t == "" {
				add(fmt.Sprintf("%s.on_events[%d]", f, j), "is empty", "name an event type")
			}
		}
		for j, from := range st.From {
			switch k, ok := stageIdx[from]; {
			case !ok:
				add(fmt.Sprintf("%s.from[%d]", f, j), fmt.Sprintf("%q is not a declared stage", from), "name a stage declared in rules.stages")
			case k == i:
				add(fmt.Sprintf("%s.from[%d]", f, j), "a stage cannot be entered from itself", "remove it")
			}
		}
		for j, c := range st.EnterWhen {
			cf := fmt.Sprintf("%s.enter_when[%d]", f, j)
			if c.MinScore == nil && len(c.OnEvents) == 0 && len(c.OnRules) == 0 && len(c.RecentEvents) == 0 {
				add(cf, "is empty", "give it min_score, on_events, on_rules or recent_events")
			}
			if c.MinScore != nil && (math.IsNaN(*c.MinScore) || math.IsInf(*c.MinScore, 0)) {
				add(cf+".min_score", "is not a finite number", "use a number")
			}
			for _, name := range c.OnRules {
				if !names[name] {
					add(cf+".on_rules", fmt.Sprintf("%q is not a rule", name), "name a rule declared in rules.rules")
				}
			}
			if (len(c.RecentEvents) > 0) != (c.Within > 0) {
				add(cf, "recent_events and within go together", "give both: e.g. recent_events: [webinar_registration], within: 14d")
			}
			if c.Within.D() > 366*24*time.Hour {
				add(cf+".within", fmt.Sprintf("%s is out of range", c.Within), "use at most 366d")
			}
		}
	}
	// Every stage must be reachable from the first through declared moves.
	if len(r.Stages) > 0 {
		reached := map[string]bool{r.Stages[0].Name: true}
		for changed := true; changed; {
			changed = false
			for i, st := range r.Stages[1:] {
				if reached[st.Name] {
					continue
				}
				for _, from := range stageFrom(r.Stages, i+1) {
					if reached[from] {
						reached[st.Name], changed = true, true
						break
					}
				}
			}
		}
		for i, st := range r.Stages {
			if !reached[st.Name] && st.Name != "" {
				add(fmt.Sprintf("rules.stages[%d].from", i), fmt.Sprintf("stage %q cannot be reached from %q", st.Name, r.Stages[0].Name),
					"list in from a stage that leads back to the first one")
			}
		}
	}
	return errs
}

// StageFrom returns the stages stage i may be entered from: its From, or
// every stage declared before it.
func stageFrom(stages []Stage, i int) []string {
	if len(stages[i].From) > 0 {
		return stages[i].From
	}
	out := make([]string, 0, i)
	for _, s := range stages[:i] {
		out = append(out, s.Name)
	}
	return out
}

// StageFrom is stageFrom for other packages.
func (r *Rules) StageFrom(i int) []string { return stageFrom(r.Stages, i) }

func validateCondition(add func(string, string, string), f string, c Condition) {
	if c.Property == "" {
		add(f+".property", "is empty", "name the event property to test")
	}
	ops := 0
	for _, set := range []bool{c.Equals != nil, c.Prefix != "", c.Glob != "", len(c.In) > 0, c.Exists != nil,
		c.GT != nil, c.GTE != nil, c.LT != nil, c.LTE != nil} {
		if set {
			ops++
		}
	}
	if ops == 0 {
		add(f, "tests nothing", "give one of equals, prefix, glob, in, exists, gt, gte, lt, lte")
	}
	if c.Glob != "" {
		if _, err := path.Match(c.Glob, ""); err != nil {
			add(f+".glob", fmt.Sprintf("%q is not a valid pattern", c.Glob), "use * ? and [a-z] (path.Match syntax)")
		}
	}
	for _, n := range []*float64{c.GT, c.GTE, c.LT, c.LTE} {
		if n != nil && (math.IsNaN(*n) || math.IsInf(*n, 0)) {
			add(f, "a numeric bound is not a finite number", "use a number")
		}
	}
}

func checkName(add func(string, string, string), field, name string, seen map[string]bool) {
	switch {
	case name == "":
		add(field, "is empty", "name it: the name appears in transitions")
	case len(name) > maxNameBytes:
		add(field, "is too long", fmt.Sprintf("use at most %d bytes", maxNameBytes))
	case seen[name]:
		add(field, fmt.Sprintf("%q is used twice", name), "use distinct names")
	}
	seen[name] = true
}

// VersionOf returns the rules' version: the explicit one, or the first 12 hex
// digits of a SHA-256 over the model, so any change to the rules changes it.
func (r *Rules) VersionOf() string {
	if r.Version != "" {
		return r.Version
	}
	b, _ := json.Marshal(struct {
		H Duration
		R []Rule
		B []Band
		S []Stage
	}{r.HalfLife, r.Rules, r.Bands, r.Stages}) // maps marshal with sorted keys: stable
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

func validTopicName(s string) bool {
	if s == "" || len(s) > 249 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
