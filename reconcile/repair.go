package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/state"
)

// trigger is a reason to look at one instance.
type trigger struct {
	addr string
	// cause and detail say why.
	cause  Cause
	detail string
	// at is when the problem was noticed (recovery time counts from it).
	at time.Time
}

// finding is what a look at one instance's container showed.
type finding struct {
	status Status
	need   ActionKind
	// containerID is the container found, "" when missing.
	containerID string
}

// judge decides an instance's status and repair from its container.
func judge(inst *state.Instance, exists bool, cs engine.ContainerState, health engine.HealthStatus) (Status, ActionKind) {
	if !exists {
		return StatusMissing, ActionRecreate
	}
	switch cs {
	case engine.StateRunning, engine.StatePaused, engine.StateRestarting:
		// Paused is an operator's choice, restarting is the engine's own
		// restart policy at work: neither is ours to undo.
		if health == engine.HealthUnhealthy && declaresHealthcheck(inst) {
			return StatusUnhealthy, ActionRestart
		}
		return StatusRunning, ActionNone
	case engine.StateCreated, engine.StateExited:
		return StatusStopped, ActionStart
	case engine.StateDead:
		return StatusStopped, ActionRecreate // a dead container cannot be started
	case engine.StateRemoving:
		return StatusMissing, ActionNone // its destroy event (or the next resync) follows
	}
	return StatusUnknown, ActionNone
}

// declaresHealthcheck reports whether the instance's create configuration
// declares a health check: only then is "unhealthy" a reason to restart
// (an image's own HEALTHCHECK was not asked for).
func declaresHealthcheck(inst *state.Instance) bool {
	hc := inst.Spec.Healthcheck
	return hc != nil && len(hc.Test) > 0 && !strings.EqualFold(hc.Test[0], "NONE")
}

// inspectInstance looks at one instance's container: by the ID the state
// records, else by its name (a container re-created by someone else).
func inspectInstance(ctx context.Context, eng engine.Engine, inst *state.Instance, project string) (finding, error) {
	ref := inst.ContainerID
	if ref == "" {
		ref = inst.Name
	}
	c, err := eng.InspectContainer(ctx, ref)
	if errors.Is(err, engine.ErrNotFound) && ref != inst.Name {
		c, err = eng.InspectContainer(ctx, inst.Name)
	}
	if errors.Is(err, engine.ErrNotFound) {
		status, need := judge(inst, false, 0, 0)
		return finding{status: status, need: need}, nil
	}
	if err != nil {
		return finding{}, err
	}
	if c.ID != inst.ContainerID && c.Spec.Labels[LabelProject] != project {
		return finding{}, fmt.Errorf("a container named %q that this project does not manage is on host %q; remove or rename it so that %s can be re-created",
			inst.Name, inst.Host, inst.Address)
	}
	status, need := judge(inst, true, c.State, c.Health)
	return finding{status: status, need: need, containerID: c.ID}, nil
}

// repair looks at the instance again under the state lock, with the state
// as it is now, and repairs it if it still needs it. It waits up to
// lockWait for the lock (0: as long as ctx lasts). The engine calls of the
// repair are bounded by ActionTimeout but not cancelled with ctx, so a
// repair that started finishes and saves. It returns an error, and no
// Action, when it could not look (lock, state, engine); a failed repair is
// an Action with Err set.
func (r *Reconciler) repair(ctx context.Context, t trigger, lockWait time.Duration) (Action, error) {
	r.actMu.Lock()
	defer r.actMu.Unlock()
	unlock, err := r.lock(ctx, lockWait)
	if err != nil {
		return Action{}, err
	}
	defer unlock()
	st, err := r.load(ctx)
	if err != nil {
		return Action{}, err
	}
	var inst *state.Instance
	if st != nil {
		inst = st.Instances[t.addr]
	}
	if inst == nil {
		r.log.Debug("nothing to repair: the instance left the state", "address", t.addr, "serial", st.Serial)
		return Action{Address: t.addr, Cause: t.cause}, nil // an apply removed it meanwhile
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.ActionTimeout)
	defer cancel()
	eng, err := r.engineFor(actx, inst.Host)
	if err != nil {
		return Action{}, err
	}
	f, err := inspectInstance(actx, eng, inst, st.Project)
	if err != nil {
		return Action{}, err
	}
	r.setStatus(t.addr, f.status)
	a := Action{Kind: f.need, Address: t.addr, Host: inst.Host, Cause: t.cause, Detail: t.detail}
	if f.need == ActionNone {
		r.log.Debug("nothing to repair: the instance runs", "address", t.addr, "host", inst.Host, "serial", st.Serial)
		return a, nil
	}
	start := r.clock.Now()
	c, err := act(actx, eng, inst, f)
	if err == nil {
		a.ContainerID = c.ID
		a.PortsChanged = !samePorts(inst.Ports, c.Ports)
		r.setStatus(t.addr, StatusRunning)
		if err = r.record(actx, st, t.addr, c); err != nil {
			err = fmt.Errorf("the container runs again, but the state could not be saved (the next plan adopts it): %w", err)
		}
	}
	now := r.clock.Now()
	a.Duration, a.Recovery, a.Err = now.Sub(start), now.Sub(t.at), err
	return a, nil
}

// lock takes the state lock, saying so when it has to wait for another
// holder, and returns its release.
func (r *Reconciler) lock(ctx context.Context, wait time.Duration) (func(), error) {
	info := r.opts.LockInfo
	info.ID, info.Created = "", time.Time{}
	// A first short try, so that a wait is logged with the holder's name.
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	id, err := r.opts.Backend.Lock(tctx, info)
	cancel()
	var locked *state.LockedError
	if errors.As(err, &locked) && ctx.Err() == nil {
		r.log.Info("waiting for the state lock", "holder", locked.Holder.String())
		lctx, cancel := ctx, context.CancelFunc(func() {})
		if wait > 0 {
			lctx, cancel = context.WithTimeout(ctx, wait)
		}
		id, err = r.opts.Backend.Lock(lctx, info)
		cancel()
	}
	if err != nil {
		return nil, err
	}
	return func() {
		if err := r.opts.Backend.Unlock(context.WithoutCancel(ctx), id); err != nil {
			r.log.Warn("could not release the state lock", "error", err.Error())
		}
	}, nil
}

// act carries out the repair f needs.
func act(ctx context.Context, eng engine.Engine, inst *state.Instance, f finding) (engine.Container, error) {
	switch f.need {
	case ActionStart:
		if err := eng.StartContainer(ctx, f.containerID); err != nil {
			return engine.Container{}, err
		}
		return eng.InspectContainer(ctx, f.containerID)
	case ActionRestart:
		if err := eng.StopContainer(ctx, f.containerID, inst.Spec.StopTimeout); err != nil {
			return engine.Container{}, err
		}
		if err := eng.StartContainer(ctx, f.containerID); err != nil {
			return engine.Container{}, err
		}
		return eng.InspectContainer(ctx, f.containerID)
	case ActionRecreate:
		if f.containerID != "" {
			err := eng.RemoveContainer(ctx, f.containerID, engine.RemoveOptions{Force: true})
			if err != nil && !errors.Is(err, engine.ErrNotFound) {
				return engine.Container{}, err
			}
		}
		return recreate(ctx, eng, inst)
	}
	return engine.Container{}, fmt.Errorf("no repair for %s", f.need)
}

// recreate creates the instance's container again from the create
// configuration the state holds. Ports the configuration leaves to Docker
// get the host port they had, so that the containers linking to the
// instance still reach it; when that port is taken now, Docker picks one
// as the configuration allows.
func recreate(ctx context.Context, eng engine.Engine, inst *state.Instance) (engine.Container, error) {
	spec := inst.Spec
	spec.Ports = slices.Clone(inst.Spec.Ports)
	pinned := pinPorts(spec.Ports, inst.Ports)
	c, err := createAndStart(ctx, eng, spec)
	if err != nil && pinned {
		var err2 error
		if c, err2 = createAndStart(ctx, eng, inst.Spec); err2 == nil {
			return c, nil
		}
		err = err2
	}
	if err != nil && errors.Is(err, engine.ErrNotFound) {
		err = fmt.Errorf("%w; the image %s is not on the host any more: run dockplan apply, which brings it back", err, inst.Spec.Image)
	}
	return c, err
}

// pinPorts gives every port without a fixed host port the host port it
// had (from bound), and reports whether it pinned any.
func pinPorts(ports, bound []engine.PortBinding) bool {
	pinned := false
	for i := range ports {
		p := &ports[i]
		if p.HostPort != 0 {
			continue
		}
		for _, b := range bound {
			if b.ContainerPort == p.ContainerPort && protocol(b.Protocol) == protocol(p.Protocol) && b.HostPort > 0 {
				p.HostPort, pinned = b.HostPort, true
				break
			}
		}
	}
	return pinned
}

func protocol(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

// createAndStart creates a container, starts it and reads it back (for
// the host ports it got). A container that fails to start is removed, so
// that a retry can use the name.
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

// record writes the repaired container into the state (a new ID after a
// re-create, new host ports after a start) and saves it; nothing is
// written when nothing changed.
func (r *Reconciler) record(ctx context.Context, st *state.State, addr string, c engine.Container) error {
	old := st.Instances[addr]
	next := *old
	next.ContainerID = c.ID
	if c.ImageID != "" {
		next.ImageID = c.ImageID
	}
	next.Ports = c.Ports
	if next.ContainerID == old.ContainerID && next.ImageID == old.ImageID && samePorts(next.Ports, old.Ports) {
		return nil
	}
	ns := *st
	ns.Instances = maps.Clone(st.Instances)
	ns.Instances[addr] = &next
	ns.Serial++
	if err := r.opts.Backend.Save(ctx, &ns); err != nil {
		return err
	}
	r.setCurrent(&ns, true)
	return nil
}

// samePorts compares published ports, nil and empty alike.
func samePorts(a, b []engine.PortBinding) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ContainerPort != y.ContainerPort || protocol(x.Protocol) != protocol(y.Protocol) ||
			x.HostIP != y.HostIP || x.HostPort != y.HostPort {
			return false
		}
	}
	return true
}
