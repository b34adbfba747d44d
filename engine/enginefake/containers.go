package enginefake

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dockplan/dockplan/engine"
)

// container is the fake's record of one container.
type container struct {
	engine.Container
}

// snapshot returns a deep enough copy for callers to keep.
func (c *container) snapshot() engine.Container {
	out := c.Container
	out.Spec.Labels = copyMap(c.Spec.Labels)
	out.Spec.Env = append([]string(nil), c.Spec.Env...)
	out.Spec.Ports = append([]engine.PortBinding(nil), c.Spec.Ports...)
	out.Spec.Mounts = append([]engine.Mount(nil), c.Spec.Mounts...)
	out.Ports = append([]engine.PortBinding(nil), c.Ports...)
	out.IPAddresses = copyMap(c.IPAddresses)
	return out
}

// ContainerID returns the ID the fake gives its nth container (from 1):
// 64 hex digits, like Docker's.
func ContainerID(n int) string { return fmt.Sprintf("c%063x", n) }

// find resolves a container by ID, name or unique ID prefix. The caller
// holds f.mu.
func (f *Fake) find(ref string) *container {
	if c, ok := f.containers[ref]; ok {
		return c
	}
	var match *container
	for _, id := range sortedKeys(f.containers) {
		c := f.containers[id]
		if c.Name == strings.TrimPrefix(ref, "/") {
			return c
		}
		if len(ref) >= 4 && strings.HasPrefix(id, ref) {
			if match != nil {
				return nil
			}
			match = c
		}
	}
	return match
}

// AddContainer puts a container straight into the fake, as if someone had
// created it by hand, and returns its ID. The image need not exist.
func (f *Fake) AddContainer(spec engine.ContainerSpec, state engine.ContainerState) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.newContainer(spec)
	if state == engine.StateRunning {
		f.run(c)
	} else {
		c.State = state
	}
	return c.ID
}

// newContainer records a created container. The caller holds f.mu.
func (f *Fake) newContainer(spec engine.ContainerSpec) *container {
	f.seq++
	id := ContainerID(f.seq)
	if spec.Name == "" {
		spec.Name = "fake-" + strconv.Itoa(f.seq)
	}
	c := &container{engine.Container{
		ID: id, Name: spec.Name, State: engine.StateCreated, Created: f.now(), Spec: spec,
		IPAddresses: map[string]string{},
	}}
	if img, ok := f.images[spec.Image]; ok {
		c.ImageID = img.ID
	}
	f.containers[id] = c
	return c
}

// run starts c, assigning host ports the way Docker does (0 → a free high
// port). The caller holds f.mu.
func (f *Fake) run(c *container) {
	c.State, c.StartedAt, c.ExitCode, c.OOMKilled = engine.StateRunning, f.now(), 0, false
	c.Pid = 1000 + f.seq
	c.Ports = nil
	for _, p := range c.Spec.Ports {
		if p.HostPort == 0 {
			p.HostPort = f.nextPort
			f.nextPort++
		}
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		c.Ports = append(c.Ports, p)
	}
	if c.Spec.Healthcheck != nil {
		c.Health = engine.HealthStarting
	}
	network := c.Spec.Network
	if network == "" {
		network = "bridge"
	}
	c.IPAddresses = map[string]string{network: fmt.Sprintf("172.17.%d.%d", f.seq/250, f.seq%250+2)}
}

// exit stops c with code. The caller holds f.mu.
func (f *Fake) exit(c *container, code int, oom bool) {
	c.State, c.ExitCode, c.OOMKilled, c.FinishedAt, c.Pid = engine.StateExited, code, oom, f.now(), 0
	c.Ports = nil
	if c.Health != engine.HealthNone {
		c.Health = engine.HealthUnhealthy
	}
	if oom {
		f.publish(c, engine.ActionOOM, nil)
	}
	f.publish(c, engine.ActionDie, map[string]string{"exitCode": strconv.Itoa(code)})
}

// SetState changes a container behind the caller's back: StateExited with
// exitCode is a crash (oom marks an OOM kill), StateRunning a restart by the
// engine. It publishes the events Docker would, and reports whether the
// container exists.
func (f *Fake) SetState(ref string, state engine.ContainerState, exitCode int, oom bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(ref)
	if c == nil {
		return false
	}
	switch state {
	case engine.StateRunning:
		f.run(c)
		c.RestartCount++
		f.publish(c, engine.ActionStart, nil)
	case engine.StateExited, engine.StateDead:
		f.exit(c, exitCode, oom)
		c.State = state
	default:
		c.State = state
	}
	return true
}

// SetHealth sets a container's health and publishes a health_status event.
func (f *Fake) SetHealth(ref string, health engine.HealthStatus) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(ref)
	if c == nil {
		return false
	}
	c.Health = health
	f.publish(c, engine.EventAction(string(engine.ActionHealthStatus)+": "+health.String()), nil)
	return true
}

// Containers returns every container, ordered by name.
func (f *Fake) Containers() []engine.Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]engine.Container, 0, len(f.containers))
	for _, id := range sortedKeys(f.containers) {
		out = append(out, f.containers[id].snapshot())
	}
	sortContainers(out)
	return out
}

func sortContainers(cs []engine.Container) {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
}

// ListContainers lists containers by label, ordered by name.
func (f *Fake) ListContainers(ctx context.Context, opts engine.ListOptions) ([]engine.ContainerSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, MethodListContainers, "list containers", ""); err != nil {
		return nil, err
	}
	var all []engine.Container
	for _, id := range sortedKeys(f.containers) {
		c := f.containers[id]
		if (opts.All || c.State == engine.StateRunning) && labelsMatch(c.Spec.Labels, opts.Labels) {
			all = append(all, c.snapshot())
		}
	}
	sortContainers(all)
	out := make([]engine.ContainerSummary, 0, len(all))
	for _, c := range all {
		out = append(out, engine.ContainerSummary{
			ID: c.ID, Name: c.Name, Image: c.Spec.Image, ImageID: c.ImageID, Labels: c.Spec.Labels,
			State: c.State, Status: c.State.String(), Created: c.Created, Ports: c.Ports,
		})
	}
	return out, nil
}

// InspectContainer returns a container.
func (f *Fake) InspectContainer(ctx context.Context, containerRef string) (engine.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	const op = "inspect container"
	if err := f.begin(ctx, MethodInspectContainer, op, containerRef); err != nil {
		return engine.Container{}, err
	}
	c := f.find(containerRef)
	if c == nil {
		return engine.Container{}, f.notFound(op, containerRef)
	}
	return c.snapshot(), nil
}

// CreateContainer creates a container; the image must be present and the
// name free.
func (f *Fake) CreateContainer(ctx context.Context, spec engine.ContainerSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	const op = "create container"
	if err := f.begin(ctx, MethodCreateContainer, op, spec.Name); err != nil {
		return "", err
	}
	if _, ok := f.images[spec.Image]; !ok {
		return "", engine.NewError(f.hostName, op, spec.Name, engine.ErrNotFound,
			fmt.Errorf("no such image: %s", spec.Image))
	}
	if spec.Name != "" && f.find(spec.Name) != nil {
		return "", f.conflict(op, spec.Name, fmt.Sprintf("the container name %q is already in use", "/"+spec.Name))
	}
	spec.Labels = copyMap(spec.Labels)
	c := f.newContainer(spec)
	f.publish(c, engine.ActionCreate, nil)
	return c.ID, nil
}

// StartContainer starts a container; starting a running one is a no-op.
func (f *Fake) StartContainer(ctx context.Context, containerRef string) error {
	return f.withContainer(ctx, MethodStartContainer, "start container", containerRef, func(c *container) error {
		if c.State != engine.StateRunning {
			f.run(c)
			f.publish(c, engine.ActionStart, nil)
		}
		return nil
	})
}

// StopContainer stops a container with exit code 0; stopping a stopped
// one is a no-op.
func (f *Fake) StopContainer(ctx context.Context, containerRef string, _ time.Duration) error {
	return f.withContainer(ctx, MethodStopContainer, "stop container", containerRef, func(c *container) error {
		if c.State == engine.StateRunning {
			f.exit(c, 0, false)
			f.publish(c, engine.ActionStop, nil)
		}
		return nil
	})
}

// KillContainer kills a running container (exit code 137 for SIGKILL,
// 143 otherwise).
func (f *Fake) KillContainer(ctx context.Context, containerRef, signal string) error {
	const op = "kill container"
	return f.withContainer(ctx, MethodKillContainer, op, containerRef, func(c *container) error {
		if c.State != engine.StateRunning {
			return f.conflict(op, containerRef, "container "+c.ID+" is not running")
		}
		code := 143
		if signal == "" || signal == "SIGKILL" || signal == "KILL" || signal == "9" {
			code = 137
		}
		f.publish(c, engine.ActionKill, map[string]string{"signal": signal})
		f.exit(c, code, false)
		return nil
	})
}

// RemoveContainer removes a container; a running one needs Force.
func (f *Fake) RemoveContainer(ctx context.Context, containerRef string, opts engine.RemoveOptions) error {
	const op = "remove container"
	return f.withContainer(ctx, MethodRemoveContainer, op, containerRef, func(c *container) error {
		if c.State == engine.StateRunning {
			if !opts.Force {
				return f.conflict(op, containerRef, "cannot remove a running container; stop it or use force")
			}
			f.publish(c, engine.ActionKill, map[string]string{"signal": "SIGKILL"})
			f.exit(c, 137, false)
		}
		f.publish(c, engine.ActionDestroy, nil)
		delete(f.containers, c.ID)
		return nil
	})
}

// RenameContainer renames a container; the new name must be free.
func (f *Fake) RenameContainer(ctx context.Context, containerRef, newName string) error {
	const op = "rename container"
	return f.withContainer(ctx, MethodRenameContainer, op, containerRef, func(c *container) error {
		if other := f.find(newName); other != nil && other != c {
			return f.conflict(op, containerRef, fmt.Sprintf("the container name %q is already in use", "/"+newName))
		}
		old := c.Name
		c.Name, c.Spec.Name = newName, newName
		f.publish(c, engine.ActionRename, map[string]string{"oldName": "/" + old})
		return nil
	})
}

// UpdateResources sets the non-zero fields of res, as Docker's update does.
func (f *Fake) UpdateResources(ctx context.Context, containerRef string, res engine.Resources) error {
	return f.withContainer(ctx, MethodUpdateResources, "update container", containerRef, func(c *container) error {
		r := &c.Spec.Resources
		for _, p := range []struct{ dst, src *int64 }{
			{&r.NanoCPUs, &res.NanoCPUs}, {&r.CPUQuota, &res.CPUQuota}, {&r.CPUPeriod, &res.CPUPeriod},
			{&r.Memory, &res.Memory}, {&r.MemoryReservation, &res.MemoryReservation},
		} {
			if *p.src != 0 {
				*p.dst = *p.src
			}
		}
		f.publish(c, engine.ActionUpdate, nil)
		return nil
	})
}

// UpdateRestartPolicy changes the container's restart policy.
func (f *Fake) UpdateRestartPolicy(ctx context.Context, containerRef string, policy engine.RestartPolicy) error {
	return f.withContainer(ctx, MethodUpdateRestart, "update restart policy", containerRef, func(c *container) error {
		c.Spec.Restart = policy
		f.publish(c, engine.ActionUpdate, nil)
		return nil
	})
}

// withContainer runs fn on the container ref under the lock, after the
// call bookkeeping; a missing container is ErrNotFound.
func (f *Fake) withContainer(ctx context.Context, method Method, op, ref string, fn func(*container) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, method, op, ref); err != nil {
		return err
	}
	c := f.find(ref)
	if c == nil {
		return f.notFound(op, ref)
	}
	return fn(c)
}
