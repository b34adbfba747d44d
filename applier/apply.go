package applier

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/state"
	"github.com/hashicorp/go-multierror"
)

// Defaults for Options.
const (
	DefaultParallelism   = 10
	DefaultPerHost       = 4
	DefaultHealthTimeout = 2 * time.Minute
	DefaultGrace         = 30 * time.Second
	// stillInterval is how often a slow step reports that it is running.
	stillInterval = 10 * time.Second
)

// Options tune an apply.
type Options struct {
	// Engines are the connected engines by host name. A step on a host
	// without one fails, naming the host.
	Engines map[string]engine.Engine
	// Local is the engine of the machine running dockplan, the source of
	// images with image_source = "local"; nil when not connected.
	Local engine.Engine
	// HostAddress maps a host name to where its published ports are
	// reached (probe's ReachAddress).
	HostAddress map[string]string
	// Parallelism bounds the steps running at once; PerHost those on one
	// host.
	Parallelism int
	PerHost     int
	// HealthTimeout bounds the wait for a dependency to become healthy.
	HealthTimeout time.Duration
	// Grace is how long steps in flight may go on after ctx is cancelled.
	Grace time.Duration
	// Save persists the state; it is called after every completed step.
	Save func(ctx context.Context, st *state.State) error
	// OnEvent receives progress events; it must not block for long.
	OnEvent func(Event)
	// RegistryAuth returns the X-Registry-Auth value for an image; nil or
	// "" means anonymous.
	RegistryAuth func(image string) string
}

// Result is what an apply did.
type Result struct {
	// Done, Failed and Skipped are step IDs in plan order.
	Done, Failed, Skipped []string
	// Counts of completed steps by action.
	Counts planner.Summary
	// Err holds every root-cause error; nil when every step completed.
	Err error
	// Interrupted is set when the context was cancelled.
	Interrupted bool
	// SaveErr is set when saving the state failed; the apply then started
	// no further step.
	SaveErr error
}

// stepStatus is a step's outcome.
type stepStatus int

const (
	pending stepStatus = iota
	succeeded
	failed
	skipped
)

// run is one Apply call's shared state.
type run struct {
	ctx   context.Context
	cfg   *hclspec.Config
	plan  *planner.Plan
	st    *state.State
	opts  Options
	mu    sync.Mutex
	world *planner.World
	// instances are the configuration's instances by address (read-only).
	instances map[string]*hclspec.Instance
	status    map[string]stepStatus
	done      map[string]chan struct{}
	sem       chan struct{}
	hostSem   map[string]chan struct{}
	res       *Result
	errs      *multierror.Error
	stopping  bool
	// secrets are the sensitive values that errors must not show.
	secrets *secrets
}

// Apply carries out plan on the engines, recording every completed step in
// st and saving it through opts.Save. cfg must be the configuration the
// plan was made from.
func Apply(ctx context.Context, cfg *hclspec.Config, plan *planner.Plan, st *state.State, opts Options) *Result {
	opts = withDefaults(opts)
	r := &run{ctx: ctx, cfg: cfg, plan: plan, st: st, opts: opts, world: worldFrom(st, plan, opts.HostAddress),
		status: map[string]stepStatus{}, done: map[string]chan struct{}{}, sem: make(chan struct{}, opts.Parallelism),
		hostSem: map[string]chan struct{}{}, res: &Result{}}
	r.secrets = newSecrets(cfg, st)
	r.instances = map[string]*hclspec.Instance{}
	for _, inst := range cfg.Instances() {
		r.instances[inst.Address] = inst
	}
	for _, s := range plan.Steps {
		r.done[s.ID] = make(chan struct{})
		if r.hostSem[s.Host] == nil {
			r.hostSem[s.Host] = make(chan struct{}, opts.PerHost)
		}
	}
	var wg sync.WaitGroup
	for _, s := range plan.Steps {
		wg.Go(func() { r.walk(s) })
	}
	wg.Wait()
	r.finish()
	return r.res
}

func withDefaults(o Options) Options {
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.PerHost <= 0 {
		o.PerHost = DefaultPerHost
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = DefaultHealthTimeout
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Save == nil {
		o.Save = func(context.Context, *state.State) error { return nil }
	}
	if o.OnEvent == nil {
		o.OnEvent = func(Event) {}
	}
	return o
}

// worldFrom fills the world with where the state's instances are and the
// plan's placements.
func worldFrom(st *state.State, plan *planner.Plan, hostAddr map[string]string) *planner.World {
	w := planner.NewWorld()
	for h, a := range hostAddr {
		w.HostAddress[h] = a
	}
	for _, addr := range st.Addresses() {
		si := st.Instances[addr]
		w.Placed[addr] = si.Host
		w.Ports[addr] = planner.PortsOf(si.Ports)
		if w.HostAddress[si.Host] == "" {
			w.HostAddress[si.Host] = si.HostAddress
		}
	}
	for _, s := range plan.Steps {
		if s.Address != "" && s.Action != planner.Delete {
			w.Placed[s.Address] = s.Host
		}
	}
	return w
}

// walk waits for a step's dependencies, runs it unless one failed or the
// apply is stopping, and records the outcome.
func (r *run) walk(s *planner.Step) {
	defer close(r.done[s.ID])
	for _, dep := range s.DependsOn {
		<-r.done[dep]
	}
	if cause := r.failedDependency(s); cause != "" {
		r.skip(s, cause)
		return
	}
	if r.ctx.Err() != nil || r.isStopping() {
		r.skip(s, "the apply was stopped before this step started")
		return
	}
	waitStart := time.Now()
	if err := r.waitHealthy(s); err != nil {
		r.fail(s, err, waitStart)
		return
	}
	if !r.acquire(s) {
		r.skip(s, "the apply was stopped before this step started")
		return
	}
	defer r.release(s)
	// A step may have waited for its slot (or its dependency's health)
	// while a save failed: it must not start then.
	if r.isStopping() {
		r.skip(s, "the apply was stopped before this step started")
		return
	}
	start := time.Now()
	r.event(s, Started, start, "")
	err := r.runStep(s, start)
	if err != nil {
		r.fail(s, err, start)
		return
	}
	r.succeed(s, start)
}

// failedDependency names the first dependency that did not succeed.
func (r *run) failedDependency(s *planner.Step) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, dep := range s.DependsOn {
		if r.status[dep] != succeeded {
			return dep + " did not complete"
		}
	}
	return ""
}

func (r *run) isStopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

// acquire takes the step's host slot, then a global slot: a step waiting
// for a busy host must not hold a global slot that a step on an idle host
// could use.
func (r *run) acquire(s *planner.Step) bool {
	select {
	case r.hostSem[s.Host] <- struct{}{}:
	case <-r.ctx.Done():
		return false
	}
	select {
	case r.sem <- struct{}{}:
		return true
	case <-r.ctx.Done():
		<-r.hostSem[s.Host]
		return false
	}
}

func (r *run) release(s *planner.Step) {
	<-r.hostSem[s.Host]
	<-r.sem
}

// stepContext is the context steps run in: it outlives a cancelled apply
// by the grace period, so steps in flight can finish cleanly.
func (r *run) stepContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.ctx))
	stop := context.AfterFunc(r.ctx, func() {
		t := time.AfterFunc(r.opts.Grace, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}

func (r *run) event(s *planner.Step, phase Phase, start time.Time, msg string) {
	now := time.Now()
	r.opts.OnEvent(Event{Time: now, StepID: s.ID, Action: s.Action, Address: s.Address, Host: s.Host,
		Phase: phase, Elapsed: now.Sub(start), Message: msg})
}

func (r *run) skip(s *planner.Step, cause string) {
	r.mu.Lock()
	r.status[s.ID] = skipped
	r.res.Skipped = append(r.res.Skipped, s.ID)
	r.mu.Unlock()
	r.opts.OnEvent(Event{Time: time.Now(), StepID: s.ID, Action: s.Action, Address: s.Address, Host: s.Host, Phase: Skipped, Err: cause})
}

func (r *run) fail(s *planner.Step, err error, start time.Time) {
	// A container's own output (a health check's) may quote a secret it
	// was given.
	err = r.secrets.redact(err)
	r.mu.Lock()
	r.status[s.ID] = failed
	r.res.Failed = append(r.res.Failed, s.ID)
	r.errs = multierror.Append(r.errs, fmt.Errorf("%s: %w", s.ID, err))
	r.mu.Unlock()
	now := time.Now()
	r.opts.OnEvent(Event{Time: now, StepID: s.ID, Action: s.Action, Address: s.Address, Host: s.Host,
		Phase: Failed, Elapsed: now.Sub(start), Err: err.Error()})
}

func (r *run) succeed(s *planner.Step, start time.Time) {
	r.mu.Lock()
	r.status[s.ID] = succeeded
	r.res.Done = append(r.res.Done, s.ID)
	r.res.Counts.Add(s.Action)
	r.mu.Unlock()
	r.event(s, Done, start, "")
}

// saveState bumps the serial and saves; called with r.mu held. A failed
// save stops the apply from starting further steps: what was created is
// still in memory and the caller reports the last good state. The serial
// goes back to the stored one, so that a step in flight whose save comes
// once the cause is gone (space freed) is written, not refused as a
// conflict with another writer.
func (r *run) saveState() error {
	r.st.Serial++
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), time.Minute)
	defer cancel()
	if err := r.opts.Save(ctx, r.st); err != nil {
		r.st.Serial--
		r.stopping = true
		if r.res.SaveErr == nil {
			r.res.SaveErr = err
		}
		return err
	}
	return nil
}

func (r *run) finish() {
	order := map[string]int{}
	for i, s := range r.plan.Steps {
		order[s.ID] = i
	}
	for _, ids := range [][]string{r.res.Done, r.res.Failed, r.res.Skipped} {
		sort.Slice(ids, func(i, j int) bool { return order[ids[i]] < order[ids[j]] })
	}
	r.res.Interrupted = r.ctx.Err() != nil
	if r.errs != nil {
		r.errs.ErrorFormat = listErrors
		r.res.Err = r.errs
	}
	if r.res.SaveErr != nil && r.res.Err == nil {
		r.res.Err = r.res.SaveErr
	}
}

func listErrors(errs []error) string {
	if len(errs) == 1 {
		return errs[0].Error()
	}
	s := fmt.Sprintf("%d steps failed:", len(errs))
	for _, e := range errs {
		s += "\n  * " + e.Error()
	}
	return s
}

// errNoEngine is returned for a step on a host that is not connected.
var errNoEngine = errors.New("not connected")
