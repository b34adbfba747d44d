package planner

import (
	"fmt"
	"strings"

	"github.com/dockplan/dockplan/hclspec"
)

// containerOrder returns the containers so that each comes after the ones
// it depends on; ties keep declaration order.
func containerOrder(cfg *hclspec.Config) ([]*hclspec.Container, error) {
	done := map[string]int{} // 0 new, 1 visiting, 2 done
	var out []*hclspec.Container
	var visit func(c *hclspec.Container, path []string) error
	visit = func(c *hclspec.Container, path []string) error {
		switch done[c.Name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("dependency cycle: %s", strings.Join(append(path, c.Name), " → "))
		}
		done[c.Name] = 1
		for _, dep := range c.Deps {
			if dc := cfg.Container(dep); dc != nil {
				if err := visit(dc, append(path, c.Name)); err != nil {
					return err
				}
			}
		}
		done[c.Name] = 2
		out = append(out, c)
		return nil
	}
	for _, c := range cfg.Containers {
		if err := visit(c, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decideActions resolves every instance's configuration, dependencies
// first, and decides its action. A dependency that gets a new container
// with a port Docker picks has an address known only after apply; its
// dependents then see unknown values and are replaced, as they must be.
func (p *planning) decideActions() error {
	linked := p.linkedContainers()
	for _, d := range p.order {
		if !linked[d.ct.Name] {
			continue // no Resolve reads where it is
		}
		p.world.Placed[d.inst.Address] = d.host
		switch c := d.cur; {
		case c == nil || d.place:
		case c.exists():
			p.world.Ports[d.inst.Address] = PortsOf(c.found.Ports)
		case c.hostKnown && !c.reachable && c.stateInst != nil:
			// Left on a host that did not answer: its ports are the ones
			// the state recorded, so its linkers keep their values.
			p.world.Ports[d.inst.Address] = PortsOf(c.stateInst.Ports)
		}
	}
	if p.opts.Destroy {
		return nil
	}
	order, err := containerOrder(p.cfg)
	if err != nil {
		return err
	}
	for _, ct := range order {
		ir := newInstanceResolver(p.cfg, ct, p.world)
		first := p.firstDecision[ct]
		for i, inst := range ct.Instances {
			d := p.order[first+i]
			r, err := ir.resolve(inst)
			if err != nil {
				return err
			}
			p.decide(d, r)
			if d.step != nil && (d.step.Action == Create || d.step.Action == Replace || d.step.Action == Move) {
				delete(p.world.Ports, inst.Address) // only fixed ports are known
			}
		}
	}
	return nil
}

// linkedContainers names the containers whose instances' hosts and ports
// Resolve reads: link targets, and the containers deferred attributes
// refer to. The world holds only their instances.
func (p *planning) linkedContainers() map[string]bool {
	linked := map[string]bool{}
	for _, ct := range p.cfg.Containers {
		for _, l := range ct.Links {
			linked[l.Target] = true
		}
		for _, inst := range ct.Instances {
			for _, d := range deferredOf(inst) {
				for _, name := range d.Refs {
					linked[name] = true
				}
			}
		}
	}
	return linked
}

func (p *planning) newStep(d *decision, a Action, reason string) *Step {
	s := p.steps.new()
	*s = Step{
		ID: a.String() + " " + d.inst.Address, Action: a, Address: d.inst.Address,
		Container: d.ct.Name, Index: d.inst.Index, Host: d.host, Name: d.inst.Name,
		Reason: reason, Resources: requestOf(d.inst), DependsOn: []string{},
	}
	if d.cur != nil {
		s.OldContainerID = d.cur.id()
	}
	d.step = s
	p.plan.Steps = append(p.plan.Steps, s)
	return s
}

// decide picks one instance's action from what exists and what is wanted.
func (p *planning) decide(d *decision, r *resolvedAttrs) {
	c := d.cur
	switch {
	case c != nil && c.hostKnown && !c.reachable && p.opts.Lost[c.host]:
		s := p.newStep(d, Move, fmt.Sprintf("host %s has been unreachable too long; its old container is removed when the host answers again", c.host))
		s.FromHost = c.host
		s.OldContainerID = "" // the lost host cannot be asked to remove it
		p.created(d, s, r)
		s.Changes = append([]AttrChange{{Path: "host", Before: strp(c.host), After: strp(d.host), ForcesReplacement: true}}, diffAttrs(oldAttrs(c), r.attrs, true)...)
	case c != nil && c.hostKnown && !c.reachable:
		return
	case c == nil:
		s := p.newStep(d, Create, "new instance")
		p.created(d, s, r)
	case !c.hostKnown || (d.place && c.exists()):
		s := p.newStep(d, Move, p.moveReason(d))
		s.FromHost = c.host
		s.CreateBeforeDestroy = true
		if !c.hostKnown {
			s.OldContainerID = ""
			p.warn(fmt.Sprintf("%s was on host %s, which is no longer in the configuration: the old container there is left alone.", d.inst.Address, c.host))
		}
		p.created(d, s, r)
		s.Changes = append([]AttrChange{{Path: "host", Before: strp(c.host), After: strp(d.host), ForcesReplacement: true}}, diffAttrs(oldAttrs(c), r.attrs, true)...)
	case !c.exists():
		s := p.newStep(d, Create, fmt.Sprintf("was removed from %s outside dockplan; re-created", c.host))
		s.Drifted = true
		s.OldContainerID = ""
		p.created(d, s, r)
	default:
		p.decideExisting(d, r)
	}
}

func (p *planning) moveReason(d *decision) string {
	c := d.cur
	hs := p.hosts[c.host]
	switch {
	case !c.hostKnown:
		return fmt.Sprintf("host %s is gone from the configuration", c.host)
	case len(rulesReasons(hs, d.ct)) > 0:
		return fmt.Sprintf("placement rules no longer allow %s: %s", c.host, strings.Join(rulesReasons(hs, d.ct), ", "))
	default:
		return fmt.Sprintf("no longer fits on %s", c.host)
	}
}

// created fills what every step that makes a new container carries.
func (p *planning) created(d *decision, s *Step, r *resolvedAttrs) {
	s.Image = d.inst.Image
	s.Placement = d.note
	if s.Action == Create {
		s.Changes = r.createChanges()
	}
}

// decideExisting compares an existing container with its configuration:
// replace when a field that needs a re-create changed (by config hash),
// update when only limits or the restart policy did, start when stopped,
// adopt when the state did not know it, nothing otherwise.
func (p *planning) decideExisting(d *decision, r *resolvedAttrs) {
	c := d.cur
	old := oldAttrs(c)
	if !r.known || r.hash != c.hash() {
		s := p.newStep(d, Replace, "")
		s.Image = d.inst.Image
		s.Changes = diffAttrs(old, r.attrs, true)
		s.ForcedBy = forcedBy(s.Changes, old == nil)
		s.Reason = "forces replacement: " + strings.Join(s.ForcedBy, ", ")
		s.CreateBeforeDestroy = !hasFixedPort(d.inst)
		return
	}
	if p.opts.Replace[d.inst.Address] {
		s := p.newStep(d, Replace, "replaced on request (-replace), though its configuration did not change")
		s.Image = d.inst.Image
		s.CreateBeforeDestroy = !hasFixedPort(d.inst)
		return
	}
	var changes []AttrChange
	if old != nil {
		changes = diffAttrs(old, r.attrs, false)
	} else if cpu, mem := c.found.Resources.MilliCPU, c.found.Resources.MemoryBytes; c.running() && (cpu != requestOf(d.inst).MilliCPU || mem != requestOf(d.inst).MemoryBytes) {
		// Limits are known only for running containers (the probe inspects
		// those); a stopped one the state does not know is started below.
		changes = []AttrChange{{Path: "resources", Before: strp(fmt.Sprintf("cpu %s, memory %s", hclspec.FormatMilliCPU(cpu), hclspec.FormatBytes(mem))),
			After: strp(fmt.Sprintf("cpu %s, memory %s", hclspec.FormatMilliCPU(d.inst.Resources.MilliCPU), hclspec.FormatBytes(d.inst.Resources.MemoryBytes)))}}
	}
	switch {
	case len(changes) > 0:
		s := p.newStep(d, Update, "limits or restart policy changed; updated in place")
		s.Changes = changes
		if !c.running() {
			s.Reason += ", then started"
		}
	case !c.running():
		p.newStep(d, Start, fmt.Sprintf("is %s; started", c.found.State)).Drifted = c.stateInst != nil
	case c.stateInst == nil:
		p.newStep(d, Adopt, "found by its labels and matches the configuration; recorded in the state")
	}
}

func hasFixedPort(inst *hclspec.Instance) bool {
	for _, p := range inst.Ports {
		if p.HostPort > 0 {
			return true
		}
	}
	return false
}

// oldAttrs flattens the configuration the state recorded for an existing
// container; nil when the state has none.
func oldAttrs(c *current) []Attr {
	if c == nil || c.stateInst == nil {
		return nil
	}
	sensitive := map[string]bool{}
	for _, path := range c.stateInst.Sensitive {
		sensitive[path] = true
	}
	return Flatten(c.stateInst.Spec, nil, sensitive)
}

// diffAttrs lists the attributes that differ between before and after
// (every after attribute when before is nil). replace says whether
// changed re-create fields force replacement.
func diffAttrs(before, after []Attr, replace bool) []AttrChange {
	old := map[string]Attr{}
	for _, a := range before {
		old[a.Path] = a
	}
	var out []AttrChange
	seen := map[string]bool{}
	for _, a := range after {
		seen[a.Path] = true
		o, had := old[a.Path]
		if before != nil && had && !a.Unknown && o.Value == a.Value {
			continue
		}
		ch := AttrChange{Path: a.Path, Sensitive: a.Sensitive || o.Sensitive, AfterUnknown: a.Unknown,
			ForcesReplacement: replace && a.Replace && before != nil}
		if had && !ch.Sensitive {
			ch.Before = strp(o.Value)
		}
		if !a.Unknown && !ch.Sensitive {
			ch.After = strp(a.Value)
		}
		out = append(out, ch)
	}
	for _, o := range before {
		if !seen[o.Path] {
			ch := AttrChange{Path: o.Path, Sensitive: o.Sensitive, ForcesReplacement: replace && o.Replace}
			if !o.Sensitive {
				ch.Before = strp(o.Value)
			}
			out = append(out, ch)
		}
	}
	sortChanges(out)
	return out
}

// forcedBy names the fields that force a replacement.
func forcedBy(changes []AttrChange, noRecord bool) []string {
	var out []string
	for _, ch := range changes {
		if ch.ForcesReplacement {
			out = append(out, ch.Path)
		}
	}
	if len(out) == 0 && noRecord {
		out = []string{"config-hash (the container was created from another configuration, and the state has no record of it)"}
	}
	if len(out) == 0 {
		out = []string{"config-hash (the container's label no longer matches its recorded configuration)"}
	}
	return out
}

func strp(s string) *string { return &s }

// deleteLeftovers plans the removal of orphans, duplicates and instances
// no longer declared; a state record whose container is already gone is
// only forgotten.
func (p *planning) deleteLeftovers(left []leftover) {
	// The state's record of an instance no longer declared and a duplicate
	// of it on the same host would both be "delete ADDR HOST": the
	// duplicate, found second (records come first), goes by its name.
	recorded := map[string]bool{}
	for _, l := range left {
		if l.cur.stateInst != nil {
			recorded[l.cur.addr+" "+l.cur.host] = true
		}
	}
	for _, l := range left {
		c := l.cur
		if c.hostKnown && !c.reachable {
			p.warn(fmt.Sprintf("%s on unreachable host %s is %s, but cannot be removed now.", c.addr, c.host, l.reason))
			continue
		}
		addr := c.addr
		if addr == "" || (c.stateInst == nil && (p.isDesired(addr) || recorded[addr+" "+c.host])) {
			addr = nameOf(c)
		}
		s := &Step{ID: "delete " + addr + " " + c.host, Action: Delete, Address: addr, Host: c.host, FromHost: c.host,
			Name: nameOf(c), OldContainerID: c.id(), Reason: "is " + l.reason, DependsOn: []string{}}
		if c.found != nil {
			s.Container, s.Index, s.Image = c.found.Container, c.found.Index, c.found.Image
			s.Changes = []AttrChange{{Path: "image", Before: strp(c.found.Image)}}
		} else if c.stateInst != nil {
			s.Container, s.Index, s.Image = c.stateInst.Container, c.stateInst.Index, c.stateInst.Spec.Image
			s.Drifted = true
			s.Reason += "; its container is already gone, so it is only forgotten"
		}
		if !c.hostKnown {
			s.Reason += fmt.Sprintf("; host %s is no longer in the configuration, so the container there is left alone and only forgotten", c.host)
			s.OldContainerID = ""
		}
		if c.addr != "" && c.addr != addr {
			p.dupDeletes[c.addr] = append(p.dupDeletes[c.addr], s.ID)
		}
		p.plan.Steps = append(p.plan.Steps, s)
	}
}
