package applier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/state"
)

// tempSuffix names the new container of a create-before-destroy replace
// until the old one is gone. It carries dockplan's labels, so a plan after
// a crash in between finds it and removes it as a duplicate.
const tempSuffix = "-dockplan-next"

func (r *run) engineFor(host string) (engine.Engine, error) {
	if e := r.opts.Engines[host]; e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("host %q: %w", host, errNoEngine)
}

// runStep carries out one step, reporting "still running" every
// stillInterval.
func (r *run) runStep(s *planner.Step, start time.Time) error {
	ctx, cancel := r.stepContext()
	defer cancel()
	ticker := time.NewTicker(stillInterval)
	defer ticker.Stop()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-ticker.C:
				r.event(s, Progress, start, "still "+gerund(s.Action))
			case <-stop:
				return
			}
		}
	}()
	switch s.Action {
	case planner.Pull:
		return r.pull(ctx, s, start)
	case planner.Create, planner.Move:
		return r.create(ctx, s)
	case planner.Replace:
		return r.replace(ctx, s)
	case planner.Start:
		return r.start(ctx, s)
	case planner.Update:
		return r.update(ctx, s)
	case planner.Delete:
		return r.delete(ctx, s)
	case planner.Adopt:
		return r.adopt(ctx, s)
	}
	return fmt.Errorf("unknown action %s", s.Action)
}

func gerund(a planner.Action) string {
	switch a {
	case planner.Create:
		return "creating"
	case planner.Delete:
		return "deleting"
	case planner.Pull:
		return "pulling"
	case planner.Replace:
		return "replacing"
	case planner.Move:
		return "moving"
	case planner.Start:
		return "starting"
	case planner.Update:
		return "updating"
	}
	return "working"
}

func (r *run) instance(addr string) (*hclspec.Instance, error) {
	if inst := r.instances[addr]; inst != nil {
		return inst, nil
	}
	return nil, fmt.Errorf("the configuration has no instance %s; was the plan made from another configuration?", addr)
}

// resolve builds the instance's create configuration now that every
// dependency has run; it must be wholly known.
func (r *run) resolve(addr string) (*hclspec.Instance, *planner.Resolved, error) {
	inst, err := r.instance(addr)
	if err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	res, err := planner.Resolve(r.cfg, inst, r.world)
	r.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	if !res.Known {
		var unknown []string
		for _, a := range res.Attrs {
			if a.Unknown {
				unknown = append(unknown, a.Path)
			}
		}
		return nil, nil, fmt.Errorf("values still unknown at apply time: %s (a link target has no address: give its host a public_address)", strings.Join(unknown, ", "))
	}
	r.secrets.addResolved(res)
	return inst, res, nil
}

// create makes and starts the instance's container on the step's host, and
// for a move then removes the old one from FromHost.
func (r *run) create(ctx context.Context, s *planner.Step) error {
	eng, err := r.engineFor(s.Host)
	if err != nil {
		return err
	}
	inst, res, err := r.resolve(s.Address)
	if err != nil {
		return err
	}
	c, err := createAndStart(ctx, eng, res.Spec)
	if errors.Is(err, engine.ErrConflict) && r.removeStray(ctx, s.Host, eng, res.Spec) {
		c, err = createAndStart(ctx, eng, res.Spec)
	}
	if err != nil {
		return err
	}
	if err := r.record(s, inst, res, c); err != nil {
		return err
	}
	if s.Action == planner.Move && s.OldContainerID != "" {
		return r.removeOld(ctx, s.FromHost, s.OldContainerID, res.Spec.StopTimeout)
	}
	return nil
}

// removeStray removes a container that holds spec's name, carries the
// same project, container and index labels, and is recorded nowhere in
// the state, and reports whether it did. Such a container is the late
// work of an earlier create whose answer was lost (the engine was cut
// off, and the request reached it after the client gave up): the plan
// saw no container there, so it belongs to no one. Anything else holding
// the name is left alone and the create fails naming it.
func (r *run) removeStray(ctx context.Context, host string, eng engine.Engine, spec engine.ContainerSpec) bool {
	c, err := eng.InspectContainer(ctx, spec.Name)
	if err != nil || c.Running() {
		return false
	}
	for _, k := range []string{planner.LabelProject, planner.LabelContainer, planner.LabelIndex} {
		if c.Spec.Labels[k] == "" || c.Spec.Labels[k] != spec.Labels[k] {
			return false
		}
	}
	r.mu.Lock()
	for _, si := range r.st.Instances {
		if si.Host == host && si.ContainerID == c.ID {
			r.mu.Unlock()
			return false
		}
	}
	r.mu.Unlock()
	return eng.RemoveContainer(ctx, c.ID, engine.RemoveOptions{Force: true}) == nil
}

// createAndStart creates a container, starts it and reads it back (for the
// host ports Docker picked). A container that fails to start is removed.
func createAndStart(ctx context.Context, eng engine.Engine, spec engine.ContainerSpec) (engine.Container, error) {
	id, err := eng.CreateContainer(ctx, spec)
	if err != nil {
		return engine.Container{}, err
	}
	if err := eng.StartContainer(ctx, id); err != nil {
		_ = eng.RemoveContainer(context.WithoutCancel(ctx), id, engine.RemoveOptions{Force: true})
		return engine.Container{}, err
	}
	return eng.InspectContainer(ctx, id)
}

// replace re-creates the container on the same host: create before destroy
// under a temporary name when the plan allows it, otherwise remove first.
func (r *run) replace(ctx context.Context, s *planner.Step) error {
	eng, err := r.engineFor(s.Host)
	if err != nil {
		return err
	}
	inst, res, err := r.resolve(s.Address)
	if err != nil {
		return err
	}
	if !s.CreateBeforeDestroy {
		if err := r.removeOld(ctx, s.Host, s.OldContainerID, res.Spec.StopTimeout); err != nil {
			return err
		}
		r.forget(s.Address)
		c, err := createAndStart(ctx, eng, res.Spec)
		if err != nil {
			return err
		}
		return r.record(s, inst, res, c)
	}
	spec := res.Spec
	spec.Name += tempSuffix
	_ = eng.RemoveContainer(ctx, spec.Name, engine.RemoveOptions{Force: true}) // a leftover of a killed apply
	c, err := createAndStart(ctx, eng, spec)
	if err != nil {
		return err
	}
	if spec.Healthcheck != nil {
		if err := waitContainerHealthy(ctx, eng, c.ID, r.opts.HealthTimeout); err != nil {
			_ = eng.RemoveContainer(context.WithoutCancel(ctx), c.ID, engine.RemoveOptions{Force: true})
			return fmt.Errorf("the new container never became healthy, so the old one was kept: %w", err)
		}
	}
	if err := r.removeOld(ctx, s.Host, s.OldContainerID, res.Spec.StopTimeout); err != nil {
		return err
	}
	if err := eng.RenameContainer(ctx, c.ID, res.Spec.Name); err != nil {
		return err
	}
	c.Name = res.Spec.Name
	return r.record(s, inst, res, c)
}

// removeOld stops and removes a container; one already gone is fine.
func (r *run) removeOld(ctx context.Context, host, id string, stopTimeout time.Duration) error {
	if id == "" {
		return nil
	}
	eng, err := r.engineFor(host)
	if err != nil {
		return err
	}
	if err := eng.StopContainer(ctx, id, stopTimeout); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	if err := eng.RemoveContainer(ctx, id, engine.RemoveOptions{}); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	return nil
}

func (r *run) start(ctx context.Context, s *planner.Step) error {
	eng, err := r.engineFor(s.Host)
	if err != nil {
		return err
	}
	if err := eng.StartContainer(ctx, s.OldContainerID); err != nil {
		return err
	}
	return r.readBack(ctx, s, eng)
}

// update changes limits and the restart policy in place, then starts the
// container if it was stopped.
func (r *run) update(ctx context.Context, s *planner.Step) error {
	eng, err := r.engineFor(s.Host)
	if err != nil {
		return err
	}
	inst, res, err := r.resolve(s.Address)
	if err != nil {
		return err
	}
	if err := eng.UpdateResources(ctx, s.OldContainerID, res.Spec.Resources); err != nil {
		return err
	}
	if err := eng.UpdateRestartPolicy(ctx, s.OldContainerID, res.Spec.Restart); err != nil {
		return err
	}
	c, err := eng.InspectContainer(ctx, s.OldContainerID)
	if err != nil {
		return err
	}
	if !c.Running() {
		if err := eng.StartContainer(ctx, s.OldContainerID); err != nil {
			return err
		}
		if c, err = eng.InspectContainer(ctx, s.OldContainerID); err != nil {
			return err
		}
	}
	return r.record(s, inst, res, c)
}

// adopt and readBack record an existing container as it is now.
func (r *run) adopt(ctx context.Context, s *planner.Step) error {
	eng, err := r.engineFor(s.Host)
	if err != nil {
		return err
	}
	return r.readBack(ctx, s, eng)
}

func (r *run) readBack(ctx context.Context, s *planner.Step, eng engine.Engine) error {
	inst, res, err := r.resolve(s.Address)
	if err != nil {
		return err
	}
	c, err := eng.InspectContainer(ctx, s.OldContainerID)
	if err != nil {
		return err
	}
	return r.record(s, inst, res, c)
}

func (r *run) delete(ctx context.Context, s *planner.Step) error {
	var stopTimeout time.Duration
	r.mu.Lock()
	if si := r.st.Instances[s.Address]; si != nil {
		stopTimeout = si.Spec.StopTimeout
	}
	r.mu.Unlock()
	if err := r.removeOld(ctx, s.FromHost, s.OldContainerID, stopTimeout); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if si := r.st.Instances[s.Address]; si != nil && (si.ContainerID == s.OldContainerID || si.Name == s.Name) {
		delete(r.st.Instances, s.Address)
		delete(r.world.Ports, s.Address)
		return r.saveState()
	}
	return nil
}

// forget drops an instance's record before its container is re-created.
func (r *run) forget(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.st.Instances, addr)
	_ = r.saveState()
}

// record writes the instance's container into the state and the world,
// then saves the state.
func (r *run) record(s *planner.Step, inst *hclspec.Instance, res *planner.Resolved, c engine.Container) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Instances[s.Address] = &state.Instance{
		Address: s.Address, Container: inst.Container, Index: inst.Index, Host: s.Host,
		HostAddress: r.world.HostAddress[s.Host], ContainerID: c.ID, Name: res.Spec.Name, ImageID: c.ImageID,
		ConfigHash: res.Hash, Spec: res.Spec, Ports: c.Ports, Sensitive: res.SensitivePaths(),
	}
	r.world.Placed[s.Address] = s.Host
	r.world.Ports[s.Address] = planner.PortsOf(c.Ports)
	return r.saveState()
}

// waitHealthy waits until every instance the step waits for is healthy.
func (r *run) waitHealthy(s *planner.Step) error {
	for _, addr := range s.WaitHealthy {
		r.mu.Lock()
		si := r.st.Instances[addr]
		r.mu.Unlock()
		if si == nil {
			return fmt.Errorf("%s must be healthy first, but it is not running", addr)
		}
		eng, err := r.engineFor(si.Host)
		if err != nil {
			return err
		}
		r.event(s, Progress, time.Now(), "waiting for "+addr+" to be healthy")
		if err := waitContainerHealthy(r.ctx, eng, si.ContainerID, r.opts.HealthTimeout); err != nil {
			return fmt.Errorf("waiting for %s: %w", addr, err)
		}
	}
	return nil
}

// waitContainerHealthy polls a container until its health check passes. A
// container without a health check counts as healthy once running.
func waitContainerHealthy(ctx context.Context, eng engine.Engine, id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last engine.Container
	for {
		c, err := eng.InspectContainer(ctx, id)
		if errors.Is(err, engine.ErrUnreachable) && ctx.Err() == nil {
			return err // its host is gone: waiting longer cannot help
		}
		if err == nil {
			last = c
			switch {
			case !c.Running():
				return fmt.Errorf("the container is %s (exit code %d)%s", c.State, c.ExitCode, healthLog(c))
			case c.Health == engine.HealthHealthy || c.Health == engine.HealthNone:
				return nil
			case c.Health == engine.HealthUnhealthy:
				return fmt.Errorf("the container is unhealthy%s", healthLog(c))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not healthy after %s (status %s)%s", timeout, last.Health, healthLog(last))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func healthLog(c engine.Container) string {
	if len(c.HealthLog) == 0 {
		return ""
	}
	return "; last health check: " + c.HealthLog[len(c.HealthLog)-1]
}
