package rescore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/leadscore/leadscore/config"
	"github.com/leadscore/leadscore/events"
	"github.com/leadscore/leadscore/internal/kafkaadmin"
	"github.com/leadscore/leadscore/internal/redisstore"
	"github.com/leadscore/leadscore/internal/service"
	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sink"
)

// CauseEventType is the cause_event_type of a net transition a switch
// publishes; its cause_event_id is "rescore@<version>".
const CauseEventType = "rescore"

// ErrGroupActive is returned by a switch while the consumer group has
// members: the service must be stopped, or it would score new events into
// the state being replaced.
var ErrGroupActive = errors.New("the consumer group has active members")

// ErrGroupMoved is returned by a switch when the group committed offsets
// while the replay ran: the replayed state no longer matches where the group
// resumes.
var ErrGroupMoved = errors.New("the consumer group committed offsets during the rescore")

// ErrSameVersion is returned when the new rules claim the live rules'
// version but say something else.
var ErrSameVersion = errors.New("the new rules differ from the live rules but have the same version")

// Options configure a rescore.
type Options struct {
	// Config is the loaded configuration: Kafka, the consumer group, Redis,
	// the key prefix, input limits, state bounds, and the live rules.
	Config config.Config
	// Rules are the new rules [nil: Config.Rules, a rescore under the
	// running rules].
	Rules *config.Rules
	// From starts the replay, per partition, at the first record whose
	// timestamp is at or after it [zero: the beginning of the log].
	From time.Time
	// Switch applies the result: net transitions out, new state in [false:
	// a dry run, which changes nothing].
	Switch bool
	// Batch is how many records one scoring step handles
	// [Config.Batch.MaxEvents].
	Batch int
	// Out receives the report [io.Discard].
	Out io.Writer
	// Progress receives the replay's progress [Out]: a bar redrawn in place
	// on a terminal, a line every 5 s elsewhere.
	Progress io.Writer
	// Now is the clock: the instant leads are compared at and net
	// transitions occur at [time.Now].
	Now func() time.Time
	// IdleTimeout is how long a partition's reader waits for a record it
	// knows is there before giving up [30s].
	IdleTimeout time.Duration
	// Log receives warnings of the Kafka readers [zap.NewNop()].
	Log *zap.Logger
}

func (o *Options) defaults() {
	if o.Batch <= 0 {
		o.Batch = o.Config.Batch.MaxEvents
	}
	if o.Batch <= 0 {
		o.Batch = 5000
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Progress == nil {
		o.Progress = o.Out
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
}

// ScratchPrefix is the key prefix a rescore to version replays into.
func ScratchPrefix(keyPrefix, version string) string {
	return keyPrefix + "rescore-" + version + ":"
}

// CauseEventID is the cause_event_id of the net transitions of a switch to
// version: with the lead, kind, from and to it fixes their ids, so a switch
// run again publishes the same ids.
func CauseEventID(version string) string { return "rescore@" + version }

// run is one rescore's state.
type run struct {
	o       Options
	live    *scorer.Model
	next    *scorer.Model
	first   [2]string // the live rules' first band and stage: where a lead without live state is
	kc      *kafka.Client
	liveSt  *redisstore.Store
	scratch *redisstore.Store
	pub     *sink.Publisher
	rep     Report
	now     time.Time

	seen  map[string]struct{}
	band  tally
	stage tally
}

// Run replays the input topic under the new rules into a scratch prefix,
// compares every replayed lead with its live state, and — with
// Options.Switch — publishes the net transitions and writes the new states
// over the live ones. It prints the report to Options.Out and returns it.
// The scratch keys are deleted whatever happens.
func Run(ctx context.Context, o Options) (rep Report, err error) {
	o.defaults()
	cfg := o.Config
	live, err := service.BuildModel(cfg)
	if err != nil {
		return Report{}, fmt.Errorf("live rules: %w", err)
	}
	ncfg := cfg
	if o.Rules != nil {
		ncfg.Rules = *o.Rules
	}
	next, err := service.BuildModel(ncfg)
	if err != nil {
		return Report{}, fmt.Errorf("new rules: %w", err)
	}
	if next.Version() == live.Version() && contentOf(ncfg.Rules) != contentOf(cfg.Rules) {
		return Report{}, fmt.Errorf("%w (%s): give the new rules a new version, or leave version empty to version them by hash", ErrSameVersion, live.Version())
	}
	r := &run{o: o, live: live, next: next, seen: map[string]struct{}{}, band: tally{}, stage: tally{}}
	r.first = [2]string{cfg.Rules.Bands[0].Name, cfg.Rules.Stages[0].Name}
	r.rep = Report{Version: next.Version(), LiveVersion: live.Version(), Switched: o.Switch,
		Topic: cfg.Kafka.InputTopic, From: o.From, Scratch: ScratchPrefix(cfg.Redis.KeyPrefix, next.Version())}

	// Its own transport: kafka-go's DefaultTransport caches metadata for 6 s.
	tr := &kafka.Transport{MetadataTTL: time.Second}
	defer tr.CloseIdleConnections()
	r.kc = &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Timeout: 10 * time.Second, Transport: tr}

	group, err := kafkaadmin.DescribeGroup(ctx, r.kc, cfg.Kafka.GroupID)
	if err != nil {
		return r.rep, err
	}
	if o.Switch && !group.Idle() {
		return r.rep, groupActive(cfg, group)
	}
	if !o.Switch {
		r.rep.GroupMembers = len(group.Members)
	}
	ranges, err := plan(ctx, r.kc, cfg.Kafka.GroupID, cfg.Kafka.InputTopic, o.From)
	if err != nil {
		return r.rep, err
	}

	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr, Username: cfg.Redis.Username,
		Password: cfg.Redis.Password.Reveal(), DB: cfg.Redis.DB})
	defer rdb.Close()
	if r.liveSt, err = redisstore.New(ctx, rdb, cfg.Redis.KeyPrefix); err != nil {
		return r.rep, fmt.Errorf("redis at %s: %w", cfg.Redis.Addr, err)
	}
	if r.scratch, err = redisstore.New(ctx, rdb, r.rep.Scratch); err != nil {
		return r.rep, fmt.Errorf("redis at %s: %w", cfg.Redis.Addr, err)
	}
	// Fresh: a run that crashed may have left its scratch keys behind.
	if _, err := r.scratch.DeleteAll(ctx); err != nil {
		return r.rep, fmt.Errorf("clear scratch prefix %s: %w", r.rep.Scratch, err)
	}
	defer func() {
		// Whatever happened, the scratch keys go; a cancelled run still
		// gets a minute to clean up.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, derr := r.scratch.DeleteAll(dctx); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete scratch keys under %q (remove them with: redis-cli --scan --pattern '%s*' | xargs redis-cli unlink): %w",
				r.rep.Scratch, r.rep.Scratch, derr))
		}
	}()

	var total int64
	for _, pr := range ranges {
		if pr.End > pr.Start {
			r.rep.Partitions++
			total += pr.End - pr.Start
		}
		if o.From.IsZero() && pr.LogStart > 0 && pr.End > pr.Start {
			r.rep.Truncated = append(r.rep.Truncated, pr.Partition)
		}
	}
	fmt.Fprintf(o.Out, "Replaying %s records of %s (%d partitions) under rules version %s into scratch keys %s*\n",
		commas(total), cfg.Kafka.InputTopic, r.rep.Partitions, next.Version(), r.rep.Scratch)
	dec := events.NewDecoder(events.Limits{MaxRecordBytes: cfg.Input.MaxRecordBytes, MaxFutureSkew: cfg.Input.MaxFutureSkew}, o.Now)
	prog := newProgress(o.Progress, IsTerminal(o.Progress), total, o.Now, 0)
	if err := r.replay(ctx, ranges, scorer.New(next, unscheduled{r.scratch}), dec, prog); err != nil {
		return r.rep, err
	}

	if o.Switch {
		// The service may have been started while the replay ran.
		if err := r.stillIdle(ctx, ranges); err != nil {
			return r.rep, err
		}
		r.pub = sink.NewPublisher(cfg.Kafka.Brokers, 2*time.Millisecond)
		defer func() {
			if cerr := r.pub.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close publisher: %w", cerr))
			}
		}()
	}
	r.now = o.Now().UTC().Truncate(time.Millisecond)
	if err := r.scratch.ScanLeads(ctx, func(ids []string) error { return r.comparePage(ctx, ids) }); err != nil {
		return r.rep, err
	}
	if err := r.liveSt.ScanLeads(ctx, r.onlyLive); err != nil {
		return r.rep, err
	}
	r.rep.Band, r.rep.Stage = r.band.sorted(), r.stage.sorted()
	slices.Sort(r.rep.OnlyLiveExamples)
	fmt.Fprint(o.Out, "\n", r.rep.String())
	return r.rep, nil
}

func groupActive(cfg config.Config, g kafkaadmin.GroupStatus) error {
	hosts := map[string]bool{}
	for _, m := range g.Members {
		hosts[m.Host] = true
	}
	return fmt.Errorf("%w: group %q is %s with %d member(s) (on %s). Stop every leadscore process of the group before --switch "+
		"(a killed one stays a member until kafka.session_timeout, %s, passes), run the switch, then start leadscore again "+
		"with the new rules (LEADSCORE_RULES_FILE or the config's rules:)",
		ErrGroupActive, cfg.Kafka.GroupID, g.State, len(g.Members), strings.Join(slices.Sorted(maps.Keys(hosts)), ", "), cfg.Kafka.SessionTimeout)
}

// stillIdle checks, before a switch writes anything, that the group is
// still empty and has committed nothing since the replay's range was fixed.
func (r *run) stillIdle(ctx context.Context, ranges []partRange) error {
	cfg := r.o.Config
	g, err := kafkaadmin.DescribeGroup(ctx, r.kc, cfg.Kafka.GroupID)
	if err != nil {
		return err
	}
	if !g.Idle() {
		return groupActive(cfg, g)
	}
	lags, err := kafkaadmin.Lag(ctx, r.kc, cfg.Kafka.GroupID, cfg.Kafka.InputTopic)
	if err != nil {
		return fmt.Errorf("committed offsets: %w", err)
	}
	was := map[int]int64{}
	for _, pr := range ranges {
		was[pr.Partition] = pr.Committed
	}
	for _, l := range lags {
		if c, ok := was[l.Partition]; !ok || c != l.Committed {
			return fmt.Errorf("%w (partition %d: %d, now %d): nothing was switched; stop leadscore and run again", ErrGroupMoved, l.Partition, c, l.Committed)
		}
	}
	return nil
}

// contentOf identifies rules by what they say, whatever version they claim.
func contentOf(r config.Rules) string {
	r.Version = ""
	return r.VersionOf()
}

// unscheduled is the scratch store: its leads need no decay schedule.
type unscheduled struct{ scorer.Store }

func (u unscheduled) Save(ctx context.Context, ws []scorer.Write) ([]bool, error) {
	for i := range ws {
		ws[i].Schedule = false
	}
	return u.Store.Save(ctx, ws)
}
