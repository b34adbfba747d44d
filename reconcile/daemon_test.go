package reconcile

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/engine/enginefake"
	"github.com/dockplan/dockplan/state"
)

// daemonRun is a Run in the background.
type daemonRun struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan error
}

// startDaemon runs r.Run until the test ends or stop is called, and waits
// until every host of hosts is watched.
func (w *world) startDaemon(r *Reconciler, hosts ...string) *daemonRun {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemonRun{t: w.t, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- r.Run(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		<-d.done
	})
	for _, h := range hosts {
		w.logs.waitFor(w.t, 1, "host reachable", "host="+h)
	}
	return d
}

// stop cancels Run and returns its error.
func (d *daemonRun) stop() error {
	d.t.Helper()
	d.cancel()
	select {
	case err := <-d.done:
		d.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		d.t.Fatal("Run did not return within 10s of its cancellation")
	}
	return nil
}

// TestDaemonSubscribesBeforeListing checks the order of the first calls
// on a host: the event stream is open before the listing, so nothing that
// happens in between is missed.
func TestDaemonSubscribesBeforeListing(t *testing.T) {
	w := newWorld(t, "node1")
	w.add("web", 0, "node1", instanceOptions{})
	w.save()
	f := w.fakes["node1"]
	before := len(f.Calls())
	w.startDaemon(w.reconciler(Options{}), "node1")
	calls := f.Calls()[before:]
	ev, list := slices.Index(calls, enginefake.MethodEvents), slices.Index(calls, enginefake.MethodListContainers)
	if ev < 0 || list < 0 || ev > list {
		t.Errorf("calls %v: want Events before ListContainers", calls)
	}
}

// TestDaemonRepairsOnEvents stops, removes and sickens containers behind
// the daemon's back and checks each is repaired at once, from its event.
func TestDaemonRepairsOnEvents(t *testing.T) {
	w := newWorld(t, "node1")
	web := w.add("web", 0, "node1", instanceOptions{})
	db := w.add("db", 0, "node1", instanceOptions{})
	api := w.add("api", 0, "node1", instanceOptions{healthcheck: true})
	w.save()
	f := w.fakes["node1"]
	r := w.reconciler(Options{Metrics: NewMetrics()})
	w.startDaemon(r, "node1")
	w.noAction()

	t.Run("stop", func(t *testing.T) {
		f.StopContainer(t.Context(), web.ContainerID, 0)
		a := w.nextAction()
		if a.Kind != ActionStart || a.Address != "web[0]" || a.Cause != CauseDie || a.Detail != "exit code 0" || a.Err != nil {
			t.Errorf("action = %+v, want a start of web[0] caused by its die event", a)
		}
		if c, _ := w.container("node1", web.Name); c.State != engine.StateRunning {
			t.Errorf("web[0] is %s", c.State)
		}
	})
	t.Run("remove", func(t *testing.T) {
		f.RemoveContainer(t.Context(), db.ContainerID, engine.RemoveOptions{Force: true})
		a := w.nextAction()
		if a.Kind != ActionRecreate || a.Address != "db[0]" || a.Err != nil {
			t.Fatalf("action = %+v, want a re-create of db[0]", a)
		}
		c, ok := w.container("node1", db.Name)
		if !ok || c.ID != a.ContainerID || c.State != engine.StateRunning {
			t.Fatalf("db[0] after the re-create: %+v", c)
		}
		if !reflect.DeepEqual(c.Spec.Labels, db.Spec.Labels) || !reflect.DeepEqual(c.Spec.Env, db.Spec.Env) ||
			c.Spec.Image != db.Spec.Image || c.Spec.Resources != db.Spec.Resources || c.Spec.Restart != db.Spec.Restart {
			t.Errorf("re-created with another configuration:\n%+v\nwant\n%+v", c.Spec, db.Spec)
		}
		if got := w.stored().Instances["db[0]"].ContainerID; got != c.ID {
			t.Errorf("state records %s, want the new container %s", got, c.ID)
		}
	})
	t.Run("unhealthy", func(t *testing.T) {
		stops := f.CallCount(enginefake.MethodStopContainer)
		f.SetHealth(api.ContainerID, engine.HealthUnhealthy)
		a := w.nextAction()
		if a.Kind != ActionRestart || a.Address != "api[0]" || a.Cause != CauseUnhealthy || a.ContainerID != api.ContainerID {
			t.Errorf("action = %+v, want a restart of api[0] for being unhealthy", a)
		}
		if f.CallCount(enginefake.MethodStopContainer) != stops+1 {
			t.Error("the unhealthy container was not stopped before its start")
		}
	})
	m := r.opts.Metrics
	for _, c := range []struct{ kind string }{{"start"}, {"recreate"}, {"restart"}} {
		if got := toFloat64(t, m.actions.WithLabelValues(c.kind, "node1", "ok")); got != 1 {
			t.Errorf("actions_total{kind=%s} = %v, want 1", c.kind, got)
		}
	}
	if got := toFloat64(t, m.instances.WithLabelValues("running")); got != 3 {
		t.Errorf("instances{status=running} = %v, want 3", got)
	}
}

// TestDaemonBackoff crashes one container again after every repair: the
// repairs wait 10s, 20s, 40s … 5m, the engine sees one start per repair,
// and after 10 minutes running the next crash is repaired at once.
func TestDaemonBackoff(t *testing.T) {
	w := newWorld(t, "node1")
	inst := w.add("worker", 0, "node1", instanceOptions{})
	w.save()
	f := w.fakes["node1"]
	m := NewMetrics()
	r := w.reconciler(Options{Interval: 24 * time.Hour, Metrics: m})
	w.startDaemon(r, "node1")
	starts := f.CallCount(enginefake.MethodStartContainer)
	crash := func() { f.SetState(inst.ContainerID, engine.StateExited, 1, false) }

	crash()
	a := w.nextAction()
	if a.Kind != ActionStart || a.Repairs != 1 || a.NextBackoff != 10*time.Second {
		t.Fatalf("first repair: %+v, want an immediate start with a 10s backoff next", a)
	}
	waits := []time.Duration{
		10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second,
		5 * time.Minute, 5 * time.Minute,
	}
	for i, wait := range waits {
		crash()
		due := w.clock.Now().Add(wait)
		w.clock.waitTimerAt(t, due)
		w.noAction()
		if got := toFloat64(t, m.waiting); got != 1 {
			t.Errorf("backoffs_waiting = %v while waiting", got)
		}
		w.clock.Advance(wait - time.Millisecond)
		w.noAction()
		w.clock.Advance(time.Millisecond)
		a := w.nextAction()
		next := min(2*wait, 5*time.Minute)
		if a.Kind != ActionStart || a.Repairs != i+2 || a.NextBackoff != next || a.Recovery != wait {
			t.Fatalf("repair %d: %+v, want a start after %s, backoff %s next", i+2, a, wait, next)
		}
		if got := toFloat64(t, m.backoffDelay.WithLabelValues("worker[0]", "node1")); got != next.Seconds() {
			t.Errorf("backoff_seconds = %v, want %v", got, next.Seconds())
		}
	}
	if got := f.CallCount(enginefake.MethodStartContainer) - starts; got != len(waits)+1 {
		t.Errorf("%d starts for %d repairs", got, len(waits)+1)
	}
	w.logs.waitFor(t, len(waits), "backing off", "address=worker[0]")

	// Ten minutes running: the backoff is forgotten.
	w.clock.Advance(10 * time.Minute)
	crash()
	a = w.nextAction()
	if a.Repairs != 1 || a.NextBackoff != 10*time.Second || a.Recovery != 0 {
		t.Errorf("after 10 minutes running: %+v, want an immediate repair, backoff reset", a)
	}
}

// TestDaemonUnreachableHost reports a host that does not answer, leaves
// its instances alone, and repairs them once it answers again.
func TestDaemonUnreachableHost(t *testing.T) {
	w := newWorld(t, "node1", "node2")
	w.add("web", 0, "node1", instanceOptions{})
	web1 := w.add("web", 1, "node2", instanceOptions{})
	w.save()
	down := w.fakes["node2"]
	down.SetUnreachable(true)
	start := w.clock.Now()
	m := NewMetrics()
	r := w.reconciler(Options{Metrics: m})
	w.startDaemon(r, "node1")
	w.logs.waitFor(t, 1, "host unreachable", "host=node2")
	if got := toFloat64(t, m.hostUp.WithLabelValues("node2")); got != 0 {
		t.Errorf("host_up{node2} = %v", got)
	}
	if got := toFloat64(t, m.instances.WithLabelValues("unknown")); got != 1 {
		t.Errorf("instances{status=unknown} = %v, want 1", got)
	}
	down.SetState(web1.ContainerID, engine.StateExited, 137, false) // meanwhile, on the cut-off host
	starts := down.CallCount(enginefake.MethodStartContainer)

	// The first retry is a second later, and fails again.
	w.clock.waitTimerAt(t, start.Add(time.Second))
	w.clock.Advance(time.Second)
	w.clock.waitTimerAt(t, start.Add(3*time.Second))
	w.noAction()
	if n, _ := w.logs.count("host unreachable", "host=node2"); n != 1 {
		t.Errorf("the host's being down was logged %d times, want once", n)
	}

	down.SetUnreachable(false)
	w.clock.Advance(2 * time.Second)
	a := w.nextAction()
	if a.Kind != ActionStart || a.Address != "web[1]" || a.Cause != CauseResync {
		t.Errorf("action = %+v, want web[1] started by the listing after the host came back", a)
	}
	if got := down.CallCount(enginefake.MethodStartContainer) - starts; got != 1 {
		t.Errorf("%d starts on node2, want 1", got)
	}
	w.logs.waitFor(t, 1, "host reachable", "host=node2")
	if got := toFloat64(t, m.hostUp.WithLabelValues("node2")); got != 1 {
		t.Errorf("host_up{node2} = %v after it came back", got)
	}
}

// silentEvents is an engine whose event stream stays open and says
// nothing, as a stream through a silent partition does.
type silentEvents struct{ *enginefake.Fake }

func (silentEvents) Events(ctx context.Context, _ engine.EventFilter) (<-chan engine.Event, <-chan error) {
	ch := make(chan engine.Event)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch, make(chan error, 1)
}

// TestDaemonResync repairs what no event announced at the next interval.
func TestDaemonResync(t *testing.T) {
	w := newWorld(t, "node1")
	inst := w.add("web", 0, "node1", instanceOptions{})
	w.save()
	f := w.fakes["node1"]
	start := w.clock.Now()
	r := w.reconciler(Options{Interval: time.Minute, Metrics: NewMetrics(),
		Dial: func(context.Context, string) (engine.Engine, error) { return silentEvents{f}, nil }})
	w.startDaemon(r, "node1")
	f.SetState(inst.ContainerID, engine.StateExited, 0, false)
	w.clock.waitTimerAt(t, start.Add(time.Minute))
	w.noAction()
	w.clock.Advance(time.Minute)
	a := w.nextAction()
	if a.Kind != ActionStart || a.Cause != CauseResync {
		t.Errorf("action = %+v, want a start found by the resync", a)
	}
	if got := toFloat64(t, r.opts.Metrics.lastResync.WithLabelValues("node1")); got != float64(start.Add(time.Minute).Unix()) {
		t.Errorf("last_resync_timestamp_seconds = %v, want %d", got, start.Add(time.Minute).Unix())
	}
}

// gatedEngine holds StartContainer until the test releases it.
type gatedEngine struct {
	*enginefake.Fake
	entered chan struct{}
	release chan struct{}
}

func (g *gatedEngine) StartContainer(ctx context.Context, ref string) error {
	g.entered <- struct{}{}
	<-g.release
	return g.Fake.StartContainer(ctx, ref)
}

// TestDaemonGracefulStop cancels the daemon while a repair is in flight:
// Run waits for the repair to finish and save, releases the lock, and
// returns nil.
func TestDaemonGracefulStop(t *testing.T) {
	w := newWorld(t, "node1")
	inst := w.add("web", 0, "node1", instanceOptions{})
	w.save()
	f := w.fakes["node1"]
	gated := &gatedEngine{Fake: f, entered: make(chan struct{}), release: make(chan struct{})}
	r := w.reconciler(Options{Dial: func(context.Context, string) (engine.Engine, error) { return gated, nil }})
	d := w.startDaemon(r, "node1")
	f.StopContainer(t.Context(), inst.ContainerID, 0)
	<-gated.entered
	stopped := make(chan error, 1)
	go func() { stopped <- d.stop() }()
	w.logs.waitFor(t, 1, "stopping: finishing the repair in flight")
	select {
	case <-stopped:
		t.Fatal("Run returned before the repair in flight finished")
	default:
	}
	close(gated.release)
	if err := <-stopped; err != nil {
		t.Fatalf("Run after SIGTERM: %v", err)
	}
	if a := w.nextAction(); a.Kind != ActionStart || a.Err != nil {
		t.Errorf("the repair in flight: %+v", a)
	}
	if c, _ := w.container("node1", inst.Name); c.State != engine.StateRunning {
		t.Errorf("web[0] is %s", c.State)
	}
	if w.stored().Serial != 2 {
		t.Error("the repair in flight did not save the state")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := state.NewFile(w.path).Lock(ctx, state.NewLockInfo("apply")); err != nil {
		t.Errorf("the lock is still held after Run returned: %v", err)
	}
	if err := r.Health(); err == nil {
		t.Error("Health is nil after Run returned")
	}
}

// TestDaemonFollowsApply runs an "apply" under the lock while the daemon
// runs: it removes web[1] (the daemon must not re-create it) and adds
// web[2] on a new host (the daemon must start watching that host).
func TestDaemonFollowsApply(t *testing.T) {
	w := newWorld(t, "node1", "node2")
	w.add("web", 0, "node1", instanceOptions{})
	web1 := w.add("web", 1, "node1", instanceOptions{})
	w.save()
	m := NewMetrics()
	r := w.reconciler(Options{Metrics: m})
	w.startDaemon(r, "node1")

	apply := state.NewFile(w.path)
	lockID, err := apply.Lock(t.Context(), state.NewLockInfo("apply"))
	if err != nil {
		t.Fatal(err)
	}
	w.fakes["node1"].RemoveContainer(t.Context(), web1.ContainerID, engine.RemoveOptions{Force: true})
	w.logs.waitFor(t, 1, "waiting for the state lock", "apply")
	delete(w.st.Instances, "web[1]")
	web2 := w.add("web", 2, "node2", instanceOptions{})
	w.st.Serial++
	if err := apply.Save(t.Context(), w.st); err != nil {
		t.Fatal(err)
	}
	apply.Unlock(t.Context(), lockID)

	w.logs.waitFor(t, 1, "nothing to repair: the instance left the state", "address=web[1]")
	w.logs.waitFor(t, 1, "host reachable", "host=node2")
	if _, ok := w.container("node1", web1.Name); ok {
		t.Error("web[1] was re-created although the apply removed it")
	}
	if got := toFloat64(t, m.serial); got != float64(w.st.Serial) {
		t.Errorf("state_serial = %v, want %d", got, w.st.Serial)
	}
	w.fakes["node2"].StopContainer(t.Context(), web2.ContainerID, 0)
	if a := w.nextAction(); a.Address != "web[2]" || a.Kind != ActionStart {
		t.Errorf("action = %+v, want web[2] (added by the apply) started", a)
	}
	w.noAction()
}
