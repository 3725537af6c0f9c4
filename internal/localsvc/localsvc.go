// Package localsvc drives a private Kafka broker and Redis started by
// scripts/services.sh on ports of the caller's choosing, for the commands
// that need services of their own (the fault suite, the benchmark).
//
// It refuses services on those ports that were not started from this
// checkout: they cannot be restarted faithfully, and their processes cannot
// be found for CPU accounting. A Services is not safe for concurrent use.
package localsvc

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process names the pid files must point at (a substring of the command line).
const (
	KafkaProcess = "kafka.Kafka"
	RedisProcess = "redis-server"
)

// Services is one Kafka broker (its KRaft controller on KafkaPort+1) and
// one Redis, run by Root/scripts/services.sh.
type Services struct {
	Root                 string // the repository holding scripts/services.sh and .cache/run
	KafkaPort, RedisPort int
	// AOF starts Redis with its append-only file on (appendfsync everysec)
	// instead of no persistence.
	AOF bool
	Log io.Writer // where restarts are reported
}

// suffix is services.sh's data-directory suffix for a non-default port.
func suffix(port, def int) string {
	if port == def {
		return ""
	}
	return "-" + strconv.Itoa(port)
}

// KafkaPIDFile is where services.sh keeps the broker's pid.
func (s *Services) KafkaPIDFile() string {
	return filepath.Join(s.Root, ".cache/run", "kafka"+suffix(s.KafkaPort, 9092), "kafka.pid")
}

// RedisPIDFile is where services.sh keeps Redis' pid.
func (s *Services) RedisPIDFile() string {
	return filepath.Join(s.Root, ".cache/run", "redis"+suffix(s.RedisPort, 6379), "redis.pid")
}

// KafkaPID returns the broker's pid, checked against its command line.
func (s *Services) KafkaPID() (int, error) { return PID(s.KafkaPIDFile(), KafkaProcess) }

// RedisPID returns Redis' pid, checked against its command line.
func (s *Services) RedisPID() (int, error) { return PID(s.RedisPIDFile(), RedisProcess) }

// Up starts whatever is not running yet (services.sh up is idempotent) and
// checks that both services on these ports were started from this checkout.
func (s *Services) Up() error {
	cmd := exec.Command(filepath.Join(s.Root, "scripts/services.sh"), "up")
	cmd.Env = append(os.Environ(), s.env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("services.sh up: %w\n%s", err, out)
	}
	for _, c := range []struct{ file, name string }{{s.KafkaPIDFile(), KafkaProcess}, {s.RedisPIDFile(), RedisProcess}} {
		if _, err := PID(c.file, c.name); err != nil {
			return fmt.Errorf("the %s on ports %d/%d was not started from this checkout (%v): stop it where it was started "+
				"(%s) or choose other ports with --kafka-port/--redis-port",
				c.name, s.KafkaPort, s.RedisPort, err, s.DownCommand())
		}
	}
	return nil
}

// env is what services.sh reads.
func (s *Services) env() []string {
	aof := "no"
	if s.AOF {
		aof = "yes"
	}
	return []string{
		"LEADSCORE_KAFKA_PORT=" + strconv.Itoa(s.KafkaPort),
		"LEADSCORE_REDIS_PORT=" + strconv.Itoa(s.RedisPort),
		"LEADSCORE_REDIS_AOF=" + aof,
	}
}

// DownCommand is the shell command that stops these services.
func (s *Services) DownCommand() string {
	return fmt.Sprintf("LEADSCORE_KAFKA_PORT=%d LEADSCORE_REDIS_PORT=%d scripts/services.sh down", s.KafkaPort, s.RedisPort)
}

// PID reads a pid file and checks the process's command line names what we expect.
func PID(file, name string) (int, error) {
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

// StopAndWait signals a pid and waits until it is gone, with SIGKILL after grace.
func StopAndWait(p int, sig syscall.Signal, grace time.Duration) {
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

// RestartKafka stops the broker gracefully and starts it again.
func (s *Services) RestartKafka() error {
	p, err := s.KafkaPID()
	if err != nil {
		return err
	}
	t0 := time.Now()
	StopAndWait(p, syscall.SIGTERM, 60*time.Second)
	t1 := time.Now()
	err = s.Up()
	fmt.Fprintf(s.Log, "%s    broker pid %d stopped (SIGTERM) in %.1f s; services.sh up took %.1f s\n",
		time.Now().Format("15:04:05.0"), p, t1.Sub(t0).Seconds(), time.Since(t1).Seconds())
	return err
}

// RestartRedis stops Redis gracefully and starts it again; with AOF on,
// Redis fsyncs the file on SIGTERM and the restart replays it.
func (s *Services) RestartRedis() error {
	p, err := s.RedisPID()
	if err != nil {
		return err
	}
	StopAndWait(p, syscall.SIGTERM, 30*time.Second)
	return s.Up()
}

// PauseRedis freezes Redis (SIGSTOP) for d.
func (s *Services) PauseRedis(d time.Duration) error {
	p, err := s.RedisPID()
	if err != nil {
		return err
	}
	if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
		return err
	}
	time.Sleep(d)
	return syscall.Kill(p, syscall.SIGCONT)
}
