package service_test

import (
	"fmt"
	"math/rand"
	"os/exec"
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
				return e.startBinary(bin, "LEADSCORE_BATCH_MAX_EVENTS=200", "LEADSCORE_FAILPOINTS="+failpoint)
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

			o := e.checkAgainstReference(evs)
			t.Logf("SIGKILL %s the 3rd batch (%d transitions on the topic at the crash): %d of %d transitions lost, %d duplicate copies",
				point, before, o.lost, o.expected, o.dups)
			if o.mismatches > 0 || o.lost > 0 {
				t.Fatalf("%d state mismatches, %d transitions lost", o.mismatches, o.lost)
			}
		})
	}
}
