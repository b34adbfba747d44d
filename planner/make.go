package planner

import (
	"fmt"
	"sort"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/state"
)

// Options tune a plan.
type Options struct {
	// Refreshed is false when the snapshot was built from the state
	// (OfflineSnapshot) instead of asking the hosts.
	Refreshed bool
	// Destroy plans the deletion of every instance the state records and
	// every container of the project on the hosts; the configuration only
	// gives the hosts and the dependency order.
	Destroy bool
	// Lost names hosts that have been unreachable for longer than the
	// operator allows (reconcile's --reschedule-after): the instances
	// recorded there are moved to hosts that answer, and their old
	// containers are left for whoever sees the host again to remove.
	Lost map[string]bool
}

// decision is what the plan does with one desired instance.
type decision struct {
	inst *hclspec.Instance
	ct   *hclspec.Container
	cur  *current
	// host is where the instance will be.
	host string
	// place: the instance needs a host (new, moved, or its host refused it).
	place bool
	note  *PlacementNote
	step  *Step
}

// planning holds one Make call's work.
type planning struct {
	cfg       *hclspec.Config
	snap      *probe.Snapshot
	st        *state.State
	opts      Options
	hosts     map[string]*hostState
	hostOrder []*hostState
	world     *World
	decisions map[string]*decision
	order     []*decision
	plan      *Plan
	// dupDeletes maps an instance address to the delete steps of duplicate
	// containers claiming it.
	dupDeletes map[string][]string
}

// Make computes the plan that takes the hosts from what snap and st say
// they have to what cfg declares. It is a pure function: same inputs, same
// plan. It fails with *PlaceError when an instance fits on no host.
func Make(cfg *hclspec.Config, snap *probe.Snapshot, st *state.State, opts Options) (*Plan, error) {
	if st == nil {
		st = state.New(cfg.Project, "")
	}
	p := &planning{cfg: cfg, snap: snap, st: st, opts: opts, hosts: map[string]*hostState{},
		world: NewWorld(), decisions: map[string]*decision{}, dupDeletes: map[string][]string{}}
	p.plan = &Plan{FormatVersion: PlanFormatVersion, Project: cfg.Project, Refreshed: opts.Refreshed,
		StateLineage: st.Lineage, StateSerial: st.Serial, Steps: []*Step{}, Warnings: []string{}}
	for _, h := range cfg.Hosts {
		hs := newHostState(h, snap.Host(h.Name), opts.Refreshed)
		p.hosts[h.Name] = hs
		p.hostOrder = append(p.hostOrder, hs)
		if hf := snap.Host(h.Name); hf != nil {
			p.world.HostAddress[h.Name] = hf.ReachAddress
			if !hf.Reachable && opts.Lost[h.Name] {
				p.warn(fmt.Sprintf("Host %s has been unreachable too long: its instances are moved to other hosts (%s).", h.Name, hf.Error))
			} else if !hf.Reachable {
				p.warn(fmt.Sprintf("Host %s is unreachable: nothing is placed there and its instances are not checked (%s).", h.Name, hf.Error))
			}
		}
		if p.world.HostAddress[h.Name] == "" {
			p.world.HostAddress[h.Name] = h.PublicAddress
		}
	}
	curs, left := gather(cfg, snap, st, opts.Destroy)
	p.releaseLeftovers(left)
	p.decideHosts(curs)
	if err := p.placeAll(); err != nil {
		return nil, err
	}
	if err := p.decideActions(); err != nil {
		return nil, err
	}
	p.deleteLeftovers(left)
	p.addPulls()
	if err := p.orderSteps(); err != nil {
		return nil, err
	}
	p.finish()
	return p.plan, nil
}

func (p *planning) warn(msg string) { p.plan.Warnings = append(p.plan.Warnings, msg) }

// releaseLeftovers frees what containers that will be deleted hold.
func (p *planning) releaseLeftovers(left []leftover) {
	for _, l := range left {
		if hs := p.hosts[l.cur.host]; hs != nil && l.cur.exists() {
			hs.release(l.cur.found.Name, l.cur.allocated())
		}
	}
}

// decideHosts keeps every existing instance where it may stay (its host
// is declared and reachable, its placement rules allow it, it still fits)
// and marks the others for placement. Existing instances are visited in
// address order so the result does not depend on map order.
func (p *planning) decideHosts(curs map[string]*current) {
	for _, ct := range p.cfg.Containers {
		for _, inst := range ct.Instances {
			if p.opts.Destroy {
				break
			}
			d := &decision{inst: inst, ct: ct, cur: curs[inst.Address]}
			p.decisions[inst.Address] = d
			p.order = append(p.order, d)
		}
	}
	for _, d := range p.order {
		c := d.cur
		switch {
		case c == nil:
			d.place = true
		case c.hostKnown && !c.reachable && p.opts.Lost[c.host]:
			d.place = true
		case c.hostKnown && !c.reachable:
			d.host = c.host // cannot be checked; left where it is
		default:
			p.keepOrMove(d)
		}
	}
}

func (p *planning) keepOrMove(d *decision) {
	c := d.cur
	hs := p.hosts[c.host]
	if hs != nil && c.exists() {
		hs.release(c.found.Name, c.allocated())
	}
	if hs == nil || len(rulesReasons(hs, d.ct)) > 0 || len(fitReasons(hs, d.inst, d.ct, true)) > 0 {
		d.place = true
		return
	}
	d.host = c.host
	hs.take(d.inst, requestOf(d.inst))
}

// placeAll places every instance that needs a host, largest request first,
// then by address.
func (p *planning) placeAll() error {
	var todo []*decision
	for _, d := range p.order {
		if d.place {
			todo = append(todo, d)
		}
	}
	sort.SliceStable(todo, func(i, j int) bool {
		a, b := requestOf(todo[i].inst), requestOf(todo[j].inst)
		if a.MemoryBytes != b.MemoryBytes {
			return a.MemoryBytes > b.MemoryBytes
		}
		if a.MilliCPU != b.MilliCPU {
			return a.MilliCPU > b.MilliCPU
		}
		return todo[i].inst.Address < todo[j].inst.Address
	})
	var failures []PlaceFailure
	for len(todo) > 0 {
		n := batchLen(todo)
		failures = append(failures, p.placeBatch(todo[:n])...)
		todo = todo[n:]
	}
	if len(failures) > 0 {
		sort.Slice(failures, func(i, j int) bool { return failures[i].Address < failures[j].Address })
		return &PlaceError{Failures: failures}
	}
	return nil
}
