package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/state/etcdstate/etcdtest"
)

// BenchmarkReconcileFailover measures how long the reconcile daemons'
// leader election takes to replace a dead leader: two `dockplan reconcile
// -daemon` processes share an etcd state (a real 3-member cluster on
// loopback, state/etcdstate/etcdtest); the leader is killed with SIGKILL,
// and the time runs from the kill to the follower's "leading" log line.
// Each iteration kills the current leader and starts a new follower, so
// b.N is the number of failovers; it reports their median, minimum and
// maximum in seconds. The leader TTL is the default (5s) unless
// DOCKPLAN_BENCH_LEADER_TTL says otherwise. It needs no lab hosts: the
// daemons have no state to reconcile, only the election.
//
//	go test ./e2e -run '^$' -bench BenchmarkReconcileFailover -benchtime 10x
func BenchmarkReconcileFailover(b *testing.B) {
	c := etcdtest.Start(b)
	dir := b.TempDir()
	src := fmt.Sprintf("project = \"failover\"\n\nstate {\n  backend   = \"etcd\"\n  endpoints = [\"%s\"]\n  prefix    = \"dockplan-bench/failover-%d\"\n}\n",
		strings.Join(c.Endpoints(), "\", \""), time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(dir, "main.dockplan.hcl"), []byte(src), 0o600); err != nil {
		b.Fatal(err)
	}
	ttl := os.Getenv("DOCKPLAN_BENCH_LEADER_TTL")
	if ttl == "" {
		ttl = "5s"
	}
	leader := startElector(b, dir, ttl)
	leader.waitLeading(b, time.Minute)
	follower := startElector(b, dir, ttl)
	follower.waitLine(b, "following", time.Minute)
	var took []time.Duration
	b.ResetTimer()
	for range b.N {
		killed := time.Now()
		if err := syscall.Kill(leader.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		led := follower.waitLeading(b, time.Minute)
		took = append(took, led.Sub(killed))
		b.Logf("failover %d: %s", len(took), led.Sub(killed).Round(time.Millisecond))
		leader, follower = follower, startElector(b, dir, ttl)
		follower.waitLine(b, "following", time.Minute)
	}
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(took[len(took)/2].Seconds(), "median-failover-s")
	b.ReportMetric(took[0].Seconds(), "min-failover-s")
	b.ReportMetric(took[len(took)-1].Seconds(), "max-failover-s")
	b.ReportMetric(0, "ns/op") // the wall time per iteration includes starting the next follower
}

// elector is a reconcile daemon started by the benchmark; lines carries
// its JSON log lines.
type elector struct {
	cmd   *exec.Cmd
	lines chan map[string]any
}

func startElector(b *testing.B, dir, ttl string) *elector {
	b.Helper()
	cmd := exec.Command(binary, "-chdir="+dir, "reconcile", "-daemon", "-log-format", "json", "-leader-ttl", ttl)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=", "DOCKER_CONTEXT=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	e := &elector{cmd: cmd, lines: make(chan map[string]any, 100)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil {
				e.lines <- line
			}
		}
		close(e.lines)
		_ = cmd.Wait()
	}()
	b.Cleanup(func() { _ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL) })
	return e
}

// waitLine waits for a log line with msg and returns it.
func (e *elector) waitLine(b *testing.B, msg string, timeout time.Duration) map[string]any {
	b.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-e.lines:
			if !ok {
				b.Fatalf("daemon PID %d exited before logging %q", e.cmd.Process.Pid, msg)
			}
			if line["msg"] == msg {
				return line
			}
		case <-deadline:
			b.Fatalf("daemon PID %d did not log %q within %s", e.cmd.Process.Pid, msg, timeout)
		}
	}
}

// waitLeading waits for the daemon's "leading" line and returns its time.
func (e *elector) waitLeading(b *testing.B, timeout time.Duration) time.Time {
	b.Helper()
	line := e.waitLine(b, "leading: this daemon runs the reconciler", timeout)
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(line["time"]))
	if err != nil {
		b.Fatalf("log line time %v: %v", line["time"], err)
	}
	return at
}
