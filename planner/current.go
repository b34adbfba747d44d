package planner

import (
	"fmt"
	"sort"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/state"
)

// current is what exists of one instance: what the state records and what
// its host really has.
type current struct {
	addr string
	// host is where the container is (or the state says it was).
	host string
	// hostKnown: host is declared in the configuration.
	hostKnown bool
	// reachable: the host answered the probe.
	reachable bool
	// stateInst is the state's record; nil when the state does not know
	// the container (it was found by its labels).
	stateInst *state.Instance
	// found is the container on the host; nil when the host lacks it.
	found *probe.ManagedContainer
}

// exists reports whether the container is known to be on its host.
func (c *current) exists() bool { return c.found != nil }

func (c *current) running() bool {
	return c.found != nil && (c.found.State == "running" || c.found.State == "restarting" || c.found.State == "paused")
}

func (c *current) id() string {
	if c.found != nil {
		return c.found.ID
	}
	if c.stateInst != nil {
		return c.stateInst.ContainerID
	}
	return ""
}

func (c *current) hash() string {
	if c.found != nil && c.found.ConfigHash != "" {
		return c.found.ConfigHash
	}
	if c.stateInst != nil {
		return c.stateInst.ConfigHash
	}
	return ""
}

// allocated is what the container holds on its host now: its limits when
// it runs, nothing otherwise.
func (c *current) allocated() Resources {
	if !c.running() {
		return Resources{}
	}
	return Resources{MilliCPU: c.found.Resources.MilliCPU, MemoryBytes: c.found.Resources.MemoryBytes}
}

// leftover is a container or state record that no instance of the
// configuration claims: it is deleted.
type leftover struct {
	cur    *current
	reason string
}

// gather matches the state's records and the project's containers on every
// reachable host to the configuration's instances. It returns the current
// of each desired address, and the leftovers (orphans, duplicates, records
// of instances no longer declared), both in a deterministic order.
func gather(cfg *hclspec.Config, snap *probe.Snapshot, st *state.State, destroy bool) (map[string]*current, []leftover) {
	desired := desiredAddresses(cfg, destroy)
	curs := map[string]*current{}
	claimed := map[string]bool{} // container IDs
	var left []leftover
	for _, addr := range st.Addresses() {
		si := st.Instances[addr]
		c := &current{addr: addr, host: si.Host, stateInst: si}
		if hf := snap.Host(si.Host); hf != nil {
			c.hostKnown, c.reachable = true, hf.Reachable
			c.found = findManaged(hf, si)
		}
		if c.found != nil {
			claimed[c.found.ID] = true
		}
		if desired(addr) {
			curs[addr] = c
		} else {
			left = append(left, leftover{cur: c, reason: leftReason(destroy)})
		}
	}
	for _, hf := range snap.Hosts {
		if !hf.Reachable {
			continue
		}
		for i := range hf.Managed {
			m := &hf.Managed[i]
			if claimed[m.ID] {
				continue
			}
			addr := managedAddress(cfg, m)
			c := &current{addr: addr, host: hf.Name, hostKnown: true, reachable: true, found: m}
			switch {
			case destroy:
				left = append(left, leftover{cur: c, reason: leftReason(destroy)})
			case addr == "" || !desired(addr):
				left = append(left, leftover{cur: c, reason: "an orphan: no configuration declares it"})
			case curs[addr] != nil:
				left = append(left, leftover{cur: c, reason: fmt.Sprintf("a duplicate of %s", addr)})
			default:
				curs[addr] = c
			}
		}
	}
	sort.SliceStable(left, func(i, j int) bool {
		a, b := left[i].cur, left[j].cur
		if a.host != b.host {
			return a.host < b.host
		}
		return nameOf(a) < nameOf(b)
	})
	return curs, left
}

// desiredAddresses reports whether the plan keeps an address. The set is
// built on first use: a first plan has nothing to match.
func desiredAddresses(cfg *hclspec.Config, destroy bool) func(addr string) bool {
	var desired map[string]bool
	return func(addr string) bool {
		if desired == nil {
			desired = map[string]bool{}
			for _, ct := range cfg.Containers {
				for _, inst := range ct.Instances {
					desired[inst.Address] = !destroy
				}
			}
		}
		return desired[addr]
	}
}

func leftReason(destroy bool) string {
	if destroy {
		return "destroyed"
	}
	return "no longer in the configuration"
}

func nameOf(c *current) string {
	if c.found != nil {
		return c.found.Name
	}
	return c.stateInst.Name
}

// findManaged finds the state's container on its host: by ID, or by name
// when it was re-created under the same name (its ID then differs).
func findManaged(hf *probe.HostFacts, si *state.Instance) *probe.ManagedContainer {
	for i := range hf.Managed {
		if hf.Managed[i].ID == si.ContainerID {
			return &hf.Managed[i]
		}
	}
	for i := range hf.Managed {
		if hf.Managed[i].Name == si.Name {
			return &hf.Managed[i]
		}
	}
	return nil
}

// managedAddress is the instance address a container's labels claim, or ""
// when they name no declared container.
func managedAddress(cfg *hclspec.Config, m *probe.ManagedContainer) string {
	ct := cfg.Container(m.Container)
	if ct == nil || m.Index < 0 {
		return ""
	}
	if !ct.Counted {
		if m.Index != 0 {
			return ""
		}
		return ct.Name
	}
	return fmt.Sprintf("%s[%d]", ct.Name, m.Index)
}

// PortsOf returns the host ports a container publishes, by port key
// ("8080", "53/udp"), as World.Ports holds them.
func PortsOf(bindings []engine.PortBinding) map[string]int {
	out := map[string]int{}
	for _, p := range bindings {
		if p.HostPort == 0 {
			continue
		}
		key := fmt.Sprint(p.ContainerPort)
		if p.Protocol == "udp" {
			key += "/udp"
		}
		out[key] = p.HostPort
	}
	return out
}
