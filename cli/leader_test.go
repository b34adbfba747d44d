package cli

import (
	"bufio"
	"context"
	"encoding/json"
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

	"github.com/dockplan/dockplan/state/etcdstate/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// daemonProc is a `dockplan reconcile -daemon` process a test started.
type daemonProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []map[string]any
	raw    []string
	listen string
	added  chan struct{}
	exited chan struct{}
}

// startElectedDaemon starts the reconcile daemon in dir with a leader TTL
// of 3s, serving on a loopback port it picks, and waits for that port.
func startElectedDaemon(t *testing.T, dir string) *daemonProc {
	t.Helper()
	bin, err := exec.LookPath("dockplan")
	if err != nil {
		t.Fatalf("dockplan is not on PATH (TestMain puts it there): %v", err)
	}
	cmd := exec.Command(bin, "reconcile", "-daemon", "-listen", "127.0.0.1:0", "-log-format", "json", "-leader-ttl", "3s")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST=", "DOCKER_CONTEXT=", "NO_COLOR=1")
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{t: t, cmd: cmd, added: make(chan struct{}, 1), exited: make(chan struct{})}
	go d.read(stderr)
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-d.exited
		}
		if t.Failed() {
			t.Logf("daemon PID %d log:\n%s", cmd.Process.Pid, d.log())
		}
	})
	d.waitLog("serving /metrics and /healthz", 20*time.Second)
	return d
}

func (d *daemonProc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var line map[string]any
		_ = json.Unmarshal(sc.Bytes(), &line)
		d.mu.Lock()
		d.raw = append(d.raw, sc.Text())
		d.lines = append(d.lines, line)
		if addr, ok := line["listen"].(string); ok {
			d.listen = addr
		}
		d.mu.Unlock()
		select {
		case d.added <- struct{}{}:
		default:
		}
	}
	_ = d.cmd.Wait()
	close(d.exited)
}

func (d *daemonProc) pid() int { return d.cmd.Process.Pid }

func (d *daemonProc) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.raw, "\n")
}

// count returns how many log lines have msg.
func (d *daemonProc) count(msg string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, l := range d.lines {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

// waitLog waits until a log line has msg, and returns the first.
func (d *daemonProc) waitLog(msg string, timeout time.Duration) map[string]any {
	d.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		for _, l := range d.lines {
			if l["msg"] == msg {
				d.mu.Unlock()
				return l
			}
		}
		d.mu.Unlock()
		select {
		case <-d.added:
		case <-d.exited:
			d.t.Fatalf("daemon PID %d exited before logging %q:\n%s", d.pid(), msg, d.log())
		case <-deadline.C:
			d.t.Fatalf("daemon PID %d did not log %q within %s:\n%s", d.pid(), msg, timeout, d.log())
		}
	}
}

// get fetches path from the daemon's listener; code 0 when it does not
// answer.
func (d *daemonProc) get(path string) (int, string) {
	d.mu.Lock()
	addr := d.listen
	d.mu.Unlock()
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// identity is how the daemon names itself in the election.
func (d *daemonProc) identity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s PID %d", host, d.pid())
}

// waitLeader polls /healthz of every daemon until leader says it leads and
// every other one says it follows leader, or fails at the deadline.
func waitLeader(t *testing.T, timeout time.Duration, leader *daemonProc, others ...*daemonProc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var problems []string
		if code, body := leader.get("/healthz"); code != http.StatusOK || body != "ok: leader "+leader.identity()+"\n" {
			problems = append(problems, fmt.Sprintf("PID %d /healthz: %d %q", leader.pid(), code, body))
		}
		for _, o := range others {
			if code, body := o.get("/healthz"); code != http.StatusOK || body != "ok: follower; leader "+leader.identity()+"\n" {
				problems = append(problems, fmt.Sprintf("PID %d /healthz: %d %q", o.pid(), code, body))
			}
		}
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PID %d does not lead with the others following within %s: %s", leader.pid(), timeout, strings.Join(problems, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leaderOf returns which of a and b leads (by its /healthz), the other
// one second, waiting until one does.
func leaderOf(t *testing.T, a, b *daemonProc) (*daemonProc, *daemonProc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, pair := range [][2]*daemonProc{{a, b}, {b, a}} {
			if _, body := pair[0].get("/healthz"); strings.HasPrefix(body, "ok: leader ") {
				waitLeader(t, 20*time.Second, pair[0], pair[1])
				return pair[0], pair[1]
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("neither daemon leads within 20s:\nA:\n%s\nB:\n%s", a.log(), b.log())
	return nil, nil
}

func wantLeaderMetric(t *testing.T, d *daemonProc, want int) {
	t.Helper()
	_, metrics := d.get("/metrics")
	if line := fmt.Sprintf("\n%s %d\n", leaderMetric, want); !strings.Contains(metrics, line) {
		t.Errorf("PID %d /metrics lacks %q", d.pid(), strings.TrimSpace(line))
	}
}

// leadingMsg is the log line of a daemon that starts its reconciler.
const leadingMsg = "leading: this daemon runs the reconciler"

// TestReconcileLeaderElection runs two reconcile daemons on one etcd
// state: exactly one leads (healthz, metric) and the other names it; a
// leader whose election key goes away stops its reconciler at once and
// campaigns again while the other takes over; a leader cut off by a lost
// quorum steps down and a leader is elected again once the quorum is back;
// a leader killed with SIGKILL is replaced within the lease TTL; SIGTERM
// hands over at once and exits 0.
func TestReconcileLeaderElection(t *testing.T) {
	c := etcdtest.Start(t)
	p := newEtcdProject(t, c, "shop")
	a := startElectedDaemon(t, p.dir)
	b := startElectedDaemon(t, p.dir)
	leader, follower := leaderOf(t, a, b)
	wantLeaderMetric(t, leader, 1)
	wantLeaderMetric(t, follower, 0)
	if leader.count(leadingMsg) != 1 || follower.count(leadingMsg) != 0 {
		t.Fatalf("the reconciler must run in the leader only:\nleader:\n%s\nfollower:\n%s", leader.log(), follower.log())
	}

	// The leader's key deleted (an operator, or its lease lost): it stops
	// its reconciler and campaigns again behind the other.
	client, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	keys, err := client.Get(ctx, p.prefix+electionSuffix+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil || len(keys.Kvs) != 2 || string(keys.Kvs[0].Value) != leader.identity() {
		t.Fatalf("election keys: %v %v; want two, the first %q", keys, err, leader.identity())
	}
	if _, err := client.Delete(ctx, string(keys.Kvs[0].Key)); err != nil {
		t.Fatal(err)
	}
	lost := leader.waitLog("lost leadership; the reconciler stops and this daemon campaigns again", 10*time.Second)
	if lost["reason"] != "the election key was deleted" {
		t.Errorf("lost leadership for %v; want the deleted key", lost["reason"])
	}
	leader.waitLog("reconcile daemon stopped", 10*time.Second)
	waitLeader(t, 10*time.Second, follower, leader)
	leader, follower = follower, leader
	wantLeaderMetric(t, leader, 1)
	wantLeaderMetric(t, follower, 0)

	// Two of three members killed: no quorum, so the leader cannot renew
	// its lease and steps down; both report that they cannot take part.
	c.Kill(1)
	c.Kill(2)
	leader.waitLog("lost leadership; the reconciler stops and this daemon campaigns again", 20*time.Second)
	for _, d := range []*daemonProc{leader, follower} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, body := d.get("/healthz")
			if code == http.StatusServiceUnavailable && strings.Contains(body, "unhealthy: follower; cannot take part in the leader election") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("PID %d /healthz without quorum: %d %q", d.pid(), code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	c.Restart(1)
	c.Restart(2)
	hctx, hcancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer hcancel()
	if err := c.WaitHealthy(hctx); err != nil {
		t.Fatal(err)
	}
	leader, follower = leaderOf(t, a, b)

	// The leader killed with SIGKILL: the other leads once its lease
	// expires.
	if err := syscall.Kill(leader.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-leader.exited
	waitLeader(t, 20*time.Second, follower)
	wantLeaderMetric(t, follower, 1)

	// SIGTERM: the reconciler stops, the leader resigns and exits 0.
	third := startElectedDaemon(t, p.dir)
	waitLeader(t, 20*time.Second, follower, third)
	if err := syscall.Kill(follower.pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-follower.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the leader did not exit within 20s of SIGTERM")
	}
	if code := follower.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	follower.waitLog("left the leader election", time.Second)
	waitLeader(t, 20*time.Second, third)
}
