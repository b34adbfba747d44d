package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/state"
)

// Defaults of Options.
const (
	// DefaultInterval is the daemon's full resync interval.
	DefaultInterval = 30 * time.Second
	// DefaultActionTimeout bounds the engine calls of one repair.
	DefaultActionTimeout = 2 * time.Minute
	// DefaultLockTimeout is how long a one-shot repair waits for the state
	// lock held by another dockplan (an apply).
	DefaultLockTimeout = 5 * time.Minute
)

// LabelProject is the label every managed container carries with its
// project (probe.LabelProject, which this package does not import); the
// daemon's event subscription and listings filter on it.
const LabelProject = "dockplan.project"

// Dialer opens the engine of the host block hostName. It fails with an
// engine error of kind engine.ErrUnreachable when the host does not
// answer.
type Dialer func(ctx context.Context, hostName string) (engine.Engine, error)

// Options configure a Reconciler.
type Options struct {
	// Backend holds the state; required.
	Backend state.Backend
	// Dial reaches a host block by name; required.
	Dial Dialer
	// Project, when set, must be the state's project (a guard against a
	// -state pointing at another project's state).
	Project string
	// Logger receives every action and every host change; nil discards.
	Logger *slog.Logger
	// Metrics, when set, is updated as the reconciler works.
	Metrics *Metrics
	// Clock is the time source; nil means the system clock.
	Clock Clock
	// Backoff is the crash-loop policy of the daemon; zero fields take
	// DefaultBackoff's.
	Backoff Backoff
	// Interval is the daemon's full resync interval; zero means
	// DefaultInterval.
	Interval time.Duration
	// LockTimeout is how long a one-shot repair waits for the state lock;
	// zero means DefaultLockTimeout. The daemon waits as long as it runs.
	LockTimeout time.Duration
	// ActionTimeout bounds the engine calls of one repair; zero means
	// DefaultActionTimeout.
	ActionTimeout time.Duration
	// LockInfo is the holder info recorded with the state lock; zero means
	// state.NewLockInfo("reconcile") (a fresh ID is made for every lock).
	LockInfo state.LockInfo
	// OnAction, when set, is called after every repair, from the goroutine
	// that made it.
	OnAction func(Action)
	// RescheduleAfter, when positive, is how long a host may stay
	// unreachable before the daemon calls Reschedule for it; zero leaves
	// an unreachable host's instances alone. The daemon then also checks
	// each host every RescheduleAfter/4 (at least every 5s), so a host cut
	// off without closing its connections is noticed, and removes the
	// stale copies a host still runs when it answers again.
	RescheduleAfter time.Duration
	// Reschedule moves the instances the state records on the lost hosts
	// to hosts that answer, saving the state through Backend as it goes,
	// and returns the new state. The daemon calls it holding the state
	// lock, with the state it just loaded. Required with RescheduleAfter.
	Reschedule func(ctx context.Context, st *state.State, lost []string) (*state.State, error)
	// Hosts are watched besides the hosts the state names: with
	// RescheduleAfter, the configuration's hosts, so that a lost host
	// whose instances all moved away is seen when it answers again.
	Hosts []string
}

// Reconciler repairs a project's instances as the state records them.
// Create it with New; it is safe for concurrent use, but Once and Run are
// meant to be called one at a time.
type Reconciler struct {
	opts    Options
	log     *slog.Logger
	clock   Clock
	backoff *backoffs

	// actMu serializes repairs: each takes the state lock, reloads the
	// state, acts and saves, and saves of one state bump one serial.
	actMu sync.Mutex

	mu      sync.Mutex
	st      *state.State
	engines map[string]engine.Engine
	// statuses is every instance's status when last seen, by address.
	statuses map[string]Status
	// health is nil while a daemon runs with a readable state, else why
	// it is not healthy.
	health error
	// changed receives when a load finds a state that another dockplan
	// saved (capacity 1: signals coalesce).
	changed chan struct{}
}

// New checks opts and returns a Reconciler.
func New(opts Options) (*Reconciler, error) {
	if opts.Backend == nil || opts.Dial == nil {
		return nil, errors.New("reconcile: Options.Backend and Options.Dial are required")
	}
	if opts.RescheduleAfter > 0 && opts.Reschedule == nil {
		return nil, errors.New("reconcile: Options.RescheduleAfter needs Options.Reschedule")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.ActionTimeout <= 0 {
		opts.ActionTimeout = DefaultActionTimeout
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.LockInfo.Operation == "" {
		opts.LockInfo = state.NewLockInfo("reconcile")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Reconciler{
		opts: opts, log: log, clock: opts.Clock, backoff: newBackoffs(opts.Backoff),
		engines: map[string]engine.Engine{}, statuses: map[string]Status{},
		health: errors.New("not running"), changed: make(chan struct{}, 1),
	}, nil
}

// Close closes every engine the reconciler opened.
func (r *Reconciler) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, name := range sortedKeys(r.engines) {
		errs = append(errs, r.engines[name].Close())
	}
	r.engines = map[string]engine.Engine{}
	return errors.Join(errs...)
}

// engineFor returns the host's engine, dialling it the first time. The
// Docker client reconnects by itself, so an engine once dialled is kept
// even while its host is down.
func (r *Reconciler) engineFor(ctx context.Context, host string) (engine.Engine, error) {
	r.mu.Lock()
	eng := r.engines[host]
	r.mu.Unlock()
	if eng != nil {
		return eng, nil
	}
	eng, err := r.opts.Dial(ctx, host)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev := r.engines[host]; prev != nil {
		_ = eng.Close() // dialled twice at once: keep the first
		return prev, nil
	}
	r.engines[host] = eng
	return eng, nil
}

// current returns the last state loaded; nil before the first load.
func (r *Reconciler) current() *state.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// load reads the state from the backend and makes it current. A missing
// state gives nil, nil.
func (r *Reconciler) load(ctx context.Context) (*state.State, error) {
	st, err := r.opts.Backend.Load(ctx)
	if err != nil {
		return nil, err
	}
	if st != nil && r.opts.Project != "" && st.Project != r.opts.Project {
		return nil, fmt.Errorf("the state belongs to project %q, but the configuration is project %q; point -state at this project's state", st.Project, r.opts.Project)
	}
	r.setCurrent(st, false)
	return st, nil
}

// setCurrent makes st the current state. A state that another dockplan
// saved (own is false) is logged and signalled on r.changed.
func (r *Reconciler) setCurrent(st *state.State, own bool) {
	r.mu.Lock()
	prev := r.st
	r.st = st
	r.mu.Unlock()
	if st == nil {
		return
	}
	if !own && (prev == nil || prev.Serial != st.Serial || prev.Lineage != st.Lineage) {
		if prev != nil {
			r.log.Info("state changed", "serial", st.Serial, "previous_serial", prev.Serial, "instances", len(st.Instances))
		}
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
	r.opts.Metrics.setSerial(st.Serial)
	for _, addr := range gone(prev, st) {
		r.backoff.forget(addr)
		r.opts.Metrics.forgetBackoff(addr)
		r.mu.Lock()
		delete(r.statuses, addr)
		r.mu.Unlock()
	}
	r.publishStatuses()
}

// setHealth records whether the daemon is healthy (nil) or why not.
func (r *Reconciler) setHealth(err error) {
	r.mu.Lock()
	r.health = err
	r.mu.Unlock()
}

// Health returns nil while Run works with a readable state, else why it
// does not.
func (r *Reconciler) Health() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.health
}

// setStatus records what an instance looked like when last seen.
func (r *Reconciler) setStatus(addr string, s Status) {
	r.mu.Lock()
	r.statuses[addr] = s
	r.mu.Unlock()
	r.publishStatuses()
}

// setHostStatus marks every instance of host with s (StatusUnknown when
// the host does not answer).
func (r *Reconciler) setHostStatus(host string, s Status) {
	st := r.current()
	if st == nil {
		return
	}
	r.mu.Lock()
	for addr, inst := range st.Instances {
		if inst.Host == host {
			r.statuses[addr] = s
		}
	}
	r.mu.Unlock()
	r.publishStatuses()
}

// publishStatuses counts the instances of the current state by status
// into the metrics; an instance not seen yet is unknown.
func (r *Reconciler) publishStatuses() {
	if r.opts.Metrics == nil {
		return
	}
	counts := map[Status]int{}
	r.mu.Lock()
	if r.st != nil {
		for addr := range r.st.Instances {
			counts[r.statuses[addr]]++
		}
	}
	r.mu.Unlock()
	r.opts.Metrics.setInstances(counts)
}

// gone lists the addresses of prev that next no longer holds.
func gone(prev, next *state.State) []string {
	if prev == nil {
		return nil
	}
	var out []string
	for _, addr := range prev.Addresses() {
		if _, ok := next.Instances[addr]; !ok {
			out = append(out, addr)
		}
	}
	return out
}

// instancesByHost groups the state's addresses by host, both sorted.
func instancesByHost(st *state.State) (hosts []string, byHost map[string][]string) {
	byHost = map[string][]string{}
	if st == nil {
		return nil, byHost
	}
	for _, addr := range st.Addresses() {
		h := st.Instances[addr].Host
		byHost[h] = append(byHost[h], addr)
	}
	return sortedKeys(byHost), byHost
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// report logs a finished repair, updates the metrics and calls OnAction.
func (r *Reconciler) report(a Action) {
	attrs := []any{
		"action", a.Kind.String(), "address", a.Address, "host", a.Host, "cause", a.Cause.String(),
		"duration", a.Duration.Round(time.Millisecond),
	}
	if a.Detail != "" {
		attrs = append(attrs, "detail", a.Detail)
	}
	if a.Err != nil {
		r.log.Error("repair failed", append(attrs, "repairs", a.Repairs, "next_backoff", a.NextBackoff, "error", a.Err.Error())...)
	} else {
		attrs = append(attrs, "container_id", shortID(a.ContainerID), "recovery", a.Recovery.Round(time.Millisecond))
		if a.NextBackoff > 0 {
			attrs = append(attrs, "repairs", a.Repairs, "next_backoff", a.NextBackoff)
		}
		r.log.Info(actionMessage(a.Kind), attrs...)
		if a.PortsChanged {
			r.log.Warn("published host ports changed; containers that link to this instance keep the old address until the next apply (run dockplan plan)",
				"address", a.Address, "host", a.Host)
		}
	}
	r.opts.Metrics.action(a)
	if r.opts.OnAction != nil {
		r.opts.OnAction(a)
	}
}

func actionMessage(k ActionKind) string {
	switch k {
	case ActionStart:
		return "started container"
	case ActionRecreate:
		return "re-created container"
	case ActionRestart:
		return "restarted unhealthy container"
	}
	return "checked container"
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
