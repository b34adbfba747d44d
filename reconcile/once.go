package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/state"
)

// ErrNoState is returned when there is no state: nothing was applied yet.
var ErrNoState = errors.New("there is no state: nothing was applied yet")

// Result is what one pass found and did.
type Result struct {
	// Serial is the state's serial when the pass began.
	Serial int64
	// Instances counts the instances the state records.
	Instances int
	// Running counts the instances found running and left alone.
	Running int
	// Actions are the repairs made, failed ones included, by address.
	Actions []Action
	// Unreachable are the hosts that did not answer; their instances were
	// left alone, by host name.
	Unreachable []HostError
	// Errors are the other failures: a listing, the lock, the state.
	Errors []error
}

// HostError is a host that could not be looked at.
type HostError struct {
	// Host is the host block's name.
	Host string
	// Instances counts the instances the state places there.
	Instances int
	// Err is why.
	Err error
}

// Repaired counts the repairs that worked.
func (r *Result) Repaired() int {
	n := 0
	for _, a := range r.Actions {
		if a.Err == nil {
			n++
		}
	}
	return n
}

// Failed counts the repairs that failed.
func (r *Result) Failed() int { return len(r.Actions) - r.Repaired() }

// OK reports whether every host answered and nothing failed.
func (r *Result) OK() bool {
	return len(r.Unreachable) == 0 && len(r.Errors) == 0 && r.Failed() == 0
}

// Once makes one pass: it lists every host's containers of the project
// and repairs every instance that is not running as the state records it.
// Hosts are looked at in parallel; repairs run one at a time, each under
// the state lock. A host that does not answer is reported in the Result
// and left alone. It fails only when the state cannot be read (ErrNoState
// when there is none).
func (r *Reconciler) Once(ctx context.Context) (*Result, error) {
	st, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, ErrNoState
	}
	res := &Result{Serial: st.Serial, Instances: len(st.Instances)}
	hosts, byHost := instancesByHost(st)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, host := range hosts {
		wg.Go(func() { r.onceHost(ctx, st, host, byHost[host], res, &mu) })
	}
	wg.Wait()
	sort.Slice(res.Actions, func(i, j int) bool { return res.Actions[i].Address < res.Actions[j].Address })
	sort.Slice(res.Unreachable, func(i, j int) bool { return res.Unreachable[i].Host < res.Unreachable[j].Host })
	return res, nil
}

// onceHost is one pass over one host's instances.
func (r *Reconciler) onceHost(ctx context.Context, st *state.State, host string, addrs []string, res *Result, mu *sync.Mutex) {
	unreachable := func(err error) {
		r.log.Warn("host unreachable; its instances are left alone", "host", host, "instances", len(addrs), "error", err.Error())
		r.setHostStatus(host, StatusUnknown)
		r.opts.Metrics.setHostUp(host, false)
		mu.Lock()
		res.Unreachable = append(res.Unreachable, HostError{Host: host, Instances: len(addrs), Err: err})
		mu.Unlock()
	}
	eng, err := r.engineFor(ctx, host)
	if err != nil {
		unreachable(err)
		return
	}
	findings, err := r.scanHost(ctx, eng, st, addrs)
	if err != nil {
		if errors.Is(err, engine.ErrUnreachable) {
			unreachable(err)
		} else {
			mu.Lock()
			res.Errors = append(res.Errors, fmt.Errorf("host %q: %w", host, err))
			mu.Unlock()
		}
		return
	}
	r.opts.Metrics.setHostUp(host, true)
	for _, addr := range addrs {
		f := findings[addr]
		if f.need == ActionNone {
			if f.status == StatusRunning {
				mu.Lock()
				res.Running++
				mu.Unlock()
			}
			continue
		}
		a, err := r.repair(ctx, trigger{addr: addr, cause: CauseResync, at: r.clock.Now()}, r.opts.LockTimeout)
		mu.Lock()
		switch {
		case err != nil:
			res.Errors = append(res.Errors, fmt.Errorf("%s: %w", addr, err))
		case a.Kind == ActionNone:
			res.Running++ // repaired or removed by someone else meanwhile
		default:
			a.Repairs = 1
			res.Actions = append(res.Actions, a)
		}
		mu.Unlock()
		if err == nil && a.Kind != ActionNone {
			r.report(a)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// scanHost lists the project's containers on one host in one call and
// judges each of the host's instances (addrs) from that listing. Running
// instances that declare a health check are inspected too, since a listing
// does not say how healthy a container is.
func (r *Reconciler) scanHost(ctx context.Context, eng engine.Engine, st *state.State, addrs []string) (map[string]finding, error) {
	list, err := eng.ListContainers(ctx, engine.ListOptions{All: true, Labels: map[string]string{LabelProject: st.Project}})
	if err != nil {
		return nil, err
	}
	byID := map[string]engine.ContainerSummary{}
	byName := map[string]engine.ContainerSummary{}
	for _, s := range list {
		byID[s.ID], byName[s.Name] = s, s
	}
	out := make(map[string]finding, len(addrs))
	for _, addr := range addrs {
		inst := st.Instances[addr]
		s, ok := byID[inst.ContainerID]
		if !ok {
			s, ok = byName[inst.Name]
		}
		status, need := judge(inst, ok, s.State, engine.HealthNone)
		if status == StatusRunning && declaresHealthcheck(inst) {
			c, err := eng.InspectContainer(ctx, s.ID)
			switch {
			case errors.Is(err, engine.ErrNotFound):
				status, need = judge(inst, false, 0, 0)
			case err != nil:
				return nil, err
			default:
				status, need = judge(inst, true, c.State, c.Health)
			}
		}
		out[addr] = finding{status: status, need: need, containerID: s.ID}
		r.setStatus(addr, status)
	}
	return out, nil
}
