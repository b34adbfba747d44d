package planner

import (
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/state"
)

// OfflineSnapshot builds a Snapshot from the configuration and the state
// alone, for -refresh=false: every host counts as reachable with the
// capacity its host block declares (zero without a capacity block: such a
// host receives no new instance), the allocations the state records, and
// the state's containers as running with their recorded config hash.
func OfflineSnapshot(cfg *hclspec.Config, st *state.State) *probe.Snapshot {
	snap := &probe.Snapshot{FormatVersion: probe.FormatVersion, Project: cfg.Project}
	for _, h := range cfg.Hosts {
		hf := &probe.HostFacts{Name: h.Name, Address: h.Address, Reachable: true, ReachAddress: h.PublicAddress,
			Labels: h.Labels, Managed: []probe.ManagedContainer{}, Images: map[string]probe.ImageFacts{}, UsedPorts: []probe.UsedPort{}}
		if h.Capacity != nil {
			hf.Total = probe.Resources{MilliCPU: h.Capacity.MilliCPU, MemoryBytes: h.Capacity.MemoryBytes}
			hf.Reserved = probe.Resources{MilliCPU: h.Reserve.MilliCPU, MemoryBytes: h.Reserve.MemoryBytes}
			hf.Capacity = hf.Total.Sub(hf.Reserved)
		}
		snap.Hosts = append(snap.Hosts, hf)
	}
	if st == nil {
		return snap
	}
	for _, addr := range st.Addresses() {
		si := st.Instances[addr]
		hf := snap.Host(si.Host)
		if hf == nil {
			continue
		}
		res := probe.Resources{MilliCPU: si.Spec.Resources.MilliCPUs(), MemoryBytes: si.Spec.Resources.MemoryBytes()}
		if hf.ReachAddress == "" {
			hf.ReachAddress = si.HostAddress
		}
		hf.Allocated.MilliCPU += res.MilliCPU
		hf.Allocated.MemoryBytes += res.MemoryBytes
		hf.Managed = append(hf.Managed, probe.ManagedContainer{
			ID: si.ContainerID, Name: si.Name, Container: si.Container, Index: si.Index, ConfigHash: si.ConfigHash,
			State: "running", Health: "none", Image: si.Spec.Image, ImageID: si.ImageID, Ports: si.Ports, Resources: res,
		})
		for _, p := range si.Ports {
			hf.UsedPorts = append(hf.UsedPorts, probe.UsedPort{HostIP: p.HostIP, HostPort: p.HostPort, Protocol: p.Protocol, Container: si.Name})
		}
	}
	for _, hf := range snap.Hosts {
		hf.Free = hf.Capacity.Sub(hf.Allocated)
	}
	return snap
}
