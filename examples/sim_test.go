package examples_test

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/state"
)

// simLineage is the lineage of every state the simulation builds, so that
// plans made from it are the same bytes on every run.
const simLineage = "00000000-0000-4000-8000-0000000000e1"

// hostFacts is one host of an in-memory Snapshot.
type hostFacts struct {
	total probe.Resources
	reach string
}

// snapshotOf builds the Snapshot a probe of the configuration's hosts would
// return: each host reachable with the given total (the host block's
// capacity override wins, as probe does) minus its reserve, nothing
// running, and every image of the configuration present.
func snapshotOf(cfg *hclspec.Config, facts map[string]hostFacts) *probe.Snapshot {
	snap := &probe.Snapshot{FormatVersion: probe.FormatVersion, Project: cfg.Project}
	for _, h := range cfg.Hosts {
		f := facts[h.Name]
		hf := &probe.HostFacts{Name: h.Name, Address: h.Address, Reachable: true, ReachAddress: f.reach,
			Labels: h.Labels, Total: f.total, Managed: []probe.ManagedContainer{},
			Images: map[string]probe.ImageFacts{}, UsedPorts: []probe.UsedPort{}}
		if h.Capacity != nil {
			hf.Total = probe.Resources{MilliCPU: h.Capacity.MilliCPU, MemoryBytes: h.Capacity.MemoryBytes}
		}
		hf.Reserved = probe.Resources{MilliCPU: h.Reserve.MilliCPU, MemoryBytes: h.Reserve.MemoryBytes}
		hf.Capacity = hf.Total.Sub(hf.Reserved)
		for _, inst := range cfg.Instances() {
			hf.Images[inst.Image] = probe.ImageFacts{Present: true, ID: imageID(inst.Image)}
		}
		snap.Hosts = append(snap.Hosts, hf)
	}
	recount(snap)
	return snap
}

func imageID(ref string) string { return "sha256:" + ref }

// recount recomputes each host's allocation, used ports and free capacity
// from its running managed containers (the simulation has no others).
func recount(snap *probe.Snapshot) {
	for _, hf := range snap.Hosts {
		hf.Allocated = probe.Resources{}
		hf.UsedPorts = []probe.UsedPort{}
		hf.Running, hf.AllContainers = 0, len(hf.Managed)
		sort.Slice(hf.Managed, func(i, j int) bool { return hf.Managed[i].Name < hf.Managed[j].Name })
		for _, m := range hf.Managed {
			if m.State != "running" {
				continue
			}
			hf.Running++
			hf.Allocated.MilliCPU += m.Resources.MilliCPU
			hf.Allocated.MemoryBytes += m.Resources.MemoryBytes
			for _, p := range m.Ports {
				hf.UsedPorts = append(hf.UsedPorts, probe.UsedPort{HostIP: p.HostIP, HostPort: p.HostPort, Protocol: p.Protocol, Container: m.Name})
			}
		}
		hf.Free = hf.Capacity.Sub(hf.Allocated)
	}
}

// sim carries plans out in memory, step by step in plan order, as the
// applier does on real engines: link values unknown at plan time are
// resolved from the containers made before, Docker's dynamic host ports
// are handed out from 32768 up and container IDs count up.
type sim struct {
	t        testing.TB
	cfg      *hclspec.Config
	snap     *probe.Snapshot
	st       *state.State
	nextPort int
	nextID   int
}

func newSim(t testing.TB, cfg *hclspec.Config, facts map[string]hostFacts) *sim {
	return &sim{t: t, cfg: cfg, snap: snapshotOf(cfg, facts), st: state.New(cfg.Project, simLineage), nextPort: 32768}
}

// plan makes the plan from the simulated hosts and state.
func (s *sim) plan() *planner.Plan {
	s.t.Helper()
	p, err := planner.Make(s.cfg, s.snap, s.st, planner.Options{Refreshed: true})
	if err != nil {
		s.t.Fatalf("plan: %v", err)
	}
	return p
}

// apply carries out every step of p; like the applier it bumps the state
// serial once per recorded step.
func (s *sim) apply(p *planner.Plan) {
	s.t.Helper()
	w := planner.NewWorld()
	for _, hf := range s.snap.Hosts {
		w.HostAddress[hf.Name] = hf.ReachAddress
	}
	for _, addr := range s.st.Addresses() {
		si := s.st.Instances[addr]
		w.Placed[addr] = si.Host
		w.Ports[addr] = portMap(si.Ports)
	}
	for _, step := range p.Steps {
		if step.Address != "" && step.Action != planner.Delete {
			w.Placed[step.Address] = step.Host
		}
	}
	for _, step := range p.Steps {
		s.step(step, w)
		recount(s.snap)
	}
}

func (s *sim) step(step *planner.Step, w *planner.World) {
	s.t.Helper()
	switch step.Action {
	case planner.Pull:
		s.snap.Host(step.Host).Images[step.Image] = probe.ImageFacts{Present: true, ID: imageID(step.Image)}
	case planner.Delete:
		s.remove(step.FromHost, step.OldContainerID)
		if si := s.st.Instances[step.Address]; si != nil && si.ContainerID == step.OldContainerID {
			delete(s.st.Instances, step.Address)
			delete(w.Ports, step.Address)
			s.st.Serial++
		}
	case planner.Create, planner.Replace, planner.Move:
		if step.OldContainerID != "" {
			from := step.FromHost
			if from == "" {
				from = step.Host
			}
			s.remove(from, step.OldContainerID)
		}
		s.create(step, w)
	default:
		s.t.Fatalf("the simulation does not carry out %s steps (%s)", step.Action, step.ID)
	}
}

func (s *sim) instance(addr string) *hclspec.Instance {
	s.t.Helper()
	for _, inst := range s.cfg.Instances() {
		if inst.Address == addr {
			return inst
		}
	}
	s.t.Fatalf("no instance %s", addr)
	return nil
}

func (s *sim) create(step *planner.Step, w *planner.World) {
	s.t.Helper()
	inst := s.instance(step.Address)
	r, err := planner.Resolve(s.cfg, inst, w)
	if err != nil || !r.Known {
		s.t.Fatalf("%s: resolve at apply: known=%v err=%v", step.ID, r != nil && r.Known, err)
	}
	s.nextID++
	m := probe.ManagedContainer{ID: fmt.Sprintf("c0ffee%06d", s.nextID), Name: inst.Name, Container: inst.Container,
		Index: inst.Index, ConfigHash: r.Hash, State: "running", Health: "healthy", Image: inst.Image, ImageID: imageID(inst.Image),
		Resources: probe.Resources{MilliCPU: inst.Resources.MilliCPU, MemoryBytes: inst.Resources.MemoryBytes}}
	for _, p := range r.Spec.Ports {
		if p.HostPort == 0 {
			p.HostPort = s.nextPort
			s.nextPort++
		}
		m.Ports = append(m.Ports, p)
	}
	hf := s.snap.Host(step.Host)
	hf.Managed = append(hf.Managed, m)
	w.Ports[step.Address] = portMap(m.Ports)
	s.st.Instances[step.Address] = &state.Instance{Address: step.Address, Container: m.Container, Index: m.Index,
		Host: step.Host, HostAddress: hf.ReachAddress, ContainerID: m.ID, Name: m.Name, ImageID: m.ImageID,
		ConfigHash: m.ConfigHash, Spec: r.Spec, Ports: m.Ports, Sensitive: r.SensitivePaths()}
	s.st.Serial++
}

// remove takes the container with the given ID off a host.
func (s *sim) remove(host, id string) {
	hf := s.snap.Host(host)
	if hf == nil {
		return
	}
	hf.Managed = slices.DeleteFunc(hf.Managed, func(m probe.ManagedContainer) bool { return m.ID == id })
}

// portMap keys published host ports as planner.World does ("8080",
// "53/udp").
func portMap(ports []engine.PortBinding) map[string]int {
	out := map[string]int{}
	for _, p := range ports {
		key := fmt.Sprint(p.ContainerPort)
		if p.Protocol == "udp" {
			key += "/udp"
		}
		out[key] = p.HostPort
	}
	return out
}
