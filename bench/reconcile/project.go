package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/dockplan/dockplan/lab/labenv"
)

// block is one container block of a bench project.
type block struct {
	name   string
	count  int
	cpu    string // cores, as HCL takes them
	memory string
	// ports are published container ports Docker picks host ports for.
	ports []string
}

// project is a dockplan project in its own folder on the lab's hosts.
type project struct {
	b    *bench
	name string
	dir  string
}

// newProject writes a configuration with every lab host (over tcp://) and
// the blocks, all of the test image with image_source = "local" (it is on
// every host already: nothing is copied or pulled), and registers its
// destruction.
func (b *bench) newProject(suffix string, blocks []block) (*project, error) {
	p := &project{b: b, name: b.run + suffix, dir: filepath.Join(b.tmp, b.run+suffix)}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, err
	}
	var src strings.Builder
	fmt.Fprintf(&src, "project = %q\n\n%s\n", p.name, b.lab.HCL())
	for _, bl := range blocks {
		ports := ""
		if len(bl.ports) > 0 {
			ports = fmt.Sprintf("  ports        = [%q]\n", strings.Join(bl.ports, `", "`))
		}
		fmt.Fprintf(&src, `container %q {
  image        = %q
  image_source = "local"
  count        = %d
%s  resources {
    cpu    = %s
    memory = %q
  }
}

`, bl.name, labenv.TestImage, bl.count, ports, bl.cpu, bl.memory)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "main.dockplan.hcl"), []byte(src.String()), 0o644); err != nil {
		return nil, err
	}
	b.defer_(p.destroy)
	return p, nil
}

// dockplan runs the binary in the project's folder and returns its
// combined output.
func (p *project) dockplan(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, p.b.bin, append([]string{"-chdir=" + p.dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("dockplan %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// apply applies the project and returns how long it took.
func (p *project) apply(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	_, err := p.dockplan(ctx, "apply", "-auto-approve", "-no-color")
	return time.Since(start), err
}

// destroy destroys the project and removes whatever of it is still on a
// lab host.
func (p *project) destroy(ctx context.Context) {
	if _, err := os.Stat(filepath.Join(p.dir, "dockplan.state.json")); err == nil {
		progress("destroying project %s", p.name)
		if _, err := p.dockplan(ctx, "destroy", "-auto-approve", "-no-color"); err != nil {
			progress("destroy: %v", err)
		}
	}
	p.b.removeLabelled(ctx, "dockplan.project="+p.name)
}

// removeLabelled force-removes every container carrying label (K=V) on
// every lab host.
func (b *bench) removeLabelled(ctx context.Context, label string) {
	for _, h := range b.lab.Hosts {
		cli := b.clients[h.Name]
		list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))})
		if err != nil {
			progress("%s: list %s: %v", h.Name, label, err)
			continue
		}
		for _, c := range list {
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
				progress("%s: remove %s: %v", h.Name, c.ID[:12], err)
			}
		}
	}
}

// placement maps each of the project's container names to its lab host,
// from the hosts themselves, and counts the running ones.
func (p *project) placement(ctx context.Context) (hostOf map[string]string, running int, err error) {
	hostOf = map[string]string{}
	for _, h := range p.b.lab.Hosts {
		list, err := p.b.clients[h.Name].ContainerList(ctx, container.ListOptions{
			All: true, Filters: filters.NewArgs(filters.Arg("label", "dockplan.project="+p.name)),
		})
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", h.Name, err)
		}
		for _, c := range list {
			hostOf[strings.TrimPrefix(c.Names[0], "/")] = h.Name
			if c.State == "running" {
				running++
			}
		}
	}
	return hostOf, running, nil
}

// logLine is one JSON log line of the daemon, with the fields the bench
// reads.
type logLine struct {
	Level    string        `json:"level"`
	Msg      string        `json:"msg"`
	Host     string        `json:"host"`
	Address  string        `json:"address"`
	Action   string        `json:"action"`
	Cause    string        `json:"cause"`
	Listen   string        `json:"listen"`
	Recovery time.Duration `json:"recovery"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error"`
	raw      string
}

// daemon is a running `dockplan reconcile -daemon -log-format json`.
type daemon struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the process's end, once done is closed

	mu    sync.Mutex
	lines []logLine
	// changed is closed and replaced whenever a line arrives.
	changed chan struct{}
}

// startDaemon starts the reconcile daemon in the project's folder with
// extra flags; its log lines are kept and also written to daemon.log in
// the project's folder.
func (p *project) startDaemon(extra ...string) (*daemon, error) {
	args := append([]string{"-chdir=" + p.dir, "reconcile", "-daemon", "-log-format", "json"}, extra...)
	d := &daemon{cmd: exec.Command(p.b.bin, args...), done: make(chan struct{}), changed: make(chan struct{})}
	logFile, err := os.Create(filepath.Join(p.dir, "daemon.log"))
	if err != nil {
		return nil, err
	}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	progress("reconcile daemon started: pid %d, %s", d.cmd.Process.Pid, strings.Join(d.cmd.Args[1:], " "))
	go func() {
		d.read(io.TeeReader(stderr, logFile))
		d.err = d.cmd.Wait()
		logFile.Close()
		close(d.done)
	}()
	p.b.defer_(func(context.Context) { d.stop() })
	return d, nil
}

func (d *daemon) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			l = logLine{Msg: sc.Text()}
		}
		l.raw = sc.Text()
		d.mu.Lock()
		d.lines = append(d.lines, l)
		close(d.changed)
		d.changed = make(chan struct{})
		d.mu.Unlock()
	}
}

// snapshot returns the log lines so far and a channel closed at the next.
func (d *daemon) snapshot() ([]logLine, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]logLine(nil), d.lines...), d.changed
}

// waitFor waits until ok holds for the log lines so far.
func (d *daemon) waitFor(ctx context.Context, timeout time.Duration, what string, ok func([]logLine) bool) error {
	deadline := time.After(timeout)
	for {
		lines, changed := d.snapshot()
		if ok(lines) {
			return nil
		}
		select {
		case <-changed:
		case <-d.done:
			return fmt.Errorf("the reconcile daemon exited (%v) before %s", d.err, what)
		case <-deadline:
			return fmt.Errorf("%w after %v waiting for %s", errTimeout, timeout, what)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitReady waits until the daemon started and reached hosts hosts.
func (d *daemon) waitReady(ctx context.Context, hosts int) error {
	return d.waitFor(ctx, 2*time.Minute, fmt.Sprintf("%d hosts reachable", hosts), func(lines []logLine) bool {
		reached := map[string]bool{}
		started := false
		for _, l := range lines {
			started = started || l.Msg == "reconcile daemon started"
			if l.Msg == "host reachable" {
				reached[l.Host] = true
			}
		}
		return started && len(reached) >= hosts
	})
}

// stop sends SIGTERM and waits up to 30 s for the daemon to exit (then
// kills it); it returns the process's end.
func (d *daemon) stop() error {
	select {
	case <-d.done:
		return d.err
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return d.err
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("the daemon did not exit within 30 s of SIGTERM; killed")
	}
}
