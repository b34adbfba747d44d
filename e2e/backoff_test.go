package e2e

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

// TestReconcileDaemonBacksOffCrashLoop runs a container that exits a
// second after every start under the daemon: the first repair is at
// once, the next ones wait 10s then 20s (the kubelet's doubling), and the
// engine sees exactly the starts the daemon logged, so a crash loop does
// not hammer it (Docker's own policy would restart it within 100 ms).
func TestReconcileDaemonBacksOffCrashLoop(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := labProject(t, l, "e2eloop", `
container "crash" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  restart      = "no"
  env = {
    TESTAPP_EXIT_AFTER = "1s"
    TESTAPP_EXIT_CODE  = "3"
  }
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}
`)
	p.mustRun("apply", "-auto-approve", "-probe-timeout", probeTimeout)
	inst := p.state().Instances["crash"]
	since := time.Now().Add(-time.Second)
	d := p.startReconcileDaemon()

	// Three repairs: at once, after 10s, after 20s more.
	starts := d.waitLines(3, 60*time.Second, func(l map[string]any) bool {
		return l["msg"] == "started container" && l["address"] == "crash"
	})
	var at []time.Time
	for i, l := range starts {
		ts, err := time.Parse(time.RFC3339Nano, l["time"].(string))
		if err != nil {
			t.Fatalf("log time %v: %v", l["time"], err)
		}
		at = append(at, ts)
		if want := float64(10*time.Second) * float64(int(1)<<i); l["next_backoff"] != want {
			t.Errorf("repair %d: next_backoff %v, want %v", i+1, l["next_backoff"], time.Duration(want))
		}
	}
	first, second := at[1].Sub(at[0]), at[2].Sub(at[1])
	t.Logf("starts at +0, +%.1fs, +%.1fs", first.Seconds(), (first + second).Seconds())
	if first < 10*time.Second || second < 20*time.Second || second > 30*time.Second {
		t.Errorf("gaps between repairs %s and %s, want at least 10s, then 20s to 30s", first, second)
	}
	if n := d.countLines(func(l map[string]any) bool { return l["msg"] == "backing off" && l["address"] == "crash" }); n < 2 {
		t.Errorf("%d \"backing off\" log lines, want at least 2", n)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-d.exited

	// The engine's own count: the apply's start and the daemon's three.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	h := p.labHostNamed(inst.Host)
	out, err := exec.CommandContext(ctx, "docker", "-H", h.Socket, "events", "--since", strconv.FormatInt(since.Unix(), 10),
		"--until", strconv.FormatInt(time.Now().Unix()+1, 10), "--filter", "container="+inst.Name, "--filter", "event=start",
		"--format", "{{.Action}}").Output()
	if err != nil {
		t.Fatalf("docker events: %v", err)
	}
	if n := strings.Count(string(out), "start"); n != 1+len(starts) {
		t.Errorf("the engine saw %d starts, want %d (the apply's and the daemon's %d)", n, 1+len(starts), len(starts))
	}
}

// waitLines waits until n log lines match, and returns the first n.
func (d *reconcileDaemon) waitLines(n int, timeout time.Duration, match func(map[string]any) bool) []map[string]any {
	d.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		var got []map[string]any
		for _, l := range d.lines {
			if match(l) {
				got = append(got, l)
			}
		}
		d.mu.Unlock()
		if len(got) >= n {
			return got[:n]
		}
		select {
		case <-d.added:
		case <-d.exited:
			d.t.Fatalf("the daemon exited after %d of %d log lines:\n%s", len(got), n, strings.Join(d.raw, "\n"))
		case <-deadline.C:
			d.t.Fatalf("%d of %d log lines within %s:\n%s", len(got), n, timeout, strings.Join(d.raw, "\n"))
		}
	}
}

// countLines counts the log lines that match.
func (d *reconcileDaemon) countLines(match func(map[string]any) bool) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, l := range d.lines {
		if match(l) {
			n++
		}
	}
	return n
}
