package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/state"
	"github.com/dockplan/dockplan/state/etcdstate"
	"github.com/dockplan/dockplan/state/etcdstate/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Tests of the etcd state backend with the real binary, a real 3-member
// etcd cluster (state/etcdstate/etcdtest) and the lab's hosts.

// etcdLockTTL is the lock TTL the test configurations set: a killed
// holder keeps the lock for at most this long.
const etcdLockTTL = 3 * time.Second

// etcdLab is a lab project whose state is in an etcd cluster.
type etcdLab struct {
	*project
	c      *etcdtest.Cluster
	prefix string
}

// newEtcdLab starts a cluster and writes a project of the lab's hosts,
// src, and a state block for a fresh prefix of the cluster.
func newEtcdLab(t *testing.T, l *labenv.Lab, namePrefix, src string) *etcdLab {
	t.Helper()
	c := etcdtest.Start(t) // before the project: its cleanup (destroy) needs etcd
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	e := &etcdLab{c: c, prefix: fmt.Sprintf("dockplan-e2e/%x", rnd)}
	var eps []string
	for _, ep := range c.Endpoints() {
		eps = append(eps, fmt.Sprintf("%q", ep))
	}
	block := fmt.Sprintf("state {\n  backend      = \"etcd\"\n  endpoints    = [%s]\n  prefix       = %q\n  dial_timeout = \"2s\"\n  lock_ttl     = %q\n}\n",
		strings.Join(eps, ", "), e.prefix, etcdLockTTL.String())
	e.project = labProject(t, l, namePrefix, block+src)
	return e
}

// backend opens the project's etcd state, closed with the test.
func (e *etcdLab) backend() *etcdstate.Backend {
	e.t.Helper()
	b, err := etcdstate.New(etcdstate.Options{Endpoints: e.c.Endpoints(), Prefix: e.prefix, LockTTL: etcdLockTTL})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = b.Close() })
	return b
}

// etcdState loads the project's state from etcd; nil when there is none.
func (e *etcdLab) etcdState() *state.State {
	e.t.Helper()
	b := e.backend()
	st, err := b.Load(e.t.Context())
	if err != nil {
		e.t.Fatalf("load the etcd state: %v", err)
	}
	return st
}

// checkReality fails unless the etcd state records exactly the project's
// containers, each running, one per instance.
func (e *etcdLab) checkReality(counted map[string]bool) *state.State {
	e.t.Helper()
	st := e.etcdState()
	if st == nil {
		e.t.Fatal("there is no state in etcd")
	}
	byID := map[string]labelled{}
	perAddr := map[string]int{}
	for _, c := range e.labelledContainers() {
		byID[c.id] = c
		perAddr[c.address(counted)]++
	}
	for addr, n := range perAddr {
		if n > 1 {
			e.t.Errorf("%s has %d containers", addr, n)
		}
	}
	recorded := map[string]bool{}
	for _, addr := range st.Addresses() {
		si := st.Instances[addr]
		recorded[si.ContainerID] = true
		c, ok := byID[si.ContainerID]
		switch {
		case !ok:
			e.t.Errorf("the state records %s as container %.12s on %s, which does not exist", addr, si.ContainerID, si.Host)
		case c.host != si.Host || c.name != si.Name || c.status != "running":
			e.t.Errorf("the state records %s as %s on %s; the container is %s on %s, %s", addr, si.Name, si.Host, c.name, c.host, c.status)
		}
	}
	for id, c := range byID {
		if !recorded[id] {
			e.t.Errorf("container %s (%.12s) on %s is not in the state", c.name, id, c.host)
		}
	}
	return st
}

// launchInput runs dockplan in the project folder with a pipe as its
// standard input, like launch.
func (p *project) launchInput(args ...string) (*background, io.WriteCloser) {
	p.t.Helper()
	cmd := exec.Command(binary, append([]string{"-chdir=" + p.dir}, args...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start dockplan %v: %v", args, err)
	}
	w.Close()
	b := &background{t: p.t, cmd: cmd, exited: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			b.mu.Lock()
			b.lines = append(b.lines, sc.Text())
			b.cond.Broadcast()
			b.mu.Unlock()
		}
		r.Close()
		err := cmd.Wait()
		b.mu.Lock()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			b.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				b.code = 128 + int(ws.Signal())
			}
		case err != nil:
			b.code = -1
		}
		b.eof = true
		b.cond.Broadcast()
		b.mu.Unlock()
		close(b.exited)
	}()
	p.t.Cleanup(func() {
		select {
		case <-b.exited:
		default:
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-b.exited
		}
	})
	return b, stdin
}

// appConfig is count instances of one container without a health check,
// quick to apply.
func appConfig(count int) string {
	return fmt.Sprintf(`
container "app" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = %d
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}
`, count)
}

// appCounted names appConfig's counted container.
var appCounted = map[string]bool{"app": true}

// confirmPrompt is where apply waits for "yes", holding the state lock.
const confirmPrompt = "Only 'yes' will be accepted to approve."

// TestEtcdConcurrentApplies: while one apply holds the etcd state lock
// (waiting for its "yes"), a second apply with a short -lock-timeout
// fails naming the holder (its PID, operation, lock ID); a third one with
// a long -lock-timeout waits, and runs once the first has finished,
// finding nothing left to do. The state ends as the containers are.
func TestEtcdConcurrentApplies(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	e := newEtcdLab(t, l, "e2eec", appConfig(2))
	first, stdin := e.launchInput("apply")
	if !first.waitLine(confirmPrompt, 1, time.Minute) {
		out, code := first.wait(time.Minute)
		t.Fatalf("the first apply did not ask for confirmation (exit %d):\n%s", code, out)
	}

	out, code := e.run("apply", "-auto-approve", "-lock-timeout", "1s")
	if code != 1 || !strings.Contains(out, fmt.Sprintf("(PID %d)", first.cmd.Process.Pid)) || !strings.Contains(out, "apply by") ||
		!strings.Contains(out, "dockplan force-unlock ") || !strings.Contains(out, "etcd:"+e.prefix) {
		t.Fatalf("the second apply exited %d, want 1 naming the first (PID %d):\n%s", code, first.cmd.Process.Pid, out)
	}
	third := e.launch("apply", "-auto-approve", "-lock-timeout", "2m")
	if third.waitLine("ing... [", 1, 2*time.Second) {
		t.Fatalf("the third apply acted while the first held the lock:\n%s", third.output())
	}
	if _, err := io.WriteString(stdin, "yes\n"); err != nil {
		t.Fatal(err)
	}
	if out, code := first.wait(3 * time.Minute); code != 0 || !strings.Contains(out, "Apply complete! 2 created") {
		t.Fatalf("the first apply exited %d:\n%s", code, out)
	}
	if out, code := third.wait(3 * time.Minute); code != 0 || !strings.Contains(out, "No changes") {
		t.Fatalf("the third apply exited %d, want 0 with no changes:\n%s", code, out)
	}
	st := e.checkReality(appCounted)
	if len(st.Instances) != 2 {
		t.Errorf("the state has %v, want 2 instances", st.Addresses())
	}
	if out, code := e.run("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan after both applies exited %d, want 0:\n%s", code, out)
	}
}

// etcdLeader returns the index of the cluster's leader.
func etcdLeader(t *testing.T, c *etcdtest.Cluster) int {
	t.Helper()
	client, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i, ep := range c.Endpoints() {
		resp, err := client.Status(ctx, ep)
		if err == nil && resp.Leader == resp.Header.MemberId {
			return i
		}
	}
	t.Fatal("the etcd cluster has no leader")
	return -1
}

func waitEtcdHealthy(t *testing.T, c *etcdtest.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdMemberLossDuringApply: an apply goes on when the etcd leader is
// killed under it; with two members of three killed it fails cleanly
// saying the store lost quorum, and once they are back nothing saved is
// lost and the next apply converges.
func TestEtcdMemberLossDuringApply(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	e := newEtcdLab(t, l, "e2eeq", tiersConfig("one", 2))

	run := e.launch("apply", "-auto-approve")
	if !run.waitLine("ing... [", 1, 2*time.Minute) {
		out, code := run.wait(time.Minute)
		t.Fatalf("the apply started no step (exit %d):\n%s", code, out)
	}
	killed := etcdLeader(t, e.c)
	e.c.Kill(killed)
	if out, code := run.wait(3 * time.Minute); code != 0 || !strings.Contains(out, "Apply complete! 4 created") {
		t.Fatalf("the apply with the etcd leader killed exited %d:\n%s", code, out)
	}
	e.checkReality(tiersCounted)
	if out, code := e.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan with one member down exited %d, want 0:\n%s", code, out)
	}
	e.c.Restart(killed)
	waitEtcdHealthy(t, e.c)

	// Replace everything, and take the quorum away after the first step.
	e.write(e.stateSrc(tiersConfig("two", 2)))
	run = e.launch("apply", "-auto-approve")
	if !run.waitLine(": Replacement complete", 1, 2*time.Minute) {
		out, code := run.wait(time.Minute)
		t.Fatalf("the apply completed no step (exit %d):\n%s", code, out)
	}
	before := e.etcdState() // saved and acknowledged before the kill
	e.c.Kill(0)
	e.c.Kill(1)
	out, code := run.wait(3 * time.Minute)
	if code != 1 || !strings.Contains(out, "saving the state failed") || !strings.Contains(out, "the state store lost quorum or did not answer within 2s") ||
		!strings.Contains(out, "The last good state is the one stored in etcd:"+e.prefix) || strings.Contains(out, ".backup") {
		t.Fatalf("the apply without quorum exited %d, want 1 saying the store lost quorum:\n%s", code, out)
	}
	t.Logf("the apply without quorum said:\n%s", lastLines(out, 8))
	e.c.Restart(0)
	e.c.Restart(1)
	waitEtcdHealthy(t, e.c)

	after := e.etcdState()
	if after.Lineage != before.Lineage || after.Serial < before.Serial {
		t.Fatalf("after the quorum came back the state is serial %d of %s; before the kill it was serial %d of %s", after.Serial, after.Lineage, before.Serial, before.Lineage)
	}
	for addr, si := range before.Instances {
		if got := after.Instances[addr]; got == nil || (got.ContainerID != si.ContainerID && after.Serial == before.Serial) {
			t.Errorf("%s (container %.12s at serial %d) is lost: %+v at serial %d", addr, si.ContainerID, before.Serial, got, after.Serial)
		}
	}
	// The failed apply's lock lease, which it could not revoke without a
	// quorum, may hold the lock for up to a TTL after the restart.
	e.mustRun("apply", "-auto-approve", "-lock-timeout", "30s")
	if out, code := e.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after the converging apply exited %d, want 0:\n%s", code, out)
	}
	e.checkReality(tiersCounted)
	for _, c := range e.labelledContainers() {
		if !strings.Contains(inspectEnv(t, l, c), "SETTING=two\n") {
			t.Errorf("%s on %s does not have SETTING=two", c.name, c.host)
		}
	}
}

// stateSrc is src behind the project's state block, as write wants it.
func (e *etcdLab) stateSrc(src string) string {
	b, err := os.ReadFile(e.dir + "/main.dockplan.hcl")
	if err != nil {
		e.t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "state {")
	end := strings.Index(text[start:], "\n}\n") + start + 3
	return text[start:end] + src
}

// TestEtcdKilledApplyFreesTheLock: an apply killed with SIGKILL while it
// holds the etcd state lock stops renewing its lease, and the lock is free
// again within the lock TTL; the next apply converges.
func TestEtcdKilledApplyFreesTheLock(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	e := newEtcdLab(t, l, "e2eek", appConfig(1))
	run, _ := e.launchInput("apply")
	if !run.waitLine(confirmPrompt, 1, time.Minute) {
		out, code := run.wait(time.Minute)
		t.Fatalf("the apply did not ask for confirmation (exit %d):\n%s", code, out)
	}
	b := e.backend()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	if _, err := b.Lock(ctx, state.NewLockInfo("apply")); !strings.Contains(fmt.Sprint(err), fmt.Sprintf("(PID %d)", run.cmd.Process.Pid)) {
		t.Fatalf("Lock while the apply waits = %v; want the apply named as the holder", err)
	}
	cancel()
	if err := syscall.Kill(run.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if _, code := run.wait(time.Minute); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("the apply exited %d, want killed", code)
	}
	// Deadline: the TTL, and slack for a loaded machine (the etcd leader
	// checks for expired leases every 500ms).
	ctx, cancel = context.WithTimeout(t.Context(), etcdLockTTL+3*time.Second)
	defer cancel()
	id, err := b.Lock(ctx, state.NewLockInfo("apply"))
	if err != nil {
		t.Fatalf("the lock of the killed apply is not free %s after the kill (TTL %s): %v", time.Since(killed).Round(time.Millisecond), etcdLockTTL, err)
	}
	t.Logf("the lock was free %s after the kill (lock TTL %s)", time.Since(killed).Round(time.Millisecond), etcdLockTTL)
	if err := b.Unlock(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	e.converge()
	e.checkReality(appCounted)
}

// startEtcdDaemon starts `reconcile -daemon` on the project with a leader
// TTL of 3s, serving on a port it picks, and waits until it serves.
func (e *etcdLab) startEtcdDaemon() *reconcileDaemon {
	e.t.Helper()
	cmd := exec.Command(binary, "-chdir="+e.dir, "reconcile", "-daemon", "-listen", "127.0.0.1:0",
		"-log-format", "json", "-interval", "5s", "-leader-ttl", "3s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	d := &reconcileDaemon{t: e.t, cmd: cmd, added: make(chan struct{}, 1), exited: make(chan struct{})}
	go d.read(stderr)
	e.t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-d.exited
		}
		if e.t.Failed() {
			d.mu.Lock()
			e.t.Logf("daemon PID %d:\n%s", cmd.Process.Pid, strings.Join(d.raw, "\n"))
			d.mu.Unlock()
		}
	})
	d.waitLog("serving /metrics and /healthz", "")
	return d
}

// repairs returns the addresses of the daemon's "started container" lines.
func (d *reconcileDaemon) repairs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, l := range d.lines {
		if l["msg"] == "started container" {
			out = append(out, fmt.Sprint(l["address"]))
		}
	}
	return out
}

// waitLeads polls /healthz until the daemon says it leads.
func (d *reconcileDaemon) waitLeads(timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		client := http.Client{Timeout: time.Second}
		if resp, err := client.Get("http://" + d.listen + "/healthz"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.HasPrefix(string(b), "ok: leader ") {
				return
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("daemon PID %d does not lead within %s", d.cmd.Process.Pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEtcdReconcileFailover runs two reconcile daemons on one etcd state:
// the leader restarts a stopped container and the follower does nothing;
// the leader killed with SIGKILL, the follower takes over and restarts a
// container stopped after the failover. Every repair is made by exactly
// one daemon.
func TestEtcdReconcileFailover(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	e := newEtcdLab(t, l, "e2eer", appConfig(2))
	if out := e.mustRun("apply", "-auto-approve"); !strings.Contains(out, "Apply complete! 2 created") {
		t.Fatalf("apply:\n%s", out)
	}
	st := e.etcdState()
	a, b := e.startEtcdDaemon(), e.startEtcdDaemon()
	a.waitLeads(20 * time.Second)
	leader, follower := a, b
	// Both campaign; the first one in leads. Tell which by the log.
	if _, body := b.get("/healthz"); strings.HasPrefix(body, "ok: leader ") {
		leader, follower = b, a
	}
	leader.waitLog("leading: this daemon runs the reconciler", "")
	for host := range hostsOf(st) {
		leader.waitLog("host reachable", host)
	}

	first := st.Instances["app[0]"]
	e.dockerOn(first, "stop", first.Name)
	e.waitInstanceRunning(first, "")
	leader.waitLog("started container", "")

	if err := syscall.Kill(leader.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-leader.exited
	follower.waitLeads(20 * time.Second)
	for host := range hostsOf(st) {
		follower.waitLog("host reachable", host)
	}
	second := st.Instances["app[1]"]
	e.dockerOn(second, "stop", second.Name)
	e.waitInstanceRunning(second, "")
	follower.waitLog("started container", "")

	if got := leader.repairs(); len(got) != 1 || got[0] != "app[0]" {
		t.Errorf("the first leader repaired %v, want [app[0]]", got)
	}
	if got := follower.repairs(); len(got) != 1 || got[0] != "app[1]" {
		t.Errorf("the second leader repaired %v, want [app[1]] only (app[0] was the first leader's)", got)
	}
	e.checkReality(appCounted)
}

// hostsOf returns the hosts the state places instances on.
func hostsOf(st *state.State) map[string]bool {
	out := map[string]bool{}
	for _, si := range st.Instances {
		out[si.Host] = true
	}
	return out
}
