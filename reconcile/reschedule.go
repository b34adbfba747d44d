package reconcile

import (
	"context"
	"errors"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/state"
)

// Bounds of the heartbeat that checks a host between events when
// RescheduleAfter is set: a quarter of RescheduleAfter, within these.
const (
	minHeartbeat = 250 * time.Millisecond
	maxHeartbeat = 5 * time.Second
)

// heartbeat is a session's periodic check that its host still answers.
// Without RescheduleAfter it never fires: an event stream that a cut
// cable leaves open is then found out at the next resync.
type heartbeat struct {
	clock Clock
	every time.Duration
	t     Timer
}

func (d *daemon) newHeartbeat() *heartbeat {
	h := &heartbeat{clock: d.r.clock}
	if after := d.r.opts.RescheduleAfter; after > 0 {
		h.every = min(max(after/4, minHeartbeat), maxHeartbeat)
		h.reset()
	}
	return h
}

// c is the channel the session selects on; nil (never ready) when off.
func (h *heartbeat) c() <-chan time.Time {
	if h.t == nil {
		return nil
	}
	return h.t.C()
}

func (h *heartbeat) reset() {
	if h.every > 0 {
		h.t = h.clock.NewTimer(h.clock.Now().Add(h.every))
	}
}

func (h *heartbeat) stop() {
	if h.t != nil {
		h.t.Stop()
	}
}

// ping asks the engine for its info within the heartbeat's period.
func (d *daemon) ping(ctx context.Context, eng engine.Engine) error {
	every := min(max(d.r.opts.RescheduleAfter/4, minHeartbeat), maxHeartbeat)
	pctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
	defer cancel()
	_, err := eng.Info(pctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return engine.NewError("", "heartbeat", "", engine.ErrUnreachable, err)
	}
	return err
}

// noteDown records when a host stopped answering and, with
// RescheduleAfter, signals Run once it has been down that long.
func (d *daemon) noteDown(host string, up bool) {
	after := d.r.opts.RescheduleAfter
	d.mu.Lock()
	defer d.mu.Unlock()
	if up {
		delete(d.downSince, host)
		return
	}
	if _, ok := d.downSince[host]; ok || after <= 0 || d.stopping {
		return
	}
	now := d.r.clock.Now()
	d.downSince[host] = now
	timer := d.r.clock.NewTimer(now.Add(after))
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		select {
		case <-timer.C():
			select {
			case d.lostDue <- struct{}{}:
			default:
			}
		case <-d.ctx.Done():
			timer.Stop()
		}
	}()
}

// lostHosts lists the hosts of st that have not answered for
// RescheduleAfter or longer, sorted.
func (d *daemon) lostHosts(st *state.State) []string {
	after := d.r.opts.RescheduleAfter
	if st == nil || after <= 0 {
		return nil
	}
	hosts, _ := instancesByHost(st)
	now := d.r.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, h := range hosts {
		if since, ok := d.downSince[h]; ok && !now.Before(since.Add(after)) {
			out = append(out, h)
		}
	}
	return out
}

// rescheduleLost moves the instances of lost hosts to hosts that answer,
// through Options.Reschedule, holding the state lock. A failure (no room
// elsewhere, pending configuration changes) is logged and tried again at
// the next resync. It runs on Run's goroutine.
func (d *daemon) rescheduleLost() {
	r := d.r
	if d.ctx.Err() != nil || len(d.lostHosts(r.current())) == 0 {
		return
	}
	r.actMu.Lock()
	defer r.actMu.Unlock()
	unlock, err := r.lock(d.ctx, 0)
	if err != nil {
		if d.ctx.Err() == nil {
			r.log.Error("cannot take the state lock to reschedule", "error", err.Error())
		}
		return
	}
	defer unlock()
	st, err := r.load(d.ctx)
	if err != nil {
		if d.ctx.Err() == nil {
			r.log.Error("cannot read the state to reschedule", "error", err.Error())
		}
		return
	}
	lost := d.lostHosts(st)
	if len(lost) == 0 {
		return
	}
	_, byHost := instancesByHost(st)
	for _, h := range lost {
		d.mu.Lock()
		since := d.downSince[h]
		d.mu.Unlock()
		r.log.Warn("rescheduling the instances of a host that has not answered", "host", h,
			"instances", len(byHost[h]), "down_for", r.clock.Now().Sub(since).Round(time.Second))
	}
	start := r.clock.Now()
	work, err := st.Clone() // Reschedule changes it; other goroutines read st
	if err != nil {
		r.log.Error("cannot reschedule", "error", err.Error())
		return
	}
	next, err := r.opts.Reschedule(d.ctx, work, lost)
	if next == nil {
		next, _ = r.load(d.ctx) // what the steps that completed saved
	}
	if next != nil {
		r.setCurrent(next, true)
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	for _, h := range lost {
		r.opts.Metrics.rescheduled(h, result)
	}
	if err != nil {
		if d.ctx.Err() == nil {
			r.log.Error("rescheduling failed; trying again at the next resync", "hosts", lost, "error", err.Error())
		}
	} else {
		moved := 0
		for _, h := range lost {
			for _, addr := range byHost[h] {
				if next != nil && next.Instances[addr] != nil && next.Instances[addr].Host != h {
					moved++
				}
			}
		}
		r.log.Info("rescheduled", "hosts", lost, "moved", moved, "duration", r.clock.Now().Sub(start).Round(time.Millisecond))
	}
	// Watch the instances' new hosts, and list every host again: a lost
	// host that answered meanwhile has its stale copies removed now.
	d.syncWatchers(true)
}

// removeStale stops and removes the project's containers on host that
// the state records on another host: the copies left behind when the
// host's instances were moved while it did not answer. It holds the
// state lock, so an apply moving an instance is never mistaken for one.
func (d *daemon) removeStale(ctx context.Context, eng engine.Engine, host string) error {
	r := d.r
	st := r.current()
	if st == nil {
		return nil
	}
	filter := engine.ListOptions{All: true, Labels: map[string]string{LabelProject: st.Project}}
	list, err := eng.ListContainers(ctx, filter)
	if err != nil {
		return err
	}
	if len(staleCopies(st, host, list)) == 0 {
		return nil
	}
	r.actMu.Lock()
	defer r.actMu.Unlock()
	unlock, err := r.lock(ctx, 0)
	if err != nil {
		return nil // the context ended; the next session looks again
	}
	defer unlock()
	if st, err = r.load(ctx); err != nil || st == nil {
		return err
	}
	if list, err = eng.ListContainers(ctx, filter); err != nil {
		return err
	}
	for _, s := range staleCopies(st, host, list) {
		inst := st.Instances[s.addr]
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.ActionTimeout)
		err := eng.StopContainer(actx, s.id, inst.Spec.StopTimeout)
		if err == nil || errors.Is(err, engine.ErrNotFound) {
			err = eng.RemoveContainer(actx, s.id, engine.RemoveOptions{Force: true})
		}
		cancel()
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			r.log.Error("cannot remove a stale copy", "address", s.addr, "host", host, "container", s.name, "error", err.Error())
			continue
		}
		r.opts.Metrics.removedStale(host)
		r.log.Info("removed stale copy", "address", s.addr, "host", host, "container", s.name, "runs_on", inst.Host)
	}
	return nil
}

// staleCopy is a container on a host that the state places elsewhere.
type staleCopy struct {
	addr, id, name string
}

// staleCopies finds, in host's listing, the containers that carry the
// name of an instance the state records on another host and are not the
// container the state records.
func staleCopies(st *state.State, host string, list []engine.ContainerSummary) []staleCopy {
	recorded := map[string]bool{}
	byName := map[string]string{}
	for addr, inst := range st.Instances {
		if inst.Host == host {
			recorded[inst.ContainerID] = true
		} else {
			byName[inst.Name] = addr
		}
	}
	var out []staleCopy
	for _, s := range list {
		addr, ok := byName[s.Name]
		if !ok || recorded[s.ID] {
			continue
		}
		out = append(out, staleCopy{addr: addr, id: s.ID, name: s.Name})
	}
	return out
}
