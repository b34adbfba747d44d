package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/state"
)

// labProject writes a configuration made of every lab host's block (named
// host1..hostN, reached over plain TCP, which partitions cut) and src,
// under a unique project name starting with prefix. Its cleanup removes
// every container of the project from every host through the unix
// sockets, which answer even while a host is partitioned.
func labProject(t *testing.T, l *labenv.Lab, prefix, src string) *project {
	t.Helper()
	name := fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1_000_000_000)
	p := &project{t: t, dir: t.TempDir(), name: name, lab: l}
	p.write(src)
	t.Cleanup(p.cleanup)
	return p
}

// write replaces the project's configuration with the lab's host blocks
// and src.
func (p *project) write(src string) {
	p.t.Helper()
	full := fmt.Sprintf("project = %q\n\n%s\n%s", p.name, p.lab.HCL(), src)
	if err := os.WriteFile(filepath.Join(p.dir, "main.dockplan.hcl"), []byte(full), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// stateOrNil reads the state file; nil when no apply has saved one yet.
// A file that exists must parse.
func (p *project) stateOrNil() *state.State {
	p.t.Helper()
	st, err := state.Read(filepath.Join(p.dir, state.DefaultPath))
	if err != nil {
		p.t.Fatalf("the state file does not parse: %v", err)
	}
	return st
}

// labelled is one container with the project's label, as a host lists it.
type labelled struct {
	host, id, name, container, index, status string
}

// address is the instance address the container's labels name.
func (c labelled) address(counted map[string]bool) string {
	if counted[c.container] {
		return c.container + "[" + c.index + "]"
	}
	return c.container
}

// labelledContainers lists every container (running or not) with the
// project's label on every lab host, through the unix sockets.
func (p *project) labelledContainers() []labelled {
	p.t.Helper()
	var out []labelled
	for _, h := range p.lab.Hosts {
		ctx, cancel := context.WithTimeout(p.t.Context(), 30*time.Second)
		b, err := exec.CommandContext(ctx, "docker", "-H", h.Socket, "ps", "-a", "--no-trunc", "--filter", "label=dockplan.project="+p.name,
			"--format", `{{.ID}}	{{.Names}}	{{.Label "dockplan.container"}}	{{.Label "dockplan.index"}}	{{.State}}`).Output()
		cancel()
		if err != nil {
			p.t.Fatalf("docker ps on %s: %v", h.Name, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Split(line, "\t")
			if len(f) == 5 {
				out = append(out, labelled{host: h.Name, id: f[0], name: f[1], container: f[2], index: f[3], status: f[4]})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// checkStateIsReality fails unless the state records exactly the project's
// containers on the hosts: every recorded instance's container exists on
// its host under its name and runs, no labelled container is unrecorded,
// and each instance has exactly one container. counted names the
// containers declared with count (their addresses carry an index).
func (p *project) checkStateIsReality(counted map[string]bool) {
	p.t.Helper()
	st := p.stateOrNil()
	if st == nil {
		st = state.New(p.name, "")
	}
	found := p.labelledContainers()
	byID := map[string]labelled{}
	perAddr := map[string][]string{}
	for _, c := range found {
		byID[c.id] = c
		perAddr[c.address(counted)] = append(perAddr[c.address(counted)], c.host+"/"+c.name)
	}
	for addr, where := range perAddr {
		if len(where) > 1 {
			p.t.Errorf("%s has %d containers: %v", addr, len(where), where)
		}
	}
	recorded := map[string]bool{}
	for _, addr := range st.Addresses() {
		si := st.Instances[addr]
		recorded[si.ContainerID] = true
		c, ok := byID[si.ContainerID]
		switch {
		case !ok:
			p.t.Errorf("the state records %s as container %.12s on %s, which does not exist", addr, si.ContainerID, si.Host)
		case c.host != si.Host || c.name != si.Name:
			p.t.Errorf("the state records %s as %s on %s; the container is %s on %s", addr, si.Name, si.Host, c.name, c.host)
		case c.status != "running":
			p.t.Errorf("%s (%s on %s) is %s", addr, c.name, c.host, c.status)
		}
	}
	for _, c := range found {
		if !recorded[c.id] {
			p.t.Errorf("container %s (%.12s) on %s has the project's label but the state does not record it", c.name, c.id, c.host)
		}
	}
}

// planSteps runs plan -json and returns its steps.
func (p *project) planSteps(args ...string) []planStep {
	p.t.Helper()
	out, code := p.runSplit(append([]string{"plan", "-json"}, args...)...)
	if code != 0 {
		p.t.Fatalf("plan -json exited %d:\n%s", code, out)
	}
	var plan struct {
		Steps []planStep `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		p.t.Fatalf("plan -json: %v\n%s", err, out)
	}
	return plan.Steps
}

// planStep is the part of a JSON plan step the tests read.
type planStep struct {
	ID      string `json:"id"`
	Action  string `json:"action"`
	Address string `json:"address"`
	Host    string `json:"host"`
	Name    string `json:"name"`
}

// runSplit is run with only standard output returned (standard error goes
// to the test log), for machine-readable output.
func (p *project) runSplit(args ...string) (string, int) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"-chdir=" + p.dir}, args...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if errOut.Len() > 0 {
		p.t.Logf("dockplan %s: stderr:\n%s", strings.Join(args, " "), errOut.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		p.t.Fatalf("dockplan %v: %v", args, err)
	}
	return string(out), 0
}

// converge runs apply, then checks that plan -detailed-exitcode says there
// is nothing left to do.
func (p *project) converge(args ...string) string {
	p.t.Helper()
	out := p.mustRun(append([]string{"apply", "-auto-approve"}, args...)...)
	if again, code := p.run(append([]string{"plan", "-detailed-exitcode"}, args...)...); code != 0 {
		p.t.Fatalf("plan after the converging apply exited %d, want 0 (no changes):\n%s\napply said:\n%s", code, again, out)
	}
	return out
}

// background is a dockplan process the test started and may signal.
type background struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	cond *sync.Cond
	// lines is everything it printed so far (stdout and stderr).
	lines []string
	eof   bool
	// exited is closed once the process was waited for; code is then set.
	exited chan struct{}
	code   int
}

// launch runs dockplan in the project folder without waiting for it. Its
// output is read line by line as it comes; the test's cleanup kills it
// (by its PID) if it still runs.
func (p *project) launch(args ...string) *background {
	p.t.Helper()
	cmd := exec.Command(binary, append([]string{"-chdir=" + p.dir}, args...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
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
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			b.mu.Lock()
			b.lines = append(b.lines, sc.Text())
			b.cond.Broadcast()
			b.mu.Unlock()
		}
		r.Close()
		err := cmd.Wait()
		b.mu.Lock()
		b.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			b.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				b.code = 128 + int(ws.Signal())
			}
		} else if err != nil {
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
			_ = cmd.Process.Kill()
			<-b.exited
		}
	})
	return b
}

// waitLine waits until the n-th output line containing substr, or until
// the process ends or timeout passes; it reports whether the line came.
func (b *background) waitLine(substr string, n int, timeout time.Duration) bool {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	stop := time.AfterFunc(timeout, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		seen := 0
		for _, l := range b.lines {
			if strings.Contains(l, substr) {
				seen++
			}
		}
		if seen >= n {
			return true
		}
		if b.eof || time.Now().After(deadline) {
			return false
		}
		b.cond.Wait()
	}
}

// signal sends sig to the dockplan process, by its PID.
func (b *background) signal(sig os.Signal) {
	b.t.Helper()
	if err := b.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		b.t.Fatalf("signal %v to dockplan (pid %d): %v", sig, b.cmd.Process.Pid, err)
	}
}

// wait waits up to timeout for the process to end and returns its output
// and exit code (128+N when a signal N ended it).
func (b *background) wait(timeout time.Duration) (string, int) {
	b.t.Helper()
	select {
	case <-b.exited:
	case <-time.After(timeout):
		_ = b.cmd.Process.Kill()
		<-b.exited
		b.t.Fatalf("dockplan (pid %d) still ran after %v; killed it. Output:\n%s", b.cmd.Process.Pid, timeout, b.output())
	}
	return b.output(), b.code
}

func (b *background) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}
