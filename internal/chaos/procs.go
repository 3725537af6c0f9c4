package chaos

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// services drives the suite's own Kafka broker and Redis through
// scripts/services.sh, on ports nobody else uses.
type services struct {
	root                 string
	kafkaPort, redisPort int
	log                  io.Writer
}

func (s *services) suffix(port, def int) string {
	if port == def {
		return ""
	}
	return "-" + strconv.Itoa(port)
}

func (s *services) kafkaPIDFile() string {
	return filepath.Join(s.root, ".cache/run", "kafka"+s.suffix(s.kafkaPort, 9092), "kafka.pid")
}

func (s *services) redisPIDFile() string {
	return filepath.Join(s.root, ".cache/run", "redis"+s.suffix(s.redisPort, 6379), "redis.pid")
}

func (s *services) up() error {
	cmd := exec.Command(filepath.Join(s.root, "scripts/services.sh"), "up")
	cmd.Env = append(os.Environ(),
		"LEADSCORE_KAFKA_PORT="+strconv.Itoa(s.kafkaPort),
		"LEADSCORE_REDIS_PORT="+strconv.Itoa(s.redisPort),
		"LEADSCORE_REDIS_AOF=yes")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("services.sh up: %w\n%s", err, out)
	}
	// Faults restart these services from this checkout's data directories:
	// a Kafka or Redis on these ports started elsewhere cannot be restarted
	// faithfully, so refuse now rather than after the first faults.
	for _, c := range []struct{ file, name string }{{s.kafkaPIDFile(), "kafka.Kafka"}, {s.redisPIDFile(), "redis-server"}} {
		if _, err := pid(c.file, c.name); err != nil {
			return fmt.Errorf("the %s on ports %d/%d was not started from this checkout (%v): stop it where it was started "+
				"(LEADSCORE_KAFKA_PORT=%d LEADSCORE_REDIS_PORT=%d scripts/services.sh down) or choose other ports with --kafka-port/--redis-port",
				c.name, s.kafkaPort, s.redisPort, err, s.kafkaPort, s.redisPort)
		}
	}
	return nil
}

// pid reads a pid file and checks the process's command line names what we expect.
func pid(file, name string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", file, err)
	}
	cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
	if err != nil || !strings.Contains(string(cl), name) {
		return 0, fmt.Errorf("pid %d from %s is not %s", p, file, name)
	}
	return p, nil
}

// stopAndWait signals a pid and waits until it is gone.
func stopAndWait(p int, sig syscall.Signal, grace time.Duration) {
	_ = syscall.Kill(p, sig)
	deadline := time.Now().Add(grace)
	for syscall.Kill(p, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(p, syscall.SIGKILL)
			deadline = time.Now().Add(time.Hour)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *services) restartKafka() error {
	p, err := pid(s.kafkaPIDFile(), "kafka.Kafka")
	if err != nil {
		return err
	}
	t0 := time.Now()
	stopAndWait(p, syscall.SIGTERM, 60*time.Second)
	t1 := time.Now()
	err = s.up()
	fmt.Fprintf(s.log, "%s    broker pid %d stopped (SIGTERM) in %.1f s; services.sh up took %.1f s\n",
		time.Now().Format("15:04:05.0"), p, t1.Sub(t0).Seconds(), time.Since(t1).Seconds())
	return err
}

func (s *services) restartRedis() error {
	p, err := pid(s.redisPIDFile(), "redis-server")
	if err != nil {
		return err
	}
	// SIGTERM: Redis fsyncs the AOF and exits; the restart replays it.
	stopAndWait(p, syscall.SIGTERM, 30*time.Second)
	return s.up()
}

func (s *services) pauseRedis(d time.Duration) error {
	p, err := pid(s.redisPIDFile(), "redis-server")
	if err != nil {
		return err
	}
	if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
		return err
	}
	time.Sleep(d)
	return syscall.Kill(p, syscall.SIGCONT)
}
