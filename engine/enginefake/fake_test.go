package enginefake_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/engine/enginefake"
)

const image = "dockplan-testapp:dev"

func spec(name string) engine.ContainerSpec {
	return engine.ContainerSpec{
		Name: name, Image: image,
		Labels: map[string]string{"dockplan.project": "shop", "dockplan.container": "web"},
		Ports:  []engine.PortBinding{{ContainerPort: 8080}},
	}
}

func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	f := enginefake.New("h1")
	f.AddImage(image)
	id, err := f.CreateContainer(ctx, spec("shop-web-0"))
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if id != enginefake.ContainerID(1) {
		t.Errorf("first ID = %q, want %q", id, enginefake.ContainerID(1))
	}
	if err := f.StartContainer(ctx, "shop-web-0"); err != nil {
		t.Fatalf("StartContainer by name: %v", err)
	}
	c, err := f.InspectContainer(ctx, id[:12])
	if err != nil || c.State != engine.StateRunning || len(c.Ports) != 1 || c.Ports[0].HostPort != 32768 {
		t.Fatalf("inspect by short ID: %+v, %v", c, err)
	}
	if c.ImageID != enginefake.ImageID(image) {
		t.Errorf("ImageID = %q", c.ImageID)
	}
	list, err := f.ListContainers(ctx, engine.ListOptions{Labels: map[string]string{"dockplan.project": "shop"}})
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Errorf("list = %+v, %v", list, err)
	}
	if err := f.UpdateResources(ctx, id, engine.Resources{Memory: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveContainer(ctx, id, engine.RemoveOptions{}); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("remove running without force: %v, want ErrConflict", err)
	}
	if err := f.KillContainer(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.InspectContainer(ctx, id); c.State != engine.StateExited || c.ExitCode != 137 || c.Spec.Resources.Memory != 1<<30 {
		t.Errorf("after kill: %+v", c)
	}
	if err := f.RemoveContainer(ctx, id, engine.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.InspectContainer(ctx, id); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("inspect after remove: %v", err)
	}
}

func TestDockerRules(t *testing.T) {
	ctx := t.Context()
	f := enginefake.New("h1")
	tests := []struct {
		name string
		call func() error
		kind error
	}{
		{"missing image", func() error { _, err := f.CreateContainer(ctx, spec("a")); return err }, engine.ErrNotFound},
		{"name in use", func() error {
			f.AddImage(image)
			if _, err := f.CreateContainer(ctx, spec("b")); err != nil {
				return err
			}
			_, err := f.CreateContainer(ctx, spec("b"))
			return err
		}, engine.ErrConflict},
		{"kill a stopped container", func() error { return f.KillContainer(ctx, "b", "") }, engine.ErrConflict},
		{"rename onto a used name", func() error {
			f.AddContainer(spec("c"), engine.StateExited)
			return f.RenameContainer(ctx, "c", "b")
		}, engine.ErrConflict},
		{"start a missing container", func() error { return f.StartContainer(ctx, "zzz") }, engine.ErrNotFound},
		{"remove a missing network", func() error { return f.RemoveNetwork(ctx, "n") }, engine.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.kind) {
				t.Errorf("got %v, want %v", err, tt.kind)
			}
		})
	}
}

func TestFailuresAndUnreachable(t *testing.T) {
	ctx := t.Context()
	f := enginefake.New("h1")
	boom := errors.New("boom")
	f.FailOnce(enginefake.MethodInfo, boom)
	if _, err := f.Info(ctx); !errors.Is(err, boom) {
		t.Errorf("first Info: %v, want boom", err)
	}
	if _, err := f.Info(ctx); err != nil {
		t.Errorf("second Info: %v, want success", err)
	}
	f.Fail(enginefake.MethodListContainers, boom)
	for range 2 {
		if _, err := f.ListContainers(ctx, engine.ListOptions{}); !errors.Is(err, boom) {
			t.Errorf("ListContainers: %v, want boom", err)
		}
	}
	f.ClearFailures()
	f.SetUnreachable(true)
	_, err := f.Info(ctx)
	if !errors.Is(err, engine.ErrUnreachable) || err.Error() != `host "h1": info: fake engine is unreachable` {
		t.Errorf("unreachable Info: %v", err)
	}
	f.SetUnreachable(false)
	if _, err := f.ListContainers(ctx, engine.ListOptions{}); err != nil {
		t.Errorf("reachable again: %v", err)
	}
	if got := f.CallCount(enginefake.MethodInfo); got != 3 {
		t.Errorf("Info calls = %d, want 3", got)
	}
}

func TestEvents(t *testing.T) {
	ctx := t.Context()
	f := enginefake.New("h1")
	f.AddImage(image)
	events, errs := f.Events(ctx, engine.EventFilter{Labels: map[string]string{"dockplan.project": "shop"}})
	other := spec("other")
	other.Labels = map[string]string{"dockplan.project": "else"}
	if _, err := f.CreateContainer(ctx, other); err != nil {
		t.Fatal(err)
	}
	id, _ := f.CreateContainer(ctx, spec("shop-web-0"))
	_ = f.StartContainer(ctx, id)
	f.SetState(id, engine.StateExited, 2, true)
	f.SetState(id, engine.StateRunning, 0, false)
	f.SetUnreachable(true)
	var actions []engine.EventAction
	for ev := range events {
		if ev.ContainerID != id {
			t.Errorf("event of another project: %+v", ev)
		}
		if code, ok := ev.ExitCode(); ok && code != 2 {
			t.Errorf("die exit code = %d, want 2", code)
		}
		actions = append(actions, ev.Action)
	}
	want := []engine.EventAction{engine.ActionCreate, engine.ActionStart, engine.ActionOOM, engine.ActionDie, engine.ActionStart}
	if !slices.Equal(actions, want) {
		t.Errorf("actions = %v, want %v", actions, want)
	}
	if err := <-errs; !errors.Is(err, engine.ErrUnreachable) {
		t.Errorf("stream error = %v, want ErrUnreachable", err)
	}
}

func TestSaveLoadBetweenFakes(t *testing.T) {
	ctx := t.Context()
	src, dst := enginefake.New("h1"), enginefake.New("h2")
	src.AddImage(image)
	rc, err := src.ImageSave(ctx, []string{image})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := dst.ImageLoad(ctx, rc); err != nil {
		t.Fatal(err)
	}
	if ok, err := dst.ImagePresent(ctx, image); !ok || err != nil {
		t.Errorf("after load present = %v, %v", ok, err)
	}
	if err := dst.PullImage(ctx, "other:1", engine.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	img, err := dst.ImageInspect(ctx, "other:1")
	if err != nil || img.ID != enginefake.ImageID("other:1") {
		t.Errorf("pulled image = %+v, %v", img, err)
	}
}

func TestNetworks(t *testing.T) {
	ctx := t.Context()
	f := enginefake.New("h1")
	a, err := f.EnsureNetwork(ctx, engine.NetworkSpec{Name: "n", Labels: map[string]string{"dockplan.project": "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := f.EnsureNetwork(ctx, engine.NetworkSpec{Name: "n"})
	if a.ID != b.ID || a.Driver != "bridge" {
		t.Errorf("EnsureNetwork twice: %+v %+v", a, b)
	}
	list, _ := f.ListNetworks(ctx, map[string]string{"dockplan.project": "shop"})
	if len(list) != 1 {
		t.Errorf("ListNetworks = %+v", list)
	}
	if err := f.RemoveNetwork(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
}
