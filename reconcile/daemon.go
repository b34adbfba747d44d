package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dockplan/dockplan/engine"
)

// The wait between attempts to reach a host that does not answer starts
// at minReconnectDelay and doubles up to maxReconnectDelay, or up to the
// resync interval when that is shorter.
const (
	minReconnectDelay = time.Second
	maxReconnectDelay = 30 * time.Second
)

// errStreamEnded is an event stream that closed without an error.
var errStreamEnded = errors.New("the engine ended the event stream")

// daemon is one Run: the host watchers and the repairs they trigger.
type daemon struct {
	r   *Reconciler
	ctx context.Context

	// watchers is touched by Run's goroutine only.
	watchers map[string]*watcher

	mu sync.Mutex
	// stopping is set once shutdown began: no new work starts.
	stopping bool
	// inflight holds the instances being looked at or repaired.
	inflight map[string]bool
	// pending holds a trigger that came while its instance was in flight
	// (the earliest, for the recovery time); it runs when that ends.
	pending map[string]trigger
	// waiting holds the instances waiting out a backoff.
	waiting map[string]Timer
	// hostUp is each host's last known reachability.
	hostUp map[string]bool
	// downSince is when each host that does not answer stopped answering
	// (as far as this daemon knows).
	downSince map[string]time.Time
	// lostDue receives when a host has been down for RescheduleAfter
	// (capacity 1: signals coalesce); Run's goroutine reschedules.
	lostDue chan struct{}
	// wg counts watchers, repairs and backoff timers.
	wg sync.WaitGroup
}

// watcher follows one host: its event stream, and its resyncs.
type watcher struct {
	host   string
	cancel context.CancelFunc
	// resync asks for a listing now (capacity 1: requests coalesce).
	resync chan struct{}
	// retry is the wait before the next attempt to reach the host.
	retry time.Duration
}

// Run is the daemon. Per host of the state it subscribes to the engine's
// events for the project's label, then lists the host's containers (so no
// event falls between the two), repairs what the listing shows, and acts
// on every die, stop, oom, destroy and unhealthy event of an instance at
// once, backing off per instance when it keeps failing. Every Interval it
// reloads the state, starts or stops host watchers to match it, and lists
// every host again; a host that does not answer is reported (log, metric)
// and its instances left alone until it answers again.
//
// Run returns nil when ctx is cancelled (SIGTERM), after the repair in
// flight has finished and released the state lock. It fails only when the
// state cannot be read at start; a missing state is waited for.
func (r *Reconciler) Run(ctx context.Context) error {
	st, err := r.load(ctx)
	if err != nil {
		return err
	}
	d := &daemon{
		r: r, ctx: ctx, watchers: map[string]*watcher{}, inflight: map[string]bool{},
		pending: map[string]trigger{}, waiting: map[string]Timer{}, hostUp: map[string]bool{},
		downSince: map[string]time.Time{}, lostDue: make(chan struct{}, 1),
	}
	if st == nil {
		r.log.Warn("there is no state yet; waiting for an apply")
	} else {
		r.log.Info("reconcile daemon started", "project", st.Project, "serial", st.Serial,
			"instances", len(st.Instances), "interval", r.opts.Interval)
	}
	select {
	case <-r.changed: // the load above; the watchers start below
	default:
	}
	r.setHealth(nil)
	d.syncWatchers(false)
	next := r.clock.Now().Add(r.opts.Interval)
	for {
		t := r.clock.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return d.shutdown()
		case <-r.changed:
			// Another dockplan (an apply) saved the state: reconcile
			// against the new desired set now.
			t.Stop()
			d.syncWatchers(true)
		case <-t.C():
			d.resyncAll()
			d.rescheduleLost()
			next = r.clock.Now().Add(r.opts.Interval)
		case <-d.lostDue:
			t.Stop()
			d.rescheduleLost()
		}
	}
}

// resyncAll reloads the state and lists every host again.
func (d *daemon) resyncAll() {
	r := d.r
	if _, err := r.load(d.ctx); err != nil {
		if d.ctx.Err() != nil {
			return
		}
		r.log.Error("cannot read the state; keeping the last one", "error", err.Error())
		r.setHealth(err)
	} else {
		r.setHealth(nil)
	}
	for _, addr := range r.backoff.expire(r.clock.Now()) {
		r.opts.Metrics.forgetBackoff(addr)
	}
	d.syncWatchers(true)
}

// syncWatchers starts a watcher for every host of the current state and
// stops those of hosts it no longer names; with resync, the running ones
// list their host again.
func (d *daemon) syncWatchers(resync bool) {
	hosts, _ := instancesByHost(d.r.current())
	want := map[string]bool{}
	for _, h := range hosts {
		want[h] = true
	}
	for _, h := range d.r.opts.Hosts {
		if !want[h] {
			want[h] = true
			hosts = append(hosts, h)
		}
	}
	for _, host := range sortedKeys(d.watchers) {
		if !want[host] {
			d.watchers[host].cancel()
			delete(d.watchers, host)
			d.r.opts.Metrics.forgetHost(host)
		}
	}
	for _, host := range hosts {
		if w := d.watchers[host]; w != nil {
			if resync {
				select {
				case w.resync <- struct{}{}:
				default:
				}
			}
			continue
		}
		ctx, cancel := context.WithCancel(d.ctx)
		w := &watcher{host: host, cancel: cancel, resync: make(chan struct{}, 1), retry: minReconnectDelay}
		d.watchers[host] = w
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.watch(ctx, w)
		}()
	}
}

// watch follows one host until ctx ends, reaching it again after every
// failure: at once when a resync is due, else after a delay that doubles
// from a second up to the interval.
func (d *daemon) watch(ctx context.Context, w *watcher) {
	for {
		err := d.session(ctx, w)
		if ctx.Err() != nil {
			return
		}
		d.setHostUp(w.host, false, err)
		t := d.r.clock.NewTimer(d.r.clock.Now().Add(w.retry))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		case <-w.resync:
			t.Stop()
		}
		w.retry = min(2*w.retry, d.r.opts.Interval, maxReconnectDelay)
	}
}

// session subscribes to the host's events, lists the host, and then
// handles events and resync requests until the stream or a listing fails.
func (d *daemon) session(ctx context.Context, w *watcher) error {
	eng, err := d.r.engineFor(ctx, w.host)
	if err != nil {
		return err
	}
	st := d.r.current()
	if st == nil {
		return nil
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe first, list second: an event between the two is then
	// seen twice at worst (repairs look before they act), never missed.
	events, errs := eng.Events(sctx, engine.EventFilter{Labels: map[string]string{LabelProject: st.Project}})
	if err := d.resyncHost(ctx, eng, w.host); err != nil {
		return err
	}
	d.setHostUp(w.host, true, nil)
	w.retry = minReconnectDelay
	beat := d.newHeartbeat()
	defer beat.stop()
	for {
		select {
		case <-beat.c():
			if err := d.ping(ctx, eng); err != nil {
				return err
			}
			beat.reset()
		case ev, ok := <-events:
			if !ok {
				select {
				case err := <-errs:
					return err
				default:
					return errStreamEnded
				}
			}
			d.onEvent(w.host, ev)
		case <-w.resync:
			if err := d.resyncHost(ctx, eng, w.host); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// resyncHost lists one host and triggers a look at every instance that is
// not running as recorded.
func (d *daemon) resyncHost(ctx context.Context, eng engine.Engine, host string) error {
	st := d.r.current()
	if st == nil {
		return nil
	}
	_, byHost := instancesByHost(st)
	findings, err := d.r.scanHost(ctx, eng, st, byHost[host])
	if err != nil {
		return err
	}
	now := d.r.clock.Now()
	d.r.opts.Metrics.resynced(host, now)
	for _, addr := range byHost[host] {
		if findings[addr].need != ActionNone {
			d.trigger(trigger{addr: addr, cause: CauseResync, at: now})
		}
	}
	if d.r.opts.RescheduleAfter > 0 {
		return d.removeStale(ctx, eng, host)
	}
	return nil
}

// onEvent triggers a look at the instance an event is about, when the
// event is one to act on.
func (d *daemon) onEvent(host string, ev engine.Event) {
	d.r.opts.Metrics.event(host, ev.Action.Base())
	cause, ok := causeOf(ev)
	if !ok {
		return
	}
	addr := d.addressOf(host, ev.Name)
	if addr == "" {
		// Perhaps an apply created it since the state was read.
		if _, err := d.r.load(d.ctx); err != nil {
			return
		}
		if addr = d.addressOf(host, ev.Name); addr == "" {
			return // not recorded: plan and apply deal with it
		}
	}
	detail := ""
	if code, ok := ev.ExitCode(); ok {
		detail = fmt.Sprintf("exit code %d", code)
	}
	d.trigger(trigger{addr: addr, cause: cause, detail: detail, at: d.r.clock.Now()})
}

// addressOf returns the address of the instance the state places on host
// with the container name name, "" when there is none.
func (d *daemon) addressOf(host, name string) string {
	st := d.r.current()
	if st == nil || name == "" {
		return ""
	}
	for addr, inst := range st.Instances {
		if inst.Name == name && inst.Host == host {
			return addr
		}
	}
	return ""
}

// trigger starts a look at t.addr, unless one is in flight (then it runs
// after) or the instance is waiting out a backoff (its timer will look).
func (d *daemon) trigger(t trigger) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.stopping:
	case d.inflight[t.addr]:
		if _, ok := d.pending[t.addr]; !ok {
			d.pending[t.addr] = t
		}
	case d.waiting[t.addr] != nil:
	default:
		d.inflight[t.addr] = true
		d.wg.Add(1)
		go d.handle(t)
	}
}

// handle looks at one instance and repairs it, or schedules the repair
// for when its backoff ends.
func (d *daemon) handle(t trigger) {
	defer d.wg.Done()
	defer d.finish(t.addr)
	r := d.r
	st := r.current()
	if st == nil || st.Instances[t.addr] == nil {
		return
	}
	inst := st.Instances[t.addr]
	eng, err := r.engineFor(d.ctx, inst.Host)
	if err != nil {
		return // the host's watcher reports it
	}
	f, err := inspectInstance(d.ctx, eng, inst, st.Project)
	if err != nil {
		if d.ctx.Err() == nil && !errors.Is(err, engine.ErrUnreachable) {
			r.log.Error("cannot look at the instance", "address", t.addr, "host", inst.Host, "error", err.Error())
		}
		return
	}
	r.setStatus(t.addr, f.status)
	if f.need == ActionNone {
		return
	}
	if at := r.backoff.until(t.addr, r.clock.Now()); !at.IsZero() {
		d.wait(t, inst.Host, at)
		return
	}
	a, err := r.repair(d.ctx, t, 0)
	if err != nil {
		if d.ctx.Err() == nil {
			r.log.Error("cannot repair the instance", "address", t.addr, "host", inst.Host, "cause", t.cause.String(), "error", err.Error())
		}
		return
	}
	if a.Kind == ActionNone {
		return
	}
	a.NextBackoff, a.Repairs = r.backoff.record(t.addr, r.clock.Now())
	r.opts.Metrics.setBackoff(t.addr, a.Host, a.NextBackoff)
	r.report(a)
}

// finish ends t.addr's look and runs the trigger that came meanwhile.
func (d *daemon) finish(addr string) {
	d.mu.Lock()
	delete(d.inflight, addr)
	t, ok := d.pending[addr]
	delete(d.pending, addr)
	d.mu.Unlock()
	if ok {
		d.trigger(t)
	}
}

// wait schedules a look at t.addr for when its backoff ends at.
func (d *daemon) wait(t trigger, host string, at time.Time) {
	r := d.r
	d.mu.Lock()
	if d.stopping || d.waiting[t.addr] != nil {
		d.mu.Unlock()
		return
	}
	r.opts.Metrics.setWaiting(len(d.waiting) + 1)
	timer := r.clock.NewTimer(at)
	d.waiting[t.addr] = timer
	d.wg.Add(1)
	d.mu.Unlock()
	r.log.Info("backing off", "address", t.addr, "host", host, "cause", t.cause.String(),
		"wait", at.Sub(r.clock.Now()).Round(time.Millisecond), "until", at.UTC().Format(time.RFC3339))
	go func() {
		defer d.wg.Done()
		select {
		case <-timer.C():
		case <-d.ctx.Done():
			timer.Stop()
		}
		d.mu.Lock()
		delete(d.waiting, t.addr)
		waiting := len(d.waiting)
		d.mu.Unlock()
		r.opts.Metrics.setWaiting(waiting)
		if d.ctx.Err() == nil {
			d.trigger(t)
		}
	}()
}

// setHostUp records a host's reachability, logging changes only.
func (d *daemon) setHostUp(host string, up bool, err error) {
	d.mu.Lock()
	was, known := d.hostUp[host]
	d.hostUp[host] = up
	d.mu.Unlock()
	d.r.opts.Metrics.setHostUp(host, up)
	d.noteDown(host, up)
	switch {
	case up && (!known || !was):
		d.r.log.Info("host reachable", "host", host)
	case !up && (!known || was):
		msg := "unknown"
		if err != nil {
			msg = err.Error()
		}
		d.r.setHostStatus(host, StatusUnknown)
		if after := d.r.opts.RescheduleAfter; after > 0 {
			d.r.log.Warn("host unreachable; its instances move to other hosts if it does not answer in time", "host", host, "reschedule_after", after, "error", msg)
		} else {
			d.r.log.Warn("host unreachable; its instances are left alone until it answers", "host", host, "error", msg)
		}
	}
}

// shutdown stops starting work, and waits for the repair in flight and
// for every watcher to end.
func (d *daemon) shutdown() error {
	d.mu.Lock()
	d.stopping = true
	busy := len(d.inflight)
	d.mu.Unlock()
	if busy > 0 {
		d.r.log.Info("stopping: finishing the repair in flight")
	}
	d.wg.Wait()
	d.r.setHealth(errors.New("stopped"))
	d.r.log.Info("reconcile daemon stopped")
	return nil
}
