package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/internal/kafkaadmin"
	"github.com/leadscore/leadscore/internal/localsvc"
)

// Config is one benchmark run. Zero fields take the defaults in brackets.
type Config struct {
	Root       string // the repository: scripts/services.sh and ./cmd/leadscore live there
	KafkaPort  int    // the benchmark's own broker [19292]
	RedisPort  int    // the benchmark's own Redis [16579]
	Partitions int    // partitions of every topic [6]

	Leads   int // distinct leads in the backlog [1,000,000]
	Backlog int // events in the backlog, first touches included; at least Leads [3,000,000]

	Rates        []int         // fixed rates of the latency phases, events/s [1000 10000 50000]
	RateDuration time.Duration // how long each latency phase produces [30s]

	OutageRate int           // traffic rate around the outage, events/s [10000]
	Outage     time.Duration // how long leadscore is down [10m]

	NaiveEvents int // backlog of the naive baseline [10,000]

	// Phases to run, of "throughput", "latency", "catchup", "naive" [all].
	// Latency and catch-up run on the throughput phase's leads and need it.
	Phases []string
	// Profile, when set, is where a 20 s CPU profile of leadscore taken
	// during the throughput phase is written.
	Profile string
	Seed    int64
	Out     io.Writer // progress; the report is returned
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.KafkaPort, 19292)
	def(&c.RedisPort, 16579)
	def(&c.Partitions, 6)
	def(&c.Leads, 1_000_000)
	def(&c.Backlog, 3_000_000)
	def(&c.OutageRate, 10_000)
	def(&c.NaiveEvents, 10_000)
	if c.Backlog < c.Leads {
		c.Backlog = c.Leads
	}
	if len(c.Rates) == 0 {
		c.Rates = []int{1000, 10_000, 50_000}
	}
	if c.RateDuration <= 0 {
		c.RateDuration = 30 * time.Second
	}
	if c.Outage <= 0 {
		c.Outage = 10 * time.Minute
	}
	if len(c.Phases) == 0 {
		c.Phases = []string{"throughput", "latency", "catchup", "naive"}
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
}

func (c *Config) has(phase string) bool {
	for _, p := range c.Phases {
		if p == phase {
			return true
		}
	}
	return false
}

// runner holds what the phases share.
type runner struct {
	cfg     Config
	svc     *localsvc.Services
	brokers string
	rdb     *redis.Client
	tr      *kafka.Transport
	admin   *kafka.Client
	bin     string
	work    string // temp dir: binary, logs
	id      string // this run's id: topic, group and key names
	rep     *Report
}

func (r *runner) logf(format string, a ...any) {
	fmt.Fprintf(r.cfg.Out, "%s  %s\n", time.Now().Format("15:04:05.0"), fmt.Sprintf(format, a...))
}

// Run executes the benchmark and returns its figures.
func Run(ctx context.Context, c Config) (*Report, error) {
	c.defaults()
	r := &runner{cfg: c, id: fmt.Sprintf("bench-%d", time.Now().Unix())}
	r.rep = &Report{Started: time.Now(), Config: c}
	r.svc = &localsvc.Services{Root: c.Root, KafkaPort: c.KafkaPort, RedisPort: c.RedisPort, Log: c.Out}
	r.logf("starting the benchmark's own Kafka 127.0.0.1:%d and Redis 127.0.0.1:%d", c.KafkaPort, c.RedisPort)
	if err := r.svc.Up(); err != nil {
		return nil, err
	}
	r.brokers = "127.0.0.1:" + strconv.Itoa(c.KafkaPort)
	r.rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(c.RedisPort)})
	defer r.rdb.Close()
	r.tr = &kafka.Transport{MetadataTTL: time.Second}
	defer r.tr.CloseIdleConnections()
	r.admin = &kafka.Client{Addr: kafka.TCP(r.brokers), Transport: r.tr, Timeout: 10 * time.Second}

	if err := r.clean(ctx); err != nil {
		return nil, err
	}
	// Clean up after this run too: GBs of topics otherwise wait for the
	// next run to delete them.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := r.clean(cctx); err != nil {
			r.logf("cleaning up: %v", err)
		}
	}()
	var err error
	if r.work, err = os.MkdirTemp("", "leadscore-bench-"); err != nil {
		return nil, err
	}
	r.bin = filepath.Join(r.work, "leadscore")
	r.logf("building leadscore into %s", r.bin)
	build := exec.CommandContext(ctx, "go", "build", "-o", r.bin, "./cmd/leadscore")
	build.Dir = c.Root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	r.rep.Machine = machine() + ", " + KafkaVersion(c.Root) + ", Redis " + r.redisVersion(ctx)

	if c.has("throughput") {
		if err := r.scored(ctx); err != nil {
			return nil, err
		}
	}
	if c.has("naive") {
		if err := r.naive(ctx); err != nil {
			return nil, err
		}
	}
	r.rep.Elapsed = time.Since(r.rep.Started)
	r.logf("done in %s; logs in %s", r.rep.Elapsed.Round(time.Second), r.work)
	return r.rep, nil
}

// clean empties the benchmark's own Redis and deletes every benchmark
// topic: a 1M-lead run leaves hundreds of MB in Redis and GBs in Kafka.
func (r *runner) clean(ctx context.Context) error {
	if err := r.rdb.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("redis flushall: %w", err)
	}
	md, err := r.admin.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var old []string
	for _, t := range md.Topics {
		if strings.HasPrefix(t.Name, "bench-") {
			old = append(old, t.Name)
		}
	}
	if len(old) > 0 {
		r.logf("deleting %d benchmark topics", len(old))
		if _, err := r.admin.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: old}); err != nil {
			return fmt.Errorf("delete old topics: %w", err)
		}
	}
	return nil
}

// topics is one input/output/dead-letter triple, with the group and Redis
// prefix a leadscore uses with it.
type topics struct{ input, output, dlq, group, prefix string }

func (r *runner) topics(ctx context.Context, name string) (topics, error) {
	base := r.id + "-" + name
	// A short key prefix, as in production ("ls:"): Redis memory per lead
	// counts the key too.
	t := topics{input: base + "-events", output: base + "-transitions", dlq: base + "-dlq", group: base, prefix: name[:1] + ":"}
	var specs []kafkaadmin.TopicSpec
	for _, n := range []string{t.input, t.output, t.dlq} {
		// Files deleted at once when the topic is: by default the broker
		// deletes them a minute later, in the middle of the next run.
		specs = append(specs, kafkaadmin.TopicSpec{Name: n, Partitions: r.cfg.Partitions, ReplicationFactor: 1,
			Configs: map[string]string{"file.delete.delay.ms": "0"}})
	}
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return t, kafkaadmin.EnsureTopics(tctx, []string{r.brokers}, true, specs...)
}

// env configures a leadscore for t, with extra settings last (they win).
func (r *runner) env(t topics, extra ...string) []string {
	env := append(os.Environ(),
		"LEADSCORE_KAFKA_BROKERS="+r.brokers,
		"LEADSCORE_REDIS_ADDR=127.0.0.1:"+strconv.Itoa(r.cfg.RedisPort),
		"LEADSCORE_GROUP_ID="+t.group,
		"LEADSCORE_INPUT_TOPIC="+t.input,
		"LEADSCORE_OUTPUT_TOPIC="+t.output,
		"LEADSCORE_DLQ_TOPIC="+t.dlq,
		"LEADSCORE_REDIS_KEY_PREFIX="+t.prefix,
		"LEADSCORE_KAFKA_PARTITIONS="+strconv.Itoa(r.cfg.Partitions),
		"LEADSCORE_KAFKA_CREATE_TOPICS=false",
		"LEADSCORE_KAFKA_SESSION_TIMEOUT=6s",
		"LEADSCORE_LOG_LEVEL=warn",
	)
	return append(env, extra...)
}

// writer is the marketing platform's producer: keyed by lead (Murmur2, as
// Java clients), acks=all, batches of up to 1 MiB. It has a transport of its
// own: a shared one caches metadata from before the topic existed.
type writer struct {
	*kafka.Writer
	tr *kafka.Transport
}

// batch is the Writer's BatchSize: kafka-go allocates room for that many
// messages per partition on every write (segmentio/kafka-go #1193), so the
// fixed-rate producer, writing a few records a millisecond, uses a small one.
func (r *runner) writer(topic string, linger time.Duration, batch int) writer {
	tr := &kafka.Transport{}
	return writer{&kafka.Writer{
		Addr: kafka.TCP(r.brokers), Topic: topic, Transport: tr,
		Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: linger, BatchSize: batch, BatchBytes: 1 << 20,
	}, tr}
}

// Close flushes the writer and closes its transport's connections.
func (w writer) Close() error {
	err := w.Writer.Close()
	w.tr.CloseIdleConnections()
	return err
}

// produceAll writes n events of w to topic as fast as the broker takes them.
func (r *runner) produceAll(ctx context.Context, topic string, w *Workload, n int) (time.Duration, error) {
	wr := r.writer(topic, 5*time.Millisecond, 10_000)
	defer wr.Close()
	const chunk = 50_000
	start := time.Now()
	// Two writers in flight: one chunk is generated while the other is sent.
	chunks := make(chan []kafka.Message, 1)
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for msgs := range chunks {
			if err := wr.WriteMessages(ctx, msgs...); err != nil {
				errc <- err
				for range chunks {
				}
				return
			}
		}
	}()
	last := time.Now()
	for sent := 0; sent < n; {
		k := min(chunk, n-sent)
		select {
		case chunks <- w.Next(make([]kafka.Message, 0, k), k, time.Now(), 0):
		case err := <-errc:
			close(chunks)
			return 0, fmt.Errorf("produce: %w", err)
		}
		sent += k
		if time.Since(last) > 10*time.Second {
			r.logf("  produced %d / %d", sent, n)
			last = time.Now()
		}
	}
	close(chunks)
	if err := <-errc; err != nil {
		return 0, fmt.Errorf("produce: %w", err)
	}
	return time.Since(start), nil
}

// produceAt writes events of w to topic at rate events/s for d, in small
// chunks every millisecond or so; it returns how many it sent. Each event is
// stamped with the time it was due, so a producer falling behind shows up
// as latency, not as a lower rate. The producer is asynchronous with a
// linger of 5 ms, as a Java client's default (Kafka 4: linger.ms 5, several
// requests in flight): a synchronous one would make every ten events wait
// for the previous ten's acknowledgement, and flood the broker with tiny
// requests.
func (r *runner) produceAt(ctx context.Context, topic string, w *Workload, rate int, d time.Duration) (int, error) {
	wr := r.writer(topic, 5*time.Millisecond, 200)
	var failed atomic.Pointer[error]
	wr.Async = true
	wr.Completion = func(_ []kafka.Message, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	step := time.Duration(float64(time.Second) / float64(rate))
	start := time.Now()
	sent := 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		el := time.Since(start)
		if el >= d {
			break
		}
		if due := min(int(float64(rate)*el.Seconds())-sent, 10_000); due > 0 {
			if err := wr.WriteMessages(ctx, w.Next(make([]kafka.Message, 0, due), due, start.Add(time.Duration(sent)*step), step)...); err != nil {
				wr.Close()
				return sent, fmt.Errorf("produce: %w", err)
			}
			sent += due
		}
		select {
		case <-ctx.Done():
			wr.Close()
			return sent, ctx.Err()
		case <-tick.C:
		}
	}
	wr.Close() // flushes
	if err := failed.Load(); err != nil {
		return sent, fmt.Errorf("produce: %w", *err)
	}
	return sent, nil
}

// progress is the group's position on its input topic.
type progress struct {
	at        time.Time
	committed int64 // offsets committed, summed over partitions
	lag       int64
}

func (r *runner) progress(ctx context.Context, t topics) (progress, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lags, err := kafkaadmin.Lag(lctx, r.admin, t.group, t.input)
	if err != nil {
		return progress{}, err
	}
	p := progress{at: time.Now()}
	for _, l := range lags {
		if l.Committed > 0 {
			p.committed += l.Committed
		}
		p.lag += l.Lag
	}
	return p, nil
}

// waitLag polls the group every 100 ms until its lag is at most max. It
// returns the first poll that saw commits move, the last poll, and the CPU
// used by leadscore and Redis between them.
type drain struct {
	first, last progress
	lsCPU       time.Duration
	redisCPU    time.Duration
	kafkaCPU    time.Duration
}

func (r *runner) waitLag(ctx context.Context, t topics, p *proc, max int64, timeout time.Duration, onFirst func()) (drain, error) {
	var d drain
	redisPID, err := r.svc.RedisPID()
	if err != nil {
		return d, err
	}
	kafkaPID, err := r.svc.KafkaPID()
	if err != nil {
		return d, err
	}
	var ls0, rd0, kf0 time.Duration
	deadline := time.Now().Add(timeout)
	// A new group's coordinator may not be ready yet ("not coordinator",
	// "coordinator load in progress"): retry the first look too.
	var start progress
	for {
		if start, err = r.progress(ctx, t); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return d, err
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if start.lag <= max {
		// Caught up already (a fixed-rate phase that leadscore kept up
		// with): the commits would never move past start.
		d.first, d.last = start, start
		return d, nil
	}
	lastLog := time.Now()
	moving := false
	for {
		if gone, err := p.exited(); gone {
			return d, fmt.Errorf("leadscore exited: %v (log %s)", err, p.log.Name())
		}
		cur, err := r.progress(ctx, t)
		if err != nil {
			r.logf("  lag: %v (retrying)", err)
		} else {
			if !moving && cur.committed > start.committed {
				moving = true
				d.first = cur
				ls0, _ = cpuTime(p.pid())
				rd0, _ = cpuTime(redisPID)
				kf0, _ = cpuTime(kafkaPID)
				if onFirst != nil {
					onFirst()
				}
			}
			if moving && cur.lag <= max {
				d.last = cur
				ls1, _ := cpuTime(p.pid())
				rd1, _ := cpuTime(redisPID)
				kf1, _ := cpuTime(kafkaPID)
				d.lsCPU, d.redisCPU, d.kafkaCPU = ls1-ls0, rd1-rd0, kf1-kf0
				return d, nil
			}
			if time.Since(lastLog) > 5*time.Second {
				r.logf("  committed %d, lag %d", cur.committed, cur.lag)
				lastLog = time.Now()
			}
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("lag still above %d after %s (log %s)", max, timeout, p.log.Name())
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scored runs the phases against leadscore as configured by default:
// throughput and memory, latency at fixed rates, catch-up after an outage.
func (r *runner) scored(ctx context.Context) error {
	c := r.cfg
	t, err := r.topics(ctx, "scored")
	if err != nil {
		return err
	}
	leads := NewWorkload(r.id+"-b", "lead-", c.Leads, true, 0.01, c.Seed)
	mem0, err := r.usedMemory(ctx)
	if err != nil {
		return err
	}

	r.logf("throughput: producing a backlog of %d events over %d leads into %s", c.Backlog, c.Leads, t.input)
	took, err := r.produceAll(ctx, t.input, leads, c.Backlog)
	if err != nil {
		return err
	}
	r.logf("  produced in %s (%.0f events/s)", took.Round(time.Millisecond), float64(c.Backlog)/took.Seconds())

	extra := []string{}
	if c.Profile != "" {
		extra = append(extra, "LEADSCORE_HTTP_PPROF=true")
	}
	p, err := startLeadscore(r.bin, r.env(t, extra...), filepath.Join(r.work, "scored-1.log"))
	if err != nil {
		return err
	}
	defer func() { p.stop(60 * time.Second) }()
	r.logf("throughput: leadscore pid %d started (http://%s/metrics); waiting for it to commit the whole backlog", p.pid(), p.http)
	var profWG sync.WaitGroup
	defer profWG.Wait()
	onFirst := func() {
		if c.Profile == "" {
			return
		}
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			if err := fetchProfile(ctx, p.http, c.Profile, 20); err != nil {
				r.logf("  profile: %v", err)
			} else {
				r.logf("  CPU profile written to %s", c.Profile)
			}
		}()
	}
	if r.rep.Throughput, err = r.drained(ctx, t, p, c.Backlog, onFirst); err != nil {
		return err
	}

	if err := r.memory(ctx, t, leads, mem0); err != nil {
		return err
	}

	if c.has("latency") {
		for i, rate := range c.Rates {
			lw := NewWorkload(fmt.Sprintf("%s-l%d", r.id, rate), "lead-", c.Leads, false, 0.01, c.Seed+int64(i)+1)
			lf, err := r.latency(ctx, t, p, lw, rate)
			if err != nil {
				return err
			}
			r.rep.Latency = append(r.rep.Latency, lf)
		}
	}

	if c.has("catchup") {
		if err := r.catchup(ctx, t, &p, leads); err != nil {
			return err
		}
	}
	return nil
}

// latency produces at a fixed rate and times every transition it causes,
// from the event's generation to the transition's arrival on the output
// topic, read by a consumer of the benchmark's.
func (r *runner) latency(ctx context.Context, t topics, p *proc, w *Workload, rate int) (LatencyFigures, error) {
	lf := LatencyFigures{Rate: rate}
	r.logf("latency: %d events/s for %s", rate, r.cfg.RateDuration)
	ends, err := r.ends(ctx, t.output)
	if err != nil {
		return lf, err
	}
	rctx, stopReaders := context.WithCancel(ctx)
	var mu sync.Mutex
	var samples []time.Duration
	var wg sync.WaitGroup
	for part, end := range ends {
		rd := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{r.brokers}, Topic: t.output, Partition: part,
			// MaxWait is also kafka-go's read deadline of a fetch (kafka-go
			// #555): a short one times fetches out and backs off 100 ms.
			MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 500 * time.Millisecond,
		})
		if err := rd.SetOffset(end); err != nil {
			stopReaders()
			return lf, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rd.Close()
			for {
				m, err := rd.ReadMessage(rctx)
				if err != nil {
					return
				}
				now := time.Now()
				if at, ok := generatedAt(causeEventID(m.Value), w.Run); ok {
					mu.Lock()
					samples = append(samples, now.Sub(at))
					mu.Unlock()
				}
			}
		}()
	}
	m0, _ := scrape(ctx, p.http)
	t0 := time.Now()
	sent, perr := r.produceAt(ctx, t.input, w, rate, r.cfg.RateDuration)
	lf.Achieved = float64(sent) / time.Since(t0).Seconds()
	lf.Events = sent
	if perr == nil {
		_, perr = r.waitLag(ctx, t, p, 0, 2*time.Minute, nil)
	}
	time.Sleep(500 * time.Millisecond) // the last transitions reach the readers
	stopReaders()
	wg.Wait()
	if perr != nil {
		return lf, perr
	}
	lf.set(samples)
	if m1, err := scrape(ctx, p.http); err == nil && m0 != nil {
		d := func(k string) float64 { return m1[k] - m0[k] }
		if n := d("leadscore_batch_records_count"); n > 0 {
			lf.BatchRecords = d("leadscore_batch_records_sum") / n
			lf.BatchSeconds = d("leadscore_batch_duration_seconds_sum") / n
			for _, st := range stages {
				sel := `{stage="` + st + `"}`
				if k := d("leadscore_batch_stage_seconds_count" + sel); k > 0 {
					lf.Stages = append(lf.Stages, StageTime{st, d("leadscore_batch_stage_seconds_sum"+sel) / k})
				}
			}
		}
	}
	r.logf("  %s", lf)
	return lf, nil
}

// ends returns the log-end offset of every partition of topic.
func (r *runner) ends(ctx context.Context, topic string) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, 0, r.cfg.Partitions)
	for p := range r.cfg.Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	offs, err := r.admin.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[int]int64{}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}

// catchup stops leadscore, produces the outage's worth of events (the
// backlog a 10-minute outage at 10k events/s leaves), restarts leadscore
// with live traffic going on at the same rate, and times how long it takes
// until the lag is back to under half a second of traffic.
func (r *runner) catchup(ctx context.Context, t topics, p **proc, leads *Workload) error {
	c := r.cfg
	backlog := int(float64(c.OutageRate) * c.Outage.Seconds())
	r.logf("catch-up: stopping leadscore (SIGTERM); the outage leaves %d events (%s at %d events/s)", backlog, c.Outage, c.OutageRate)
	(*p).stop(60 * time.Second)
	if _, err := r.produceAll(ctx, t.input, leads, backlog); err != nil {
		return err
	}
	live := NewWorkload(r.id+"-c", "lead-", c.Leads, false, 0.01, c.Seed+100)
	np, err := startLeadscore(r.bin, r.env(t), filepath.Join(r.work, "scored-2.log"))
	if err != nil {
		return err
	}
	*p = np
	restarted := time.Now()
	r.logf("catch-up: leadscore pid %d restarted; live traffic at %d events/s", np.pid(), c.OutageRate)
	lctx, stopLive := context.WithCancel(ctx)
	liveErr := make(chan error, 1)
	var liveSent int
	go func() {
		var err error
		liveSent, err = r.produceAt(lctx, t.input, live, c.OutageRate, time.Hour)
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		liveErr <- err
	}()
	d, err := r.waitLag(ctx, t, np, int64(c.OutageRate/2), 30*time.Minute, nil)
	stopLive()
	if lerr := <-liveErr; err == nil {
		err = lerr
	}
	if err != nil {
		return err
	}
	r.rep.CatchUp = CatchUpFigures{
		Backlog: backlog, Rate: c.OutageRate, Outage: c.Outage,
		Time:      d.last.at.Sub(restarted),
		Draining:  d.last.at.Sub(d.first.at),
		LiveSent:  liveSent,
		DrainRate: float64(d.last.committed-d.first.committed) / d.last.at.Sub(d.first.at).Seconds(),
		Drain:     newDrainFigures(d),
	}
	r.logf("  %s", r.rep.CatchUp)
	return nil
}

// naive runs the baseline: the same binary scoring one event per batch, so
// every event costs its own Redis load and save round trips, its own
// publish and a synchronous commit, with no overlap.
func (r *runner) naive(ctx context.Context) error {
	c := r.cfg
	t, err := r.topics(ctx, "naive")
	if err != nil {
		return err
	}
	w := NewWorkload(r.id+"-n", "lead-", max(c.NaiveEvents/3, 1), false, 0.01, c.Seed+200)
	r.logf("naive: producing %d events into %s", c.NaiveEvents, t.input)
	if _, err := r.produceAll(ctx, t.input, w, c.NaiveEvents); err != nil {
		return err
	}
	p, err := startLeadscore(r.bin, r.env(t,
		"LEADSCORE_BATCH_MAX_EVENTS=1", "LEADSCORE_BATCH_IN_FLIGHT=1"),
		filepath.Join(r.work, "naive.log"))
	if err != nil {
		return err
	}
	defer p.stop(60 * time.Second)
	r.rep.Naive, err = r.drained(ctx, t, p, c.NaiveEvents, nil)
	return err
}

// drained waits until p has committed t's backlog of events and returns
// the figures of the drain.
func (r *runner) drained(ctx context.Context, t topics, p *proc, events int, onFirst func()) (DrainFigures, error) {
	d, err := r.waitLag(ctx, t, p, 0, 15*time.Minute, onFirst)
	if err != nil {
		return DrainFigures{}, err
	}
	f := newDrainFigures(d)
	f.Events = int64(events)
	r.logf("  %s", f)
	return f, nil
}

func (r *runner) redisVersion(ctx context.Context) string {
	info, _ := r.rdb.Info(ctx, "server").Result()
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			return v
		}
	}
	return "(version unknown)"
}

// usedMemory is Redis' INFO used_memory.
func (r *runner) usedMemory(ctx context.Context) (int64, error) {
	info, err := r.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("redis info: %w", err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("redis info: no used_memory")
}

// memory measures Redis memory per lead after the throughput phase: the
// growth of used_memory over the distinct leads, and a sample of lead keys
// for the share of the explanation (x) and the spread.
func (r *runner) memory(ctx context.Context, t topics, w *Workload, before int64) error {
	after, err := r.usedMemory(ctx)
	if err != nil {
		return err
	}
	// Distinct leads stored: every key but the decay schedule's shards
	// (a producer duplicate can take a first touch's place, so a backlog
	// barely larger than Leads may miss a few).
	keys, err := r.rdb.DBSize(ctx).Result()
	if err != nil {
		return fmt.Errorf("dbsize: %w", err)
	}
	shards := make([]string, 16)
	for i := range shards {
		shards[i] = t.prefix + "schedule:{" + strconv.Itoa(i) + "}"
	}
	sched, err := r.rdb.Exists(ctx, shards...).Result()
	if err != nil {
		return fmt.Errorf("exists: %w", err)
	}
	m := MemoryFigures{Leads: int(keys - sched), UsedDelta: after - before}
	// A sample of leads spread over the id space; lead 0 is Zipf's busiest.
	const sample = 2000
	pipe := r.rdb.Pipeline()
	type probe struct {
		val *redis.StringCmd
		mem *redis.IntCmd
	}
	probes := make([]probe, 0, sample)
	for i := range sample {
		n := i * (w.Leads / sample)
		if i == 0 {
			n = w.lead(0)
		}
		key := t.prefix + "{" + w.LeadID(n) + "}"
		probes = append(probes, probe{val: pipe.Get(ctx, key), mem: pipe.MemoryUsage(ctx, key, 0)})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("sample lead keys: %w", err)
	}
	var sumS, sumX, sumMem, found int64
	for i, p := range probes {
		if p.val.Err() != nil {
			continue // a lead the backlog missed
		}
		found++
		// The value is version (8 bytes), uvarint length of s, s, x
		// (internal/redisstore).
		v := []byte(p.val.Val())
		if len(v) < 9 {
			return fmt.Errorf("sample lead keys: value of %d bytes", len(v))
		}
		sl, k := binary.Uvarint(v[8:])
		s, x, mem := int64(sl), int64(len(v)-8-k)-int64(sl), p.mem.Val()
		if i == 0 {
			m.BusiestKey, m.BusiestS, m.BusiestX = mem, s, x
		}
		sumS += s
		sumX += x
		sumMem += mem
		m.MaxKey = max(m.MaxKey, mem)
	}
	if found == 0 {
		return errors.New("sample lead keys: none stored")
	}
	m.AvgS = float64(sumS) / float64(found)
	m.AvgX = float64(sumX) / float64(found)
	m.AvgKey = float64(sumMem) / float64(found)
	enc, _ := r.rdb.ObjectEncoding(ctx, t.prefix+"{"+w.LeadID(w.lead(0))+"}").Result()
	m.Encoding = enc
	r.rep.Memory = m
	r.logf("  %s", m)
	return nil
}

// scrape reads a leadscore's /metrics into name → value for the series
// without labels.
func scrape(ctx context.Context, addr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || strings.Contains(name, "_bucket{") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	return out, nil
}

// fetchProfile saves a CPU profile of secs seconds from a leadscore's pprof
// endpoint.
func fetchProfile(ctx context.Context, addr, path string, secs int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (lf *LatencyFigures) set(samples []time.Duration) {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	lf.Samples = len(samples)
	lf.P50 = percentile(samples, 0.50)
	lf.P99 = percentile(samples, 0.99)
	lf.P999 = percentile(samples, 0.999)
	if len(samples) > 0 {
		lf.Max = samples[len(samples)-1]
	}
}

// causeEventID cuts a transition record's cause_event_id out of its JSON
// without decoding the rest: the readers share the machine with what they
// measure. Event ids made by Workload.Next need no unescaping.
func causeEventID(v []byte) string {
	const field = `"cause_event_id":"`
	i := bytes.Index(v, []byte(field))
	if i < 0 {
		return ""
	}
	v = v[i+len(field):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return ""
	}
	return string(v[:j])
}
