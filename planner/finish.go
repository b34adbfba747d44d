package planner

import (
	"fmt"
	"sort"

	"github.com/dockplan/dockplan/probe"
)

// finish counts the steps and records each host's capacity before and
// after, and its fingerprint.
func (p *planning) finish() {
	for _, s := range p.plan.Steps {
		p.plan.Summary.Add(s.Action)
	}
	p.plan.Hosts = []*HostPlan{}
	for _, hs := range p.hostOrder {
		hp := &HostPlan{Name: hs.name, Reachable: hs.reachable, Capacity: hs.capacity, Before: hs.before, After: hs.allocated}
		if !hs.reachable {
			hp.After = hp.Before
		}
		hp.Fingerprint = Fingerprint(p.hostFacts[hs.name])
		p.plan.Hosts = append(p.plan.Hosts, hp)
	}
}

// Fingerprint is what a saved plan remembers of a host: its capacity and
// the project's containers on it.
func Fingerprint(hf *probe.HostFacts) HostFingerprint {
	fp := HostFingerprint{Containers: []FingerprintContainer{}}
	if hf == nil || !hf.Reachable {
		return fp
	}
	fp.Capacity = Resources{MilliCPU: hf.Capacity.MilliCPU, MemoryBytes: hf.Capacity.MemoryBytes}
	for _, m := range hf.Managed {
		fp.Containers = append(fp.Containers, FingerprintContainer{Name: m.Name, ID: m.ID, ConfigHash: m.ConfigHash, State: m.State})
	}
	sort.Slice(fp.Containers, func(i, j int) bool { return fp.Containers[i].Name < fp.Containers[j].Name })
	return fp
}

// Staleness lists what changed since a plan was made: the state's lineage
// or serial, and on every host the plan saw, its capacity and the
// project's containers. An empty list means the plan still applies.
func Staleness(plan *Plan, lineage string, serial int64, snap *probe.Snapshot) []string {
	var out []string
	if plan.StateLineage != lineage && plan.StateLineage != "" {
		out = append(out, fmt.Sprintf("the state is another one (lineage %s, the plan was made from %s)", lineage, plan.StateLineage))
	}
	if plan.StateSerial != serial {
		out = append(out, fmt.Sprintf("state serial %d → %d (another apply ran since)", plan.StateSerial, serial))
	}
	for _, hp := range plan.Hosts {
		if !hp.Reachable || !plan.Refreshed {
			continue
		}
		hf := snap.Host(hp.Name)
		if hf == nil || !hf.Reachable {
			out = append(out, fmt.Sprintf("%s: no longer reachable", hp.Name))
			continue
		}
		out = append(out, hostChanges(hp.Name, hp.Fingerprint, Fingerprint(hf))...)
	}
	return out
}

func hostChanges(host string, was, now HostFingerprint) []string {
	var out []string
	if was.Capacity != now.Capacity {
		out = append(out, fmt.Sprintf("%s: capacity changed (cpu %d → %d millicores, memory %d → %d bytes)", host,
			was.Capacity.MilliCPU, now.Capacity.MilliCPU, was.Capacity.MemoryBytes, now.Capacity.MemoryBytes))
	}
	before := map[string]FingerprintContainer{}
	for _, c := range was.Containers {
		before[c.Name] = c
	}
	after := map[string]FingerprintContainer{}
	for _, c := range now.Containers {
		after[c.Name] = c
		b, ok := before[c.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: %s appeared outside this plan", host, c.Name))
		case b.ID != c.ID:
			out = append(out, fmt.Sprintf("%s: %s was re-created outside dockplan", host, c.Name))
		case b.ConfigHash != c.ConfigHash:
			out = append(out, fmt.Sprintf("%s: %s has another configuration", host, c.Name))
		case b.State != c.State:
			out = append(out, fmt.Sprintf("%s: %s is now %s (was %s)", host, c.Name, c.State, b.State))
		}
	}
	for _, c := range was.Containers {
		if _, ok := after[c.Name]; !ok {
			out = append(out, fmt.Sprintf("%s: %s was removed outside dockplan", host, c.Name))
		}
	}
	return out
}
