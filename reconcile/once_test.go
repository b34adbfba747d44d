package reconcile

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/engine/enginefake"
	"github.com/dockplan/dockplan/state"
)

// TestOnceAllRunning finds everything running: no repair, no state write.
func TestOnceAllRunning(t *testing.T) {
	w := newWorld(t, "node1", "node2")
	w.add("web", 0, "node1", instanceOptions{})
	w.add("web", 1, "node2", instanceOptions{healthcheck: true})
	w.save()
	res, err := w.reconciler(Options{}).Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Actions) != 0 || res.Running != 2 || !res.OK() || res.Instances != 2 {
		t.Errorf("result = %+v, want 2 running and nothing done", res)
	}
	if got := w.stored().Serial; got != 1 {
		t.Errorf("serial %d after a pass that repaired nothing, want 1", got)
	}
	for _, f := range w.fakes {
		if n := f.CallCount(enginefake.MethodListContainers); n != 1 {
			t.Errorf("%s listed %d times, want once per host", f.HostName(), n)
		}
	}
}

// TestOnceStartsStopped starts a stopped container and records the host
// port Docker gave it this time.
func TestOnceStartsStopped(t *testing.T) {
	w := newWorld(t, "node1")
	inst := w.add("web", 0, "node1", instanceOptions{})
	w.save()
	if err := w.fakes["node1"].StopContainer(t.Context(), inst.ContainerID, 0); err != nil {
		t.Fatal(err)
	}
	res, err := w.reconciler(Options{}).Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Actions) != 1 || res.Repaired() != 1 || !res.OK() {
		t.Fatalf("result = %+v, want one start", res)
	}
	a := res.Actions[0]
	if a.Kind != ActionStart || a.Address != "web[0]" || a.Host != "node1" || a.Cause != CauseResync || a.ContainerID != inst.ContainerID {
		t.Errorf("action = %+v", a)
	}
	c, _ := w.container("node1", inst.Name)
	if c.State != engine.StateRunning {
		t.Fatalf("container is %s after the pass", c.State)
	}
	st := w.stored()
	if st.Serial != 2 || !reflect.DeepEqual(st.Instances["web[0]"].Ports, c.Ports) {
		t.Errorf("state serial %d ports %v, want 2 and the new ports %v", st.Serial, st.Instances["web[0]"].Ports, c.Ports)
	}
	if !a.PortsChanged {
		t.Error("a start that moved the host port did not say so")
	}
}

// TestOnceRecreatesMissing re-creates a removed container from the state:
// same name, labels and create configuration, the host port it had, and
// the new container ID in the state.
func TestOnceRecreatesMissing(t *testing.T) {
	w := newWorld(t, "node1")
	inst := w.add("web", 0, "node1", instanceOptions{healthcheck: true})
	w.add("web", 1, "node1", instanceOptions{})
	w.save()
	f := w.fakes["node1"]
	if err := f.RemoveContainer(t.Context(), inst.ContainerID, engine.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	res, err := w.reconciler(Options{}).Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Actions) != 1 || res.Actions[0].Kind != ActionRecreate || res.Running != 1 {
		t.Fatalf("result = %+v, want one re-create and one running", res)
	}
	c, ok := w.container("node1", inst.Name)
	if !ok || c.State != engine.StateRunning || c.ID == inst.ContainerID {
		t.Fatalf("container after the pass: %+v (found %v)", c, ok)
	}
	want := inst.Spec
	want.Ports = []engine.PortBinding{{ContainerPort: 8080, HostPort: inst.Ports[0].HostPort}}
	if !reflect.DeepEqual(c.Spec, want) {
		t.Errorf("re-created with\n%+v\nwant the recorded spec with the old host port pinned\n%+v", c.Spec, want)
	}
	st := w.stored()
	got := st.Instances["web[0]"]
	if st.Serial != 2 || got.ContainerID != c.ID || got.ImageID != c.ImageID || !reflect.DeepEqual(got.Ports, inst.Ports) {
		t.Errorf("state after re-create: serial %d, %+v", st.Serial, got)
	}
	if !reflect.DeepEqual(got.Spec, inst.Spec) {
		t.Error("the recorded create configuration changed")
	}
	if res.Actions[0].PortsChanged {
		t.Error("the re-created container kept its host port, but the action says it changed")
	}
}

// TestOnceRecreatesDeadContainer removes a dead container (which cannot
// be started) and creates it again.
func TestOnceRecreatesDeadContainer(t *testing.T) {
	w := newWorld(t, "node1")
	inst := w.add("web", 0, "node1", instanceOptions{})
	w.save()
	w.fakes["node1"].SetState(inst.ContainerID, engine.StateDead, 137, false)
	res, err := w.reconciler(Options{}).Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Actions) != 1 || res.Actions[0].Kind != ActionRecreate || res.Actions[0].Err != nil {
		t.Fatalf("result = %+v, want one re-create", res)
	}
}

// TestOnceRestartsUnhealthy restarts an unhealthy container only when its
// create configuration declares the health check.
func TestOnceRestartsUnhealthy(t *testing.T) {
	tests := []struct {
		name        string
		healthcheck bool
		want        ActionKind
	}{
		{name: "declared health check", healthcheck: true, want: ActionRestart},
		{name: "image health check only", healthcheck: false, want: ActionNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, "node1")
			inst := w.add("api", 0, "node1", instanceOptions{healthcheck: tt.healthcheck})
			w.save()
			f := w.fakes["node1"]
			f.SetHealth(inst.ContainerID, engine.HealthUnhealthy)
			res, err := w.reconciler(Options{}).Once(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			got := ActionNone
			if len(res.Actions) == 1 {
				got = res.Actions[0].Kind
			}
			if got != tt.want || len(res.Actions) > 1 {
				t.Fatalf("actions %+v, want %s", res.Actions, tt.want)
			}
			stops := f.CallCount(enginefake.MethodStopContainer)
			if (tt.want == ActionRestart) != (stops == 1) {
				t.Errorf("%d stop calls", stops)
			}
			if c, _ := w.container("node1", inst.Name); c.State != engine.StateRunning || c.ID != inst.ContainerID {
				t.Errorf("container after the pass: %s %s", c.ID, c.State)
			}
		})
	}
}

// TestOnceUnreachableHost reports a host that does not answer, leaves its
// instances alone, and still repairs the other hosts.
func TestOnceUnreachableHost(t *testing.T) {
	w := newWorld(t, "node1", "node2")
	web0 := w.add("web", 0, "node1", instanceOptions{})
	w.add("web", 1, "node2", instanceOptions{})
	w.add("db", 0, "node2", instanceOptions{})
	w.save()
	w.fakes["node1"].StopContainer(t.Context(), web0.ContainerID, 0)
	down := w.fakes["node2"]
	down.SetUnreachable(true)
	before := len(down.Calls())
	res, err := w.reconciler(Options{}).Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unreachable) != 1 || res.Unreachable[0].Host != "node2" || res.Unreachable[0].Instances != 2 ||
		!errors.Is(res.Unreachable[0].Err, engine.ErrUnreachable) {
		t.Errorf("unreachable = %+v, want node2 with 2 instances", res.Unreachable)
	}
	if res.OK() || res.Repaired() != 1 || res.Actions[0].Address != "web[0]" {
		t.Errorf("result = %+v, want web[0] started and the pass not OK", res)
	}
	for _, m := range down.Calls()[before:] {
		if m != enginefake.MethodInfo {
			t.Errorf("the unreachable host got a %s call", m)
		}
	}
	if n, _ := w.logs.count("host unreachable", "host=node2"); n != 1 {
		t.Errorf("%d log lines about node2 being unreachable, want 1:\n%s", n, w.logs)
	}
}

// TestOnceFailedRepair reports a repair that fails (the image is gone)
// with what to do, and leaves the state as it was.
func TestOnceFailedRepair(t *testing.T) {
	w := newWorld(t, "node1")
	inst := w.add("web", 0, "node1", instanceOptions{})
	w.save()
	f := w.fakes["node1"]
	f.RemoveContainer(t.Context(), inst.ContainerID, engine.RemoveOptions{Force: true})
	f.Fail(enginefake.MethodCreateContainer, engine.NewError("node1", "create container", inst.Name, engine.ErrNotFound, errors.New("no such image")))
	res, err := w.reconciler(Options{}).Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed() != 1 || res.OK() {
		t.Fatalf("result = %+v, want one failed repair", res)
	}
	if msg := res.Actions[0].Err.Error(); !strings.Contains(msg, "run dockplan apply") {
		t.Errorf("error %q does not say what to do", msg)
	}
	if w.stored().Serial != 1 {
		t.Error("a failed repair wrote the state")
	}
}

// TestOnceWaitsForApply holds the state lock as an apply would, removes
// an instance under it, and checks that the pass waited and then left the
// removed instance alone instead of re-creating it.
func TestOnceWaitsForApply(t *testing.T) {
	w := newWorld(t, "node1")
	web0 := w.add("web", 0, "node1", instanceOptions{})
	w.add("web", 1, "node1", instanceOptions{})
	w.save()
	f := w.fakes["node1"]
	f.RemoveContainer(t.Context(), web0.ContainerID, engine.RemoveOptions{Force: true})

	apply := state.NewFile(w.path)
	lockID, err := apply.Lock(t.Context(), state.NewLockInfo("apply"))
	if err != nil {
		t.Fatal(err)
	}
	r := w.reconciler(Options{})
	done := make(chan *Result, 1)
	go func() {
		res, err := r.Once(context.Background())
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	w.logs.waitFor(t, 1, "waiting for the state lock", "apply")
	delete(w.st.Instances, "web[0]") // the apply scales web down to one
	w.st.Serial++
	if err := apply.Save(t.Context(), w.st); err != nil {
		t.Fatal(err)
	}
	if err := apply.Unlock(t.Context(), lockID); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if len(res.Actions) != 0 {
		t.Errorf("repairs %+v after the apply removed web[0]", res.Actions)
	}
	if _, ok := w.container("node1", web0.Name); ok {
		t.Error("web[0] was re-created although the apply removed it")
	}
	if n := f.CallCount(enginefake.MethodCreateContainer); n != 2 {
		t.Errorf("%d creates, want only the 2 of the set-up", n)
	}
}

func TestOnceNoState(t *testing.T) {
	w := newWorld(t, "node1")
	if _, err := w.reconciler(Options{}).Once(t.Context()); !errors.Is(err, ErrNoState) {
		t.Errorf("Once without a state: %v, want ErrNoState", err)
	}
}

func TestOnceOtherProject(t *testing.T) {
	w := newWorld(t, "node1")
	w.st.Project = "other"
	w.add("web", 0, "node1", instanceOptions{})
	w.save()
	_, err := w.reconciler(Options{}).Once(t.Context())
	if err == nil || !strings.Contains(err.Error(), `project "other"`) {
		t.Errorf("Once over another project's state: %v", err)
	}
}

// TestOnceForeignContainerInTheWay refuses to touch a container of the
// instance's name that the project does not manage.
func TestOnceForeignContainerInTheWay(t *testing.T) {
	w := newWorld(t, "node1")
	inst := w.add("web", 0, "node1", instanceOptions{})
	w.save()
	f := w.fakes["node1"]
	f.RemoveContainer(t.Context(), inst.ContainerID, engine.RemoveOptions{Force: true})
	f.AddContainer(engine.ContainerSpec{Name: inst.Name, Image: testImage}, engine.StateExited)
	res, err := w.reconciler(Options{}).Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "does not manage") {
		t.Errorf("errors = %v, want one about the foreign container", res.Errors)
	}
	if n := f.CallCount(enginefake.MethodStartContainer) + f.CallCount(enginefake.MethodRemoveContainer); n != 2 {
		t.Errorf("the foreign container was touched (%d start/remove calls, 2 from the set-up)", n)
	}
}
