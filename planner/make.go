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
	// Replace names instances to re-create although nothing changed (the
	// -replace flag): a process in a bad state, an image tag that moved.
	Replace map[string]bool
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
	spreads   map[*hclspec.Container]*spread
	// heapItems is placeBatch's heap array, kept for the next batch.
	heapItems []scored
	// hostFacts and containers look up snap's hosts and cfg's containers
	// by name (the first of a name, as snap.Host and cfg.Container do)
	// without a scan per instance.
	hostFacts  map[string]*probe.HostFacts
	containers map[string]*hclspec.Container
	world      *World
	// order holds a decision for every instance, in configuration order;
	// a container's start there is firstDecision.
	order         []*decision
	firstDecision map[*hclspec.Container]int
	// desired holds every address in order, built on first use.
	desired map[string]bool
	plan    *Plan
	// steps and notes hold the plan's instance steps and placement notes.
	steps slab[Step]
	notes slab[PlacementNote]
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
		hostFacts: map[string]*probe.HostFacts{}, containers: map[string]*hclspec.Container{},
		spreads: map[*hclspec.Container]*spread{}, world: NewWorld(), firstDecision: map[*hclspec.Container]int{}, dupDeletes: map[string][]string{}}
	p.plan = &Plan{FormatVersion: PlanFormatVersion, Project: cfg.Project, Refreshed: opts.Refreshed,
		StateLineage: st.Lineage, StateSerial: st.Serial, Steps: []*Step{}, Warnings: []string{}}
	for _, hf := range snap.Hosts {
		if p.hostFacts[hf.Name] == nil {
			p.hostFacts[hf.Name] = hf
		}
	}
	for _, ct := range cfg.Containers {
		if p.containers[ct.Name] == nil {
			p.containers[ct.Name] = ct
		}
	}
	for _, h := range cfg.Hosts {
		hs := newHostState(h, p.hostFacts[h.Name], opts.Refreshed)
		hs.order = len(p.hostOrder)
		p.hosts[h.Name] = hs
		p.hostOrder = append(p.hostOrder, hs)
		if hf := p.hostFacts[h.Name]; hf != nil {
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
	// Nothing below reads the decisions or the world: let them go before
	// ordering allocates its own tables (a million decisions are 70 MB).
	p.order, p.firstDecision, p.desired, p.world = nil, nil, nil, nil
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
	if !p.opts.Destroy {
		n := 0
		for _, ct := range p.cfg.Containers {
			n += len(ct.Instances)
		}
		var decisions slab[decision]
		p.order = make([]*decision, 0, n)
		for _, ct := range p.cfg.Containers {
			if _, ok := p.firstDecision[ct]; !ok {
				p.firstDecision[ct] = len(p.order)
			}
			for _, inst := range ct.Instances {
				d := decisions.new()
				d.inst, d.ct, d.cur = inst, ct, curs[inst.Address]
				p.order = append(p.order, d)
			}
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
	sp := p.spreadOf(d.ct)
	if hs == nil || len(rulesReasons(hs, d.ct)) > 0 || len(fitReasons(hs, d.inst, d.ct, sp, true)) > 0 {
		d.place = true
		return
	}
	d.host = c.host
	hs.take(d.inst, d.ct, sp)
}

// spreadOf returns where ct's instances are so far.
func (p *planning) spreadOf(ct *hclspec.Container) *spread {
	sp := p.spreads[ct]
	if sp == nil {
		sp = newSpread()
		p.spreads[ct] = sp
	}
	return sp
}

// isDesired reports whether the configuration declares the address (and
// the plan does not destroy it).
func (p *planning) isDesired(addr string) bool {
	if p.desired == nil {
		p.desired = make(map[string]bool, len(p.order))
		for _, d := range p.order {
			p.desired[d.inst.Address] = true
		}
	}
	return p.desired[addr]
}

// placeAll places every instance that needs a host, largest request first,
// then by address.
func (p *planning) placeAll() error {
	todo := make([]*decision, 0, len(p.order))
	for _, d := range p.order {
		if d.place {
			todo = append(todo, d)
		}
	}
	sortByRequest(todo)
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
