package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/engine/enginefake"
	"github.com/dockplan/dockplan/state"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const (
	testProject = "shop"
	testImage   = "dockplan-testapp:dev"
)

// world is a project applied to fake engines: a state file recording
// instances, and their containers on the fakes.
type world struct {
	t       *testing.T
	fakes   map[string]*enginefake.Fake
	path    string
	backend *state.File
	st      *state.State
	clock   *fakeClock
	logs    *logRecorder
	actions chan Action
}

func newWorld(t *testing.T, hosts ...string) *world {
	t.Helper()
	w := &world{
		t: t, fakes: map[string]*enginefake.Fake{}, path: filepath.Join(t.TempDir(), state.DefaultPath),
		st: state.New(testProject, state.NewLineage()), clock: newFakeClock(), logs: newLogRecorder(),
		actions: make(chan Action, 100),
	}
	w.backend = state.NewFile(w.path)
	for _, h := range hosts {
		f := enginefake.New(h)
		f.AddImage(testImage)
		w.fakes[h] = f
	}
	return w
}

// instanceOptions change the instance world.add records.
type instanceOptions struct {
	healthcheck bool
}

// add creates and starts an instance's container on host and records it
// in the state (not saved yet).
func (w *world) add(container string, index int, host string, opts instanceOptions) *state.Instance {
	w.t.Helper()
	addr := fmt.Sprintf("%s[%d]", container, index)
	name := fmt.Sprintf("%s-%s-%d", testProject, container, index)
	spec := engine.ContainerSpec{
		Name: name, Image: testImage, Cmd: []string{"/testapp", "-port", "8080"},
		Env: []string{"GREETING=hello", fmt.Sprintf("INDEX=%d", index)},
		Labels: map[string]string{
			"dockplan.project": testProject, "dockplan.container": container,
			"dockplan.index": fmt.Sprint(index), "dockplan.config-hash": "hash-" + addr,
		},
		Ports:     []engine.PortBinding{{ContainerPort: 8080}},
		Resources: engine.Resources{NanoCPUs: 1e8, Memory: 32 << 20},
		Restart:   engine.RestartPolicy{Name: engine.RestartUnlessStopped},
	}
	if opts.healthcheck {
		spec.Healthcheck = &engine.Healthcheck{Test: []string{"CMD", "/testapp", "-healthcheck"}, Interval: 5 * time.Second}
	}
	f := w.fakes[host]
	ctx := context.Background()
	id, err := f.CreateContainer(ctx, spec)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := f.StartContainer(ctx, id); err != nil {
		w.t.Fatal(err)
	}
	c, err := f.InspectContainer(ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	inst := &state.Instance{
		Address: addr, Container: container, Index: index, Host: host, HostAddress: "10.0.0.1",
		ContainerID: id, Name: name, ImageID: c.ImageID, ConfigHash: "hash-" + addr, Spec: spec, Ports: c.Ports,
	}
	w.st.Instances[addr] = inst
	return inst
}

// save bumps the serial and saves the state.
func (w *world) save() {
	w.t.Helper()
	w.st.Serial++
	if err := w.backend.Save(context.Background(), w.st); err != nil {
		w.t.Fatal(err)
	}
}

// stored reads the state file as it is now.
func (w *world) stored() *state.State {
	w.t.Helper()
	st, err := state.Read(w.path)
	if err != nil || st == nil {
		w.t.Fatalf("reading the state: %v", err)
	}
	return st
}

func (w *world) dial(_ context.Context, host string) (engine.Engine, error) {
	f := w.fakes[host]
	if f == nil {
		return nil, engine.NewError(host, "connect to", "", engine.ErrInvalidEndpoint, fmt.Errorf("no such host"))
	}
	if _, err := f.Info(context.Background()); err != nil {
		return nil, err
	}
	return f, nil
}

// reconciler returns a Reconciler over the world, with its own backend
// value (as another process would have), the fake clock, recorded logs
// and actions sent to w.actions.
func (w *world) reconciler(opts Options) *Reconciler {
	w.t.Helper()
	opts.Backend = state.NewFile(w.path)
	if opts.Dial == nil {
		opts.Dial = w.dial
	}
	opts.Project = testProject
	opts.Logger = slog.New(w.logs)
	opts.Clock = w.clock
	opts.OnAction = func(a Action) { w.actions <- a }
	r, err := New(opts)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { r.Close() })
	return r
}

// nextAction waits for the next repair.
func (w *world) nextAction() Action {
	w.t.Helper()
	select {
	case a := <-w.actions:
		return a
	case <-time.After(10 * time.Second):
		w.t.Fatalf("no repair within 10s; logs:\n%s", w.logs)
	}
	return Action{}
}

// noAction fails if a repair was reported and not taken yet.
func (w *world) noAction() {
	w.t.Helper()
	select {
	case a := <-w.actions:
		w.t.Fatalf("unexpected repair: %+v", a)
	default:
	}
}

// container returns the fake's container by name.
func (w *world) container(host, name string) (engine.Container, bool) {
	c, err := w.fakes[host].InspectContainer(context.Background(), name)
	return c, err == nil
}

// logRecorder is a slog.Handler that keeps every record (all levels) and
// lets tests wait for a message.
type logRecorder struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// count returns how many lines contain every one of parts.
func (l *logRecorder) count(parts ...string) (int, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n, l.changed
}

// waitFor blocks until n lines contain every one of parts.
func (l *logRecorder) waitFor(t *testing.T, n int, parts ...string) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		got, changed := l.count(parts...)
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %d log lines with %q within 10s; logs:\n%s", n, parts, l)
		}
	}
}

// eventually polls cond until it holds, failing the test after 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// toFloat64 returns the value of a collector holding one gauge, counter or
// untyped metric.
func toFloat64(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 10)
	c.Collect(ch)
	close(ch)
	var out []float64
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		switch {
		case pb.Gauge != nil:
			out = append(out, pb.Gauge.GetValue())
		case pb.Counter != nil:
			out = append(out, pb.Counter.GetValue())
		}
	}
	if len(out) != 1 {
		t.Fatalf("collector has %d metrics, want 1", len(out))
	}
	return out[0]
}
