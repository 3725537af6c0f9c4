package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// instance is one leadscore process of the suite's consumer group.
type instance struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done
	// stopping marks an exit the suite asked for (SIGKILL, SIGTERM).
	stopping bool
}

// fleet starts and stops leadscore processes and notices the ones that exit
// on their own.
type fleet struct {
	bin    string
	env    []string
	logDir string

	mu         sync.Mutex
	live       []*instance
	started    int
	unexpected []string // "name: exit status" of processes that died unasked
	// want is how many processes the group should have: supervise replaces
	// the ones that died unasked, as a process supervisor would.
	want int
	wg   sync.WaitGroup
}

func (f *fleet) start() (*instance, error) {
	f.mu.Lock()
	f.started++
	name := fmt.Sprintf("ls-%02d", f.started)
	f.mu.Unlock()
	logf, err := os.Create(filepath.Join(f.logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(f.bin, "run")
	cmd.Env = f.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start leadscore: %w", err)
	}
	in := &instance{name: name, cmd: cmd, done: make(chan struct{})}
	f.mu.Lock()
	f.live = append(f.live, in)
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		in.err = cmd.Wait()
		logf.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, x := range f.live {
			if x == in {
				f.live = append(f.live[:i], f.live[i+1:]...)
				break
			}
		}
		if !in.stopping {
			f.unexpected = append(f.unexpected, fmt.Sprintf("%s: %v (log %s)", name, in.err, filepath.Join(f.logDir, name+".log")))
		}
		close(in.done)
	}()
	return in, nil
}

// supervise starts processes until want are alive; it returns how many it started.
func (f *fleet) supervise() (int, error) {
	n := 0
	for {
		f.mu.Lock()
		short := len(f.live) < f.want
		f.mu.Unlock()
		if !short {
			return n, nil
		}
		if _, err := f.start(); err != nil {
			return n, err
		}
		n++
	}
}

func (f *fleet) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.live)
}

// pick returns the i-th live instance (modulo), or nil.
func (f *fleet) pick(i int) *instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.live) == 0 {
		return nil
	}
	return f.live[i%len(f.live)]
}

// stop sends sig and waits for the exit (SIGKILL after grace).
func (f *fleet) stop(in *instance, sig syscall.Signal, grace time.Duration) {
	f.mu.Lock()
	in.stopping = true
	f.mu.Unlock()
	_ = in.cmd.Process.Signal(sig)
	select {
	case <-in.done:
	case <-time.After(grace):
		_ = in.cmd.Process.Kill()
		<-in.done
	}
}

func (f *fleet) stopAll() {
	f.mu.Lock()
	live := append([]*instance(nil), f.live...)
	f.mu.Unlock()
	for _, in := range live {
		f.stop(in, syscall.SIGTERM, 30*time.Second)
	}
	f.wg.Wait()
}

func (f *fleet) unexpectedExits() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.unexpected...)
}
