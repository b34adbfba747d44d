package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/state"
)

// lockHolderPID reads the PID of the state lock's holder from the lock
// file; 0 when no one wrote one.
func lockHolderPID(p *project) int {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, state.DefaultPath+".lock"))
	if err != nil || len(b) == 0 {
		return 0
	}
	var info state.LockInfo
	if err := json.Unmarshal(b, &info); err != nil {
		p.t.Fatalf("the lock file holds no holder info: %v\n%s", err, b)
	}
	return info.PID
}

// pid is the background dockplan's process ID.
func (b *background) pid() int { return b.cmd.Process.Pid }

// checkRefusedByLock checks that out is one operation's refusal because
// the state lock is held, naming the holder: its operation and PID, and
// how to force-unlock it.
func checkRefusedByLock(t *testing.T, what, out string, code int, holderOp string, holderPID int) {
	t.Helper()
	t.Logf("%s:\n%s", what, out)
	for _, want := range []string{"is locked by another dockplan", holderOp + " by ", fmt.Sprintf("(PID %d)", holderPID), "dockplan force-unlock "} {
		if !strings.Contains(out, want) {
			t.Errorf("%s does not say %q", what, want)
		}
	}
	if code != 1 {
		t.Errorf("%s exited %d, want 1", what, code)
	}
	if t.Failed() {
		t.Fatalf("%s:\n%s", what, out)
	}
}

// TestConcurrentApplies: while one apply runs, a second one with the
// default -lock-timeout (0) fails at once naming the first (operation,
// PID) and changes nothing; a third with -lock-timeout waits for the
// first to end, then plans from the state it left (only its own change
// is left to do: api[2], and web for its new link). Both writers' work is kept: the state records exactly
// the containers that exist.
func TestConcurrentApplies(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := labProject(t, l, "e2ecc", tiersConfig("one", 2))
	first := p.launch("apply", "-auto-approve")
	if !first.waitLine(stepStarted, 1, time.Minute) {
		out, code := first.wait(time.Minute)
		t.Fatalf("the first apply started no step (exit %d):\n%s", code, out)
	}
	if pid := lockHolderPID(p); pid != first.pid() {
		t.Errorf("the lock file names PID %d, want the running apply's %d", pid, first.pid())
	}
	out, code := p.run("apply", "-auto-approve")
	checkRefusedByLock(t, "the second apply", out, code, "apply", first.pid())
	if strings.Contains(out, stepStarted) {
		t.Errorf("the refused apply started steps:\n%s", out)
	}

	p.write(tiersConfig("one", 3))
	third := p.launch("apply", "-auto-approve", "-lock-timeout", "3m")
	firstOut, code := first.wait(3 * time.Minute)
	if code != 0 || !strings.Contains(firstOut, "Apply complete! 4 created") {
		t.Fatalf("the first apply exited %d:\n%s", code, firstOut)
	}
	thirdOut, code := third.wait(3 * time.Minute)
	t.Logf("the apply that waited:\n%s", thirdOut)
	// api[2] is new; web, which links to every api instance, is replaced
	// for its new API_ADDRS. Nothing the first apply made is created again.
	if code != 0 || !strings.Contains(thirdOut, "Plan: 1 to create, 0 to update, 1 to replace, 0 to delete.") ||
		!strings.Contains(thirdOut, "Apply complete! 1 created, 1 replaced") {
		t.Fatalf("the waiting apply exited %d; want it to plan from the first one's state: create api[2], replace web", code)
	}
	p.checkStateIsReality(tiersCounted)
	if st := p.state(); len(st.Instances) != 5 {
		t.Errorf("state has %v, want 5 instances", st.Addresses())
	}
	if out, code := p.run("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan after both applies exited %d, want 0:\n%s", code, out)
	}
}

// TestApplyAndDestroyAtOnce: destroy while an apply runs fails at once
// naming the apply; with -lock-timeout it waits and then removes every
// container, including those the apply created after destroy started
// waiting. Nothing is left on the hosts or in the state.
func TestApplyAndDestroyAtOnce(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := labProject(t, l, "e2ead", tiersConfig("one", 2))
	apply := p.launch("apply", "-auto-approve")
	if !apply.waitLine(stepStarted, 1, time.Minute) {
		out, code := apply.wait(time.Minute)
		t.Fatalf("the apply started no step (exit %d):\n%s", code, out)
	}
	out, code := p.run("destroy", "-auto-approve")
	checkRefusedByLock(t, "destroy during apply", out, code, "apply", apply.pid())

	destroy := p.launch("destroy", "-auto-approve", "-lock-timeout", "3m")
	applyOut, code := apply.wait(3 * time.Minute)
	if code != 0 || !strings.Contains(applyOut, "Apply complete! 4 created") {
		t.Fatalf("the apply exited %d:\n%s", code, applyOut)
	}
	destroyOut, code := destroy.wait(3 * time.Minute)
	t.Logf("the destroy that waited:\n%s", lastLines(destroyOut, 8))
	if code != 0 || !strings.Contains(destroyOut, "Destroy complete! 0 created, 0 replaced, 4 deleted") {
		t.Fatalf("the waiting destroy exited %d, want 4 deleted:\n%s", code, destroyOut)
	}
	if left := p.labelledContainers(); len(left) != 0 {
		t.Errorf("containers left after destroy: %v", left)
	}
	if st := p.state(); len(st.Instances) != 0 {
		t.Errorf("state has %v after destroy", st.Addresses())
	}
}

// daemonConfig is what TestApplyWithReconcileDaemon runs: db with a
// health check, web linked to it, whose own health check (every 3s)
// keeps a replace of web running for seconds, and a worker that nothing
// depends on.
func daemonConfig(setting string) string {
	return fmt.Sprintf(`
container "db" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  ports        = ["8080"]
  restart      = "unless-stopped"
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
  health {
    command  = ["CMD", "/testapp", "-healthcheck"]
    interval = "1s"
    retries  = 3
  }
}

container "web" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = 2
  ports        = ["8080"]
  restart      = "unless-stopped"
  env = {
    SETTING = %q
  }
  link "db" {}
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
  health {
    command  = ["CMD", "/testapp", "-healthcheck"]
    interval = "3s"
    retries  = 3
  }
}

container "worker" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  restart      = "unless-stopped"
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}
`, setting)
}

// TestApplyWithReconcileDaemon: a reconcile daemon runs while an apply
// replaces web. A worker stopped by hand meanwhile is repaired by the
// daemon only after the apply releases the state lock (it logs that it
// waits, naming the apply), and the containers the apply stops and
// removes are not "repaired" from the old state: after both, the state
// records exactly the containers that exist and the plan is empty.
func TestApplyWithReconcileDaemon(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := labProject(t, l, "e2erd", daemonConfig("one"))
	p.converge()
	worker := p.state().Instances["worker"]
	d := p.startReconcileDaemon()

	p.write(daemonConfig("two"))
	apply := p.launch("apply", "-auto-approve")
	if !apply.waitLine("Replacing...", 1, time.Minute) {
		out, code := apply.wait(time.Minute)
		t.Fatalf("the apply replaced nothing (exit %d):\n%s", code, out)
	}
	p.dockerOn(worker, "stop", worker.Name)
	line := d.waitLog("waiting for the state lock", "")
	if holder, _ := line["holder"].(string); !strings.Contains(holder, "apply by") || !strings.Contains(holder, fmt.Sprintf("(PID %d)", apply.pid())) {
		t.Errorf("the daemon waits for %q, want the apply (PID %d)", holder, apply.pid())
	}
	out, code := apply.wait(3 * time.Minute)
	if code != 0 || !strings.Contains(out, "Apply complete! 0 created, 2 replaced") {
		t.Fatalf("the apply exited %d:\n%s", code, out)
	}
	p.waitInstanceRunning(worker, "")
	started := d.waitLog("started container", worker.Host)
	if started["address"] != "worker" {
		t.Errorf("the daemon started %v, want worker", started["address"])
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not exit within 30s of SIGTERM")
	}
	d.mu.Lock()
	logs := strings.Join(d.raw, "\n")
	for _, line := range d.lines {
		if line["msg"] == "re-created container" || line["msg"] == "repair failed" {
			t.Errorf("the daemon fought the apply: %v", line)
		}
	}
	d.mu.Unlock()
	if t.Failed() {
		t.Logf("daemon log:\n%s", logs)
	}
	p.checkStateIsReality(map[string]bool{"web": true})
	if out, code := p.run("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan after the apply and the daemon exited %d, want 0:\n%s", code, out)
	}
}
