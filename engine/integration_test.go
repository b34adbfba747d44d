package engine_test

// Integration tests against the machine's default Docker engine
// ($DOCKER_HOST when it is a unix:// or tcp:// address, else
// /var/run/docker.sock), with the project's test image
// dockplan-testapp:dev built by labenv.EnsureTestImage. Without an engine
// they skip, or fail under CI=true.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/lab/labenv"
)

// testImage is the project's test workload: a FROM scratch HTTP server on
// 8080 with /healthz.
const testImage = labenv.TestImage

var (
	imageOnce sync.Once
	imageErr  error
)

// defaultAddress is the engine the integration tests use.
func defaultAddress() string {
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") || strings.HasPrefix(h, "tcp://") {
		return h
	}
	return "unix:///var/run/docker.sock"
}

// requireEngine dials the default engine and makes sure the test image is
// there. An unreachable engine fails the test under CI=true and skips it
// otherwise.
func requireEngine(t *testing.T) engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	eng, err := engine.Dial(ctx, engine.Endpoint{HostName: "local", Address: defaultAddress()})
	if err != nil {
		msg := fmt.Sprintf("the default Docker engine is not usable: %v; start dockerd "+
			"(Debian: apt-get install docker.io) or set DOCKER_HOST", err)
		if labenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { eng.Close() })
	imageOnce.Do(func() {
		buildCtx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		imageErr = labenv.EnsureTestImage(buildCtx)
	})
	if imageErr != nil {
		t.Fatalf("test image %s: %v", testImage, imageErr)
	}
	return eng
}

// uniqueName returns a name no other test run uses.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// testProject returns a unique project label value and removes every
// container carrying it when the test ends.
func testProject(t *testing.T, eng engine.Engine) string {
	t.Helper()
	project := uniqueName(t, "dpengine")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		list, err := eng.ListContainers(ctx, engine.ListOptions{All: true, Labels: map[string]string{"dockplan.project": project}})
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		for _, c := range list {
			if err := eng.RemoveContainer(ctx, c.ID, engine.RemoveOptions{Force: true}); err != nil && !errors.Is(err, engine.ErrNotFound) {
				t.Logf("cleanup: %v", err)
			}
		}
	})
	return project
}

// baseSpec is a small container of the test image for project.
func baseSpec(project, name string) engine.ContainerSpec {
	return engine.ContainerSpec{
		Name:  project + "-" + name,
		Image: testImage,
		Labels: map[string]string{
			"dockplan.project": project, "dockplan.container": name, "dockplan.index": "0",
		},
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestInfoOfDefaultEngine(t *testing.T) {
	eng := requireEngine(t)
	info, err := eng.Info(t.Context())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Name == "" || info.ServerVersion == "" || info.ID == "" {
		t.Errorf("Info lacks name, version or ID: %+v", info)
	}
	if info.NCPU < 1 || info.MemTotal <= 0 {
		t.Errorf("Info has no capacity: NCPU %d MemTotal %d", info.NCPU, info.MemTotal)
	}
	if info.OS != "linux" || info.Arch == "" {
		t.Errorf("Info platform = %q/%q, want linux/something", info.OS, info.Arch)
	}
	if info.APIVersion == "" || info.ClientAPIVersion == "" {
		t.Errorf("Info lacks API versions: %+v", info)
	}
	if eng.HostName() != "local" {
		t.Errorf("HostName = %q, want local", eng.HostName())
	}
}

func TestDialThroughContextToDefaultSocket(t *testing.T) {
	requireEngine(t)
	if !strings.HasPrefix(defaultAddress(), "unix://") {
		t.Skip("the default engine is not a unix socket")
	}
	configDir := t.TempDir()
	writeContextMeta(t, configDir, "dp-local", defaultAddress())
	eng, err := engine.Dial(t.Context(), engine.Endpoint{HostName: "ctx", Context: "dp-local", DockerConfigDir: configDir})
	if err != nil {
		t.Fatalf("Dial through context: %v", err)
	}
	defer eng.Close()
	if _, err := eng.Info(t.Context()); err != nil {
		t.Fatalf("Info through context: %v", err)
	}
}

func TestCreatedContainerHasTheSpec(t *testing.T) {
	eng := requireEngine(t)
	project := testProject(t, eng)
	spec := baseSpec(project, "web")
	spec.Env = []string{"GREETING=hello", "PORT=8080"}
	spec.Cmd = []string{"-port", "8080"}
	spec.Ports = []engine.PortBinding{{ContainerPort: 8080, HostIP: "127.0.0.1"}}
	spec.Resources = engine.Resources{NanoCPUs: 5e8, Memory: 64 << 20}
	spec.Restart = engine.RestartPolicy{Name: engine.RestartUnlessStopped}
	spec.Healthcheck = &engine.Healthcheck{Test: []string{"CMD", "/testapp", "-healthcheck"}, Interval: time.Second, Retries: 3}
	spec.StopTimeout = 3 * time.Second
	spec.Hostname = "webhost"
	spec.WorkingDir = "/"
	spec.User = "65534"
	spec.ExtraHosts = []string{"db.internal:10.213.0.12"}
	id, err := eng.CreateContainer(t.Context(), spec)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	got, err := eng.InspectContainer(t.Context(), id)
	if err != nil {
		t.Fatalf("InspectContainer: %v", err)
	}
	if got.ID != id || got.Name != spec.Name || got.State != engine.StateCreated || got.ImageID == "" {
		t.Errorf("inspect: id %q name %q state %v image %q", got.ID, got.Name, got.State, got.ImageID)
	}
	s := got.Spec
	for _, kv := range spec.Env {
		if !slices.Contains(s.Env, kv) {
			t.Errorf("env %q missing from %q", kv, s.Env)
		}
	}
	if !slices.Equal(s.Cmd, spec.Cmd) || s.Image != testImage || s.Labels["dockplan.project"] != project {
		t.Errorf("cmd/image/labels: %q %q %v", s.Cmd, s.Image, s.Labels)
	}
	if s.Resources.MilliCPUs() != 500 || s.Resources.MemoryBytes() != 64<<20 {
		t.Errorf("resources = %+v, want 500 millicores and 64MiB", s.Resources)
	}
	if s.Restart.Name != engine.RestartUnlessStopped || s.StopTimeout != 3*time.Second {
		t.Errorf("restart %v stop timeout %v", s.Restart, s.StopTimeout)
	}
	if s.Healthcheck == nil || !slices.Equal(s.Healthcheck.Test, spec.Healthcheck.Test) {
		t.Errorf("healthcheck = %+v", s.Healthcheck)
	}
	if s.Hostname != "webhost" || s.User != "65534" || s.WorkingDir != "/" || !slices.Equal(s.ExtraHosts, spec.ExtraHosts) {
		t.Errorf("hostname %q user %q workdir %q extra hosts %q", s.Hostname, s.User, s.WorkingDir, s.ExtraHosts)
	}
	if len(s.Ports) != 1 || s.Ports[0].ContainerPort != 8080 || s.Ports[0].Protocol != "tcp" || s.Ports[0].HostIP != "127.0.0.1" {
		t.Errorf("port bindings = %+v", s.Ports)
	}
}

func TestContainerLifecycle(t *testing.T) {
	eng := requireEngine(t)
	ctx := t.Context()
	project := testProject(t, eng)
	spec := baseSpec(project, "app")
	spec.Ports = []engine.PortBinding{{ContainerPort: 8080, HostIP: "127.0.0.1"}}
	spec.Resources = engine.Resources{NanoCPUs: 5e8, Memory: 64 << 20}
	spec.Healthcheck = &engine.Healthcheck{Test: []string{"CMD", "/testapp", "-healthcheck"}, Interval: time.Second, Retries: 3}
	id, err := eng.CreateContainer(ctx, spec)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if err := eng.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	var running engine.Container
	waitFor(t, "the container to be healthy", 30*time.Second, func() (bool, error) {
		c, err := eng.InspectContainer(ctx, id)
		running = c
		return err == nil && c.State == engine.StateRunning && c.Health == engine.HealthHealthy, err
	})
	if !running.Running() || running.Pid == 0 || running.StartedAt.IsZero() {
		t.Errorf("running container: %+v", running)
	}
	if len(running.Ports) != 1 || running.Ports[0].HostPort == 0 {
		t.Errorf("published ports = %+v, want one with a host port", running.Ports)
	}
	if len(running.IPAddresses) == 0 {
		t.Errorf("no IP addresses: %+v", running.IPAddresses)
	}

	checkListed(t, eng, project, spec.Name, running.Ports)
	checkUpdate(t, eng, id)
	checkRename(t, eng, spec.Name, id)
	checkStopKillRemove(t, eng, id)
}

// checkStopKillRemove stops the running container, starts it again, kills
// it, and removes it.
func checkStopKillRemove(t *testing.T, eng engine.Engine, id string) {
	t.Helper()
	ctx := t.Context()
	if err := eng.StopContainer(ctx, id, 2*time.Second); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	stopped, err := eng.InspectContainer(ctx, id)
	if err != nil || stopped.State != engine.StateExited || stopped.FinishedAt.IsZero() {
		t.Fatalf("after stop: state %v finished %v err %v", stopped.State, stopped.FinishedAt, err)
	}
	if err := eng.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer again: %v", err)
	}
	if err := eng.KillContainer(ctx, id, ""); err != nil {
		t.Fatalf("KillContainer: %v", err)
	}
	waitFor(t, "the killed container to exit", 15*time.Second, func() (bool, error) {
		c, err := eng.InspectContainer(ctx, id)
		return err == nil && c.State == engine.StateExited && c.ExitCode == 137, err
	})
	if err := eng.RemoveContainer(ctx, id, engine.RemoveOptions{}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if _, err := eng.InspectContainer(ctx, id); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("inspect after remove: %v, want ErrNotFound", err)
	}
	if err := eng.RemoveContainer(ctx, id, engine.RemoveOptions{}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("second remove: %v, want ErrNotFound", err)
	}
}

// checkListed lists by label: the project finds the container with its
// published port, another project value finds nothing.
func checkListed(t *testing.T, eng engine.Engine, project, name string, ports []engine.PortBinding) {
	t.Helper()
	list, err := eng.ListContainers(t.Context(), engine.ListOptions{Labels: map[string]string{
		"dockplan.project": project, "dockplan.container": "",
	}})
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	if len(list) != 1 || list[0].Name != name || list[0].State != engine.StateRunning {
		t.Fatalf("list by label = %+v, want only %s running", list, name)
	}
	if !slices.Equal(list[0].Ports, ports) {
		t.Errorf("listed ports %+v, inspected ports %+v", list[0].Ports, ports)
	}
	other, err := eng.ListContainers(t.Context(), engine.ListOptions{All: true, Labels: map[string]string{
		"dockplan.project": project + "-other",
	}})
	if err != nil || len(other) != 0 {
		t.Errorf("list for another project = %+v, %v; want none", other, err)
	}
}

// checkUpdate raises the limits in place, memory above the swap limit Docker
// set at create time, then lowers memory alone.
func checkUpdate(t *testing.T, eng engine.Engine, id string) {
	t.Helper()
	if err := eng.UpdateResources(t.Context(), id, engine.Resources{NanoCPUs: 1e9, Memory: 256 << 20}); err != nil {
		t.Fatalf("UpdateResources: %v", err)
	}
	c, err := eng.InspectContainer(t.Context(), id)
	if err != nil {
		t.Fatalf("InspectContainer: %v", err)
	}
	if got := c.Spec.Resources; got.MilliCPUs() != 1000 || got.Memory != 256<<20 {
		t.Errorf("after update resources = %+v, want 1000 millicores and 256MiB", got)
	}
	if err := eng.UpdateResources(t.Context(), id, engine.Resources{Memory: 32 << 20}); err != nil {
		t.Fatalf("UpdateResources down: %v", err)
	}
	c, err = eng.InspectContainer(t.Context(), id)
	if err != nil {
		t.Fatalf("InspectContainer: %v", err)
	}
	if got := c.Spec.Resources; got.MilliCPUs() != 1000 || got.Memory != 32<<20 {
		t.Errorf("after lowering memory resources = %+v, want 1000 millicores (unchanged) and 32MiB", got)
	}
}

// checkRename renames the container and back.
func checkRename(t *testing.T, eng engine.Engine, name, id string) {
	t.Helper()
	newName := name + "-renamed"
	if err := eng.RenameContainer(t.Context(), id, newName); err != nil {
		t.Fatalf("RenameContainer: %v", err)
	}
	if c, err := eng.InspectContainer(t.Context(), newName); err != nil || c.ID != id {
		t.Errorf("inspect by new name: %v %v", c.ID, err)
	}
	if _, err := eng.InspectContainer(t.Context(), name); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("inspect by old name: %v, want ErrNotFound", err)
	}
	if err := eng.RenameContainer(t.Context(), id, name); err != nil {
		t.Fatalf("RenameContainer back: %v", err)
	}
}

func TestCreateErrors(t *testing.T) {
	eng := requireEngine(t)
	project := testProject(t, eng)
	spec := baseSpec(project, "dup")
	if _, err := eng.CreateContainer(t.Context(), spec); err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	tests := []struct {
		name string
		spec engine.ContainerSpec
		kind error
		text []string
	}{
		{"name in use", spec, engine.ErrConflict, []string{`host "local": create container "` + spec.Name + `"`}},
		{"missing image", engine.ContainerSpec{Name: project + "-noimage", Image: "dockplan-no-such-image:none",
			Labels: spec.Labels}, engine.ErrNotFound, []string{"dockplan-no-such-image"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := eng.CreateContainer(t.Context(), tt.spec)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("got %v, want %v", err, tt.kind)
			}
			for _, s := range tt.text {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestListAllIncludesCreated(t *testing.T) {
	eng := requireEngine(t)
	project := testProject(t, eng)
	if _, err := eng.CreateContainer(t.Context(), baseSpec(project, "idle")); err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	labels := map[string]string{"dockplan.project": project}
	running, err := eng.ListContainers(t.Context(), engine.ListOptions{Labels: labels})
	if err != nil || len(running) != 0 {
		t.Errorf("running only: %+v, %v; want none", running, err)
	}
	all, err := eng.ListContainers(t.Context(), engine.ListOptions{Labels: labels, All: true})
	if err != nil || len(all) != 1 || all[0].State != engine.StateCreated {
		t.Errorf("all: %+v, %v; want one created", all, err)
	}
}

// TestHardenedContainerRuns creates a container with a read-only root, an
// init process, all capabilities dropped but one, two tmpfs mounts, a
// 16MiB /dev/shm and log rotation options,
// starts it, reads the settings back, and checks them in the kernel's view
// of its processes (the engine is on this machine).
func TestHardenedContainerRuns(t *testing.T) {
	eng := requireEngine(t)
	project := testProject(t, eng)
	spec := baseSpec(project, "hard")
	spec.ReadOnly, spec.Init = true, true
	spec.CapDrop = []string{"ALL"}
	spec.CapAdd = []string{"NET_BIND_SERVICE"}
	spec.Tmpfs = map[string]string{"/run": "size=8m,mode=1777", "/tmp": ""}
	spec.ShmSize = 16 << 20
	spec.LogDriver, spec.LogOptions = "json-file", map[string]string{"max-size": "1m", "max-file": "2"}
	spec.Ulimits = []engine.Ulimit{{Name: "nofile", Soft: 1000, Hard: 2000}}
	spec.Sysctls = map[string]string{"net.core.somaxconn": "321"}
	spec.ExtraHosts = []string{"db.internal:10.213.0.12"}
	id, err := eng.CreateContainer(t.Context(), spec)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if err := eng.StartContainer(t.Context(), id); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	got, err := eng.InspectContainer(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	if got.State != engine.StateRunning || !s.ReadOnly || !s.Init || !slices.Equal(s.CapDrop, spec.CapDrop) ||
		!slices.Equal(s.CapAdd, spec.CapAdd) || !maps.Equal(s.Tmpfs, spec.Tmpfs) || s.ShmSize != spec.ShmSize ||
		s.LogDriver != "json-file" || !maps.Equal(s.LogOptions, spec.LogOptions) || !slices.Equal(s.Ulimits, spec.Ulimits) ||
		!maps.Equal(s.Sysctls, spec.Sysctls) {
		t.Fatalf("inspect: state %v, spec %+v", got.State, s)
	}
	if got.Pid == 0 {
		t.Fatal("no PID for a running container")
	}
	proc := func(name string) string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", got.Pid, name))
		if err != nil {
			t.Fatalf("the engine is not on this machine, or %v", err)
		}
		return string(b)
	}
	if comm := strings.TrimSpace(proc("comm")); comm != "docker-init" {
		t.Errorf("PID 1 of the container is %q, want docker-init", comm)
	}
	if limits := proc("limits"); !regexp.MustCompile(`Max open files\s+1000\s+2000\s`).MatchString(limits) {
		t.Errorf("open files limit is not 1000/2000:\n%s", limits)
	}
	// Network sysctls read as the reader's network namespace sees them.
	if out, err := exec.Command("nsenter", "-t", fmt.Sprint(got.Pid), "-n", "cat", "/proc/sys/net/core/somaxconn").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "321" {
		t.Errorf("net.core.somaxconn in the container's network namespace = %q (%v), want 321", out, err)
	}
	if hosts := proc("root/etc/hosts"); !strings.Contains(hosts, "10.213.0.12\tdb.internal") {
		t.Errorf("/etc/hosts lacks db.internal:\n%s", hosts)
	}
	// CAP_NET_BIND_SERVICE is bit 10.
	if status := proc("status"); !strings.Contains(status, "CapBnd:\t0000000000000400") {
		t.Errorf("bounding capabilities are not NET_BIND_SERVICE alone:\n%s", status)
	}
	var root, run, tmp, shm bool
	for _, line := range strings.Split(proc("mountinfo"), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		switch f[4] {
		case "/":
			root = root || strings.HasPrefix(f[5], "ro")
		case "/run":
			run = strings.Contains(line, "tmpfs") && strings.Contains(line, "size=8192k")
		case "/tmp":
			tmp = strings.Contains(line, "tmpfs")
		case "/dev/shm":
			shm = strings.Contains(line, "size=16384k")
		}
	}
	if !root || !run || !tmp || !shm {
		t.Errorf("mounts: read-only root %v, /run tmpfs of 8MiB %v, /tmp tmpfs %v, /dev/shm of 16MiB %v:\n%s", root, run, tmp, shm, proc("mountinfo"))
	}
}
