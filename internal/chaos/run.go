package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/internal/kafkaadmin"
	"github.com/leadscore/leadscore/internal/localsvc"
	"github.com/leadscore/leadscore/internal/redisstore"
	"github.com/leadscore/leadscore/sink"
)

// Config is one run of the suite.
type Config struct {
	Root      string // the repository: scripts/services.sh and ./cmd/leadscore live there
	KafkaPort int    // the suite's own broker (default 19192)
	RedisPort int    // the suite's own Redis (default 16479)
	Faults    int    // faults to inject, spread over the kinds
	Events    int
	Leads     int
	Seed      int64
	Out       io.Writer // progress and the report
}

// Fault kinds, in the order of the report.
const (
	FaultSIGKILL     = "sigkill+restart"
	FaultRebalance   = "rebalance (join/leave)"
	FaultKafka       = "kafka broker restart"
	FaultRedis       = "redis restart (AOF)"
	FaultRedisPause  = "redis unreachable (1–3 s)"
	dedupeWindow     = 32
	partitions       = 4
	recoveryTimeout  = 120 * time.Second
	sessionTimeout   = "3s"
	finalLagDeadline = 5 * time.Minute
)

var faultKinds = []string{FaultSIGKILL, FaultRebalance, FaultKafka, FaultRedis, FaultRedisPause}

// Report is what a run found.
type Report struct {
	Recovery       map[string][]time.Duration
	NotRecovered   map[string]int // faults after which commits did not advance within recoveryTimeout
	Events, Leads  int
	Records        int // input records on the topic (good and bad, producer retries included)
	Bad            int // bad records on the input topic
	Mismatches     int
	Lost, Invented int
	DupCopies      int
	Transitions    int // distinct expected transitions
	DLQExact       bool
	DLQCopies      int // dead letters beyond one per bad record
	Unexpected     []string
	Details        []string
	Elapsed        time.Duration
}

// OK reports whether the run found nothing wrong.
func (r *Report) OK() bool {
	return r.Mismatches == 0 && r.Lost == 0 && r.Invented == 0 && r.DLQExact
}

// Run executes the suite. It returns an error when the suite itself could
// not run; what it found is in the Report (see Report.OK).
func Run(ctx context.Context, c Config) (*Report, error) {
	began := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(c.Out, "%s  %s\n", time.Now().Format("15:04:05.0"), fmt.Sprintf(format, a...))
	}
	// AOF on: faults restart Redis and need its data back.
	svc := &localsvc.Services{Root: c.Root, KafkaPort: c.KafkaPort, RedisPort: c.RedisPort, AOF: true, Log: c.Out}
	logf("starting the suite's own Kafka 127.0.0.1:%d and Redis 127.0.0.1:%d (AOF on)", c.KafkaPort, c.RedisPort)
	if err := svc.Up(); err != nil {
		return nil, err
	}
	brokers := []string{"127.0.0.1:" + strconv.Itoa(c.KafkaPort)}
	redisAddr := "127.0.0.1:" + strconv.Itoa(c.RedisPort)
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	// A Redis reused from an earlier `services.sh up` without AOF gets it now.
	if err := rdb.ConfigSet(ctx, "appendonly", "yes").Err(); err != nil {
		return nil, fmt.Errorf("redis config set appendonly: %w", err)
	}

	work, err := os.MkdirTemp("", "leadscore-chaos-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(work, "leadscore")
	logf("building leadscore into %s", bin)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/leadscore")
	build.Dir = c.Root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	rulesPath := filepath.Join(work, "rules.yaml")
	if err := os.WriteFile(rulesPath, RulesYAML, 0o644); err != nil {
		return nil, err
	}

	id := fmt.Sprintf("chaos-%d-%d", c.Seed, time.Now().Unix())
	input, output, dlq := id+"-events", id+"-transitions", id+"-dlq"
	prefix := id + ":"
	var specs []kafkaadmin.TopicSpec
	for _, n := range []string{input, output, dlq} {
		specs = append(specs, kafkaadmin.TopicSpec{Name: n, Partitions: partitions, ReplicationFactor: 1})
	}
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = kafkaadmin.EnsureTopics(tctx, brokers, true, specs...)
	cancel()
	if err != nil {
		return nil, err
	}
	logf("topics %s-{events,transitions,dlq}, redis prefix %s, logs in %s", id, prefix, work)

	fl := &fleet{bin: bin, logDir: work, env: append(os.Environ(),
		"LEADSCORE_KAFKA_BROKERS="+brokers[0],
		"LEADSCORE_REDIS_ADDR="+redisAddr,
		"LEADSCORE_GROUP_ID="+id,
		"LEADSCORE_INPUT_TOPIC="+input,
		"LEADSCORE_OUTPUT_TOPIC="+output,
		"LEADSCORE_DLQ_TOPIC="+dlq,
		"LEADSCORE_REDIS_KEY_PREFIX="+prefix,
		"LEADSCORE_RULES_FILE="+rulesPath,
		"LEADSCORE_KAFKA_PARTITIONS="+strconv.Itoa(partitions),
		"LEADSCORE_STATE_DEDUPE_WINDOW="+strconv.Itoa(dedupeWindow),
		"LEADSCORE_HTTP_ADDR=127.0.0.1:0",
		"LEADSCORE_KAFKA_SESSION_TIMEOUT="+sessionTimeout,
		"LEADSCORE_BATCH_MAX_EVENTS=200",
		"LEADSCORE_LOG_LEVEL=warn",
	)}
	defer fl.stopAll()

	tr := &kafka.Transport{MetadataTTL: 500 * time.Millisecond}
	defer tr.CloseIdleConnections()
	admin := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 5 * time.Second}
	partLag := func() ([]kafkaadmin.PartitionLag, bool) {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		lags, err := kafkaadmin.Lag(lctx, admin, id, input)
		return lags, err == nil && len(lags) > 0
	}
	lag := func() (committed, lagSum int64, ok bool) {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		lags, err := kafkaadmin.Lag(lctx, admin, id, input)
		if err != nil || len(lags) == 0 {
			return 0, 0, false
		}
		for _, l := range lags {
			committed += l.End - l.Lag
			lagSum += l.Lag
		}
		return committed, lagSum, true
	}

	wl := Generate(c.Seed, c.Events, c.Leads, time.Now().UTC().Add(-2*time.Hour).Truncate(time.Millisecond))
	logf("workload: %d records (%d events incl. %d producer duplicates, %d out of order; %d bad) over %d leads",
		len(wl.Msgs), wl.Events, wl.Duplicates, wl.Swapped, wl.Bad, c.Leads)

	// Two instances to begin with; faults keep between one and three alive.
	fl.want = 2
	if _, err := fl.supervise(); err != nil {
		return nil, err
	}

	// The producer streams the workload, paced by the faults: before fault
	// i it may send i+1 shares of F+1, in small batches every 100 ms, so
	// records keep arriving while faults happen.
	var faultsDone int64
	var progMu sync.Mutex
	allowed := func() int {
		progMu.Lock()
		defer progMu.Unlock()
		return int(int64(len(wl.Msgs)) * (faultsDone + 1) / int64(c.Faults+1))
	}
	share := len(wl.Msgs) / (c.Faults + 1)
	chunk := share / 60
	if chunk < 20 {
		chunk = 20
	}
	prodErr := make(chan error, 1)
	pctx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	var retries int
	go func() {
		w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: input, Transport: tr, Balancer: &kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 500, MaxAttempts: 3}
		defer w.Close()
		sent := 0
		for sent < len(wl.Msgs) {
			lim := allowed()
			if sent >= lim {
				select {
				case <-pctx.Done():
					prodErr <- pctx.Err()
					return
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			n := chunk
			if lim == len(wl.Msgs) {
				n = 1000 // faults are over: finish quickly
			}
			end := sent + n
			if end > lim {
				end = lim
			}
			batch := append([]kafka.Message(nil), wl.Msgs[sent:end]...)
			for len(batch) > 0 {
				wctx, cancel := context.WithTimeout(pctx, 30*time.Second)
				err := w.WriteMessages(wctx, batch...)
				cancel()
				if err == nil {
					break
				}
				if pctx.Err() != nil {
					prodErr <- pctx.Err()
					return
				}
				// Keep what failed (a retry of a record that did land is a
				// duplicate: the reference reads the topic back, so it knows).
				var werrs kafka.WriteErrors
				if errors.As(err, &werrs) && len(werrs) == len(batch) {
					var again []kafka.Message
					for i, e := range werrs {
						if e != nil {
							again = append(again, batch[i])
						}
					}
					batch = again
				}
				retries++
				time.Sleep(500 * time.Millisecond)
			}
			sent = end
			time.Sleep(100 * time.Millisecond)
		}
		prodErr <- nil
	}()

	probeKeys := make([]string, partitions)
	for k, found := 0, 0; found < partitions; k++ {
		key := fmt.Sprintf("probe-%d", k)
		p := (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(key)}, 0, 1, 2, 3)
		if probeKeys[p] == "" {
			probeKeys[p] = key
			found++
		}
	}
	pw := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: input, Transport: tr, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, MaxAttempts: 3}
	defer pw.Close()
	probe := func(fault int) error {
		var msgs []kafka.Message
		for p, key := range probeKeys {
			v, _ := json.Marshal(wireEvent{EventID: fmt.Sprintf("probe-%d-%d-%d", c.Seed, fault, p), LeadID: key,
				Type: "page_view", OccurredAt: time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)})
			msgs = append(msgs, kafka.Message{Key: []byte(key), Value: v})
		}
		deadline := time.Now().Add(recoveryTimeout)
		for {
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := pw.WriteMessages(wctx, msgs...)
			cancel()
			if err == nil {
				return nil
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				return fmt.Errorf("write probes: %w", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	rng := rand.New(rand.NewSource(c.Seed ^ 0x5eed))
	order := make([]string, c.Faults)
	for i := range order {
		order[i] = faultKinds[i%len(faultKinds)]
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })

	rep := &Report{Recovery: map[string][]time.Duration{}, NotRecovered: map[string]int{}}
	joinNext := true
	for i, kind := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Random point in the stream: 0.5–2.5 s after the previous recovery.
		time.Sleep(500*time.Millisecond + time.Duration(rng.Int63n(int64(2*time.Second))))
		if _, err := fl.supervise(); err != nil {
			return nil, err
		}
		what := kind
		switch kind {
		case FaultSIGKILL:
			in := fl.pick(rng.Intn(8))
			fl.stop(in, syscall.SIGKILL, 10*time.Second)
			if _, err := fl.start(); err != nil {
				return nil, err
			}
			what += " " + in.name
		case FaultRebalance:
			n := fl.count()
			if n >= 3 || (!joinNext && n > 1) {
				in := fl.pick(rng.Intn(8))
				fl.mu.Lock()
				fl.want--
				fl.mu.Unlock()
				fl.stop(in, syscall.SIGTERM, 30*time.Second)
				what = "leave " + in.name
			} else {
				fl.mu.Lock()
				fl.want++
				fl.mu.Unlock()
				in, err := fl.start()
				if err != nil {
					return nil, err
				}
				what = "join " + in.name
			}
			joinNext = !joinNext
		case FaultKafka:
			if err := svc.RestartKafka(); err != nil {
				return nil, err
			}
		case FaultRedis:
			if err := svc.RestartRedis(); err != nil {
				return nil, err
			}
		case FaultRedisPause:
			d := time.Second + time.Duration(rng.Int63n(int64(2*time.Second)))
			if err := svc.PauseRedis(d); err != nil {
				return nil, err
			}
			what = fmt.Sprintf("%s: SIGSTOP %.1f s", kind, d.Seconds())
		}
		end := time.Now()
		progMu.Lock()
		faultsDone++
		progMu.Unlock()

		// Recovery: from the fault's end until the group has committed a
		// probe record written to every partition right after it. (Any one
		// partition moving is not enough: after a SIGKILL the other members
		// keep committing theirs while the dead member's partitions wait out
		// the session timeout.) Probes are ordinary events of probe leads:
		// the reference reads them back like any other record.
		if err := probe(i); err != nil {
			return nil, err
		}
		var target map[int]int64
		for target == nil && time.Since(end) < recoveryTimeout {
			if parts, ok := partLag(); ok {
				target = map[int]int64{}
				for _, p := range parts {
					target[p.Partition] = p.End
				}
			} else {
				time.Sleep(100 * time.Millisecond)
			}
		}
		recovered := false
		for target != nil && time.Since(end) < recoveryTimeout {
			if n, err := fl.supervise(); err != nil {
				return nil, err
			} else if n > 0 {
				logf("  %d leadscore process(es) had exited unasked: restarted", n)
			}
			if parts, ok := partLag(); ok {
				all := true
				for _, p := range parts {
					all = all && p.Committed >= target[p.Partition]
				}
				if all {
					recovered = true
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		d := time.Since(end)
		if recovered {
			rep.Recovery[kind] = append(rep.Recovery[kind], d)
			logf("fault %d/%d %-40s recovered in %.1f s (instances %d)", i+1, c.Faults, what, d.Seconds(), fl.count())
		} else {
			rep.NotRecovered[kind]++
			logf("fault %d/%d %-40s NOT recovered within %s", i+1, c.Faults, what, recoveryTimeout)
		}
	}
	progMu.Lock()
	faultsDone = int64(c.Faults)
	progMu.Unlock()
	if err := <-prodErr; err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	logf("all %d records produced (%d write retries); waiting for lag 0", len(wl.Msgs), retries)
	deadline := time.Now().Add(finalLagDeadline)
	for {
		if _, err := fl.supervise(); err != nil {
			return nil, err
		}
		if _, lg, ok := lag(); ok && lg == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lag did not reach 0 within %s", finalLagDeadline)
		}
		time.Sleep(200 * time.Millisecond)
	}
	logf("lag 0; stopping the instances")
	fl.stopAll()
	rep.Unexpected = fl.unexpectedExits()

	if err := verify(ctx, rep, brokers, tr, rdb, input, output, dlq, prefix, wl); err != nil {
		return nil, err
	}
	rep.Events, rep.Leads = c.Events, c.Leads
	rep.Elapsed = time.Since(began)
	return rep, nil
}

// verify reads the three topics and Redis and compares them with the reference.
func verify(ctx context.Context, rep *Report, brokers []string, tr *kafka.Transport, rdb *redis.Client,
	input, output, dlq, prefix string, wl *Workload) error {
	in, err := readAll(ctx, brokers, tr, input)
	if err != nil {
		return err
	}
	rep.Records = len(in)
	byLead := map[string][]Input{}
	wantDLQ := map[string]bool{}
	for _, m := range in {
		if wl.BadValues[string(m.Value)] {
			wantDLQ[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = true
			continue
		}
		var e wireEvent
		if err := json.Unmarshal(m.Value, &e); err != nil {
			return fmt.Errorf("input %d/%d: a generated good record does not parse: %w", m.Partition, m.Offset, err)
		}
		byLead[e.LeadID] = append(byLead[e.LeadID], Input{EventID: e.EventID, LeadID: e.LeadID, Type: e.Type})
	}
	rep.Bad = len(wantDLQ)
	want, wantIDs, err := Reference(RulesYAML, dedupeWindow, byLead)
	if err != nil {
		return err
	}
	rep.Transitions = len(wantIDs)

	// State in Redis.
	store, err := redisstore.New(ctx, rdb, prefix)
	if err != nil {
		return err
	}
	leads := make([]string, 0, len(want))
	for l := range want {
		leads = append(leads, l)
	}
	sort.Strings(leads)
	for i := 0; i < len(leads); i += 500 {
		j := i + 500
		if j > len(leads) {
			j = len(leads)
		}
		got, err := store.Load(ctx, leads[i:j])
		if err != nil {
			return fmt.Errorf("load states: %w", err)
		}
		for k, g := range got {
			l := leads[i+k]
			w := want[l]
			score := float64(int64((g.State.Eng+g.State.Fit)*100+0.5*sign(g.State.Eng+g.State.Fit))) / 100
			if !g.Found || score != w.Score || g.State.Band != w.Band || g.State.Stage != w.Stage || g.State.Events != w.Events {
				rep.Mismatches++
				if len(rep.Details) < 10 {
					rep.Details = append(rep.Details, fmt.Sprintf("state %s: got found=%v score %v %s/%s after %d events, want %v %s/%s after %d",
						l, g.Found, score, g.State.Band, g.State.Stage, g.State.Events, w.Score, w.Band, w.Stage, w.Events))
				}
			}
		}
	}

	// Transitions.
	out, err := readAll(ctx, brokers, tr, output)
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for _, m := range out {
		var r sink.TransitionRecord
		if err := json.Unmarshal(m.Value, &r); err != nil {
			return fmt.Errorf("transition %d/%d is not JSON: %w", m.Partition, m.Offset, err)
		}
		seen[r.TransitionID]++
		if !wantIDs[r.TransitionID] && seen[r.TransitionID] == 1 {
			rep.Invented++
			if len(rep.Details) < 20 {
				rep.Details = append(rep.Details, fmt.Sprintf("invented %s %s %s→%s cause %s", r.LeadID, r.Kind, r.From, r.To, r.CauseEventID))
			}
		}
	}
	for id := range wantIDs {
		if seen[id] == 0 {
			rep.Lost++
		}
	}
	for _, n := range seen {
		rep.DupCopies += n - 1
	}

	// Dead letters: exactly the bad records, by source partition/offset.
	dl, err := readAll(ctx, brokers, tr, dlq)
	if err != nil {
		return err
	}
	gotDLQ := map[string]int{}
	for _, m := range dl {
		var p, o string
		for _, h := range m.Headers {
			switch h.Key {
			case sink.HeaderSourcePartition:
				p = string(h.Value)
			case sink.HeaderSourceOffset:
				o = string(h.Value)
			}
		}
		gotDLQ[p+"/"+o]++
	}
	rep.DLQExact = len(gotDLQ) == len(wantDLQ)
	for k, n := range gotDLQ {
		rep.DLQCopies += n - 1
		if !wantDLQ[k] {
			rep.DLQExact = false
			rep.Details = append(rep.Details, "dead letter for a record that is not bad: "+k)
		}
	}
	for k := range wantDLQ {
		if gotDLQ[k] == 0 {
			rep.DLQExact = false
			rep.Details = append(rep.Details, "bad record missing from the DLQ: "+k)
		}
	}
	return nil
}

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}

// readAll reads every record of a topic, partition by partition, in offset order.
func readAll(ctx context.Context, brokers []string, tr *kafka.Transport, topic string) ([]kafka.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return nil, fmt.Errorf("metadata %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, p := range md.Topics[0].Partitions {
		offs, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			topic: {kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID)}}})
		if err != nil {
			return nil, fmt.Errorf("list offsets %s: %w", topic, err)
		}
		po := offs.Topics[topic][0]
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID,
			MaxWait: 100 * time.Millisecond, MaxBytes: 10 << 20})
		_ = r.SetOffset(po.FirstOffset)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("read %s/%d: %w", topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		_ = r.Close()
	}
	return out, nil
}

// Table renders the report.
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s %8s %16s %13s\n", "fault", "injected", "recovery median", "recovery max")
	for _, k := range faultKinds {
		ds := append([]time.Duration(nil), r.Recovery[k]...)
		n := len(ds) + r.NotRecovered[k]
		if n == 0 {
			continue
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		med, max := "-", "-"
		if len(ds) > 0 {
			med = fmt.Sprintf("%.1f s", ds[len(ds)/2].Seconds())
			max = fmt.Sprintf("%.1f s", ds[len(ds)-1].Seconds())
		}
		if r.NotRecovered[k] > 0 {
			max = fmt.Sprintf("> %s (%d)", recoveryTimeout, r.NotRecovered[k])
		}
		fmt.Fprintf(&b, "%-28s %8d %16s %13s\n", k, n, med, max)
	}
	fmt.Fprintf(&b, "events %s · leads %s · input records %s · bad records %d · expected transitions %s\n",
		thousands(r.Events), thousands(r.Leads), thousands(r.Records), r.Bad, thousands(r.Transitions))
	yes := map[bool]string{true: "yes", false: "no"}
	fmt.Fprintf(&b, "state mismatches %d · lost transitions %d · invented %d · duplicate copies %d · DLQ exact: %s (extra copies %d)\n",
		r.Mismatches, r.Lost, r.Invented, r.DupCopies, yes[r.DLQExact], r.DLQCopies)
	fmt.Fprintf(&b, "leadscore exits nobody asked for: %d · run time %s\n", len(r.Unexpected), r.Elapsed.Round(time.Second))
	for _, u := range r.Unexpected {
		fmt.Fprintf(&b, "  unexpected exit %s\n", u)
	}
	for _, d := range r.Details {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	return b.String()
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
