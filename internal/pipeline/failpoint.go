package pipeline

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Failpoints kill the process with SIGKILL at a named point of the hot path
// the Nth time it is reached, so that tests can crash leadscore exactly
// between two steps (as etcd's gofail and TiKV's failpoints do). They are
// off unless LEADSCORE_FAILPOINTS names some, e.g. "after-save=3" (after
// the batch's state is in Redis, before its transitions are published) or
// "after-publish=2" (after Kafka acknowledged them, before the commit).
type Failpoints struct {
	mu     sync.Mutex
	at     map[string]int
	counts map[string]int
}

// Failpoint names.
const (
	FailAfterSave    = "after-save"
	FailAfterPublish = "after-publish"
)

// ParseFailpoints reads "name=N[,name=N]".
func ParseFailpoints(spec string) (*Failpoints, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	f := &Failpoints{at: map[string]int{}, counts: map[string]int{}}
	for _, part := range strings.Split(spec, ",") {
		name, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		count, err := strconv.Atoi(n)
		if !ok || err != nil || count < 1 || (name != FailAfterSave && name != FailAfterPublish) {
			return nil, fmt.Errorf("LEADSCORE_FAILPOINTS: %q: use %s=N or %s=N", part, FailAfterSave, FailAfterPublish)
		}
		f.at[name] = count
	}
	return f, nil
}

func (f *Failpoints) hit(name string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.counts[name]++
	n := f.counts[name]
	f.mu.Unlock()
	if n == f.at[name] {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
