package service_test

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadscore/leadscore/events"
)

// TestSIGKILLAtExactPoints crashes the real binary with SIGKILL exactly
// between the Redis update and the Kafka produce (after-save), and exactly
// between the produce and the offset commit (after-publish), restarts it,
// and checks that the final state and the set of transitions equal the
// reference: the first crash must not lose the transitions its batch
// caused (they come back from the leads' history), the second must not count
// the batch twice (its redelivered records are recognised).
func TestSIGKILLAtExactPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	bin := buildBinary(t)
	for _, point := range []string{"after-save", "after-publish"} {
		t.Run(point, func(t *testing.T) {
			e := newEnv(t)
			e.ensureTopics()
			rng := rand.New(rand.NewSource(3))
			kinds := [][]string{{"page_view", "page", "pricing"}, {"download"}, {"email_click"}, {"consultation_request"}, {"unsubscribe"}}
			var evs []events.Event
			for i := 0; i < 3000; i++ {
				k := kinds[rng.Intn(len(kinds))]
				evs = append(evs, event(fmt.Sprintf("fp%d", i), fmt.Sprintf("lead-%02d", rng.Intn(60)), k[0], k[1:]...))
			}
			var msgs []kafka.Message
			for _, ev := range evs {
				msgs = append(msgs, record(ev))
			}
			e.produce(msgs...)

			run := func(failpoint string) *exec.Cmd {
				cmd := exec.Command(bin, "run")
				cmd.Env = append(os.Environ(),
					"LEADSCORE_KAFKA_BROKERS="+strings.Join(e.brokers, ","),
					"LEADSCORE_REDIS_ADDR="+e.redis,
					"LEADSCORE_GROUP_ID="+e.cfg.Kafka.GroupID,
					"LEADSCORE_INPUT_TOPIC="+e.cfg.Kafka.InputTopic,
					"LEADSCORE_OUTPUT_TOPIC="+e.cfg.Kafka.OutputTopic,
					"LEADSCORE_DLQ_TOPIC="+e.cfg.Kafka.DeadLetterTopic,
					"LEADSCORE_REDIS_KEY_PREFIX="+e.cfg.Redis.KeyPrefix,
					"LEADSCORE_HTTP_ADDR=127.0.0.1:0",
					"LEADSCORE_KAFKA_SESSION_TIMEOUT=3s",
					"LEADSCORE_BATCH_MAX_EVENTS=200",
					"LEADSCORE_LOG_LEVEL=warn",
					"LEADSCORE_FAILPOINTS="+failpoint,
				)
				cmd.Stderr = &prefixWriter{t: t}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd
			}
			crashing := run(point + "=3")
			done := make(chan error, 1)
			go func() { done <- crashing.Wait() }()
			select {
			case err := <-done:
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("the failpoint did not SIGKILL the process: %v", err)
				}
			case <-time.After(60 * time.Second):
				_ = crashing.Process.Kill()
				t.Fatal("the failpoint never fired")
			}
			before := len(e.readAll(e.cfg.Kafka.OutputTopic))

			survivor := run("")
			e.waitNoLag(90 * time.Second)
			_ = survivor.Process.Signal(syscall.SIGTERM)
			_ = survivor.Wait()

			wantStates, wantIDs := reference(t, e.cfg, evs)
			describe := referenceTransitions(t, e.cfg, evs)
			got := e.storedStates(sortedKeys(wantStates))
			for lead, want := range wantStates {
				g := got[lead].State
				if g.Band != want.Band || g.Stage != want.Stage || g.Events != want.Events || fmt.Sprintf("%.6f", g.Eng) != fmt.Sprintf("%.6f", want.Eng) {
					t.Errorf("%s: got %.2f %s/%s after %d events, want %.2f %s/%s after %d",
						lead, g.Eng, g.Band, g.Stage, g.Events, want.Eng, want.Band, want.Stage, want.Events)
				}
			}
			seen := map[string]int{}
			for _, tr := range transitions(t, e.readAll(e.cfg.Kafka.OutputTopic)) {
				seen[tr.TransitionID]++
				if !wantIDs[tr.TransitionID] {
					t.Errorf("invented transition %+v", tr)
				}
			}
			lost, dups := 0, 0
			for id := range wantIDs {
				if seen[id] == 0 {
					lost++
					t.Errorf("lost transition %s", describe[id])
				}
			}
			for _, n := range seen {
				dups += n - 1
			}
			t.Logf("SIGKILL %s the 3rd batch (%d transitions on the topic at the crash): %d of %d transitions lost, %d duplicate copies",
				point, before, lost, len(wantIDs), dups)
			if lost > 0 {
				t.Fatalf("%d transitions lost", lost)
			}
		})
	}
}
