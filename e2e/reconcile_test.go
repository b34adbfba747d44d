package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/state"
)

// reconcileProject writes a small configuration for the lab's hosts: db
// (one instance, a declared health check, a port Docker picks) and web[0],
// web[1] linking to db, all restart = "unless-stopped"; and applies it.
func reconcileProject(t *testing.T, l *labenv.Lab) *project {
	t.Helper()
	name := fmt.Sprintf("rc%d", time.Now().UnixNano()%1_000_000_000)
	p := &project{t: t, dir: t.TempDir(), name: name, lab: l}
	src := fmt.Sprintf(`project = %q

%s
container "db" {
  image   = %q
  ports   = ["8080"]
  restart = "unless-stopped"
  resources {
    cpu    = 0.1
    memory = "32MiB"
  }
  health {
    command  = ["CMD", "/testapp", "-healthcheck"]
    interval = "2s"
    timeout  = "2s"
    retries  = 3
  }
}

container "web" {
  image   = %q
  count   = 2
  ports   = ["8080"]
  restart = "unless-stopped"
  env = {
    DB_ADDR = container.db.address
  }
  resources {
    cpu    = 0.1
    memory = "32MiB"
  }
}
`, name, l.HCL(), l.RegistryImage, l.RegistryImage)
	if err := os.WriteFile(filepath.Join(p.dir, "main.dockplan.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command(binary, "-chdir="+p.dir, "destroy", "-auto-approve").Run()
		for _, h := range l.Hosts {
			out, _ := exec.Command("docker", "-H", h.Socket, "ps", "-aq", "--filter", "label=dockplan.project="+name).Output()
			for _, id := range strings.Fields(string(out)) {
				_ = exec.Command("docker", "-H", h.Socket, "rm", "-f", id).Run()
			}
		}
	})
	if out := p.mustRun("apply", "-auto-approve"); !strings.Contains(out, "Apply complete! 3 created") {
		t.Fatalf("apply:\n%s", out)
	}
	return p
}

// instanceContainer is the part of `docker inspect` the tests compare.
type instanceContainer struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Status  string
		Running bool
	}
	Config struct {
		Image  string
		Env    []string
		Labels map[string]string
		Cmd    []string
	}
	HostConfig struct {
		PortBindings  map[string][]struct{ HostIP, HostPort string }
		RestartPolicy struct{ Name string }
		NanoCpus      int64
		Memory        int64
	}
	NetworkSettings struct {
		Ports map[string][]struct{ HostIP, HostPort string }
	}
}

// inspect asks the instance's host about its container, through the
// engine's API; false when there is no such container.
func (p *project) inspectInstance(inst *state.Instance) (instanceContainer, bool) {
	p.t.Helper()
	h := p.labHostNamed(inst.Host)
	out, err := exec.Command("docker", "-H", h.Socket, "inspect", inst.Name).Output()
	if err != nil {
		return instanceContainer{}, false
	}
	var cs []instanceContainer
	if err := json.Unmarshal(out, &cs); err != nil || len(cs) != 1 {
		p.t.Fatalf("docker inspect %s: %v", inst.Name, err)
	}
	return cs[0], true
}

func (p *project) labHostNamed(name string) labenv.Host {
	p.t.Helper()
	for _, h := range p.lab.Hosts {
		if h.Name == name {
			return h
		}
	}
	p.t.Fatalf("no lab host %s", name)
	return labenv.Host{}
}

// docker runs a docker command against the instance's host.
func (p *project) dockerOn(inst *state.Instance, args ...string) {
	p.t.Helper()
	h := p.labHostNamed(inst.Host)
	if out, err := exec.Command("docker", append([]string{"-H", h.Socket}, args...)...).CombinedOutput(); err != nil {
		p.t.Fatalf("docker %v on %s: %v\n%s", args, h.Name, err, out)
	}
}

// waitRunning polls until the instance's container runs (with another ID
// than notID when that is set), and returns it.
func (p *project) waitInstanceRunning(inst *state.Instance, notID string) instanceContainer {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, ok := p.inspectInstance(inst)
		if ok && c.State.Running && (notID == "" || c.ID != notID) {
			return c
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s (%s) is not running again within 30s: %+v", inst.Address, inst.Name, c.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReconcileStartsStoppedContainer: a container stopped by hand must
// be running again after one reconcile, which exits 2; the next one
// exits 0.
func TestReconcileStartsStoppedContainer(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := reconcileProject(t, l)
	if out, code := p.run("reconcile"); code != 0 || !strings.Contains(out, "All 3 instances are running.") {
		t.Fatalf("reconcile right after apply exited %d:\n%s", code, out)
	}
	web0 := p.state().Instances["web[0]"]
	p.dockerOn(web0, "stop", web0.Name)

	out, code := p.run("reconcile")
	if code != 2 || !strings.Contains(out, "web[0]: Started") || !strings.Contains(out, "1 started") {
		t.Fatalf("reconcile after docker stop exited %d, want 2:\n%s", code, out)
	}
	if c := p.waitInstanceRunning(web0, ""); c.ID != web0.ContainerID {
		t.Errorf("web[0] runs as %s, want the stopped container %s started again", c.ID, web0.ContainerID)
	}
	if out, code := p.run("reconcile"); code != 0 {
		t.Fatalf("second reconcile exited %d, want 0:\n%s", code, out)
	}
}

// TestReconcileRecreatesRemovedContainer: a container removed by hand must
// come back with the same name, labels and configuration, and the host
// port it had, so that a plan afterwards has nothing to do.
func TestReconcileRecreatesRemovedContainer(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := reconcileProject(t, l)
	db := p.state().Instances["db"]
	before, ok := p.inspectInstance(db)
	if !ok {
		t.Fatalf("db (%s) is not on %s", db.Name, db.Host)
	}
	p.dockerOn(db, "rm", "-f", db.Name)

	out, code := p.run("reconcile")
	if code != 2 || !strings.Contains(out, "db: Re-created") {
		t.Fatalf("reconcile after docker rm -f exited %d, want 2:\n%s", code, out)
	}
	after := p.waitInstanceRunning(db, before.ID)
	if after.Name != before.Name || !reflect.DeepEqual(after.Config, before.Config) ||
		after.HostConfig.RestartPolicy != before.HostConfig.RestartPolicy ||
		after.HostConfig.NanoCpus != before.HostConfig.NanoCpus || after.HostConfig.Memory != before.HostConfig.Memory {
		t.Errorf("re-created as\n%+v\nwant the configuration of\n%+v", after, before)
	}
	if !reflect.DeepEqual(after.NetworkSettings.Ports, before.NetworkSettings.Ports) {
		t.Errorf("published ports %v, want the old ones %v", after.NetworkSettings.Ports, before.NetworkSettings.Ports)
	}
	if got := p.state().Instances["db"]; got.ContainerID != after.ID {
		t.Errorf("state records container %s, want %s", got.ContainerID, after.ID)
	}
	if out, code := p.run("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan after the re-create exited %d, want 0 (no changes):\n%s", code, out)
	}
}

// reconcileDaemon is a `dockplan reconcile -daemon` process started by a test.
type reconcileDaemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []map[string]any
	raw    []string
	listen string
	added  chan struct{}
	exited chan struct{}
}

// startReconcileDaemon starts the daemon on the project with extra flags,
// serving on a port it picks, and waits until it follows every host the
// state names.
func (p *project) startReconcileDaemon(extra ...string) *reconcileDaemon {
	p.t.Helper()
	cmd := exec.Command(binary, append([]string{"-chdir=" + p.dir, "reconcile", "-daemon", "-listen", "127.0.0.1:0",
		"-log-format", "json", "-interval", "5s"}, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	d := &reconcileDaemon{t: p.t, cmd: cmd, added: make(chan struct{}, 1), exited: make(chan struct{})}
	go d.read(stderr)
	p.t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = cmd.Process.Kill() // only on failure: the test stops it with SIGTERM
			<-d.exited
		}
	})
	hosts := map[string]bool{}
	for _, inst := range p.state().Instances {
		hosts[inst.Host] = true
	}
	for h := range hosts {
		d.waitLog("host reachable", h)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.listen == "" {
		p.t.Fatalf("the daemon did not log its listen address:\n%s", strings.Join(d.raw, "\n"))
	}
	return d
}

// read collects the daemon's JSON log lines until it exits.
func (d *reconcileDaemon) read(r io.Reader) {
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

// waitLog waits for a log line with msg about host ("" for any).
func (d *reconcileDaemon) waitLog(msg, host string) map[string]any {
	d.t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		for _, l := range d.lines {
			if l["msg"] == msg && (host == "" || l["host"] == host) {
				d.mu.Unlock()
				return l
			}
		}
		d.mu.Unlock()
		select {
		case <-d.added:
		case <-d.exited:
			d.t.Fatalf("the daemon exited before logging %q:\n%s", msg, strings.Join(d.raw, "\n"))
		case <-deadline.C:
			d.t.Fatalf("no %q log line for host %q within 30s:\n%s", msg, host, strings.Join(d.raw, "\n"))
		}
	}
}

func (d *reconcileDaemon) get(path string) (int, string) {
	d.t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + d.listen + path)
	if err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReconcileDaemon runs the daemon against the lab: a stopped, a
// killed and a removed container all run again without anyone running
// reconcile, /metrics counts the repairs, /healthz answers, and SIGTERM
// ends it with exit status 0 and the state lock free.
func TestReconcileDaemon(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := reconcileProject(t, l)
	st := p.state()
	db, web0, web1 := st.Instances["db"], st.Instances["web[0]"], st.Instances["web[1]"]
	d := p.startReconcileDaemon()

	if code, body := d.get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	p.dockerOn(db, "stop", db.Name)
	p.waitInstanceRunning(db, "")
	p.dockerOn(web0, "kill", web0.Name)
	p.waitInstanceRunning(web0, "")
	p.dockerOn(web1, "rm", "-f", web1.Name)
	p.waitInstanceRunning(web1, web1.ContainerID)

	// The container runs a moment before the repair is counted (the
	// state is saved first): poll.
	d.waitMetrics(
		fmt.Sprintf(`dockplan_reconcile_actions_total{host=%q,kind="start",result="ok"}`, db.Host),
		fmt.Sprintf(`dockplan_reconcile_actions_total{host=%q,kind="recreate",result="ok"} 1`, web1.Host),
		fmt.Sprintf(`dockplan_reconcile_host_up{host=%q} 1`, db.Host),
		`dockplan_reconcile_recovery_seconds_count`,
	)
	line := d.waitLog("re-created container", web1.Host)
	if line["address"] != "web[1]" || line["cause"] == "" || line["duration"] == nil {
		t.Errorf("re-create log line lacks address, cause or duration: %v", line)
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not exit within 30s of SIGTERM")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	d.waitLog("reconcile daemon stopped", "")
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	b := state.NewFile(filepath.Join(p.dir, state.DefaultPath))
	id, err := b.Lock(ctx, state.NewLockInfo("apply"))
	if err != nil {
		t.Fatalf("the state lock is not free after the daemon exited: %v", err)
	}
	_ = b.Unlock(ctx, id)
	if out, code := p.run("plan", "-detailed-exitcode"); code != 0 && code != 2 {
		t.Errorf("plan after the daemon exited %d:\n%s", code, out)
	}
}

// waitMetrics polls /metrics until it has every one of wants.
func (d *reconcileDaemon) waitMetrics(wants ...string) {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, metrics := d.get("/metrics")
		missing := ""
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				missing = want
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("/metrics has no %s after 30s:\n%s", missing, linesWithPrefix(metrics, "dockplan_reconcile_"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func linesWithPrefix(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestReconcileDaemonAfterDockerdRestart kills only the dockerd of the
// host that runs web[0] and starts it again: Docker 20.10 leaves the
// host's `unless-stopped` containers exited, and the daemon, which noticed
// the host go and come back, must start them again.
func TestReconcileDaemonAfterDockerdRestart(t *testing.T) {
	l := labenv.RequireExclusive(t, 3)
	p := reconcileProject(t, l)
	web0 := p.state().Instances["web[0]"]
	d := p.startReconcileDaemon()

	ctx := t.Context()
	t.Cleanup(func() {
		if err := l.Revive(context.WithoutCancel(ctx), web0.Host); err != nil {
			t.Errorf("reviving %s: %v", web0.Host, err)
		}
	})
	if err := l.Kill(ctx, web0.Host, false); err != nil {
		t.Fatal(err)
	}
	d.waitLog("host unreachable; its instances are left alone until it answers", web0.Host)
	if err := l.Revive(ctx, web0.Host); err != nil {
		t.Fatal(err)
	}
	// The daemon tries the host again 1s, 2s, 4s … after it went away.
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, ok := p.inspectInstance(web0)
		if ok && c.State.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web[0] is %q 60s after its host's dockerd came back", c.State.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	line := d.waitLog("started container", web0.Host)
	if line["cause"] != "resync" {
		t.Errorf("web[0] was started for %v, want the listing after the host came back", line["cause"])
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}
